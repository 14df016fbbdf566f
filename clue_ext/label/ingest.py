"""``ingest``: take a label file in, all of it or none of it.

A file is refused whole, with every bad line named, when a line gives a path
outside the open request, a class the project does not have, a label
conflicting with another line or with a label already recorded, or an image
whose content changed since ``init``. Lines without a label are left
requested. Steps: a copy of the file goes to ``ingested/``, then the labels
go into ``labels.json`` in one atomic write, then the request files are
rewritten; a rerun after a crash finds the labels recorded, adds none twice
and finishes the rest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

from . import steps
from .data import fingerprint
from .label_files import LabelEntry, read_label_file
from .project import Project
from .request_files import write_request_files

# How many refused lines a message lists.
_SHOWN = 20


class IngestError(ValueError):
    """The label file was refused; nothing of it was recorded."""


@dataclass
class IngestResult:
    new: int
    already: int
    without_label: int
    still_requested: int
    round: int
    not_requested: int = 0


def ingest(project: Project, file: Path, *, ignore_unrequested: bool = False) -> IngestResult:
    """Record the labels of ``file``; with ``ignore_unrequested``, lines for target images outside the open
    request are passed over instead of refused (a file labelling many images, e.g. ahead of time)."""
    file = Path(file)
    entries = read_label_file(file)
    latest = project.latest_round()
    if latest == 0:
        raise IngestError("nothing was requested yet: run clue-label query PROJECT first")
    labels = project.labels()
    accepted, already, without_label, not_requested = _check(project, entries, labels, latest, ignore_unrequested)
    _keep_copy(project, file)
    if accepted:
        recorded = dict(labels)
        for path, entry in accepted.items():
            recorded[path] = {"label": entry.label, "round": latest, "file": file.name, "line": entry.line}
        project.write_labels(recorded)
        labels = recorded
    steps.completed("labels recorded")
    remaining = write_request_files(project, labels)
    steps.completed("request files written")
    return IngestResult(new=len(accepted), already=already, without_label=without_label,
                        still_requested=len(remaining), round=latest, not_requested=not_requested)


def _check(project: Project, entries: list[LabelEntry], labels: dict, latest: int, ignore_unrequested: bool):
    request = project.request(latest)
    requested = set(request["paths"])
    earlier = _earlier_rounds(project, latest)
    classes = set(project.classes)
    targets = {f.path: f for f in project.targets()}
    errors: list[str] = []
    accepted: dict[str, LabelEntry] = {}
    already = without_label = not_requested = 0
    for entry in entries:
        path = _relative(project, entry.path)
        if path not in requested and path in targets and ignore_unrequested:
            not_requested += 1
            continue
        if path not in requested:
            if path in earlier:
                reason = f"was requested in round {earlier[path]}, which is closed; the open request is round {latest}"
            elif path in targets:
                reason = f"is not in the open request (round {latest}, see to_label.csv)"
            else:
                reason = f"is not an image of the target folder {str(project.target_dir)!r} recorded at init"
            errors.append(f"{entry.where}: {entry.path!r} {reason}")
            continue
        if entry.label is None:
            without_label += 1
            continue
        if entry.label not in classes:
            hint = [c for c in classes if c.lower() == entry.label.lower()]
            errors.append(f"{entry.where}: unknown class {entry.label!r}" +
                          (f" (did you mean {hint[0]!r}?)" if hint else f"; the classes are {', '.join(project.classes)}"))
            continue
        if path in accepted and accepted[path].label != entry.label:
            errors.append(f"{entry.where}: {path!r} is labelled {entry.label!r} here but {accepted[path].label!r} "
                          f"on {accepted[path].where.split(' ', 1)[1]}")
            continue
        if path in labels:
            if labels[path]["label"] != entry.label:
                errors.append(f"{entry.where}: {path!r} already has the label {labels[path]['label']!r} (from "
                              f"{labels[path]['file']} line {labels[path]['line']}), this line says {entry.label!r}")
            elif path not in accepted:
                already += 1
            continue
        problem = _changed(project, targets[path])
        if problem:
            errors.append(f"{entry.where}: {path!r} {problem}")
            continue
        accepted.setdefault(path, entry)
    if errors:
        shown = "\n  ".join(errors[:_SHOWN])
        more = f"\n  and {len(errors) - _SHOWN} more" if len(errors) > _SHOWN else ""
        raise IngestError(f"refused {len(errors)} line(s); nothing was recorded, fix them and ingest the file "
                          f"again:\n  {shown}{more}")
    return accepted, already, without_label, not_requested


def _relative(project: Project, given: str) -> str:
    """``given`` as a path relative to the target folder, in the form ``targets.json`` uses."""
    candidate = Path(given).expanduser()
    root = project.target_dir
    for absolute in ([candidate] if candidate.is_absolute() else [Path.cwd() / candidate]):
        try:
            return PurePosixPath(Path(os.path.abspath(absolute)).relative_to(root).as_posix()).as_posix()
        except ValueError:
            pass
    return PurePosixPath(given.replace("\\", "/")).as_posix()


def _earlier_rounds(project: Project, latest: int) -> dict[str, int]:
    rounds = {}
    for r in range(1, latest):
        for path in project.request(r)["paths"]:
            rounds[path] = r
    return rounds


def _changed(project: Project, target) -> Optional[str]:
    path = project.target_file(target.path)
    if not path.is_file():
        return "no longer exists in the target folder"
    if path.stat().st_size != target.bytes or fingerprint(path) != target.sha256:
        return "changed since init (its content is not what was recorded); restore it or start a new project"
    return None


def _keep_copy(project: Project, file: Path) -> None:
    """A copy of every label file taken in, named by content: nothing is lost, a rerun adds no copy."""
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    copy = project.folder / "ingested" / f"{digest}-{file.name}"
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_name(copy.name + ".tmp")
        shutil.copyfile(file, tmp)
        os.replace(tmp, copy)
