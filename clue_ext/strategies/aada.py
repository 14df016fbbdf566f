"""``aada``: Active Adversarial Domain Adaptation (Su et al., WACV 2020).

Score of an unlabeled item::

    s(x) = H(p(y|x)) * (1 - d_s(x)) / d_s(x)

with ``d_s`` a domain discriminator's probability that ``x`` comes from the
*source* domain, so the ratio estimates ``p_target(x) / p_source(x)``: AADA
favours uncertain items that look unlike the source. (The authors' code
computes it as ``P(target) / P(source)`` from the discriminator's softmax; our
discriminators output ``P(target)``, hence ``d_t / (1 - d_t)``.)

As in the original, the batch is drawn uniformly at random from the top 2% of
scores (the authors' recommendation) rather than taking the top ``n``; when
``n`` exceeds 2% of the unlabeled pool, the top ``n`` are taken.

The discriminator: with ``dann`` it is the DA method's own, trained during
adaptation. With any other DA method (``ft``, ``mme``, ...) a fresh one is
trained each round on the current model's frozen embeddings of labeled source
vs. the target pool (:func:`clue_ext.adapt.train_domain_discriminator`); this
needs ``context.source_train``.
"""

from __future__ import annotations

import logging
import math

import torch

from ..adapt import train_domain_discriminator
from .base import Strategy, top_scoring
from .uncertainty import entropy_scores

logger = logging.getLogger(__name__)

# Keeps d / (1 - d) finite for a discriminator saturated at 0 or 1.
_PROB_EPS = 1e-6


def aada_scores(log_probs: torch.Tensor, p_target: torch.Tensor) -> torch.Tensor:
    """Entropy times the target/source density ratio ``d_t / (1 - d_t)``."""
    d = p_target.double().clamp(_PROB_EPS, 1.0 - _PROB_EPS)
    return entropy_scores(log_probs.double()) * d / (1.0 - d)


def sample_from_top(scores: torch.Tensor, candidates: torch.Tensor, n: int, top_fraction: float,
                    generator: torch.Generator) -> torch.Tensor:
    """``n`` of ``candidates`` drawn uniformly from the top ``top_fraction`` by score.

    The top set holds ``max(n, floor(top_fraction * len(candidates)))`` items, so
    it is never smaller than the batch.
    """
    top = max(n, int(math.floor(top_fraction * candidates.numel())))
    best = top_scoring(scores, candidates, top)
    return best[torch.randperm(top, generator=generator)[:n]]


class AADA(Strategy):
    """AADA sampling.

    Args:
        top_fraction: the batch is drawn at random from this top fraction of
            the unlabeled pool by score (0.02 in the original); 0 takes the top ``n``.
        discriminator_epochs: epochs of the per-round discriminator trained
            when the DA method has none (not ``dann``).
        discriminator_lr: its Adam learning rate.
    """

    name = "aada"

    def __init__(self, top_fraction: float = 0.02, discriminator_epochs: int = 5, discriminator_lr: float = 2e-4):
        if isinstance(top_fraction, bool) or not isinstance(top_fraction, (int, float)) or not 0 <= top_fraction <= 1:
            raise ValueError(f"top_fraction must be a number in [0, 1], got {top_fraction!r}")
        if isinstance(discriminator_epochs, bool) or not isinstance(discriminator_epochs, int) or discriminator_epochs < 1:
            raise ValueError(f"discriminator_epochs must be a positive integer, got {discriminator_epochs!r}")
        if not isinstance(discriminator_lr, (int, float)) or not discriminator_lr > 0:
            raise ValueError(f"discriminator_lr must be a positive number, got {discriminator_lr!r}")
        self.top_fraction = float(top_fraction)
        self.discriminator_epochs = discriminator_epochs
        self.discriminator_lr = float(discriminator_lr)

    def _select(self, n, context):
        unlabeled = context.unlabeled_indices
        rows = unlabeled.to(context.device)
        discriminator = self._discriminator(context)
        with torch.no_grad():
            p_target = discriminator.to(context.device).eval()(context.outputs.embeddings[rows])
        scores = aada_scores(context.outputs.log_probs()[rows], p_target)
        return sample_from_top(scores, unlabeled, n, self.top_fraction, context.generator)

    def _discriminator(self, context):
        method = context.da_method
        existing = getattr(method, "domain_discriminator", None) if method is not None else None
        if existing is not None:
            return existing
        if context.source_train is None:
            name = getattr(method, "name", None)
            raise ValueError(
                f"aada needs a domain discriminator: the DA method ({name or 'none'}) has none, so one is "
                "trained on the fly, which needs context.source_train (labeled source data); got None"
            )
        source = context.source_train
        if hasattr(source, "with_mode"):
            source = source.with_mode("eval")  # embeddings without augmentation
        logger.info("aada: training a domain discriminator (%d epochs) on the current model", self.discriminator_epochs)
        discriminator, _ = train_domain_discriminator(
            context.model,
            source,
            context.pool,
            epochs=self.discriminator_epochs,
            device=context.device,
            lr=self.discriminator_lr,
            batch_size=min(128, len(context.pool)),
            seed=int(torch.randint(0, 2**31, (1,), generator=context.generator)),
            progress=context.progress,
        )
        return discriminator
