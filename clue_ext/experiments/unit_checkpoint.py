"""Per-(DA method, strategy, run) progress: a small JSON record plus the model state.

Layout under ``<out>/checkpoints/<da>/<strategy>/``:

* ``run<k>.json``: the record: identity, last completed round, result rows of
  every completed round, labeled pool indices in acquisition order, and the
  name of the state file (``null`` once the state was dropped);
* ``run<k>-round<r>.pt``: model and DA method state after round ``r``.

After a round the new state file is written first, then the record that
points to it, then older state files are removed. Each write is atomic, so
whenever the process dies the record names a complete state file of exactly
the round it records: no completed round is lost, none is counted twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from . import storage

RECORD_FORMAT = 1


class UnitCheckpoint:
    """Reads and writes the progress of one (DA method, strategy, run) unit."""

    def __init__(self, checkpoint_dir: Path, da_method: str, strategy: str, run: int):
        self.folder = Path(checkpoint_dir) / da_method / strategy
        self.run = run
        self.record_path = self.folder / f"run{run}.json"

    def state_path(self, round_index: int) -> Path:
        return self.folder / f"run{self.run}-round{round_index}.pt"

    def load_record(self) -> Optional[dict]:
        """The record, or ``None`` when this unit has not started."""
        if not self.record_path.is_file():
            return None
        with open(self.record_path, encoding="utf-8") as handle:
            record = json.load(handle)
        if record.get("format") != RECORD_FORMAT:
            raise ValueError(f"{self.record_path} has record format {record.get('format')!r}, expected {RECORD_FORMAT}")
        return record

    def load_state(self, record: dict) -> Optional[dict]:
        """The saved ``{"model", "da_state"}`` of ``record``'s round (``None`` if dropped)."""
        if record.get("state_file") is None:
            return None
        path = self.folder / record["state_file"]
        state = storage.load_torch(path)
        if state is None:
            raise FileNotFoundError(f"{self.record_path} names state file {path}, which is missing")
        return state

    def save(self, record: dict, state: Optional[dict]) -> None:
        """Persist ``record`` (and ``state`` for its round, or no state at all)."""
        record = dict(record, format=RECORD_FORMAT)
        keep = None
        if state is not None:
            keep = self.state_path(record["round"])
            storage.save_torch(keep, state)
        record["state_file"] = None if keep is None else keep.name
        storage.write_json(self.record_path, record)
        for old in self.folder.glob(f"run{self.run}-round*.pt"):
            if old != keep:
                old.unlink(missing_ok=True)


def all_records(checkpoint_dir: Path) -> list[dict]:
    """Every unit record under ``checkpoint_dir``."""
    records = []
    for path in sorted(Path(checkpoint_dir).glob("*/*/run*.json")):
        with open(path, encoding="utf-8") as handle:
            records.append(json.load(handle))
    return records
