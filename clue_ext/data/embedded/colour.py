"""Colour handling shared by the embedded benchmarks."""

from __future__ import annotations

import numpy as np

# ITU-R 601-2 luma, the weights PIL's convert("L") and torchvision's Grayscale use,
# so an embedded grey image matches what the real-data pipeline would produce.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def to_channels(rgb: np.ndarray, channels: int) -> np.ndarray:
    """Convert float RGB images ``(N, 3, H, W)`` in 0..1 to uint8 with ``channels`` channels.

    One channel means luminance; three means the RGB itself. Every benchmark
    routes its colour through here so both domains of a shift are converted the
    same way.
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must have shape (N, 3, H, W), got {rgb.shape}")
    if channels == 1:
        image = np.tensordot(LUMA_WEIGHTS, rgb, axes=([0], [1]))[:, None]
    elif channels == 3:
        image = rgb
    else:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Replicate uint8 grey images ``(N, 1, H, W)`` to ``(N, 3, H, W)``."""
    if grey.ndim != 4 or grey.shape[1] != 1:
        raise ValueError(f"grey must have shape (N, 1, H, W), got {grey.shape}")
    return np.repeat(grey, 3, axis=1)
