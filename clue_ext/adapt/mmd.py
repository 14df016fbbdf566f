"""``mmd``: feature alignment by maximum mean discrepancy (Long et al., 2015).

``src_weight * CE(source) + CE(labeled target) + unsup_weight * MMD^2(phi(source), phi(target))``
with a multi-bandwidth Gaussian kernel on the embeddings. A step whose source
or target batch holds a single image (a ragged last batch) has no MMD term:
the estimate needs two rows per sample.
"""

from __future__ import annotations

from .base import DAMethod, supervised_terms
from .losses import gaussian_mmd


class MMD(DAMethod):
    """Supervised cross-entropy plus embedding MMD between source and unlabeled target."""

    name = "mmd"

    def _train_step(self, model, batch, optimizer, weights):
        terms, outputs = supervised_terms(model, batch, weights, extra_images=[batch.unlabeled])
        source_embedding = outputs[0][0]
        target_embedding = outputs[-1][0]
        if min(source_embedding.shape[0], target_embedding.shape[0]) >= 2:
            mmd = gaussian_mmd(source_embedding, target_embedding)
        else:
            mmd = source_embedding.new_zeros(())
        loss = terms.pop("supervised") + weights.unsup * mmd
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}, "mmd": mmd.detach()}
