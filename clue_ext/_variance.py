"""The mean per-feature variance that scales Lloyd's tolerance, without cancellation.

scikit-learn's tolerance is relative to np.var(X, axis=0).mean(). The short
form E||x||^2 - ||E x||^2 cancels catastrophically when the features sit
far from the origin relative to their spread (an offset of 100 and a spread
of 0.01 gave 171.7 instead of 1e-4 in float32), so the rows are centred
first and everything is accumulated in double, chunk by chunk, so that no
temporary is as large as x. The two sums are separate functions so the
sharded select can all-reduce each of them. On the CPU the extension's
`mean_feature_variance` op does the same in two streaming passes, 6x faster
at 48k x 512 (where this took 7% of select).
"""

from __future__ import annotations

import torch

from . import _extension  # noqa: F401  (registers the extension's ops)

# Rows converted to double at once: large enough that the per-chunk overhead
# vanishes, small enough that the temporary stays a few MB.
_CHUNK_ROWS = 4096


def column_sums(x: torch.Tensor) -> torch.Tensor:
    """(D,) float64: the sum of the rows of x."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        total += x[start:start + _CHUNK_ROWS].double().sum(dim=0)
    return total


def centred_square_sum(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """0-d float64: sum over rows and columns of (x - mean)^2."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    mean = mean.to(device=x.device, dtype=torch.float64)
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        total += (x[start:start + _CHUNK_ROWS].double() - mean).pow(2).sum()
    return total


def mean_feature_variance(x: torch.Tensor) -> float:
    """Mean over columns of the (biased) variance of each column of x (np.var(x, axis=0).mean())."""
    n, d = x.shape
    if n == 0:
        return 0.0
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return float(torch.ops.clue_ext.mean_feature_variance(x))
    return chunked_mean_feature_variance(x)


def chunked_mean_feature_variance(x: torch.Tensor) -> float:
    """:func:`mean_feature_variance` on any device, in chunks converted to double."""
    n, d = x.shape
    if n == 0:
        return 0.0
    mean = column_sums(x) / n
    return float(centred_square_sum(x, mean)) / (n * d)
