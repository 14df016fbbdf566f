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
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

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
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    payload[_META_KEY] = np.array(json.dumps(dict(meta), sort_keys=True))
    # The temporary file lives in the same directory so the final rename stays on
    # one file system, where os.replace is atomic.
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file private (0600); a cache is ordinary shared data.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        # Also on KeyboardInterrupt: leave no temporary file behind.
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
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
