"""Conversion and validation of user input for the public API.

Public functions accept torch tensors or numpy arrays. They are turned into
tensors here (without a copy when possible) and checked, so that bad input
fails early with a ValueError/TypeError that names the argument.
"""

from __future__ import annotations

import numbers
from typing import Optional

import numpy as np
import torch

from . import _extension

_FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def as_tensor(value, name: str, *, device: Optional[torch.device] = None) -> torch.Tensor:
    """A tensor view of `value` (torch tensor or numpy array), numeric only."""
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise TypeError(f"{name} must be a dense tensor, got layout {value.layout}; pass {name}.to_dense()")
        # Selection is not differentiable: model outputs computed outside
        # no_grad, and parameters, are read as plain values.
        tensor = value.detach()
    elif isinstance(value, np.ndarray):
        tensor = torch.from_numpy(_native_numpy(value, name))
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if device is not None:
        tensor = tensor.to(device)
    return tensor


def _native_numpy(value: np.ndarray, name: str) -> np.ndarray:
    """A contiguous array torch can wrap: native byte order, and float128 as float64."""
    if value.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got a numpy array of dtype {value.dtype}")
    if value.dtype.kind == "f" and value.dtype.itemsize > 8:
        value = value.astype(np.float64)  # torch has no long double; float64 keeps every pick's precision
    if not value.dtype.isnative:
        value = value.astype(value.dtype.newbyteorder("="))  # files written on big-endian machines
    return np.ascontiguousarray(value)


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """float64 stays float64; every other numeric dtype is computed in float32."""
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def as_matrix(value, name: str, *, device: Optional[torch.device] = None) -> torch.Tensor:
    """A finite (N, D) floating tensor, N >= 1 and D >= 1, on a device this build has kernels for."""
    tensor = as_tensor(value, name, device=device)
    _extension.check_device(tensor.device, name)
    if tensor.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty: the pool must hold at least one row, got shape {tuple(tensor.shape)}")
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column, got shape {tuple(tensor.shape)}")
    tensor = tensor.to(compute_dtype(tensor))
    check_finite(tensor, name)
    return tensor


def as_vector(value, name: str, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A finite (n,) tensor of `dtype`."""
    tensor = as_tensor(value, name, device=device)
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries (one per row of the features), got {tensor.shape[0]}")
    tensor = tensor.to(dtype)
    check_finite(tensor, name)
    return tensor


def check_finite(tensor: torch.Tensor, name: str) -> None:
    # One reduction with no temporary answers the common case: a finite sum
    # means no NaN or Inf. An infinite sum may still come from huge finite
    # values, so only then is every element looked at.
    if bool(torch.isfinite(tensor.sum())):
        return
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise ValueError(
            f"{name} must be finite, got {int(bad.sum())} NaN/Inf value(s), the first at index {where}"
        )


def as_count(value, name: str, *, low: int, high: int, high_reason: str) -> int:
    """An integer in [low, high]; bools and floats are refused."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.dtype.is_floating_point:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if value > high:
        raise ValueError(f"{name} must be <= {high} ({high_reason}), got {value}")
    return value


def as_positive_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def as_non_negative_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


#: The seeds torch.Generator.manual_seed takes: a signed or unsigned 64-bit integer.
SEED_RANGE = (-(2**63), 2**64 - 1)


def as_seed(value) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.dtype.is_floating_point:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"seed must be an integer or None, got {type(value).__name__} {value!r}")
    value = int(value)
    if not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise ValueError(f"seed must be a 64-bit integer, in [{SEED_RANGE[0]}, {SEED_RANGE[1]}], got {value}")
    return value


def as_exclude_mask(value, n: int, device: torch.device) -> Optional[torch.Tensor]:
    """A bool (n,) mask from a bool mask or a collection of row indices."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, range)):
        value = np.asarray(sorted(value) if isinstance(value, set) else list(value)).reshape(-1)
        if value.size == 0:
            value = value.astype(np.int64)
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biu":
        raise TypeError(f"exclude must hold integer row indices or bools, got dtype {value.dtype}")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
    else:
        raise TypeError(f"exclude must be a bool mask or a collection of row indices, got {type(value).__name__}")
    tensor = tensor.to(device)
    if tensor.dtype == torch.bool:
        if tensor.shape != (n,):
            raise ValueError(f"exclude as a bool mask must have shape ({n},), got {tuple(tensor.shape)}")
        return tensor
    if tensor.is_floating_point() or tensor.is_complex():
        raise TypeError(f"exclude must hold integer row indices or bools, got dtype {tensor.dtype}")
    indices = tensor.reshape(-1).long()
    refuse_mask_as_integers(indices, n)
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= n):
        raise ValueError(
            f"exclude holds row indices outside [0, {n}): min {int(indices.min())}, max {int(indices.max())}"
        )
    mask = torch.zeros(n, dtype=torch.bool, device=device)
    mask[indices] = True
    return mask


def refuse_mask_as_integers(indices: torch.Tensor, n: int) -> None:
    """ValueError for integer `exclude` of n entries, all 0 or 1: a bool mask saved as integers?

    Integer arrays are row indices. Read as indices, n entries of only 0s and
    1s repeat rows (n > 2) or exclude every row (n <= 2), which no caller
    means; read as a mask they would exclude other rows. Neither guess is
    safe, so the caller is asked to say which.
    """
    if indices.numel() != n or n == 0:
        return
    if bool(((indices == 0) | (indices == 1)).all()):
        raise ValueError(
            f"exclude holds {n} integers, all 0 or 1, one per row: it looks like a mask stored as integers. "
            "Pass a bool mask (exclude.astype(bool) / exclude.bool()) to exclude the rows marked 1, "
            "or the row indices of the rows to exclude"
        )
