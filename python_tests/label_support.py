"""Shared set-up of the clue-label tests: example folders from the embedded digits, a person who answers."""

import csv
import json
import shutil
from pathlib import Path

from clue_ext.label.cli import main
from clue_ext.label.example import write_example
from clue_ext.label.project import Project

# Tiny settings: seconds per command on one CPU thread.
SETTINGS = ["--preset", "tiny", "--model", "lenet", "--budget", "5", "--epochs", "1", "--source-epochs", "2",
            "--uda-epochs", "1", "--steps-per-epoch", "2", "--seed", "3"]


def example_folders(tmp_path_factory) -> Path:
    """The example folders, written once per test session (the digits' build is cached beside them)."""
    base = tmp_path_factory.getbasetemp() / "label_example"
    if not (base / "answers.csv").is_file():
        write_example(base, source_per_class=8, target_images=60, test_per_class=3,
                      cache_dir=tmp_path_factory.getbasetemp() / "label_digits_cache")
    return base


def answers(folder: Path) -> dict[str, str]:
    with open(folder / "answers.csv", encoding="utf-8") as handle:
        return {row["path"]: row["label"] for row in csv.DictReader(handle)}


def cli(*args) -> int:
    return main([str(a) for a in args] + ["--quiet"])


def new_project(folder: Path, example: Path, *extra) -> Project:
    assert cli("init", folder, "--source-dir", example / "source", "--target-dir", example / "target",
               "--test-dir", example / "test", *SETTINGS, *extra) == 0
    return Project.open(folder)


def requested(project: Project) -> list[str]:
    with open(project.folder / "to_label.csv", encoding="utf-8") as handle:
        return [row["path"] for row in csv.DictReader(handle)]


def write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return path


def label_studio_export(path: Path, project: Project, truth: dict[str, str]) -> Path:
    """What Label Studio exports (JSON, full format) after a person annotated the imported tasks.json."""
    with open(project.folder / "tasks.json", encoding="utf-8") as handle:
        tasks = json.load(handle)
    exported = []
    for number, task in enumerate(tasks, start=1):
        exported.append({
            "id": 100 + number,
            "data": task["data"],
            "annotations": [{
                "id": 500 + number, "was_cancelled": False,
                "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                            "value": {"choices": [truth[task["data"]["path"]]]}}],
            }],
            "predictions": task["predictions"],
        })
    path.write_text(json.dumps(exported, indent=1), encoding="utf-8")
    return path


def copy_project(source: Project, folder: Path) -> Project:
    shutil.copytree(source.folder, folder)
    return Project.open(folder)
