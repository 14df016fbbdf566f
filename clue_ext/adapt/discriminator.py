"""Domain discriminators: DANN's, and a stand-alone trainer for AADA.

AADA (Su et al., 2020) scores an unlabeled target instance by
``entropy * (1 - d(x)) / d(x)`` where ``d(x)`` is a domain discriminator's
probability that the embedding comes from the target domain. With ``dann``
that discriminator is a by-product of adaptation (``method.domain_discriminator``).
With any other learning strategy, call :func:`train_domain_discriminator` on
the current model after each update::

    disc, history = train_domain_discriminator(model, source_train, target_pool,
                                               epochs=5, device="cuda")
    p_target = disc(embed_dataset(model, target_pool, "cuda"))   # (N,) in (0, 1)

The model is frozen there: only the discriminator learns, so the model the
strategy evaluates is exactly the one the DA method produced.
"""

from __future__ import annotations

import logging
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .embedding import embed_dataset
from .hparams import DAHyperParams, check_epochs
from .seeding import derive_seeds, isolated_global_rng, seeded_generator
from .streams import EndlessBatchIndices

logger = logging.getLogger(__name__)


class DomainDiscriminator(nn.Module):
    """MLP ``embedding -> P(target)``: two hidden ReLU layers and one output logit.

    ``forward`` returns probabilities in (0, 1) of shape ``(N,)``; training
    uses :meth:`logits` with a logit-space loss for numerical stability.
    """

    def __init__(self, embedding_dim: int, hidden_dim: int = 500):
        super().__init__()
        self.embedding_dim = int(embedding_dim)
        self.hidden_dim = int(hidden_dim)
        self.net = nn.Sequential(
            nn.Linear(self.embedding_dim, self.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(self.hidden_dim, self.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(self.hidden_dim, 1),
        )

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """Target-vs-source logit per row, shape ``(N,)``."""
        return self.net(embedding).squeeze(1)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Probability that each embedding comes from the target domain, shape ``(N,)``."""
        return torch.sigmoid(self.logits(embedding))


def domain_loss_and_accuracy(
    discriminator: DomainDiscriminator, source_embedding: torch.Tensor, target_embedding: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy (source = 0, target = 1) and accuracy of ``discriminator``."""
    logits = discriminator.logits(torch.cat([source_embedding, target_embedding]))
    labels = torch.cat([logits.new_zeros(source_embedding.shape[0]), logits.new_ones(target_embedding.shape[0])])
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    accuracy = ((logits > 0).to(labels.dtype) == labels).float().mean()
    return loss, accuracy


def train_domain_discriminator(
    model: nn.Module,
    source: Dataset,
    target: Dataset,
    *,
    epochs: int,
    device="cpu",
    lr: float = 2e-4,
    weight_decay: float = 1e-5,
    batch_size: int = 128,
    hidden_dim: int = 500,
    steps_per_epoch: Optional[int] = None,
    seed: int = 0,
    discriminator: Optional[DomainDiscriminator] = None,
    progress: bool = True,
) -> tuple[DomainDiscriminator, dict[str, list[float]]]:
    """Train a domain discriminator on the frozen embeddings of ``model``.

    Embeddings of ``source`` (domain 0) and ``target`` (domain 1, labels
    ignored) are computed once in eval mode; the discriminator then trains on
    balanced batches (``batch_size`` of each domain per step) with Adam. One
    epoch is ``ceil(len(target) / batch_size)`` steps unless ``steps_per_epoch``
    is given. Pass ``discriminator`` to continue training an existing one.

    Returns ``(discriminator, history)``: the trained discriminator in eval
    mode on ``device`` and per-epoch mean ``"loss"`` and ``"accuracy"``.
    ``model`` is moved to ``device`` (as the DA methods do) but not trained.
    Deterministic given ``seed``; the global RNG is untouched.
    """
    check_epochs(epochs)
    # Reuse the DA hyperparameter checks so errors read the same everywhere.
    DAHyperParams(
        lr=lr, weight_decay=weight_decay, batch_size=batch_size, seed=seed,
        disc_hidden_dim=hidden_dim, steps_per_epoch=steps_per_epoch,
    )
    for name, dataset in (("source", source), ("target", target)):
        if dataset is None or len(dataset) == 0:
            raise ValueError(f"{name} must be a non-empty dataset")
    device = torch.device(device)
    init_seed, source_seed, target_seed = derive_seeds(seed, count=3)
    model.to(device)

    source_embedding = embed_dataset(model, source, device, batch_size=batch_size)
    target_embedding = embed_dataset(model, target, device, batch_size=batch_size)
    if discriminator is None:
        with isolated_global_rng(init_seed, device):
            discriminator = DomainDiscriminator(model.embedding_dim, hidden_dim)
    elif discriminator.embedding_dim != source_embedding.shape[1]:
        raise ValueError(
            f"discriminator expects {discriminator.embedding_dim}-d embeddings, model gives {source_embedding.shape[1]}-d"
        )
    discriminator.to(device).train()
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, weight_decay=weight_decay)
    source_batches = iter(EndlessBatchIndices(len(source_embedding), batch_size, seeded_generator(source_seed)))
    target_batches = iter(EndlessBatchIndices(len(target_embedding), batch_size, seeded_generator(target_seed)))
    steps = steps_per_epoch or math.ceil(len(target_embedding) / batch_size)

    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    for epoch in tqdm(range(epochs), desc="domain discriminator", disable=not progress, leave=False):
        loss_sum = accuracy_sum = 0.0
        for _ in range(steps):
            source_index = torch.as_tensor(next(source_batches), device=device)
            target_index = torch.as_tensor(next(target_batches), device=device)
            loss, accuracy = domain_loss_and_accuracy(
                discriminator, source_embedding[source_index], target_embedding[target_index]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum = loss_sum + loss.detach()
            accuracy_sum = accuracy_sum + accuracy
        history["loss"].append(float(loss_sum) / steps)
        history["accuracy"].append(float(accuracy_sum) / steps)
        logger.info(
            "domain discriminator epoch %d/%d: loss=%.4f accuracy=%.3f",
            epoch + 1, epochs, history["loss"][-1], history["accuracy"][-1],
        )
    return discriminator.eval(), history
