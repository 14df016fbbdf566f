"""``init``: record the folders, the classes, the target file list with a fingerprint per file, and the settings.

Everything is checked before anything is written: the source folder's class
folders and images, the target images (any folder tree, no classes needed),
the optional labelled test folder. ``targets.json`` is written first and
``project.json`` last, so an ``init`` cut short leaves no project behind and
simply runs again.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from .. import __version__
from ..data.folders import check_images_readable, folder_domain_name, image_files, scan_image_folder
from ..experiments.configs import ExperimentConfig
from . import steps
from .data import fingerprint, labelled_files
from .project import Project, TargetFile

logger = logging.getLogger(__name__)


def init_project(folder: Path, source_dir: Path, target_dir: Path, config: ExperimentConfig, *,
                 test_dir: Optional[Path] = None, threads: Optional[int] = None,
                 progress: bool = True) -> tuple[Project, bool]:
    """Create the project (see the module docstring); ``(project, created)``.

    ``config`` gives the settings; its folders, names and grid are set here.
    ``threads``: torch CPU threads the later commands use unless told otherwise.
    Running it again on a complete project with the same settings changes
    nothing (``created`` is False); other settings are refused.
    """
    folder = Path(folder)
    source_dir, target_dir = _resolved(source_dir), _resolved(target_dir)
    test_dir = None if test_dir is None else _resolved(test_dir)
    config = config.replace(source_dir=str(source_dir), target_dir=str(target_dir),
                            source=folder_domain_name(source_dir), target=folder_domain_name(target_dir),
                            runs=1, rounds=1, limit_source=None, limit_pool=None, limit_test=None)
    if len(config.strategies) != 1 or len(config.da_methods) != 1:
        raise ValueError("a project has one strategy (--strategy) and one DA method (--da)")
    project = Project(folder)
    if project.settings_path.is_file():
        _check_same(project, config, test_dir)
        return project, False
    if folder.resolve() == target_dir or target_dir in folder.resolve().parents:
        raise ValueError(f"PROJECT {str(folder)!r} lies inside --target-dir; put it elsewhere, or its own files "
                         "would be counted as target images")
    found = scan_image_folder(source_dir, "--source-dir")
    classes = sorted(found)
    source_paths, _ = labelled_files(source_dir, "--source-dir", classes, exact=True)
    relative = [Path(p).relative_to(target_dir).as_posix() for p in image_files(target_dir)]
    if not relative:
        raise ValueError(f"--target-dir {str(target_dir)!r} has no images")
    check_images_readable(source_paths, "--source-dir", progress=progress)
    check_images_readable([str(target_dir / p) for p in relative], "--target-dir", progress=progress)
    if test_dir is not None:
        test_paths, _ = labelled_files(test_dir, "--test-dir", classes, exact=False)
        check_images_readable(test_paths, "--test-dir", progress=progress)
    files = [
        TargetFile(path=p, bytes=(target_dir / p).stat().st_size, sha256=fingerprint(target_dir / p))
        for p in tqdm(relative, desc="fingerprinting the target images", unit="img", disable=not progress,
                      leave=False)
    ]
    project.write_targets(files)
    steps.completed("targets recorded")
    project.write_settings({
        "config": config.as_dict(),
        "classes": classes,
        "source_dir": str(source_dir),
        "target_dir": str(target_dir),
        "test_dir": None if test_dir is None else str(test_dir),
        "threads": threads,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "clue_ext_version": __version__,
        "torch_version": torch.__version__,
    })
    steps.completed("project recorded")
    logger.info("project %s: %d classes, %d source images, %d target images", folder, len(classes),
                len(source_paths), len(files))
    return project, True


def _resolved(path) -> Path:
    return Path(path).expanduser().resolve()


def _check_same(project: Project, config: ExperimentConfig, test_dir: Optional[Path]) -> None:
    old = dict(project.settings["config"], test_dir=project.settings.get("test_dir"))
    new = dict(config.as_dict(), test_dir=None if test_dir is None else str(test_dir))
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differ:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differ)
        raise ValueError(f"PROJECT {str(project.folder)!r} already exists with other settings ({details}); "
                         "use another PROJECT folder to start a new project")
