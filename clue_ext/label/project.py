"""A labelling project: one folder that holds the whole state of the loop.

Layout of ``PROJECT/``:

* ``project.json``: the settings (an ``ExperimentConfig``), the class names
  and the three folders; written last by ``init``, so its presence means the
  project is complete;
* ``targets.json``: every image of the target folder, relative to it, with
  its size and SHA-256 at ``init`` (the pool, in this order);
* ``labels.json``: every label received: class, the round whose request it
  answered, and the file and line it came from;
* ``rounds/round-NNN.json``: the request of round N: the picks (pool indices
  and paths, in pick order) and the model's suggestions;
* ``models/round-NNN.pt``: the model after round N's update on its labels
  (round 0, the adapted source model, is in ``cache/`` with the source model);
* ``to_label.csv``, ``tasks.json``, ``label_config.xml``, ``to_label.html``:
  the open request, for a person or for Label Studio;
* ``ingested/``: a copy of every label file taken in.

Every file is written atomically (a temporary file renamed onto its name),
and each command writes its steps in an order that makes a rerun continue
from the last completed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..experiments import storage
from ..experiments.configs import ExperimentConfig

FORMAT = 1


@dataclass(frozen=True)
class TargetFile:
    """One image of the target folder: its path relative to the folder, size and SHA-256 at ``init``."""

    path: str
    bytes: int
    sha256: str


class Project:
    """Reads and writes the files of one project folder (see the module docstring)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._settings: Optional[dict] = None
        self._targets: Optional[list[TargetFile]] = None

    # ------------------------------------------------------------------ paths

    @property
    def settings_path(self) -> Path:
        return self.folder / "project.json"

    @property
    def targets_path(self) -> Path:
        return self.folder / "targets.json"

    @property
    def labels_path(self) -> Path:
        return self.folder / "labels.json"

    @property
    def cache_dir(self) -> Path:
        return self.folder / "cache"

    def request_path(self, round_index: int) -> Path:
        return self.folder / "rounds" / f"round-{round_index:03d}.json"

    def model_path(self, round_index: int) -> Path:
        return self.folder / "models" / f"round-{round_index:03d}.pt"

    # --------------------------------------------------------------- settings

    @classmethod
    def open(cls, folder) -> "Project":
        """The project in ``folder``; ValueError naming it when there is none."""
        project = cls(folder)
        if not project.settings_path.is_file():
            raise ValueError(f"PROJECT {str(folder)!r} is not a labelling project (no project.json in it); "
                             "create it with: clue-label init PROJECT --source-dir S --target-dir T")
        return project

    @property
    def settings(self) -> dict:
        if self._settings is None:
            self._settings = _read_json(self.settings_path)
            if self._settings.get("format") != FORMAT:
                raise ValueError(f"{self.settings_path} has format {self._settings.get('format')!r}, expected {FORMAT}")
        return self._settings

    def write_settings(self, settings: dict) -> None:
        storage.write_json(self.settings_path, {**settings, "format": FORMAT})
        self._settings = None

    @property
    def config(self) -> ExperimentConfig:
        return ExperimentConfig(**self.settings["config"])

    @property
    def classes(self) -> list[str]:
        return list(self.settings["classes"])

    @property
    def source_dir(self) -> Path:
        return Path(self.settings["source_dir"])

    @property
    def target_dir(self) -> Path:
        return Path(self.settings["target_dir"])

    @property
    def test_dir(self) -> Optional[Path]:
        value = self.settings.get("test_dir")
        return None if value is None else Path(value)

    @property
    def da_method(self) -> str:
        return self.config.da_methods[0]

    @property
    def strategy(self) -> str:
        return self.config.strategies[0]

    # ----------------------------------------------------------------- targets

    def targets(self) -> list[TargetFile]:
        if self._targets is None:
            data = _read_json(self.targets_path)
            self._targets = [TargetFile(**entry) for entry in data["files"]]
        return self._targets

    def write_targets(self, files: list[TargetFile]) -> None:
        storage.write_json(self.targets_path, {"format": FORMAT, "files": [vars(f) for f in files]})
        self._targets = None

    def target_index(self) -> dict[str, int]:
        """``{relative path: pool index}``."""
        return {f.path: i for i, f in enumerate(self.targets())}

    def target_file(self, relative: str) -> Path:
        return self.target_dir / relative

    # ------------------------------------------------------------------ labels

    def labels(self) -> dict[str, dict]:
        """``{relative path: {"label", "round", "file", "line"}}`` of every label received."""
        if not self.labels_path.is_file():
            return {}
        return dict(_read_json(self.labels_path)["labels"])

    def write_labels(self, labels: dict[str, dict]) -> None:
        storage.write_json(self.labels_path, {"format": FORMAT, "labels": labels})

    # ---------------------------------------------------------------- requests

    def latest_round(self) -> int:
        """The round of the latest request (0 before the first ``query``)."""
        rounds = [int(p.stem.split("-")[1]) for p in (self.folder / "rounds").glob("round-*.json")]
        return max(rounds, default=0)

    def request(self, round_index: int) -> dict:
        path = self.request_path(round_index)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the project's round {round_index} request is gone")
        return _read_json(path)

    def write_request(self, request: dict) -> None:
        storage.write_json(self.request_path(request["round"]), {**request, "format": FORMAT})

    def open_paths(self, labels: Optional[dict] = None) -> list[str]:
        """The paths of the latest request still without a label, in pick order."""
        latest = self.latest_round()
        if latest == 0:
            return []
        labels = self.labels() if labels is None else labels
        return [p for p in self.request(latest)["paths"] if p not in labels]

    def labeled_through(self, round_index: int, labels: Optional[dict] = None) -> list[int]:
        """Pool indices labelled in answer to rounds 1..``round_index``, in acquisition order."""
        labels = self.labels() if labels is None else labels
        order = []
        for r in range(1, round_index + 1):
            request = self.request(r)
            order.extend(i for i, p in zip(request["picks"], request["paths"])
                         if p in labels and labels[p]["round"] == r)
        return order

    # ------------------------------------------------------------------ models

    def load_model(self, round_index: int) -> Optional[dict]:
        return storage.load_torch(self.model_path(round_index))

    def save_model(self, round_index: int, state: dict) -> None:
        storage.save_torch(self.model_path(round_index), state)

    def trained_rounds(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in (self.folder / "models").glob("round-*.pt"))


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
