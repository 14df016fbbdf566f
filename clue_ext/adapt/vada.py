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

from .dann import DANN
from .vat import virtual_adversarial_loss


class VADA(DANN):
    """DANN plus conditional entropy and virtual adversarial training."""

    name = "vada"

    def _train_step(self, model, batch, optimizer, weights):
        h = self.hparams
        report, supervised, entropy, domain_loss = self._shared_terms(model, batch, weights)
        vat_target = virtual_adversarial_loss(model, batch.unlabeled, radius=h.vat_radius, xi=h.vat_xi)
        vat_source = vat_target.new_zeros(())
        if batch.source is not None and h.vat_source_weight > 0:
            vat_source = virtual_adversarial_loss(model, batch.source[0], radius=h.vat_radius, xi=h.vat_xi)
        loss = supervised + weights.cent * (entropy + vat_target) + h.vat_source_weight * vat_source
        report.update(vat_source=vat_source.detach(), vat_target=vat_target.detach())
        return self._update(optimizer, loss, weights.unsup * domain_loss, report)
