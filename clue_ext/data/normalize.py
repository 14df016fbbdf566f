"""Turn uint8 image arrays into normalised float tensors."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def channel_stats(domains: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (in 0..1 units) with every domain weighted equally.

    Each element of ``domains`` is a uint8 ``(N, C, H, W)`` array. Weighting the
    domains equally, rather than pooling the pixels, keeps a large source set
    from deciding the scale alone; both domains then land near zero mean and
    unit variance. Using the unlabelled target pool here is legitimate in domain
    adaptation (its images are available, only its labels are not).
    """
    means, second_moments = [], []
    for images in domains:
        pixels = images.astype(np.float64) / 255.0
        means.append(pixels.mean(axis=(0, 2, 3)))
        second_moments.append((pixels**2).mean(axis=(0, 2, 3)))
    mean = np.mean(means, axis=0)
    variance = np.mean(second_moments, axis=0) - mean**2
    std = np.sqrt(np.maximum(variance, 1e-12))
    return mean, std


def normalize_uint8(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """``(images / 255 - mean) / std`` per channel, as a float32 tensor."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    shape = (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(shape)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(shape)
    return tensor.sub_(mean_t).div_(std_t)
