"""What the runner persists (checkpoints, results, summaries), written atomically.

Every write goes through ``clue_ext._atomic.atomic_write``, so a run killed at
any moment never leaves a truncated file behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional

import torch

from .._atomic import atomic_write


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
