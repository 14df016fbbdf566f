"""The paper's input pipelines: 28x28 grey digits for LeNet, the authors' 224 x 224 pipeline for ResNet-34."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms

DIGIT_SIZE = 28
# Digits are scaled to [-1, 1], the usual LeNet-DA normalisation.
DIGIT_MEAN = (0.5,)
DIGIT_STD = (0.5,)

CROP_SIZE = 224
RESIZE_SIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ITU-R 601-2 luma, what PIL's convert("L") (torchvision's Grayscale) uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
_CHUNK = 8192


def digits_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 digit images -> normalised float32 ``(N, 1, 28, 28)``.

    Accepts ``(N, H, W)`` grey or ``(N, 3, H, W)`` RGB (SVHN): colour becomes
    luminance, any size is resampled to 28x28 (antialiased bilinear), then the
    values are mapped to [-1, 1]. This is the paper's "SVHN to grey 28x28" done
    once for the whole array instead of per item through PIL, so the digit sets
    can be held in memory like the embedded benchmarks.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W) or (N, 3, H, W), got {images.shape}")
    out = torch.empty((images.shape[0], 1, DIGIT_SIZE, DIGIT_SIZE), dtype=torch.float32)
    for start in range(0, images.shape[0], _CHUNK):  # bounded memory for SVHN's 73k images
        chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + _CHUNK])).float().div_(255.0)
        if chunk.shape[1] == 3:
            chunk = (chunk * _LUMA).sum(dim=1, keepdim=True)
        if chunk.shape[-2:] != (DIGIT_SIZE, DIGIT_SIZE):
            chunk = F.interpolate(
                chunk, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear", antialias=True, align_corners=False
            )
        out[start : start + chunk.shape[0]] = (chunk.clamp_(0, 1) - DIGIT_MEAN[0]) / DIGIT_STD[0]
    return out


def _squash_to_crop_size() -> transforms.Resize:
    # The authors stored every DomainNet image resized to 224 x 224 (bicubic,
    # aspect ratio not kept) before any transform ran; this is that step.
    return transforms.Resize((CROP_SIZE, CROP_SIZE), interpolation=transforms.InterpolationMode.BICUBIC)


def imagenet_train_transform() -> transforms.Compose:
    """The authors' training pipeline for ResNet-34.

    Every image squashed to 224 x 224, resized to 256, a random 224 crop and a
    horizontal flip, ImageNet normalisation. (Their code applies it to source
    images only: target images are never augmented, see
    ``ExperimentConfig.augment_target``.)
    """
    return transforms.Compose(
        [
            _squash_to_crop_size(),
            transforms.Resize(RESIZE_SIZE),
            transforms.RandomCrop(CROP_SIZE),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def imagenet_eval_transform() -> transforms.Compose:
    """The authors' evaluation pipeline: the whole image squashed to 224 x 224, ImageNet normalisation."""
    return transforms.Compose(
        [
            _squash_to_crop_size(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def small_image_transform(size: int = DIGIT_SIZE) -> transforms.Compose:
    """RGB images for LeNet: squashed to ``size`` x ``size``, values mapped to [-1, 1]."""
    return transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
