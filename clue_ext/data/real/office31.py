"""Office-31 as image folders: ``<root>/office31/<domain>/images/<class>/*.jpg``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..splits import stratified_split
from .layout import OFFICE31_DIR, missing_data

OFFICE31_DOMAINS = ("amazon", "dslr", "webcam")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Office-31 has no official train/test split. A seeded, stratified 70/30 cut of
# the target domain gives the pool and a held-out test set of every class.
OFFICE31_TEST_FRACTION = 0.3
_HOW_TO_GET = (
    "Office-31 cannot be downloaded automatically: get domain_adaptation_images.tar.gz "
    "(https://faculty.cc.gatech.edu/~judy/domainadapt/) and extract it so that "
    "<data_root>/office31/{amazon,dslr,webcam}/images/<class>/*.jpg exist."
)


def scan_office31_domain(data_root: Path, domain: str) -> tuple[list[str], list[int], list[str]]:
    """List one domain's images.

    Returns:
        ``(paths, labels, classes)``: paths sorted by class then file name; labels
        index ``classes``, the sorted class folder names.

    Raises:
        ValueError: ``domain`` is not an Office-31 domain.
        FileNotFoundError: the domain folder is missing or holds no images.
    """
    if domain not in OFFICE31_DOMAINS:
        raise ValueError(f"unknown Office-31 domain {domain!r}; valid: {list(OFFICE31_DOMAINS)}")
    images_dir = Path(data_root) / OFFICE31_DIR / domain / "images"
    if not images_dir.is_dir():
        raise missing_data(f"Office-31 domain {domain!r}", f"{images_dir}/<class>/*.jpg", _HOW_TO_GET)
    classes = sorted(entry.name for entry in images_dir.iterdir() if entry.is_dir())
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(f for f in (images_dir / name).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        paths.extend(str(f) for f in files)
        labels.extend([label] * len(files))
    if not paths:
        raise missing_data(f"images of Office-31 domain {domain!r}", f"{images_dir}/<class>/*.jpg", _HOW_TO_GET)
    return paths, labels, classes


def split_office31_target(labels: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified ``(pool, test)`` indices of a target domain's images."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 31]))
    pool, test = stratified_split(np.asarray(labels), (1 - OFFICE31_TEST_FRACTION, OFFICE31_TEST_FRACTION), rng)
    return pool, test
