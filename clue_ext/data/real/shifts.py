"""Assemble the paper's real shifts (DIGITS, Office-31, DomainNet) as ``DomainShift`` objects."""

from __future__ import annotations

import itertools
import logging

import numpy as np
from pathlib import Path
from typing import Callable

from ..image_list_dataset import ImageListDataset
from ..shift import DomainShift, rgb_image_shift
from ..tensor_dataset import TensorImageDataset
from .domainnet import DOMAINNET_DOMAINS, read_domainnet_split
from .office31 import OFFICE31_DOMAINS, scan_office31_domain, split_office31_target
from .torchvision_digits import DIGIT_CLASSES, load_mnist, load_svhn, load_usps
from .transforms import CROP_SIZE, DIGIT_MEAN, DIGIT_SIZE, DIGIT_STD, IMAGENET_MEAN, IMAGENET_STD
from .transforms import imagenet_eval_transform, imagenet_train_transform

logger = logging.getLogger(__name__)

DIGIT_PAIRS = (("svhn", "mnist"), ("mnist", "usps"), ("usps", "mnist"))
OFFICE31_PAIRS = tuple(itertools.permutations(OFFICE31_DOMAINS, 2))
DOMAINNET_PAIRS = tuple(itertools.permutations(DOMAINNET_DOMAINS, 2))

# domain -> split loader(data_root, train, download, verify_checksums, mode)
_DigitLoader = Callable[[Path, bool, bool, bool, str], TensorImageDataset]
_DIGIT_LOADERS: dict[str, _DigitLoader] = {
    "svhn": lambda root, train, download, verify, mode: load_svhn(
        root, "train" if train else "test", download=download, verify_checksums=verify, mode=mode
    ),
    "mnist": lambda root, train, download, verify, mode: load_mnist(root, train, download=download, mode=mode),
    "usps": lambda root, train, download, verify, mode: load_usps(
        root, train, download=download, verify_checksums=verify, mode=mode
    ),
}


def load_digit_shift(
    source: str, target: str, data_root: Path, download: bool = False, verify_checksums: bool = True
) -> DomainShift:
    """A DIGITS shift: source train split; target train split as pool, test split as test.

    All images become grey 28x28 in [-1, 1] (the paper's LeNet input), in memory.
    """
    if (source, target) not in DIGIT_PAIRS:
        raise ValueError(f"unknown digit shift {source}->{target}; valid: {[f'{s}->{t}' for s, t in DIGIT_PAIRS]}")
    source_train = _DIGIT_LOADERS[source](data_root, True, download, verify_checksums, "train")
    target_pool = _DIGIT_LOADERS[target](data_root, True, download, verify_checksums, "eval")
    target_test = _DIGIT_LOADERS[target](data_root, False, download, verify_checksums, "eval")
    return DomainShift(
        name=f"{source}->{target}",
        source=source,
        target=target,
        source_train=source_train,
        target_pool=target_pool,
        target_test=target_test,
        num_classes=len(DIGIT_CLASSES),
        in_channels=1,
        image_size=DIGIT_SIZE,
        class_names=DIGIT_CLASSES,
        embedded=False,
        normalization=(DIGIT_MEAN, DIGIT_STD),
    )


def _image_list(paths, labels, classes, mode: str) -> ImageListDataset:
    return ImageListDataset(paths, labels, classes, imagenet_train_transform(), imagenet_eval_transform(), mode=mode)


def _resnet_shift(name, source, target, source_train, target_pool, target_test, classes) -> DomainShift:
    return rgb_image_shift(name, source, target, classes, source_train, target_pool, target_test, CROP_SIZE,
                           (IMAGENET_MEAN, IMAGENET_STD))


def load_office31_shift(source: str, target: str, data_root: Path, seed: int = 0) -> DomainShift:
    """An Office-31 shift: all source images; the target split seeded 70/30 into pool/test."""
    source_paths, source_labels, source_classes = scan_office31_domain(data_root, source)
    target_paths, target_labels, target_classes = scan_office31_domain(data_root, target)
    if source_classes != target_classes:
        differ = sorted(set(source_classes) ^ set(target_classes))
        raise ValueError(f"Office-31 domains {source} and {target} have different class folders: {differ}")
    pool, test = split_office31_target(target_labels, seed)
    return _resnet_shift(
        f"{source}->{target}",
        source,
        target,
        _image_list(source_paths, source_labels, source_classes, "train"),
        _image_list([target_paths[i] for i in pool], [target_labels[i] for i in pool], target_classes, "eval"),
        _image_list([target_paths[i] for i in test], [target_labels[i] for i in test], target_classes, "eval"),
        source_classes,
    )


#: Share of a DomainNet train list the authors' preprocessing held out at
#: random as validation; on the target side it was never used, so their pool
#: is the other 90%.
DOMAINNET_HELD_OUT_FRACTION = 0.1


def load_domainnet_shift(source: str, target: str, data_root: Path, seed: int = 0) -> DomainShift:
    """A DomainNet shift from the official lists, split as the authors' data.

    Source: the whole source train list (the experiment holds out its own
    validation share, ``ExperimentConfig.source_val_fraction``). Pool: a
    seeded random 90% of the target train list, what the authors' preprocessing
    kept (``DOMAINNET_HELD_OUT_FRACTION``). Test: the target test list.
    """
    pool_paths, pool_labels, pool_names = read_domainnet_split(data_root, target, "train")
    held_out = int(DOMAINNET_HELD_OUT_FRACTION * len(pool_paths))
    keep = np.sort(np.random.default_rng(seed).permutation(len(pool_paths))[held_out:])
    lists = {
        "source": read_domainnet_split(data_root, source, "train"),
        "pool": ([pool_paths[i] for i in keep], [pool_labels[i] for i in keep], pool_names),
        "test": read_domainnet_split(data_root, target, "test"),
    }
    names: dict[int, str] = {}
    for part, (_, _, part_names) in lists.items():
        for label, name in part_names.items():
            if names.setdefault(label, name) != name:
                raise ValueError(
                    f"DomainNet label {label} means {names[label]!r} in one split list and {name!r} in the {part} list"
                )
    # 345 classes with the official lists; labels missing from every list still get a slot.
    classes = [names.get(label, f"class_{label}") for label in range(max(names) + 1)]
    datasets = {
        part: _image_list(paths, labels, classes, "train" if part == "source" else "eval")
        for part, (paths, labels, _) in lists.items()
    }
    return _resnet_shift(
        f"{source}->{target}", source, target, datasets["source"], datasets["pool"], datasets["test"], classes
    )
