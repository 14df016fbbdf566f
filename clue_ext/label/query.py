"""``query``: train what is missing, select the next round's images, write the request.

Steps, each saved before the next starts: source model, round 0 (both in
``cache/``), the update on the latest round's labels (``models/``), the
selection (``rounds/round-NNN.json``), then the request files. A rerun after
a crash starts at the first step with no saved result; a rerun while the
latest request has no label yet only writes its files again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..experiments.round_steps import build_unit, labeled_source, select_step
from ..strategies import get_strategy
from . import steps
from .loop import ProjectModels
from .progress_pool import ProgressPool
from .project import Project
from .request_files import write_request_files

logger = logging.getLogger(__name__)


@dataclass
class QueryResult:
    """What ``query`` did: the round now requested, how many images it asks for, and whether it is new."""

    round: int
    requested: int
    new: bool
    labels: int
    done: bool = False


def run_query(project: Project, *, device="cpu", progress: bool = True, accept_partial: bool = False) -> QueryResult:
    device = torch.device(device)
    latest = project.latest_round()
    labels = project.labels()
    if latest > 0:
        request = project.request(latest)
        missing = [p for p in request["paths"] if p not in labels]
        if len(missing) == len(request["paths"]):
            write_request_files(project, labels)
            return QueryResult(round=latest, requested=len(missing), new=False, labels=len(labels))
        if missing and not accept_partial:
            raise ValueError(
                f"{len(missing)} of the {len(request['paths'])} images of round {latest} have no label yet "
                f"(listed in {project.folder / 'to_label.csv'}): ingest their labels first, or run query with "
                "--accept-partial to update the model on the labels received and return those images to the pool"
            )
    models = ProjectModels(project, device=device, progress=progress)
    state = models.state_after(latest)
    labeled = models.labeled_through(latest)
    if len(labeled) == len(models.pool):
        logger.info("every target image has a label")
        return QueryResult(round=latest, requested=0, new=False, labels=len(labels), done=True)
    config = project.config
    model, method = build_unit(config, models.shift, project.da_method, 0, state, device)
    strategy = get_strategy(project.strategy, **config.strategy_options(project.strategy))
    pool = ProgressPool(models.pool, f"round {latest + 1}: embedding the target images", enabled=progress)
    try:
        selection = select_step(model, method, strategy, pool, labeled, config=config,
                                source_train=labeled_source(config, models.shift), da_method=project.da_method,
                                strategy_name=project.strategy, run=0, round_index=latest + 1, device=device)
        probs = torch.softmax(selection.context.outputs.logits[selection.picks.to(device)].double(), dim=1).cpu()
    finally:
        pool.close()
    confidence, suggested = probs.max(dim=1)
    targets = project.targets()
    picks = selection.picks.tolist()
    project.write_request({
        "round": latest + 1,
        "strategy": project.strategy,
        "da_method": project.da_method,
        "picks": picks,
        "paths": [targets[i].path for i in picks],
        "suggested": [project.classes[int(c)] for c in suggested],
        "confidence": [round(float(p), 4) for p in confidence],
        "labels_before": len(labeled),
        "query_seconds": round(selection.seconds, 3),
        "accuracy_before": state.get("accuracy"),
    })
    steps.completed(f"round {latest + 1} selected")
    write_request_files(project, labels)
    steps.completed("request files written")
    return QueryResult(round=latest + 1, requested=len(picks), new=True, labels=len(labels))
