"""Model building, source training and evaluation for the Active DA loop."""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..adapt import get_da_method
from ..adapt.seeding import isolated_global_rng
from ..data import DomainShift
from ..models import build_model
from .configs import ExperimentConfig

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


def train_source_model(model: nn.Module, config: ExperimentConfig, source_train: Dataset, *, seed: int,
                       device, progress: bool) -> None:
    """Supervised training on labeled source data, in place.

    This is fine-tuning with the source set standing in as the labeled set:
    ``ft``'s loop gives the same seeded streams, Adam and epoch bars the DA
    methods use. Epochs are full passes over the source set.
    """
    trainer = get_da_method(
        "ft",
        lr=config.source_lr,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        step_size=None,
        seed=seed,
    )
    logger.info("training the source model: %d epochs over %d images", config.source_epochs, len(source_train))
    trainer.train_round(model, None, source_train, None, epochs=config.source_epochs, device=device, progress=progress)


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
