"""``ent``: plain entropy minimisation on unlabeled target (Grandvalet & Bengio, 2005).

The non-adversarial counterpart of MME used in the paper's Fig. 4d:
``src_weight * CE(source) + CE(labeled target) + unsup_weight * H(target)``.
"""

from __future__ import annotations

from .base import DAMethod, supervised_terms
from .losses import entropy_from_logits


class EntropyMinimization(DAMethod):
    """Supervised cross-entropy plus target entropy minimisation."""

    name = "ent"

    def _train_step(self, model, batch, optimizer, weights):
        terms, outputs = supervised_terms(model, batch, weights, extra_images=[batch.unlabeled])
        entropy = entropy_from_logits(outputs[-1][1]).mean()
        loss = terms.pop("supervised") + weights.unsup * entropy
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}, "entropy": entropy.detach()}
