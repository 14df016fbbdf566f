"""Your own domains: two image folders in torchvision's ImageFolder layout.

``source_dir/<class>/<image>`` and ``target_dir/<class>/<image>``, the class
folders shared by both (images may sit in nested folders under a class). The
source folder is all labelled source data; the target folder is split per
class, with a seeded fraction held out as the test split and the rest as the
unlabelled pool the strategies pick from.

Everything is checked before a model is built: missing folders, no class
folders, no class shared by both, class folders without images, and image
files that cannot be read all raise a ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS
from tqdm.auto import tqdm

from ..models import available_models, is_known_model
from .cache import PathLike
from .image_list_dataset import ImageListDataset
from .real.transforms import CROP_SIZE, DIGIT_SIZE, IMAGENET_MEAN, IMAGENET_STD
from .real.transforms import imagenet_eval_transform, imagenet_train_transform, small_image_transform
from .shift import DomainShift, rgb_image_shift
from .splits import stratified_split

logger = logging.getLogger(__name__)

# How many unreadable files an error lists by name.
_SHOWN = 5


def scan_image_folder(folder: PathLike, argument: str) -> dict[str, list[str]]:
    """``{class name: sorted image paths}`` of an ImageFolder-layout folder.

    Raises:
        ValueError: ``folder`` is not a directory, or has no class folders.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"{argument} {str(folder)!r} is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{argument} {str(folder)!r} has no class folders (expected {argument}/<class>/<image>)")
    return {name: image_files(root / name) for name in classes}


def image_files(folder: PathLike) -> list[str]:
    """Sorted paths of the image files anywhere under ``folder`` (hidden files and folders skipped)."""
    files = []
    for directory, subdirs, names in os.walk(folder, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        files.extend(
            os.path.join(directory, n) for n in names
            if not n.startswith(".") and n.lower().endswith(IMG_EXTENSIONS)
        )
    return sorted(files)


def folder_domain_name(folder: PathLike) -> str:
    """The name a folder's domain goes by when none is given: the folder's own name."""
    return Path(folder).expanduser().resolve().name


def shared_classes(source: dict[str, list[str]], target: dict[str, list[str]]) -> list[str]:
    """The class folders both domains have, sorted; warns about the others.

    Raises:
        ValueError: no class is shared, or a shared class has no images in one domain.
    """
    shared = sorted(set(source) & set(target))
    if not shared:
        raise ValueError(
            f"source_dir and target_dir share no class folder (source: {_listing(source)}; target: {_listing(target)})"
        )
    only = sorted(set(source) ^ set(target))
    if only:
        logger.warning("ignoring %d class folder(s) found in one domain only: %s", len(only), ", ".join(only))
    for argument, found in (("source_dir", source), ("target_dir", target)):
        empty = [name for name in shared if not found[name]]
        if empty:
            raise ValueError(
                f"{argument} has class folder(s) without images ({', '.join(IMG_EXTENSIONS)}): {', '.join(empty)}"
            )
    return shared


def _listing(found: dict) -> str:
    names = sorted(found)
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _unreadable(path: str) -> Optional[str]:
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        return f"{path} ({type(error).__name__}: {error})"
    return None


def check_images_readable(paths: list[str], argument: str, *, progress: bool = True, workers: int = 4) -> None:
    """Open every image once (header and integrity, no decoding); ValueError listing the bad ones."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(_unreadable, paths, chunksize=64), total=len(paths),
                            desc=f"checking {argument}", disable=not progress, leave=False))
    bad = [r for r in results if r is not None]
    if bad:
        shown = "; ".join(bad[:_SHOWN])
        more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise ValueError(f"{argument} has {len(bad)} unreadable image(s): {shown}{more}")


def load_folder_shift(
    source_dir: PathLike,
    target_dir: PathLike,
    *,
    model: str = "resnet34",
    test_fraction: float = 0.3,
    seed: int = 0,
    source_name: Optional[str] = None,
    target_name: Optional[str] = None,
    check_images: bool = True,
    progress: bool = True,
) -> DomainShift:
    """A ``DomainShift`` from two ImageFolder-layout folders (see the module docstring).

    Args:
        model: the network the images are for: ``lenet`` gets 28x28 RGB images
            in [-1, 1]; every other model the authors' 224 x 224 ImageNet
            pipeline (augmented in train mode).
        test_fraction: share of each target class held out for testing.
        seed: seeds the target split.
        source_name, target_name: names in the results (default: the folder names).
        check_images: open every image first, so a bad file fails now and not
            in the middle of training.
    """
    if not is_known_model(model):
        raise ValueError(f"model must be one of {', '.join(available_models())}, got {model!r}")
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    source = scan_image_folder(source_dir, "source_dir")
    target = scan_image_folder(target_dir, "target_dir")
    classes = shared_classes(source, target)
    source_paths, source_labels = _flatten(source, classes)
    target_paths, target_labels = _flatten(target, classes)
    if check_images:
        check_images_readable(source_paths, "source_dir", progress=progress)
        check_images_readable(target_paths, "target_dir", progress=progress)
    pool, test = stratified_split(np.asarray(target_labels), [1 - test_fraction, test_fraction],
                                  np.random.default_rng(seed))
    if len(pool) == 0 or len(test) == 0:
        raise ValueError(
            f"target_dir has too few images ({len(target_paths)}) to split into a pool and a "
            f"test set with test_fraction={test_fraction}"
        )
    pool, test = np.sort(pool), np.sort(test)
    train_transform, eval_transform, size, normalization = model_transforms(model)

    def dataset(paths, labels, mode):
        return ImageListDataset(paths, labels, classes, train_transform, eval_transform, mode=mode)

    source_name = source_name or folder_domain_name(source_dir)
    target_name = target_name or folder_domain_name(target_dir)
    shift = rgb_image_shift(
        f"{source_name}->{target_name}", source_name, target_name, classes,
        source_train=dataset(source_paths, source_labels, "train"),
        target_pool=dataset([target_paths[i] for i in pool], [target_labels[i] for i in pool], "eval"),
        target_test=dataset([target_paths[i] for i in test], [target_labels[i] for i in test], "eval"),
        image_size=size, normalization=normalization,
    )
    logger.info("image folders: %s", shift.summary())
    return shift


def model_transforms(model: str):
    """``(train transform, eval transform, image size, (mean, std))`` of image files for ``model``.

    ``lenet`` gets 28x28 RGB images in [-1, 1]; every other model the authors'
    224 x 224 ImageNet pipeline (augmented in train mode).
    """
    if model.lower() == "lenet":
        transform = small_image_transform(DIGIT_SIZE)
        return transform, transform, DIGIT_SIZE, ((0.5,) * 3, (0.5,) * 3)
    return imagenet_train_transform(), imagenet_eval_transform(), CROP_SIZE, (IMAGENET_MEAN, IMAGENET_STD)


def _flatten(found: dict[str, list[str]], classes: list[str]) -> tuple[list[str], list[int]]:
    paths, labels = [], []
    for label, name in enumerate(classes):
        paths.extend(found[name])
        labels.extend([label] * len(found[name]))
    return paths, labels
