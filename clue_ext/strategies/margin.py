"""``margin``: the items with the smallest gap between the top two class probabilities."""

from __future__ import annotations

from .base import Strategy, top_scoring
from .uncertainty import margin_scores


class Margin(Strategy):
    """Margin uncertainty sampling (Roth & Small, 2006)."""

    name = "margin"

    def _select(self, n, context):
        unlabeled = context.unlabeled_indices
        scores = margin_scores(context.outputs.probs())[unlabeled.to(context.device)]
        return top_scoring(scores, unlabeled, n)
