"""Atomic writes: a file is either its old complete self or its new complete self.

Everything the runner persists (checkpoints, caches, results, summaries) goes
through a temporary file in the same folder and ``os.replace``, so a run
killed at any moment never leaves a truncated file behind.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch

logger = logging.getLogger(__name__)


def atomic_write(path: Path, write: Callable[[Any], None], *, binary: bool) -> None:
    """Call ``write(handle)`` on a temporary file, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; these are ordinary outputs
        os.replace(tmp_name, path)
    except BaseException:
        # Also on KeyboardInterrupt: leave no temporary file behind.
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` atomically."""
    atomic_write(path, lambda handle: torch.save(obj, handle), binary=True)


def load_torch(path: Path) -> Optional[Any]:
    """The object saved at ``path``, or ``None`` if there is none.

    Only tensors and plain containers are unpickled (``weights_only``).
    """
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text), binary=False)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file (``[]`` when missing)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
