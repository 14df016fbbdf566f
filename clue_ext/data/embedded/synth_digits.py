"""Synthetic printed digits: font glyphs with random geometry, stroke and colour.

This is the synthetic side of a synthetic -> real shift (the paper's motivating
case, and the spirit of SVHN -> MNIST: printed, coloured, either polarity, versus
handwritten white-on-black). Placement is applied in one batched ``grid_sample``
call per chunk rather than per image through PIL, which keeps a 10k-image build
well under a second.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .colour import LUMA_WEIGHTS, colours_to_channels, to_uint8
from .fonts import GLYPH_CANVAS, GLYPH_HEIGHT, glyph_bank

IMAGE_SIZE = 28
# Glyphs are sampled from a copy of the bank shrunk 2x by area averaging (32x32,
# glyphs 26 px tall), so the bilinear sampling never shrinks by more than ~2x and
# does not alias, and the per-image work stays at 28x28.
_BANK_SHRINK = 2
_CHUNK = 2048

# Ranges of the random nuisances. Heights are fractions of the image side; MNIST
# digits fill about 20 of 28 pixels (0.71).
HEIGHT_RANGE = (0.5, 0.8)
ROTATION_DEGREES = 15.0
ASPECT_RANGE = (0.8, 1.25)  # horizontal stretch
SHEAR_RANGE = 0.2  # slant, like an oblique face
SHIFT_RANGE = 0.12  # of the half-side, in grid_sample's [-1, 1] units
MIN_LUMINANCE_CONTRAST = 0.3
NOISE_STD_MAX = 0.05


@functools.lru_cache(maxsize=None)
def _sampling_bank() -> torch.Tensor:
    """The glyph bank at sampling resolution (cached; index it, never write to it)."""
    bank = torch.from_numpy(np.array(glyph_bank()))  # copy: the bank is read-only
    fonts, digits, strokes, side, _ = bank.shape
    small = F.avg_pool2d(bank.view(-1, 1, side, side), _BANK_SHRINK)
    return small.view(fonts, digits, strokes, side // _BANK_SHRINK, side // _BANK_SHRINK)


def _affine_thetas(n: int, rng: np.random.Generator) -> np.ndarray:
    """``grid_sample`` matrices mapping output to glyph-canvas coordinates."""
    height = rng.uniform(*HEIGHT_RANGE, size=n)
    angle = np.deg2rad(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES, size=n))
    aspect = rng.uniform(*ASPECT_RANGE, size=n)
    shear = rng.uniform(-SHEAR_RANGE, SHEAR_RANGE, size=n)
    shift = rng.uniform(-SHIFT_RANGE, SHIFT_RANGE, size=(n, 2))

    # Forward map glyph -> image: stretch, slant, rotate, zoom; then invert it,
    # because grid_sample asks, for each output pixel, where to read the input.
    zoom = height / (GLYPH_HEIGHT / GLYPH_CANVAS)
    cos, sin = np.cos(angle), np.sin(angle)
    forward = np.empty((n, 2, 2))
    # R @ [[1, shear], [0, 1]] @ diag(aspect, 1), times zoom
    forward[:, 0, 0] = zoom * cos * aspect
    forward[:, 0, 1] = zoom * (cos * shear - sin)
    forward[:, 1, 0] = zoom * sin * aspect
    forward[:, 1, 1] = zoom * (sin * shear + cos)
    inverse = np.linalg.inv(forward)
    theta = np.concatenate([inverse, -inverse @ shift[:, :, None]], axis=2)
    return theta.astype(np.float32)


def _sampling_grid(theta: torch.Tensor, side: int) -> torch.Tensor:
    """Same as ``F.affine_grid(theta, (n, 1, side, side), align_corners=False)``.

    Written out with broadcasting because affine_grid's batched 3x2 matmul is
    several times slower on the CPU for thousands of tiny matrices.
    """
    coords = (torch.arange(side, dtype=torch.float32) * 2 + 1) / side - 1  # pixel centres
    x = coords.view(1, 1, side)
    y = coords.view(1, side, 1)
    t = theta.view(-1, 6, 1, 1)
    grid_x = t[:, 0] * x + t[:, 1] * y + t[:, 2]
    grid_y = t[:, 3] * x + t[:, 4] * y + t[:, 5]
    return torch.stack([grid_x, grid_y], dim=-1)


def _colours(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background RGB in 0..1 whose luminances differ enough.

    Either may be the darker one: printed digits come in both polarities.
    """
    foreground = rng.uniform(size=(n, 3))
    background = rng.uniform(size=(n, 3))
    for _ in range(100):
        weak = np.abs((foreground - background) @ LUMA_WEIGHTS) < MIN_LUMINANCE_CONTRAST
        if not weak.any():
            break
        foreground[weak] = rng.uniform(size=(int(weak.sum()), 3))
        background[weak] = rng.uniform(size=(int(weak.sum()), 3))
    else:  # practically unreachable (p(weak) ~ 0.4 per draw); keep a valid pair anyway
        foreground[weak], background[weak] = 1.0, 0.0
    return foreground, background


def render_synthetic_digits(labels: np.ndarray, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Render one synthetic printed digit per label.

    Args:
        labels: int array ``(N,)`` of digits 0..9.
        channels: 1 (colour converted to luminance) or 3 (RGB).
        rng: the random generator; the same state gives the same images.

    Returns:
        uint8 array ``(N, channels, 28, 28)``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or (labels < 0).any() or (labels > 9).any():
        raise ValueError("labels must be a 1-D array of digits 0..9")
    n = len(labels)
    bank = _sampling_bank()
    n_fonts, _, n_strokes = bank.shape[:3]

    # Draw every random number up front, in a fixed order, so chunking cannot
    # change the result.
    font = rng.integers(n_fonts, size=n)
    stroke = rng.integers(n_strokes, size=n)
    theta = torch.from_numpy(_affine_thetas(n, rng))
    foreground, background = _colours(n, rng)
    noise_std = rng.uniform(0.0, NOISE_STD_MAX, size=n).astype(np.float32)
    noise = rng.standard_normal(size=(n, channels, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    # Blending is linear, so convert the two colours rather than the images.
    foreground = colours_to_channels(foreground, channels).astype(np.float32)[:, :, None, None]
    background = colours_to_channels(background, channels).astype(np.float32)[:, :, None, None]

    out = np.empty((n, channels, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        chunk = slice(start, min(start + _CHUNK, n))
        masks = bank[font[chunk], labels[chunk], stroke[chunk]].unsqueeze(1)
        grid = _sampling_grid(theta[chunk], IMAGE_SIZE)
        ink = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False).numpy()
        fg, bg = foreground[chunk], background[chunk]
        out[chunk] = to_uint8(bg + ink * (fg - bg) + noise_std[chunk, None, None, None] * noise[chunk])
    return out


def font_count() -> int:
    """How many fonts the synthetic digits are drawn from."""
    return int(glyph_bank().shape[0])

