"""The images of a project as a ``DomainShift``: source classes, the target pool, an optional test set.

The pool is every image of the target folder in ``targets.json`` order; its
labels are those received so far (``-1`` for the others, which no DA method
reads: unlabelled streams drop labels). With ``labels`` for every image this
is exactly the shift the simulated loop runs on, which is how the tests
check that both loops compute the same thing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from ..data import DomainShift
from ..data.shift import rgb_image_shift
from ..data.folders import model_transforms, scan_image_folder
from ..data.image_list_dataset import ImageListDataset
from .project import Project

UNLABELLED = -1


def load_project_shift(project: Project, labels: Optional[dict[str, str]] = None) -> DomainShift:
    """The shift of ``project`` with ``labels`` (``{relative path: class name}``) on its pool."""
    labels = {} if labels is None else labels
    classes = project.classes
    index = {name: i for i, name in enumerate(classes)}
    config = project.config
    train_transform, eval_transform, size, normalization = model_transforms(config.model)

    def dataset(paths, targets, mode):
        return ImageListDataset(paths, targets, classes, train_transform, eval_transform, mode=mode)

    source_paths, source_targets = labelled_files(project.source_dir, "--source-dir", classes, exact=True)
    check_targets_unchanged(project)
    pool_paths = [str(project.target_file(f.path)) for f in project.targets()]
    pool_targets = [index[labels[f.path]] if f.path in labels else UNLABELLED for f in project.targets()]
    test = None
    if project.test_dir is not None:
        test_paths, test_targets = labelled_files(project.test_dir, "--test-dir", classes, exact=False)
        test = dataset(test_paths, test_targets, "eval")
    return rgb_image_shift(
        f"{config.source}->{config.target}", config.source, config.target, classes,
        source_train=dataset(source_paths, source_targets, "train"),
        target_pool=dataset(pool_paths, pool_targets, "eval"), target_test=test,
        image_size=size, normalization=normalization,
    )


def check_targets_unchanged(project: Project) -> None:
    """ValueError listing target images gone, or of another size, since ``init`` (a cheap check of every file;
    ``ingest`` compares the full fingerprint of each image it labels)."""
    problems = []
    for target in project.targets():
        path = project.target_file(target.path)
        if not path.is_file():
            problems.append(f"{target.path} (missing)")
        elif path.stat().st_size != target.bytes:
            problems.append(f"{target.path} (changed)")
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ValueError(f"--target-dir {str(project.target_dir)!r} no longer holds the images recorded at init: "
                         f"{', '.join(problems[:5])}{more}; restore them, or start a new project")


def labelled_files(folder: Path, flag: str, classes: list[str], *, exact: bool) -> tuple[list[str], list[int]]:
    """Paths and labels of an ImageFolder tree whose class folders are ``classes`` (``exact``) or some of them."""
    found = scan_image_folder(folder, flag)
    if exact and sorted(found) != sorted(classes):
        raise ValueError(f"{flag} {str(folder)!r} now has class folders {sorted(found)}, but the project was "
                         f"created with {classes}; restore the folder or start a new project")
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"{flag} {str(folder)!r} has class folders the source does not: {', '.join(unknown)}")
    empty = [name for name in found if not found[name]]
    if empty:
        raise ValueError(f"{flag} {str(folder)!r} has class folder(s) without images: {', '.join(empty)}")
    paths, targets = [], []
    for label, name in enumerate(classes):
        paths.extend(found.get(name, []))
        targets.extend([label] * len(found.get(name, [])))
    return paths, targets


def fingerprint(path: Path) -> str:
    """SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
