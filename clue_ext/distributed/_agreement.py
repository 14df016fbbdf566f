"""Input checks of the sharded select, agreed by every rank in one exchange.

Each rank checks its own shard, then every rank's findings (its error if
any, its shapes, its arguments, its largest |feature|) are exchanged once,
so that every rank reaches the same verdict: either all go on, or all raise
the same error, naming the rank at fault. None waits on a peer that has
already given up, and nothing after the exchange checks the input again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .. import _extension, _inputs, _magnitude
from .._sampling import draw_seed
from ..kmeans import check_init, resolve_label_tol
from ..selection import check_probs, check_weighting, sample_weights
from ._collective import Collective


@dataclass
class Shard:
    """This rank's validated rows and the arguments every rank agreed on."""

    x: torch.Tensor  # (n, D), compute dtype, times 2**scale_exponent; n may be 0
    probs: torch.Tensor  # (n, C)
    weights: torch.Tensor  # (n,) float64: the weighting's, before any exclusion or scaling
    keep: Optional[torch.Tensor]  # (n,) bool: rows that may be clustered and picked; None: all
    offset: int  # global index of this rank's first row
    counts: list  # rows of every rank
    budget: int
    temperature: float
    seed: int
    init: str
    max_iter: int
    tol: float
    weighting: str = "entropy"
    # The power of two every rank multiplied its features by (from the largest |value|
    # of any rank), so that squared distances fit the dtype: 0 for most pools.
    scale_exponent: int = 0
    label_tol: float = 0.0  # Lloyd's label rule, resolved for init (kmeans.resolve_label_tol)

    @property
    def total(self) -> int:
        return sum(self.counts)


def _local_matrix(features) -> torch.Tensor:
    # as _inputs.as_matrix, except that a rank may hold no rows.
    x = _inputs.as_tensor(features, "features")
    _extension.check_device(x.device, "features")
    if x.dim() != 2:
        raise ValueError(f"features must be 2-D (rows of this rank, D), got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"features must have at least one column, got shape {tuple(x.shape)}")
    x = x.to(_inputs.compute_dtype(x))
    _inputs.check_finite(x, "features")
    return x


def _local_exclude(exclude, device):
    """("mask", bool tensor) or ("indices", sorted unique int64 tensor), not yet checked against N."""
    if exclude is None:
        return None
    if isinstance(exclude, (list, tuple, set, range)):
        exclude = np.asarray(sorted(exclude) if isinstance(exclude, set) else list(exclude), dtype=np.int64)
    if isinstance(exclude, np.ndarray):
        if exclude.dtype.kind not in "biu":
            raise TypeError(f"exclude must hold integer row indices or bools, got dtype {exclude.dtype}")
        exclude = torch.from_numpy(np.ascontiguousarray(exclude))
    if not isinstance(exclude, torch.Tensor):
        raise TypeError(f"exclude must be a bool mask or a collection of row indices, got {type(exclude).__name__}")
    if exclude.dtype == torch.bool:
        if exclude.dim() != 1:
            raise ValueError(f"exclude as a bool mask must be 1-D (one entry per global row), got {tuple(exclude.shape)}")
        return "mask", exclude.to(device)
    if exclude.is_floating_point() or exclude.is_complex():
        raise TypeError(f"exclude must hold integer row indices or bools, got dtype {exclude.dtype}")
    raw = exclude.reshape(-1).long().cpu()
    indices = torch.unique(raw)
    if indices.numel() and int(indices[0]) < 0:
        raise ValueError(f"exclude holds negative row indices, e.g. {int(indices[0])}")
    # Entries given, and whether all are 0 or 1: of one entry per global row, a mask stored as integers?
    return "indices", indices, (raw.numel(), bool(((raw == 0) | (raw == 1)).all()))


def _exclude_summary(parsed):
    """What every rank must agree on about `exclude`: kind, size, largest index, a digest."""
    if parsed is None:
        return None
    kind, tensor = parsed[:2]
    data = tensor.cpu().numpy()
    digest = hashlib.sha1(np.packbits(data).tobytes() if kind == "mask" else data.tobytes()).hexdigest()
    if kind == "mask":
        return kind, int(tensor.numel()), int(tensor.sum()), digest
    return kind, int(tensor.numel()), int(tensor[-1]) if tensor.numel() else -1, digest, parsed[2]


def _raise_agreed(kind: str, message: str):
    raise (TypeError if kind == "TypeError" else ValueError)(message)


def agree(comm: Collective, features, probs, budget, *, temperature, seed, exclude, init, max_iter, tol,
          weighting="entropy", label_tol=None) -> Shard:
    """Checks this rank's input, exchanges the verdicts, and returns this rank's Shard, or
    raises the same error on every rank."""
    local_error = None
    try:
        x = _local_matrix(features)
        p = check_probs(probs, x.shape[0], x.device)
        args = (
            _inputs.as_count(budget, "budget", low=1, high=2**62, high_reason="a sane limit"),
            _inputs.as_positive_float(temperature, "temperature"),
            check_init(init),
            _inputs.as_count(max_iter, "max_iter", low=0, high=2**31, high_reason="a sane limit"),
            _inputs.as_non_negative_float(tol, "tol"),
            check_weighting(weighting),
            _inputs.as_seed(seed),
            resolve_label_tol(label_tol, check_init(init)),
        )
        parsed_exclude = _local_exclude(exclude, x.device)
        # Computed here so that nothing they could raise comes after the exchange.
        weights = sample_weights(p, args[1], args[5])
        info = dict(n=x.shape[0], d=x.shape[1], c=p.shape[1], dtype=str(x.dtype), device=x.device.type,
                    args=args, exclude=_exclude_summary(parsed_exclude), max_abs=_magnitude.max_abs(x),
                    drawn_seed=draw_seed() if args[6] is None and comm.rank == 0 else None)
    except Exception as error:  # reported to every rank before anyone raises
        local_error = error
        info = dict(error=(type(error).__name__, str(error)))
    infos = comm.gather_objects(info)
    failed = [(rank, i["error"]) for rank, i in enumerate(infos) if "error" in i]
    if failed:
        rank, (kind, message) = failed[0]
        try:
            _raise_agreed(kind, f"rank {rank} of {comm.size}: {message}")
        except (TypeError, ValueError) as agreed:
            raise agreed from (local_error if rank == comm.rank else None)

    _check_same(infos, "d", "features have {} columns on rank {} but {} on rank {}")
    _check_same(infos, "dtype", "features are computed in {} on rank {} but in {} on rank {} (pass one dtype)")
    _check_same(infos, "device", "features are on {} on rank {} but on {} on rank {}")
    _check_same(infos, "c", "probs have {} columns on rank {} but {} on rank {}")
    names = ("budget", "temperature", "init", "max_iter", "tol", "weighting", "seed", "label_tol")
    for position, name in enumerate(names):
        values = [i["args"][position] for i in infos]
        if any(v != values[0] for v in values):
            _raise_agreed("ValueError", f"{name} must be the same on every rank, got {values}")
    if any(i["exclude"] != infos[0]["exclude"] for i in infos):
        _raise_agreed("ValueError", "exclude must be the same (global row indices or a global mask) on every rank")

    counts = [i["n"] for i in infos]
    total = sum(counts)
    if total == 0:
        _raise_agreed("ValueError", "features is empty on every rank: the pool must hold at least one row")
    offset = sum(counts[: comm.rank])
    keep, excluded = _keep_mask(parsed_exclude, infos[0]["exclude"], total, offset, x.shape[0], x.device)
    budget_, temperature_, init_, max_iter_, tol_, weighting_, seed_, label_tol_ = infos[0]["args"]
    available = total - excluded
    if budget_ > available:
        where = "the rows of every rank" if excluded == 0 else "the rows of every rank not excluded"
        _raise_agreed("ValueError", f"budget must be <= {available} ({where}), got {budget_}")
    # One exponent from every rank's largest value: the ranks scale alike, as one process would.
    exponent = _magnitude.scale_exponent(max(i["max_abs"] for i in infos), x.shape[1], x.dtype)
    return Shard(x=_magnitude.scaled_by_power_of_two(x, exponent), probs=p, weights=weights, keep=keep,
                 offset=offset, counts=counts, budget=budget_, temperature=temperature_,
                 seed=seed_ if seed_ is not None else infos[0]["drawn_seed"], init=init_, max_iter=max_iter_,
                 tol=tol_, weighting=weighting_, scale_exponent=exponent, label_tol=label_tol_)


def _check_same(infos, key, template):
    for rank, info in enumerate(infos):
        if info[key] != infos[0][key]:
            _raise_agreed("ValueError", template.format(infos[0][key], 0, info[key], rank))


def _keep_mask(parsed, summary, total, offset, n, device):
    """(this rank's keep mask or None, excluded rows in all), from the agreed `exclude`."""
    if parsed is None:
        return None, 0
    kind, tensor = parsed[:2]
    if kind == "mask":
        if summary[1] != total:
            _raise_agreed("ValueError", f"exclude as a bool mask must have one entry per row of every rank "
                                        f"({total}), got {summary[1]}")
        return ~tensor[offset:offset + n], summary[2]
    given, zeros_and_ones = summary[4]
    if given == total and zeros_and_ones:  # as _inputs.refuse_mask_as_integers, over every rank's rows
        _raise_agreed("ValueError",
                      f"exclude holds {total} integers, all 0 or 1, one per row of every rank: it looks like a "
                      "mask stored as integers. Pass a bool mask (exclude.astype(bool) / exclude.bool()) to "
                      "exclude the rows marked 1, or the global indices of the rows to exclude")
    if summary[2] >= total:
        _raise_agreed("ValueError", f"exclude holds row indices outside [0, {total}): max {summary[2]}")
    local = tensor[(tensor >= offset) & (tensor < offset + n)] - offset
    keep = torch.ones(n, dtype=torch.bool, device=device)
    keep[local.to(device)] = False
    return keep, summary[1]
