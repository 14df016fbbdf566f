"""``to_label.html``: a static page (no server) to label the open request in a browser.

Each requested image is shown large enough to judge, with a class chooser
pre-set to the model's suggestion. Keys choose classes (:func:`class_keys`),
the choices survive a reload (the browser's local storage), and a button
saves ``labels.csv`` (``path,label``), which ``clue-label ingest`` takes.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from .project import Project

_DIGITS = "1234567890"


def class_keys(classes: list[str]) -> dict[str, str]:
    """``{class: key}``: each class's first character when those are all distinct, else 1-9 and 0 for the first ten.

    Digit classes ``0``-``9`` thus get their own digit, and ``cat, dog, fox``
    get ``c, d, f``. The keys of the page's own commands are never used.
    """
    reserved = set("jkx ")
    firsts = [name[:1].lower() for name in classes]
    if len(set(firsts)) == len(classes) and all(k.isalnum() and k not in reserved for k in firsts):
        return dict(zip(classes, firsts))
    return dict(zip(classes, _DIGITS))


def render_page(project: Project, items: list[dict], round_index: int) -> str:

    data = {
        "project": project.folder.resolve().name,
        "projectId": project.settings.get("created", "") + ":" + project.folder.resolve().name,
        "round": round_index,
        "classes": project.classes,
        "keys": class_keys(project.classes),
        "items": [dict(item, src=image_url(project, item["path"])) for item in items],
    }
    # "</" would end the script element early; "<\/" is the same string to JavaScript.
    payload = json.dumps(data).replace("</", "<\\/")
    template = resources.files(__package__).joinpath("to_label_page.html").read_text(encoding="utf-8")
    return template.replace("/*CLUE_LABEL_DATA*/null", payload)


def image_url(project: Project, relative: str) -> str:
    """The URL of a target image as the page in the project folder reaches it (relative when possible)."""
    path = project.target_file(relative).resolve()
    try:
        return quote(Path(os.path.relpath(path, project.folder.resolve())).as_posix())
    except ValueError:  # another drive on Windows
        return path.as_uri()
