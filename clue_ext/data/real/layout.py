"""Where real data sets must live under the data root, and the errors that say so.

The layout under ``data_root`` (or ``$CLUE_EXT_DATA``) is ``LAYOUT`` below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

DATA_ENV_VAR = "CLUE_EXT_DATA"

MNIST_DIR = "."  # torchvision adds MNIST/raw itself
SVHN_DIR = "svhn"
USPS_DIR = "usps"
OFFICE31_DIR = "office31"
DOMAINNET_DIR = "domainnet"

PathLike = Union[str, os.PathLike]

LAYOUT = """\
  MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte    torchvision's MNIST files
  svhn/{train,test}_32x32.mat                               torchvision's SVHN files
  usps/usps.bz2, usps/usps.t.bz2                            torchvision's USPS files
  office31/<domain>/images/<class>/*.jpg                    amazon, dslr, webcam
  domainnet/<domain>/<class>/*.jpg                          real, clipart, sketch, ...
  domainnet/<domain>_train.txt, domainnet/<domain>_test.txt the official split lists"""


def resolve_data_root(data_root: Optional[PathLike], shift_name: str) -> Path:
    """The data root to read ``shift_name`` from: the argument, else ``$CLUE_EXT_DATA``.

    Raises:
        ValueError: neither is set.
    """
    if data_root is None:
        data_root = os.environ.get(DATA_ENV_VAR) or None
    if data_root is None:
        raise ValueError(
            f"shift {shift_name!r} reads real data from disk: pass data_root=<folder> (or set "
            f"${DATA_ENV_VAR}) pointing at a folder laid out as:\n{LAYOUT}\n"
            "The embedded shifts (synth->mnist, mnist->mnistm, uci->mnist) need no data root."
        )
    return Path(data_root).expanduser()


def missing_data(what: str, expected: PathLike, how_to_get: str) -> FileNotFoundError:
    """A ``FileNotFoundError`` naming what is missing, where it must be, and how to get it."""
    return FileNotFoundError(f"{what} not found: expected {expected}. {how_to_get}")
