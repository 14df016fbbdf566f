"""Colour handling shared by the embedded benchmarks."""

from __future__ import annotations

import numpy as np

# ITU-R 601-2 luma, the weights PIL's convert("L") and torchvision's Grayscale use,
# so an embedded grey image matches what the real-data pipeline would produce.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def colours_to_channels(rgb: np.ndarray, channels: int) -> np.ndarray:
    """Express RGB colours ``(N, 3)`` in a shift's channel space: ``(N, channels)``.

    One channel means luminance, three the RGB itself. Luminance is linear in
    RGB, so converting the two colours of a blend gives exactly the luminance of
    the blended RGB image, without ever building that image.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must have shape (N, 3), got {rgb.shape}")
    if channels == 1:
        return (rgb @ LUMA_WEIGHTS)[:, None].astype(rgb.dtype)
    if channels == 3:
        return rgb
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in 0..1 to uint8 0..255 (clipped, rounded)."""
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Replicate uint8 grey images ``(N, 1, H, W)`` to ``(N, 3, H, W)``."""
    if grey.ndim != 4 or grey.shape[1] != 1:
        raise ValueError(f"grey must have shape (N, 1, H, W), got {grey.shape}")
    return np.repeat(grey, 3, axis=1)
