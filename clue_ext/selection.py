"""CLUE selection (Prabhu et al., ICCV 2021, Algorithm 1 step 6).

Each unlabeled point is weighted by the entropy of the model's (re-tempered)
prediction, the pool is clustered by weighted K-Means with K = budget, and
the distinct nearest point to each centroid is picked for labeling.
"""

from __future__ import annotations

from typing import Optional

import torch

from . import _inputs, _magnitude
from ._precision import full_float32_matmuls
from .kmeans import DEFAULT_INIT, check_init, resolve_label_tol, run_kmeans, uniform_if_all_zero

# Rows of probs may be off from 1 by rounding: float16 softmax rows by up to
# 4e-4, bfloat16 ones by up to 3e-3 (its epsilon is 7.8e-3), whatever the
# number of classes. So the tolerance is this, or the epsilon of the dtype the
# caller passed, whichever is larger.
_ROW_SUM_TOLERANCE = 1e-3


def row_sum_tolerance(dtype: torch.dtype) -> float:
    """How far from 1 a row of probabilities given in `dtype` may sum."""
    if not dtype.is_floating_point:
        return _ROW_SUM_TOLERANCE
    return max(_ROW_SUM_TOLERANCE, torch.finfo(dtype).eps)


def entropy_weights(probs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of softmax(log p / T) per row, in float64.

    Re-tempering probabilities is the same as dividing the logits by T.
    Zero probabilities contribute 0 (0 log 0 = 0).
    """
    p = probs.double()
    if temperature != 1.0:
        p = torch.softmax(torch.log(p) / temperature, dim=1)
    return (-torch.special.xlogy(p, p).sum(dim=1)).clamp_min(0.0)


#: How CLUE weights each point (the paper's Fig. 4a): "entropy" (the paper's
#: CLUE), "margin" (1 minus the gap between the two most likely classes) or
#: "uniform" (weight 1: plain K-Means on the embeddings, diversity only).
WEIGHTINGS = ("entropy", "margin", "uniform")


def margin_weights(probs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """1 - (p1 - p2) per row of softmax(log p / T), in float64: 1 when the two most likely
    classes tie, 0 when one class holds all the mass (and with a single class)."""
    p = probs.double()
    if temperature != 1.0:
        p = torch.softmax(torch.log(p) / temperature, dim=1)
    if p.shape[1] < 2:
        return torch.zeros(p.shape[0], dtype=torch.float64, device=p.device)
    top = p.topk(2, dim=1).values
    return (1.0 - (top[:, 0] - top[:, 1])).clamp(0.0, 1.0)


def sample_weights(probs: torch.Tensor, temperature: float = 1.0, weighting: str = "entropy") -> torch.Tensor:
    """CLUE's per-point weights (float64) for one of :data:`WEIGHTINGS`."""
    if weighting == "entropy":
        return entropy_weights(probs, temperature)
    if weighting == "margin":
        return margin_weights(probs, temperature)
    return torch.ones(probs.shape[0], dtype=torch.float64, device=probs.device)


def check_weighting(weighting) -> str:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(repr(v) for v in WEIGHTINGS)}, got {weighting!r}")
    return weighting


def check_probs(probs, n: int, device: torch.device) -> torch.Tensor:
    """Validates (N, C) probabilities: finite, non-negative, rows summing to 1."""
    p = _inputs.as_tensor(probs, "probs", device=device)
    if p.dim() != 2:
        raise ValueError(f"probs must be 2-D (N, C), got shape {tuple(p.shape)}")
    if p.shape[0] != n:
        raise ValueError(f"probs must have one row per row of features ({n}), got {p.shape[0]} rows")
    if p.shape[1] == 0:
        raise ValueError("probs must have at least one column (class), got 0")
    tolerance = row_sum_tolerance(p.dtype)
    p = p.to(_inputs.compute_dtype(p))
    _inputs.check_finite(p, "probs")
    if bool((p < 0).any()):
        raise ValueError(f"probs must be >= 0, got {int((p < 0).sum())} negative value(s)")
    sums = p.double().sum(dim=1)
    off = (sums - 1.0).abs() > tolerance
    if bool(off.any()):
        row = int(off.nonzero()[0])
        raise ValueError(
            f"rows of probs must sum to 1 (softmax outputs), got {int(off.sum())} row(s) that do not, "
            f"e.g. row {row} sums to {float(sums[row]):.6g}; pass softmax(logits) rather than logits"
        )
    return p


def select(
    features,
    probs,
    budget: int,
    *,
    temperature: float = 1.0,
    seed: Optional[int] = None,
    exclude=None,
    max_iter: int = 300,
    tol: float = 1e-4,
    init: str = DEFAULT_INIT,
    weighting: str = "entropy",
    label_tol: Optional[float] = None,
) -> torch.Tensor:
    """Picks `budget` distinct rows of `features` to label, by CLUE.

    Args:
        features: (N, D) embeddings of the unlabeled pool (torch tensor or
            numpy array; float16/32/64).
        probs: (N, C) predicted class probabilities of the same points.
        budget: how many points to pick, 1 <= budget <= N - len(exclude).
        temperature: softmax temperature T; the weights are the entropies of
            softmax(log(probs) / T). T < 1 favours uncertainty, T > 1 diversity.
        seed: seed of the K-Means++ draws (None: from torch's global RNG).
        exclude: row indices (or an (N,) bool mask) never to pick, e.g. points
            already labeled. They are left out of the clustering as well.
        max_iter, tol, label_tol: Lloyd stopping rules, as in :func:`weighted_kmeans`.
        init: how the clustering starts, as in :func:`weighted_kmeans`:
            ``"fast"`` (default), ``"subsample"`` or ``"k-means++"`` (the
            original recipe's exact seeding).
        weighting: each point's weight: ``"entropy"`` (default, the paper's),
            ``"margin"`` (1 - (p1 - p2) of the re-tempered probabilities) or
            ``"uniform"`` (plain K-Means, the paper's diversity-only ablation).

    Returns:
        int64 tensor of `budget` distinct row indices, on the features' device.

    Inputs that require grad are read as values (selection is not
    differentiable). Features of any finite magnitude are accepted: those
    whose squared distances would overflow or underflow their dtype are
    first multiplied by a power of two (exact), so the picks do not change
    when the features are scaled by one.
    """
    from . import ops

    x = _inputs.as_matrix(features, "features")
    n = x.shape[0]
    p = check_probs(probs, n, x.device)
    temperature = _inputs.as_positive_float(temperature, "temperature")
    mask = _inputs.as_exclude_mask(exclude, n, x.device)
    available = n if mask is None else n - int(mask.sum())
    budget = _inputs.as_count(
        budget, "budget", low=1, high=available,
        high_reason="the number of rows of features" if mask is None else "the rows of features not excluded",
    )
    seed = _inputs.as_seed(seed)
    init, weighting = check_init(init), check_weighting(weighting)
    label_tol = resolve_label_tol(label_tol, init)
    x, _ = _magnitude.rescaled(x)
    with full_float32_matmuls(x.device):
        return select_with(ops, x, p, budget, temperature=temperature, seed=seed, exclude=mask,
                           max_iter=max_iter, tol=tol, init=init, weighting=weighting, label_tol=label_tol)


def select_with(backend, x: torch.Tensor, p: torch.Tensor, budget: int, *, temperature: float,
                seed: Optional[int], exclude: Optional[torch.Tensor], max_iter: int, tol: float,
                init: str = DEFAULT_INIT, weighting: str = "entropy", label_tol: float = 0.0) -> torch.Tensor:
    """CLUE on validated input with the ops of `backend` (extension or reference)."""
    keep = None if exclude is None else ~exclude
    w = sample_weights(p, temperature, weighting)
    if keep is not None:
        w = w * keep.double()
    # Weights far below 1 (near one-hot probabilities) would underflow in
    # float32: a power of two keeps their ratios exactly.
    w = uniform_if_all_zero(_magnitude.normalized_weights(w), keep).to(x.dtype)
    result = run_kmeans(backend, x, w, budget, seed=seed, max_iter=max_iter, tol=tol, init=init,
                        label_tol=label_tol)
    return backend.nearest_points_labelled(x, result.centroids, result.labels, exclude)
