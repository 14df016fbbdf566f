"""On-disk cache of built arrays: one ``.npz`` per key, written atomically.

A cache file is only ever created by renaming a complete temporary file onto its
final name, so a build killed half way leaves at worst a stray temporary file,
never a truncated cache. A file that fails to load anyway (disk trouble, a copy
cut short, an older format) is treated as a miss and rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

from .._atomic import atomic_write

logger = logging.getLogger(__name__)

CACHE_ENV_VAR = "CLUE_EXT_CACHE"
_META_KEY = "__meta__"

PathLike = Union[str, os.PathLike]


def default_cache_dir() -> Path:
    """``$CLUE_EXT_CACHE`` if set, else ``~/.cache/clue_ext``."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "clue_ext"


def resolve_cache_dir(cache_dir: Optional[PathLike]) -> Path:
    """The cache directory to use: ``cache_dir`` when given, else the default."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def cache_file(cache_dir: Path, name: str, seed: int, version: int) -> Path:
    """Path of the cache entry for a benchmark ``name`` built with ``seed``.

    The format version is part of the key, so changing how a benchmark is built
    (and bumping the version) never serves stale data.
    """
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name.replace("->", "-to-")).strip("-").lower()
    return cache_dir / f"{slug}-seed{int(seed)}-v{int(version)}.npz"


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping) -> None:
    """Write ``arrays`` plus a JSON ``meta`` record to ``path`` atomically."""
    if _META_KEY in arrays:
        raise ValueError(f"array name {_META_KEY!r} is reserved")
    payload = dict(arrays)
    payload[_META_KEY] = np.array(json.dumps(dict(meta), sort_keys=True))
    atomic_write(path, lambda handle: np.savez(handle, **payload), binary=True)
    logger.info("wrote cache %s", path)


def load_arrays(path: Path, expected_meta: Mapping) -> Optional[dict[str, np.ndarray]]:
    """Read a cache entry; ``None`` when it is missing, unreadable or for other metadata.

    Every array is read in full here, so a damaged zip member (bad CRC, cut-off
    data) shows up now as a miss rather than later as a crash.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except Exception as error:  # any failure to read means: rebuild
        logger.warning("ignoring unreadable cache file %s (%s: %s); rebuilding", path, type(error).__name__, error)
        return None
    mismatched = {k: (meta.get(k), v) for k, v in expected_meta.items() if meta.get(k) != v}
    if mismatched:
        logger.warning("ignoring cache file %s: metadata differs %s; rebuilding", path, mismatched)
        return None
    return arrays
