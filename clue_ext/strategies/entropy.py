"""``entropy``: the items whose predictive distribution has the highest entropy."""

from __future__ import annotations

from .base import Strategy, top_scoring
from .uncertainty import entropy_scores


class Entropy(Strategy):
    """Max-entropy uncertainty sampling (Wang & Shang, 2014)."""

    name = "entropy"

    def _select(self, n, context):
        unlabeled = context.unlabeled_indices
        scores = entropy_scores(context.outputs.log_probs())[unlabeled.to(context.device)]
        return top_scoring(scores, unlabeled, n)
