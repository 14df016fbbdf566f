"""The models of a project: trained when missing, through the experiments' own stage and round code.

The state after round N is round 0 (the source model adapted to the target
pool, cached as the experiments cache it) for N = 0, and otherwise the state
after round N-1 updated on round N's labels, saved in ``models/``. A saved
state is reused only if it was trained on exactly the labels now recorded
for rounds 1..N, so a label that arrived after a crash is never left out.
"""

from __future__ import annotations

import logging
from typing import Optional

import torch

from ..experiments.round_steps import build_unit, labeled_source, prepare_shift, update_step
from ..experiments.stages import StageCache
from ..experiments.training import cpu_state
from . import steps
from .data import load_project_shift
from .project import Project

logger = logging.getLogger(__name__)


class ProjectModels:
    """Loads or trains the model of any round of ``project`` on the labels recorded now."""

    def __init__(self, project: Project, *, device: torch.device, progress: bool):
        self.project = project
        self.config = project.config
        self.device = torch.device(device)
        self.progress = progress
        self.labels = project.labels()
        shift = load_project_shift(project, {path: entry["label"] for path, entry in self.labels.items()})
        self.shift, source_val = prepare_shift(shift, self.config)
        self.stages = StageCache(self.config, self.shift, project.cache_dir, device=self.device,
                                 progress=progress, source_val=source_val)

    @property
    def pool(self):
        return self.shift.target_pool

    def labeled_through(self, round_index: int) -> list[int]:
        return self.project.labeled_through(round_index, self.labels)

    def state_after(self, round_index: int) -> dict:
        """``{"model", "da_state", "accuracy", ...}`` after round ``round_index``, trained if needed."""
        if round_index == 0:
            cached = self.stages.cached_round0(self.project.da_method, 0)
            if cached is not None:
                return cached
            self.stages.source_model()
            steps.completed("source model trained")
            state = self.stages.round0(self.project.da_method, 0)
            steps.completed("round 0 adapted")
            return state
        labeled = self.labeled_through(round_index)
        saved = self.project.load_model(round_index)
        if saved is not None and saved["labeled"] == labeled:
            return saved
        previous = self.state_after(round_index - 1)
        model, method = build_unit(self.config, self.shift, self.project.da_method, 0, previous, self.device)
        logger.info("round %d: updating the model on %d labels", round_index, len(labeled))
        update = update_step(model, method, self.pool, labeled, config=self.config,
                             source_train=labeled_source(self.config, self.shift), target_test=self.shift.target_test,
                             da_method=self.project.da_method, strategy_name=self.project.strategy, run=0,
                             round_index=round_index, device=self.device, progress=self.progress)
        state = {"model": cpu_state(model), "da_state": method.state_dict(), "labeled": labeled,
                 "accuracy": update.accuracy, "seconds": update.seconds}
        self.project.save_model(round_index, state)
        steps.completed(f"round {round_index} updated")
        return state

    def latest_saved(self) -> tuple[int, Optional[dict]]:
        """``(round, state)`` of the newest model on disk (round 0 from the cache), or ``(0, None)``."""
        rounds = self.project.trained_rounds()
        if rounds:
            return rounds[-1], self.project.load_model(rounds[-1])
        return 0, self.stages.cached_round0(self.project.da_method, 0)
