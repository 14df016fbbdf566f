"""Power-of-two rescaling of features whose squared distances would leave the float range.

K-Means is scale-invariant, and multiplying by a power of two is exact in
floating point, so moving features into a safe range changes no pick. What
breaks otherwise: squared distances of float32 features near 1e19 overflow
to inf (and inf - inf to NaN in the GEMM expansion ||x||^2 - 2 x.c + ||c||^2),
and those of features near 1e-20 underflow to 0, so every distance ties.

A pool is "safe" when the largest squared distance two rows can have,
4 D max|x|^2, stays far below the dtype's largest value, and max|x|^2 far
above its smallest normal value. Only then are the features used as they
are; otherwise they are multiplied by the power of two that brings max|x|
into [1, 2). Either way the values differ from the caller's by a power of
two, so picks do not depend on a power-of-two scale of the input.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

#: Headroom, in powers of two, kept below the largest and above the smallest
#: normal value: GEMM tiles add D products and the seeding's potentials add N
#: weighted distances, so the extremes must stay well inside the range.
_HEADROOM_BITS = {torch.float32: 24, torch.float64: 128}


def max_abs(x: torch.Tensor) -> float:
    """The largest |value| of x, as a Python float (0.0 for an empty tensor)."""
    if x.numel() == 0:
        return 0.0
    # One read of x and no temporary: x.abs() would write a copy as large as x
    # (at 60k x 500, 10% of select's time).
    low, high = torch.aminmax(x)
    return max(-float(low), float(high))


def scale_exponent(largest: float, d: int, dtype: torch.dtype) -> int:
    """e such that x * 2**e is safe for features of width `d` whose largest |value| is `largest`.

    0 when x is safe as it is (and when x is all zeros).
    """
    if not largest > 0:
        return 0
    info = torch.finfo(dtype)
    headroom = _HEADROOM_BITS[torch.float64 if dtype == torch.float64 else torch.float32]
    # log2 of the largest squared distance, 4 D max|x|^2, and of the smallest
    # square of the largest value; computed on logarithms so nothing overflows.
    log_largest = math.log2(largest)
    top = 2.0 + math.log2(max(d, 1)) + 2.0 * log_largest
    bottom = 2.0 * log_largest
    if top <= math.log2(info.max) - headroom and bottom >= math.log2(info.tiny) + headroom:
        return 0
    _, exponent = math.frexp(largest)  # largest = m 2**exponent, m in [0.5, 1)
    return 1 - exponent


def scaled_by_power_of_two(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """x * 2**exponent (a new tensor; x itself when exponent is 0), exact for normal values.

    Applied in steps of at most 2**64, so the factor itself fits every
    floating dtype (a Python scalar is cast to the tensor's dtype).
    """
    if exponent == 0:
        return x
    out = x.clone()
    remaining = exponent
    while remaining:
        step = max(-64, min(64, remaining))
        out.mul_(2.0 ** step)
        remaining -= step
    return out


def rescaled(x: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """(x in the safe range, the exponent e it was multiplied by 2**e with)."""
    exponent = scale_exponent(max_abs(x), x.shape[1] if x.dim() == 2 else 1, x.dtype)
    return scaled_by_power_of_two(x, exponent), exponent


def squares_fit(largest: float, d: int, dtype: torch.dtype) -> bool:
    """Whether squared distances of rows of width `d`, |values| <= `largest`, fit `dtype`."""
    if not largest > 0:
        return True
    return 2.0 + math.log2(max(d, 1)) + 2.0 * math.log2(largest) < math.log2(torch.finfo(dtype).max)


#: Weights whose largest value lies in [2**-30, 2**30] are used as they are.
_WEIGHT_RANGE_BITS = 30


def weight_exponent(largest: float) -> int:
    """e such that weights whose largest value is `largest` are used as w * 2**e (0: as they are)."""
    if not largest > 0:
        return 0
    _, exponent = math.frexp(largest)
    if -_WEIGHT_RANGE_BITS < exponent <= _WEIGHT_RANGE_BITS:
        return 0
    return 1 - exponent


def normalized_weights(w: torch.Tensor) -> torch.Tensor:
    """w, or w times the power of two that brings its largest value into [1, 2).

    Only the ratios of sample weights matter to weighted K-Means, and weights
    far below 1 (entropies of near one-hot probabilities, 1e-40 and less)
    would otherwise round to 0 in float32, and far above 1 overflow its sums.
    """
    return scaled_by_power_of_two(w, weight_exponent(max_abs(w)))
