"""The open request as files a person or Label Studio reads.

* ``to_label.csv``: ``path,label,suggested,confidence``, one row per image
  still requested; ``label`` is empty, to be filled in (a spreadsheet works)
  and ingested as it is;
* ``tasks.json``: Label Studio tasks (``data.image``, ``data.path``) with the
  model's suggestion as a pre-annotation (``predictions``);
* ``label_config.xml``: the matching Label Studio labelling interface;
* ``to_label.html``: the static page (see :mod:`.page`).

All are rewritten from ``rounds/`` and ``labels.json`` whenever those change,
so they always show exactly what is still requested.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Optional
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from ..experiments import storage
from .page import render_page
from .project import Project

# Label Studio names of the image and of the class chooser, shared by tasks.json and label_config.xml.
LS_IMAGE, LS_CHOICES = "image", "label"
# Label Studio serves local files under this URL when local file serving is on; ``d`` is relative to its
# LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, which the README sets to the target folder.
LS_LOCAL_FILES = "/data/local-files/?d="


def open_items(project: Project, labels: Optional[dict] = None) -> list[dict]:
    """``[{"path", "suggested", "confidence"}]`` of the images still requested, in pick order."""
    latest = project.latest_round()
    if latest == 0:
        return []
    labels = project.labels() if labels is None else labels
    request = project.request(latest)
    return [
        {"path": path, "suggested": suggested, "confidence": confidence}
        for path, suggested, confidence in zip(request["paths"], request["suggested"], request["confidence"])
        if path not in labels
    ]


def write_request_files(project: Project, labels: Optional[dict] = None) -> list[dict]:
    items = open_items(project, labels)
    round_index = project.latest_round()
    storage.write_text(project.folder / "to_label.csv", request_csv(items))
    storage.write_text(project.folder / "tasks.json", json.dumps(label_studio_tasks(items, round_index), indent=2))
    storage.write_text(project.folder / "label_config.xml", label_studio_config(project.classes))
    storage.write_text(project.folder / "to_label.html", render_page(project, items, round_index))
    return items


def request_csv(items: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "label", "suggested", "confidence"])
    for item in items:
        writer.writerow([item["path"], "", item["suggested"], f"{item['confidence']:.4f}"])
    return out.getvalue()


def label_studio_tasks(items: list[dict], round_index: int) -> list[dict]:
    return [
        {
            "data": {LS_IMAGE: LS_LOCAL_FILES + quote(item["path"]), "path": item["path"]},
            "predictions": [{
                "model_version": f"clue-label round {round_index}",
                "score": item["confidence"],
                "result": [{
                    "from_name": LS_CHOICES, "to_name": LS_IMAGE, "type": "choices",
                    "value": {"choices": [item["suggested"]]},
                }],
            }],
        }
        for item in items
    ]


def label_studio_config(classes: list[str]) -> str:
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in classes)
    return (f'<View>\n  <Image name="{LS_IMAGE}" value="${LS_IMAGE}"/>\n'
            f'  <Choices name="{LS_CHOICES}" toName="{LS_IMAGE}" choice="single" showInline="true">\n'
            f"{choices}\n  </Choices>\n</View>\n")
