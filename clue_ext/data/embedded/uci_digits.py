"""Upscale scikit-learn's 8x8 digits to MNIST's 28x28 layout."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SIZE = 28
# MNIST centres each digit in a 20x20 box inside the 28x28 frame; the 8x8 UCI
# digits fill their frame, so they are scaled into that same box, not to 28x28.
DIGIT_BOX = 20


def upscale_uci_digits(images: np.ndarray) -> np.ndarray:
    """Bicubic-upscale 8x8 digits (float, 0..1) into uint8 ``(N, 1, 28, 28)`` images.

    The result is white on black like MNIST, with a 4-pixel empty margin.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"images must have shape (N, 8, 8), got {images.shape}")
    small = torch.from_numpy(images)[:, None]
    # Bicubic keeps strokes rounder than bilinear at this 2.5x magnification; it
    # overshoots slightly, hence the clamp.
    box = F.interpolate(small, size=(DIGIT_BOX, DIGIT_BOX), mode="bicubic", align_corners=False).clamp_(0, 1)
    margin = (IMAGE_SIZE - DIGIT_BOX) // 2
    framed = F.pad(box, (margin, margin, margin, margin))
    return np.rint(framed.numpy() * 255).astype(np.uint8)
