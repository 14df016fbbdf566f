"""Distinct nearest points of the centroids over sharded rows (csrc/ops.h's nearest_points).

Each rank lists, for every centroid, its `width` nearest available rows with
their exact distances; the lists are gathered and every rank resolves them
the same way, centroids served in order, each taking its nearest row (by
(distance, global index)) not taken before. A centroid whose listed rows
were all taken by earlier ones, while some rank may hold more, starts a new
round for it and the centroids after it, with the taken rows left out and
longer lists.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ._collective import Collective

FIRST_WIDTH = 8
_ROW_CHUNK = 4096


def local_candidates(x, centroids, available, width: int, offset: int):
    """(k, 2 * width) float64: each centroid's `width` nearest available rows of this rank,
    as exact squared distances then global indices; missing entries are (inf, -1)."""
    k = centroids.shape[0]
    if x.shape[0] == 0:
        return torch.cat([torch.full((k, width), math.inf, dtype=torch.float64, device=x.device),
                          torch.full((k, width), -1.0, dtype=torch.float64, device=x.device)], dim=1)
    best_d = torch.full((width, k), math.inf, dtype=x.dtype, device=x.device)
    best_i = torch.full((width, k), -1, dtype=torch.long, device=x.device)
    c_norms = centroids.pow(2).sum(dim=1)
    for start in range(0, x.shape[0], _ROW_CHUNK):
        rows = x[start:start + _ROW_CHUNK]
        d = torch.addmm(rows.pow(2).sum(dim=1)[:, None] + c_norms[None, :], rows, centroids.T, alpha=-2)
        d.masked_fill_(~available[start:start + _ROW_CHUNK, None], math.inf)
        values, where = d.topk(min(width, rows.shape[0]), dim=0, largest=False)
        merged_d = torch.cat([best_d, values])
        merged_i = torch.cat([best_i, where + start])
        best_d, keep = merged_d.topk(width, dim=0, largest=False)
        best_i = merged_i.gather(0, keep)
    valid = torch.isfinite(best_d)
    exact = torch.empty(width, k, dtype=torch.float64, device=x.device)
    for rank in range(width):  # one (k, D) gather at a time
        exact[rank] = (x[best_i[rank].clamp(min=0)].double() - centroids.double()).pow(2).sum(dim=1)
    exact[~valid] = math.inf
    global_i = torch.where(valid, best_i + offset, torch.full_like(best_i, -1)).double()
    return torch.cat([exact.T, global_i.T], dim=1)


def nearest_points(comm: Collective, x, centroids, keep: Optional[torch.Tensor], offset: int) -> torch.Tensor:
    """int64 (k,) distinct global row indices, the same on every rank."""
    k, n = centroids.shape[0], x.shape[0]
    available = torch.ones(n, dtype=torch.bool, device=x.device) if keep is None else keep.clone()
    picks = np.full(k, -1, dtype=np.int64)
    taken = set()
    first, width = 0, FIRST_WIDTH
    while first < k:
        pending = centroids[first:]
        lists = comm.gather_rows(local_candidates(x, pending, available, width, offset), [k - first] * comm.size)
        lists = lists.view(comm.size, k - first, 2 * width).cpu().numpy()
        stopped = None
        for j in range(k - first):
            dist = lists[:, j, :width].reshape(-1)
            index = lists[:, j, width:].reshape(-1).astype(np.int64)
            order = np.lexsort((index, dist))
            free = [int(i) for i in index[order] if i >= 0 and int(i) not in taken]
            if not free:
                stopped = j
                break
            picks[first + j] = free[0]
            taken.add(free[0])
        if stopped is None:
            break
        if not (lists[:, stopped, width:] >= 0).all(axis=1).any():
            # No rank's list was full: every available row was listed, and all are taken.
            raise RuntimeError("nearest_points: no row left to pick (budget larger than the available rows?)")
        first, width = first + stopped, width * 4
        mine = [i - offset for i in taken if offset <= i < offset + n]
        available[torch.tensor(mine, dtype=torch.long, device=x.device)] = False
    return torch.from_numpy(picks)
