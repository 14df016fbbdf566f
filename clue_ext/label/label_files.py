"""Reading label files: CSV (``path,label``) and Label Studio JSON exports.

Every entry keeps where it came from (``labels.csv line 7``, ``export.json
task 3 (id 41)``), so each refusal can name it. An entry with an empty label
(a row of ``to_label.csv`` not filled in, a task nobody annotated) means "no
label yet" and is kept with ``label=None``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, unquote, urlparse


@dataclass(frozen=True)
class LabelEntry:
    """One (path, label) of a label file; ``where`` names its line or task."""

    where: str
    line: int
    path: str
    label: Optional[str]


def read_label_file(path: Path, choices_name: str = "label") -> list[LabelEntry]:
    """The entries of a CSV or Label Studio JSON file (told apart by content, not by name)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"FILE {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path.name} is not UTF-8 text ({error}); save it as UTF-8 CSV or JSON") from None
    if text.lstrip()[:1] in ("[", "{"):
        return _read_label_studio(path, text, choices_name)
    return _read_csv(path, text)


def _read_csv(path: Path, text: str) -> list[LabelEntry]:
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise ValueError(f"{path.name} is empty; expected a CSV with columns path,label")
    header = [cell.strip().lower() for cell in rows[0]]
    if "path" in header:
        if "label" not in header:
            raise ValueError(f"{path.name} line 1: the header has a 'path' column but no 'label' column")
        path_column, label_column, first = header.index("path"), header.index("label"), 1
    else:
        path_column, label_column, first = 0, 1, 0
    entries = []
    for number, row in enumerate(rows[first:], start=first + 1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(path_column, label_column):
            raise ValueError(f"{path.name} line {number}: expected the columns path,label, got {row!r}")
        label = row[label_column].strip()
        entries.append(LabelEntry(f"{path.name} line {number}", number, row[path_column].strip(), label or None))
    return entries


def _read_label_studio(path: Path, text: str, choices_name: str) -> list[LabelEntry]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path.name} line {error.lineno}: not valid JSON ({error.msg})") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise ValueError(f"{path.name}: expected a Label Studio export, a JSON list of tasks")
    entries = []
    for number, task in enumerate(tasks, start=1):
        where = f"{path.name} task {number}" + (f" (id {task['id']})" if isinstance(task, dict) and "id" in task else "")
        if not isinstance(task, dict):
            raise ValueError(f"{where}: expected a task object, got {type(task).__name__}")
        image_path = _task_path(task)
        if image_path is None:
            raise ValueError(f"{where}: no image path (data.path or data.image) in the task")
        entries.append(LabelEntry(where, number, image_path, _task_label(task, where, choices_name)))
    return entries


def _task_path(task: dict) -> Optional[str]:
    data = task.get("data", task)  # JSON-MIN exports put the data fields at the top level
    if isinstance(data.get("path"), str):
        return data["path"]
    image = data.get("image")
    if not isinstance(image, str):
        return None
    query = parse_qs(urlparse(image).query)
    if "d" in query:  # Label Studio's local-files URL
        return query["d"][0]
    return unquote(image)


def _task_label(task: dict, where: str, choices_name: str) -> Optional[str]:
    if "annotations" not in task and "completions" not in task:
        return _min_label(task.get(choices_name), where)  # JSON-MIN: the chooser's name is the key
    chosen = set()
    for annotation in task.get("annotations", task.get("completions")) or []:
        if annotation.get("was_cancelled"):
            continue
        for result in annotation.get("result") or []:
            if result.get("type") == "choices" and result.get("from_name", choices_name) == choices_name:
                values = result.get("value", {}).get("choices") or []
                if len(values) != 1:
                    raise ValueError(f"{where}: expected one class per image, got {values!r}")
                chosen.add(str(values[0]).strip())
    if len(chosen) > 1:
        raise ValueError(f"{where}: its annotations disagree ({', '.join(sorted(chosen))}); keep one and export again")
    return chosen.pop() if chosen else None


def _min_label(value, where: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("choices")
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"{where}: expected one class per image, got {value!r}")
        value = value[0]
    return str(value).strip() or None
