"""Model building, source training and evaluation for the Active DA loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..adapt import get_da_method
from ..adapt.seeding import isolated_global_rng
from ..data import DomainShift
from ..models import build_model
from .configs import ExperimentConfig
from .data_views import DatasetView

logger = logging.getLogger(__name__)


def build_initial_model(config: ExperimentConfig, shift: DomainShift, seed: int, device, *,
                        load_pretrained: bool = True) -> nn.Module:
    """The network before any training, initialised reproducibly from ``seed``.

    ``load_pretrained=False`` skips reading ImageNet weights, for a model whose
    whole state is about to be loaded from a checkpoint anyway.
    """
    with isolated_global_rng(seed, torch.device(device)):
        return build_model(
            config.model,
            shift.num_classes,
            in_channels=shift.in_channels,
            pretrained=config.pretrained and load_pretrained,
            weights_path=config.weights if load_pretrained else None,
        )


def split_source_validation(source_train: Dataset, fraction: float, seed: int) -> tuple[Dataset, Optional[Dataset]]:
    """``(train part, validation part)`` of the labeled source set, a seeded random split.

    As the authors' ``valid_ratio``: ``fraction`` of the items (rounded down)
    are held out to pick the source model's best epoch, the rest trains it and
    is the source data of the DA methods. The validation part is in eval mode
    (no augmentation). ``fraction == 0``, or a set too small to leave both
    parts non-empty, gives ``(source_train, None)``.
    """
    held_out = int(np.floor(fraction * len(source_train)))
    if held_out == 0 or held_out == len(source_train):
        return source_train, None
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(source_train)))
    validation = source_train.with_mode("eval") if hasattr(source_train, "with_mode") else source_train
    return DatasetView(source_train, order[held_out:].sort().values), DatasetView(validation, order[:held_out].sort().values)


def target_training_view(pool: Dataset, config: ExperimentConfig) -> Dataset:
    """The target pool as the DA methods train on it: augmented only if ``config.augment_target``."""
    return pool.with_mode("train" if config.augment_target else "eval")


@dataclass
class SourceTraining:
    """What :func:`train_source_model` did: the epoch kept and its validation accuracy."""

    best_epoch: int
    val_accuracy: Optional[float]


def train_source_model(model: nn.Module, config: ExperimentConfig, source_train: Dataset, *, seed: int,
                       device, progress: bool, source_val: Optional[Dataset] = None) -> SourceTraining:
    """Supervised training on labeled source data, in place.

    This is fine-tuning with the source set standing in as the labeled set:
    ``ft``'s loop gives the same seeded streams, Adam and epoch bars the DA
    methods use. Epochs are full passes over the source set. With
    ``source_val``, the model ends with the weights of the epoch of highest
    accuracy there (the earliest on ties), as the authors kept their best
    source checkpoint; without, with the last epoch's.
    """
    trainer = get_da_method(
        "ft",
        lr=config.source_lr,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        step_size=None,
        epoch_length="shortest",
        seed=seed,
    )
    logger.info("training the source model: %d epochs over %d images", config.source_epochs, len(source_train))
    best = {"epoch": config.source_epochs, "accuracy": None, "state": None}

    def keep_best(done: int) -> None:
        accuracy = evaluate_accuracy(model, source_val, device)
        logger.info("source epoch %d: validation accuracy %.2f%%", done, accuracy)
        if best["accuracy"] is None or accuracy > best["accuracy"]:
            best.update(epoch=done, accuracy=accuracy, state=cpu_state(model))

    trainer.train_round(model, None, source_train, None, epochs=config.source_epochs, device=device,
                        progress=progress, after_epoch=keep_best if source_val is not None else None)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
        logger.info("source model: kept epoch %d of %d (validation accuracy %.2f%%)",
                    best["epoch"], config.source_epochs, best["accuracy"])
    return SourceTraining(best_epoch=best["epoch"], val_accuracy=best["accuracy"])


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, dataset: Dataset, device, *, batch_size: int = 256) -> float:
    """Top-1 accuracy (percent) of ``model`` on ``dataset``, in eval mode."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            logits, _ = model(images.to(device))
            correct += int((logits.argmax(dim=1).cpu() == torch.as_tensor(labels)).sum())
            total += int(len(labels))
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    return 100.0 * correct / total


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s state dict (safe to save while training continues)."""
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
