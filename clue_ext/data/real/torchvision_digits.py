"""SVHN, MNIST and USPS through torchvision, held in memory as 28x28 grey tensors.

torchvision reads the files (and downloads them, only when ``download=True``);
we check first that they are there so a missing file gives one clear error
instead of torchvision's generic one, then preprocess the whole array once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets
from torchvision.datasets.utils import check_integrity, download_url

from ..tensor_dataset import TensorImageDataset
from .layout import MNIST_DIR, SVHN_DIR, USPS_DIR, missing_data
from .transforms import digits_to_tensor

logger = logging.getLogger(__name__)

DIGIT_CLASSES = tuple(str(d) for d in range(10))
_DOWNLOAD_HINT = "Pass download=True to let torchvision fetch it, or copy the file(s) there."


def _as_dataset(images: np.ndarray, labels, mode: str) -> TensorImageDataset:
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return TensorImageDataset(digits_to_tensor(images), targets, torch.arange(len(targets)), mode=mode)


def load_mnist(data_root: Path, train: bool, download: bool = False, mode: str = "eval") -> TensorImageDataset:
    """MNIST train (60k) or test (10k) split from ``<data_root>/MNIST/raw``.

    torchvision checks MNIST only for the presence of the four decompressed raw
    files (the published checksums are of the .gz archives), so there is nothing
    further to verify here.
    """
    root = Path(data_root) / MNIST_DIR
    try:
        base = datasets.MNIST(str(root), train=train, download=download)
    except RuntimeError as error:
        if "not found" not in str(error).lower():
            raise
        raw = root / "MNIST" / "raw"
        raise missing_data(
            "MNIST",
            f"{raw}/{{train,t10k}}-images-idx3-ubyte and {{train,t10k}}-labels-idx1-ubyte (all four)",
            _DOWNLOAD_HINT,
        ) from None
    return _as_dataset(base.data.numpy(), base.targets, mode)


class _SVHNFromCheckedFile(datasets.SVHN):
    """torchvision's SVHN reader, minus its own md5 check.

    ``load_svhn`` checks the file itself first (md5 by default, or only its
    presence with ``verify_checksums=False``, e.g. for a re-saved or subset .mat
    file), so that the two failures get different, actionable errors. Repeating
    torchvision's check afterwards would only hash 180 MB a second time.
    """

    def _check_integrity(self) -> bool:
        return os.path.isfile(os.path.join(self.root, self.filename))


def _fetch_if_asked(download: bool, url: str, path: Path, md5: str) -> None:
    if download and not path.is_file():
        logger.info("downloading %s to %s", url, path)
        download_url(url, str(path.parent), path.name, md5=md5)


def _checked_file(what: str, path: Path, md5: str, verify_checksums: bool) -> None:
    if not path.is_file():
        raise missing_data(what, path, _DOWNLOAD_HINT)
    if verify_checksums and not check_integrity(str(path), md5):
        raise ValueError(
            f"{what} file {path} does not match torchvision's md5 {md5}: it is corrupt or partly downloaded. "
            "Delete it and pass download=True, or pass verify_checksums=False to use it as it is."
        )


def load_svhn(
    data_root: Path, split: str, download: bool = False, verify_checksums: bool = True, mode: str = "eval"
) -> TensorImageDataset:
    """SVHN ``split`` ("train", "test" or "extra") from ``<data_root>/svhn/<split>_32x32.mat``, grey 28x28.

    Raises:
        FileNotFoundError: the file is missing (and ``download`` is False).
        ValueError: the file exists but fails the md5 check (``verify_checksums``).
    """
    if split not in datasets.SVHN.split_list:
        raise ValueError(f"SVHN split must be one of {sorted(datasets.SVHN.split_list)}, got {split!r}")
    url, filename, md5 = datasets.SVHN.split_list[split]
    path = Path(data_root) / SVHN_DIR / filename
    _fetch_if_asked(download, url, path, md5)
    _checked_file(f"SVHN {split} split", path, md5, verify_checksums)
    base = _SVHNFromCheckedFile(str(path.parent), split=split, download=False)
    # torchvision holds SVHN as (N, 3, H, W) uint8, with label 10 already mapped to 0.
    return _as_dataset(base.data, base.labels, mode)


def load_usps(
    data_root: Path, train: bool, download: bool = False, verify_checksums: bool = True, mode: str = "eval"
) -> TensorImageDataset:
    """USPS train (7,291) or test (2,007) split from ``<data_root>/usps/usps[.t].bz2``, upscaled to 28x28.

    torchvision's USPS class does not check its files; we apply the published
    md5 ourselves when ``verify_checksums`` (the same contract as SVHN).
    """
    split = "train" if train else "test"
    url, filename, md5 = datasets.USPS.split_list[split]
    path = Path(data_root) / USPS_DIR / filename
    _fetch_if_asked(download, url, path, md5)
    _checked_file(f"USPS {split} split", path, md5, verify_checksums)
    base = datasets.USPS(str(path.parent), train=train, download=False)
    return _as_dataset(base.data, base.targets, mode)
