"""``least-confidence``: the items whose predicted class has the lowest probability."""

from __future__ import annotations

from .base import Strategy, top_scoring
from .uncertainty import least_confidence_scores


class LeastConfidence(Strategy):
    """Least-confidence uncertainty sampling."""

    name = "least-confidence"

    def _select(self, n, context):
        unlabeled = context.unlabeled_indices
        scores = least_confidence_scores(context.outputs.probs())[unlabeled.to(context.device)]
        return top_scoring(scores, unlabeled, n)
