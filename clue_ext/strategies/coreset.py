"""``coreset``: greedy K-Center on the embeddings (Sener & Savarese, ICLR 2018).

Each step picks the unlabeled item farthest from its nearest centre, then
makes it a centre. The labeled items are the initial centres; with none, the
first centre is drawn uniformly from the pool. Memory stays O(N) per step:
the labeled set is folded into the nearest-centre distances a chunk of
centres at a time, and each new centre adds one column of N distances.
"""

from __future__ import annotations

import torch

from .base import Strategy

# Pool rows x labeled centres per distance block: bounds the temporary (N, chunk) matrix.
_BLOCK_ELEMENTS = 1 << 22


def squared_distances(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` squared Euclidean distances from exact differences.

    cdist without the matrix-product shortcut avoids its cancellation error
    (tiny negative or noisy distances between near-identical embeddings), and
    still never materialises an ``(N, K, D)`` tensor.
    """
    return torch.cdist(x, centres, compute_mode="donot_use_mm_for_euclid_dist").pow(2)


def nearest_centre_distances(x: torch.Tensor, centre_indices: torch.Tensor) -> torch.Tensor:
    """Squared distance of every row of ``x`` to its nearest row among ``centre_indices``.

    ``+inf`` everywhere when there are no centres.
    """
    n = x.shape[0]
    best = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    chunk = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, centre_indices.numel(), chunk):
        block = x.index_select(0, centre_indices[start : start + chunk].to(x.device))
        best = torch.minimum(best, squared_distances(x, block).min(dim=1).values)
    return best


def greedy_k_center(x: torch.Tensor, initial: torch.Tensor, allowed: torch.Tensor, n: int,
                    generator: torch.Generator) -> torch.Tensor:
    """``n`` greedy K-Center picks among the rows where ``allowed`` is True.

    Args:
        x: ``(N, D)`` points.
        initial: int64 indices of the initial centres (may be empty).
        allowed: ``(N,)`` bool mask of rows that may be picked (at least ``n``).
        n: number of picks.
        generator: draws the first centre when ``initial`` is empty.

    Ties go to the lowest index (``argmax`` returns the first maximum).
    """
    allowed = allowed.to(x.device).clone()
    distances = nearest_centre_distances(x, initial)
    picks = []
    if initial.numel() == 0:
        candidates = allowed.nonzero().flatten().cpu()
        first = int(candidates[int(torch.randint(candidates.numel(), (1,), generator=generator))])
        picks.append(first)
        allowed[first] = False
        distances = squared_distances(x, x[first : first + 1])[:, 0]
    # Rows that may not be picked get -1, below any real distance (all >= 0).
    masked = torch.where(allowed, distances, torch.full_like(distances, -1.0))
    while len(picks) < n:
        pick = int(torch.argmax(masked))
        picks.append(pick)
        allowed[pick] = False
        new = squared_distances(x, x[pick : pick + 1])[:, 0]
        masked = torch.where(allowed, torch.minimum(masked, new), torch.full_like(masked, -1.0))
    return torch.tensor(picks, dtype=torch.long)


class Coreset(Strategy):
    """Greedy K-Center on penultimate-layer embeddings, labeled items as initial centres."""

    name = "coreset"

    def _select(self, n, context):
        labeled_indices = context.labeled.nonzero().flatten()
        return greedy_k_center(context.outputs.embeddings, labeled_indices, ~context.labeled, n, context.generator)
