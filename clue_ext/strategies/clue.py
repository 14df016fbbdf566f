"""``clue``: Clustering Uncertainty-weighted Embeddings (Prabhu et al., ICCV 2021), and its
Fig. 4a variants ``clue-margin`` and ``clue-uniform``."""

from __future__ import annotations

import math

from .base import Strategy


class Clue(Strategy):
    """CLUE through :func:`clue_ext.select`, the labeled items excluded.

    Args:
        temperature: softmax temperature T of the entropy weights (1.0 on
            DIGITS and Office, 0.1 on DomainNet in the paper).
        max_iter, tol: the weighted K-Means stopping rules (scikit-learn's defaults).
    """

    name = "clue"
    weighting = "entropy"

    def __init__(self, temperature: float = 1.0, max_iter: int = 300, tol: float = 1e-4):
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0
        ):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        self.temperature = float(temperature)
        self.max_iter = max_iter
        self.tol = tol

    def _select(self, n, context):
        from ..selection import select

        return select(
            context.outputs.embeddings,
            context.outputs.probs(),  # float64, so re-tempering by T keeps small probabilities
            n,
            temperature=self.temperature,
            seed=context.random_seed(),
            exclude=context.labeled.to(context.device),
            max_iter=self.max_iter,
            tol=self.tol,
            weighting=self.weighting,
        )


class ClueMargin(Clue):
    """CLUE weighted by margin uncertainty, 1 - (p1 - p2) (the paper's Fig. 4a)."""

    name = "clue-margin"
    weighting = "margin"


class ClueUniform(Clue):
    """CLUE with every weight 1: K-Means on the embeddings, diversity alone (Fig. 4a).
    The temperature has no effect."""

    name = "clue-uniform"
    weighting = "uniform"
