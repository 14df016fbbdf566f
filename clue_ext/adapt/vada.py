"""``vada``: virtual adversarial domain adaptation (Shu et al., ICLR 2018), Fig. 4d.

DANN's objective plus the cluster assumption on the target, per step:

    src_weight * CE(source) + CE(labeled target)
      + unsup_weight * domain loss (through gradient reversal)
      + vat_source_weight * VAT(source)
      + cent_weight * (H(unlabeled target) + VAT(unlabeled target))

where VAT is the virtual adversarial loss of :mod:`.vat` (radius
``vat_radius``). It shares DANN's discriminator (so AADA can read it) and its
round-0 weights (1.0 / 0.1 / 0.01 unless the ``uda_*`` hyperparameters say
otherwise).
"""

from __future__ import annotations

from .base import supervised_terms
from .dann import DANN
from .discriminator import domain_loss_and_accuracy
from .grad_reverse import grad_reverse
from .losses import entropy_from_logits
from .vat import virtual_adversarial_loss


class VADA(DANN):
    """DANN plus conditional entropy and virtual adversarial training."""

    name = "vada"

    def _train_step(self, model, batch, optimizer, weights):
        h = self.hparams
        terms, outputs = supervised_terms(model, batch, weights, extra_images=[batch.unlabeled])
        source_embedding = outputs[0][0]
        target_embedding, target_logits = outputs[-1]
        entropy = entropy_from_logits(target_logits).mean()
        domain_loss, domain_accuracy = domain_loss_and_accuracy(
            self._discriminator, grad_reverse(source_embedding, h.grl_coeff), grad_reverse(target_embedding, h.grl_coeff)
        )
        vat_target = virtual_adversarial_loss(model, batch.unlabeled, radius=h.vat_radius, xi=h.vat_xi)
        vat_source = target_embedding.new_zeros(())
        if batch.source is not None and h.vat_source_weight > 0:
            vat_source = virtual_adversarial_loss(model, batch.source[0], radius=h.vat_radius, xi=h.vat_xi)
        loss = (
            terms.pop("supervised")
            + weights.cent * (entropy + vat_target)
            + h.vat_source_weight * vat_source
        )
        optimizer.zero_grad(set_to_none=True)
        (loss + weights.unsup * domain_loss).backward()
        optimizer.step()
        return {
            "loss": loss.detach(),
            **{k: v.detach() for k, v in terms.items()},
            "entropy": entropy.detach(),
            "vat_source": vat_source.detach(),
            "vat_target": vat_target.detach(),
            "domain_loss": domain_loss.detach(),
            "domain_accuracy": domain_accuracy.detach(),
        }
