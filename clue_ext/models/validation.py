"""Argument and input checks shared by the model builders."""

from __future__ import annotations

from typing import Optional

import torch


def check_positive_int(name: str, value) -> None:
    """Raise ValueError unless ``value`` is an int >= 1 (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_input_batch(
    x: torch.Tensor, in_channels: int, spatial: Optional[tuple[int, int]] = None
) -> None:
    """Check that ``x`` is an ``(N, C, H, W)`` batch the model was built for.

    A wrong shape would otherwise surface as an opaque matmul error deep in the
    network, so we name what was expected and what arrived.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got {x.dim()}-D with shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(
            f"x must have {in_channels} channel(s) (the model's in_channels), got {x.shape[1]}"
        )
    if spatial is not None and tuple(x.shape[-2:]) != spatial:
        raise ValueError(
            f"x must be {spatial[0]}x{spatial[1]} pixels, got {x.shape[-2]}x{x.shape[-1]}"
        )
