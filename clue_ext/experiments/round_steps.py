"""The steps of one acquisition round, shared by the simulated loop and the labelling loop.

A round is two steps: *select* (embed the pool, let the strategy pick) and
*update* (train on the labels of the picks). The simulation runs them back
to back; ``clue_ext.label`` runs them in two processes with a person
labelling in between. Both call these functions, so the same settings and
seed give the same picks and the same models whichever loop runs them.

Neither step carries random state to the other: each seeds the global RNG
from the round's position (see .seeds), and the DA methods seed their own
streams from their state, so the update may run later, in another process,
and still draw what a back-to-back round draws.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from ..adapt import get_da_method
from ..adapt.seeding import isolated_global_rng
from ..data import DomainShift
from ..strategies import QueryContext
from .configs import ExperimentConfig
from .data_views import DatasetView, limit_shift
from .seeds import round_seeds, run_seed, source_seed, source_split_seed
from .training import build_initial_model, evaluate_accuracy, split_source_validation, target_training_view

# Batch size of the no-grad passes (pool outputs, evaluation).
INFERENCE_BATCH = 256


def prepare_shift(shift: DomainShift, config: ExperimentConfig) -> tuple[DomainShift, Optional[Dataset]]:
    """``(shift as the loop trains on it, source validation part)``: subsampled, source split off."""
    shift = limit_shift(shift, config.limit_source, config.limit_pool, config.limit_test, config.data_seed)
    source_train, source_val = split_source_validation(shift.source_train, config.source_val_fraction,
                                                       source_split_seed(config.data_seed))
    return dataclasses.replace(shift, source_train=source_train), source_val


def labeled_source(config: ExperimentConfig, shift: DomainShift) -> Optional[Dataset]:
    """The labeled source set the rounds may use; none from scratch."""
    return None if config.from_scratch else shift.source_train


def build_unit(config: ExperimentConfig, shift: DomainShift, da_method: str, run: int, state: dict,
               device: torch.device):
    """``(model, DA method)`` of one (DA method, run), loaded from ``state`` (``{"model", "da_state"}``)."""
    model = build_initial_model(config, shift, source_seed(config.seed), device, load_pretrained=False)
    method = get_da_method(da_method, **config.da_hparams(run_seed(config.seed, run, da_method)))
    model.load_state_dict(state["model"])
    model.to(device)
    method.load_state_dict(state["da_state"])
    return model, method


@dataclass
class Selection:
    """What :func:`select_step` picked, with the pool outputs it picked from."""

    picks: torch.Tensor  # pool indices, in pick order
    context: QueryContext
    seconds: float


def select_step(model: nn.Module, method, strategy, pool: Dataset, labeled: list[int], *, config: ExperimentConfig,
                source_train: Optional[Dataset], da_method: str, strategy_name: str, run: int, round_index: int,
                device: torch.device) -> Selection:
    """Let ``strategy`` pick up to ``config.budget`` of the pool items not in ``labeled``."""
    global_seed, strategy_seed = round_seeds(config.seed, run, da_method, strategy_name, round_index)
    # Every random draw below is a function of (seed, position): see .seeds.
    with isolated_global_rng(global_seed, device):
        context = QueryContext.create(
            model, pool, labeled, device=device, generator=torch.Generator().manual_seed(strategy_seed),
            da_method=method, source_train=source_train, batch_size=INFERENCE_BATCH,
        )
        n = min(config.budget, int(context.unlabeled_indices.numel()))
        started = time.perf_counter()
        picks = strategy.query(n, context)
        seconds = time.perf_counter() - started
    return Selection(picks=picks, context=context, seconds=seconds)


@dataclass
class Update:
    """What :func:`update_step` did: its time and the accuracy after it (``None`` without a test set)."""

    seconds: float
    accuracy: Optional[float]


def update_step(model: nn.Module, method, pool: Dataset, labeled: list[int], *, config: ExperimentConfig,
                source_train: Optional[Dataset], target_test: Optional[Dataset], da_method: str, strategy_name: str,
                run: int, round_index: int, device: torch.device, progress: bool) -> Update:
    """Train ``model`` in place on the pool items ``labeled`` (in acquisition order) and the rest unlabeled."""
    global_seed, _ = round_seeds(config.seed, run, da_method, strategy_name, round_index)
    with isolated_global_rng(global_seed, device):
        started = time.perf_counter()
        pool_train = target_training_view(pool, config)
        mask = torch.zeros(len(pool), dtype=torch.bool)
        mask[labeled] = True
        method.train_round(
            model, source_train, DatasetView(pool_train, labeled),
            DatasetView(pool_train, (~mask).nonzero().flatten()),
            epochs=config.epochs, device=device, progress=progress,
        )
        seconds = time.perf_counter() - started
        accuracy = None
        if target_test is not None:
            accuracy = evaluate_accuracy(model, target_test, device, batch_size=INFERENCE_BATCH)
    return Update(seconds=seconds, accuracy=accuracy)
