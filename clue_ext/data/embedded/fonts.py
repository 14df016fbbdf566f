"""Digit glyphs rendered from the TrueType fonts that ship with matplotlib."""

from __future__ import annotations

import functools
import logging
import os

import matplotlib
import numpy as np
from matplotlib import ft2font
from PIL import Image, ImageDraw, ImageFilter, ImageFont

logger = logging.getLogger(__name__)

DIGIT_GLYPH_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Glyph bank geometry: every glyph is cropped to its ink and rescaled so its height
# is GLYPH_HEIGHT pixels, centred on a GLYPH_CANVAS square. Normalising here lets
# the random placement later control the final size exactly, whatever the font's
# own metrics (old-style figures, for instance, are much smaller than lining ones).
GLYPH_CANVAS = 64
GLYPH_HEIGHT = 52
_RENDER_CANVAS = 112
_RENDER_FONT_SIZE = 64

# Stroke thickening, as a dilation radius in pixels at render size (glyphs there are
# about 45 px tall). A max filter rather than PIL's stroke_width: the TeX fonts
# have overlapping contours that PIL's outline stroking renders with notches.
STROKE_DILATIONS = (0, 1, 2)


def matplotlib_font_dir() -> str:
    """Directory of the TrueType fonts bundled with matplotlib."""
    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


def _has_real_digits(path: str) -> bool:
    # Several bundled fonts map '0'..'9' to something else: TeX symbol and
    # extension fonts (cmsy10, cmex10) put symbols there, LastResort a placeholder,
    # the STIX size variants nothing. The glyph names say which fonts really
    # draw lining digits ("zero", ...). Old-style figures ("zerooldstyle" in
    # cmmi10) are left out too: their 0, 1 and 2 are x-height glyphs, which the
    # per-glyph height normalisation below would blow up into blobs.
    try:
        font = ft2font.FT2Font(path)
        charmap = font.get_charmap()
        for digit, name in enumerate(DIGIT_GLYPH_NAMES):
            code = ord(str(digit))
            if code not in charmap or font.get_glyph_name(charmap[code]) != name:
                return False
    except (OSError, RuntimeError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=None)
def digit_font_paths() -> tuple[str, ...]:
    """Sorted paths of the bundled fonts whose glyphs for 0-9 are real digits."""
    directory = matplotlib_font_dir()
    candidates = sorted(name for name in os.listdir(directory) if name.lower().endswith(".ttf"))
    paths = tuple(
        os.path.join(directory, name) for name in candidates if _has_real_digits(os.path.join(directory, name))
    )
    if len(paths) < 2:
        raise RuntimeError(
            f"found only {len(paths)} digit fonts in {directory}; matplotlib's bundled fonts are missing"
        )
    logger.debug("digit fonts: %s", [os.path.basename(p) for p in paths])
    return paths


def _render_glyph(font: ImageFont.FreeTypeFont, digit: int, dilation: int) -> np.ndarray:
    canvas = Image.new("L", (_RENDER_CANVAS, _RENDER_CANVAS), 0)
    centre = _RENDER_CANVAS // 2
    ImageDraw.Draw(canvas).text((centre, centre), str(digit), font=font, fill=255, anchor="mm")
    if dilation > 0:
        canvas = canvas.filter(ImageFilter.MaxFilter(2 * dilation + 1))
    box = canvas.getbbox()
    if box is None:
        raise RuntimeError(f"font {font.path} rendered an empty glyph for {digit}")
    glyph = canvas.crop(box)
    width, height = glyph.size
    scale = min(GLYPH_HEIGHT / height, (GLYPH_CANVAS - 4) / width)
    glyph = glyph.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    tile = Image.new("L", (GLYPH_CANVAS, GLYPH_CANVAS), 0)
    tile.paste(glyph, ((GLYPH_CANVAS - glyph.width) // 2, (GLYPH_CANVAS - glyph.height) // 2))
    return np.asarray(tile, dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=None)
def glyph_bank() -> np.ndarray:
    """Ink masks of every digit in every digit font at every stroke width.

    Returns:
        float32 array ``(fonts, 10, strokes, GLYPH_CANVAS, GLYPH_CANVAS)`` with
        values in 0..1 (1 = ink), read-only. Rendering is deterministic, so the
        bank is the same on every call and every machine with the same fonts.
    """
    paths = digit_font_paths()
    bank = np.zeros((len(paths), 10, len(STROKE_DILATIONS), GLYPH_CANVAS, GLYPH_CANVAS), dtype=np.float32)
    for f, path in enumerate(paths):
        font = ImageFont.truetype(path, _RENDER_FONT_SIZE)
        for digit in range(10):
            for s, dilation in enumerate(STROKE_DILATIONS):
                bank[f, digit, s] = _render_glyph(font, digit, dilation)
    bank.setflags(write=False)
    return bank
