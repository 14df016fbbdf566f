"""``predict``: the newest model's class, probability and entropy for every target image."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch

from ..experiments import storage
from ..experiments.round_steps import INFERENCE_BATCH, build_unit
from ..strategies.pool_outputs import PoolOutputs
from .loop import ProjectModels
from .progress_pool import ProgressPool
from .project import Project


def write_predictions(project: Project, out: Path, *, device="cpu", progress: bool = True) -> int:
    """Write the CSV ``out``; returns the round of the model used (0: adapted, no target label yet)."""
    device = torch.device(device)
    models = ProjectModels(project, device=device, progress=progress)
    round_index, state = models.latest_saved()
    if state is None:
        raise ValueError(f"PROJECT {str(project.folder)!r} has no model yet: run clue-label query PROJECT first")
    model, _ = build_unit(project.config, models.shift, project.da_method, 0, state, device)
    pool = ProgressPool(models.pool, "predicting the target images", enabled=progress)
    try:
        probs = PoolOutputs(model, pool, device, batch_size=INFERENCE_BATCH).probs().cpu()
    finally:
        pool.close()
    entropy = -(probs * torch.log(probs.clamp_min(1e-300))).sum(dim=1)
    confidence, predicted = probs.max(dim=1)
    labels = models.labels
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "predicted", "probability", "entropy", "label"])
    for i, target in enumerate(project.targets()):
        writer.writerow([target.path, project.classes[int(predicted[i])], f"{float(confidence[i]):.4f}",
                         f"{float(entropy[i]) / math.log(2):.4f}", labels.get(target.path, {}).get("label", "")])
    storage.write_text(Path(out), text.getvalue())
    return round_index
