"""Atomic file writes: a file is either its old complete self or its new complete self.

The data goes to a temporary file in the same folder (so the final rename stays
on one file system, where ``os.replace`` is atomic) and is moved onto its name
only once complete. A writer killed at any moment leaves no truncated file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Union


def atomic_write(path: Union[str, os.PathLike], write: Callable[[Any], None], *, binary: bool) -> None:
    """Call ``write(handle)`` on a temporary file, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; these are ordinary shared files
        os.replace(tmp_name, path)
    except BaseException:
        # Also on KeyboardInterrupt: leave no temporary file behind.
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
