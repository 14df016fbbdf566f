"""``dann``: domain-adversarial training (Ganin et al., 2016) with target labels.

Loss per step, one optimiser update for model and discriminator together:

    src_weight * CE(source) + CE(labeled target) + cent_weight * H(unlabeled target)
      + unsup_weight * BCE(discriminator(GRL(phi)), domain)

The discriminator (source = 0, unlabeled target = 1, balanced batches) learns to
tell the domains apart; through the gradient-reversal layer the feature
extractor learns to make them indistinguishable. The conditional entropy term
keeps target predictions confident, as in the CLUE/AADA setup.

The discriminator is created on first use (the original code referenced an
undefined one unless a checkpoint was cached) and lives on across rounds; it is
exposed as :attr:`DANN.domain_discriminator` (AADA's ``d(x)``) and saved by
:meth:`DANN.state_dict`.

Round 0 weighs source / domain / entropy as 1.0 / 0.1 / 0.01, the values the
authors hard-coded there, unless ``uda_src_weight`` / ``uda_unsup_weight`` /
``uda_cent_weight`` say otherwise.

Differences from the authors' DANN that remain: the discriminator reads the
embedding (theirs read the logits), and source and target share one forward
pass (one set of BatchNorm statistics; LeNet has none).
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from .base import DAMethod, supervised_terms
from .discriminator import DomainDiscriminator, domain_loss_and_accuracy
from .grad_reverse import grad_reverse
from .losses import entropy_from_logits


class DANN(DAMethod):
    """Domain-adversarial adaptation; owns a :class:`DomainDiscriminator`."""

    name = "dann"
    round0_unsup_weight = 0.1
    round0_cent_weight = 0.01

    def __init__(self, **hparams):
        super().__init__(**hparams)
        self._discriminator: Optional[DomainDiscriminator] = None

    @property
    def domain_discriminator(self) -> Optional[DomainDiscriminator]:
        """The discriminator ``embedding -> P(target)``; ``None`` before the first training call."""
        return self._discriminator

    def _prepare(self, model, device) -> list[nn.Module]:
        if self._discriminator is None:
            self._discriminator = DomainDiscriminator(model.embedding_dim, self.hparams.disc_hidden_dim)
        elif self._discriminator.embedding_dim != model.embedding_dim:
            raise ValueError(
                f"DANN's discriminator expects {self._discriminator.embedding_dim}-d embeddings, "
                f"the model produces {model.embedding_dim}-d"
            )
        self._discriminator.to(device)
        return [self._discriminator]

    def _train_step(self, model, batch, optimizer, weights):
        report, supervised, entropy, domain_loss = self._shared_terms(model, batch, weights)
        return self._update(optimizer, supervised + weights.cent * entropy, weights.unsup * domain_loss, report)

    def _shared_terms(self, model, batch, weights):
        """``(report, supervised loss, target entropy, domain loss)``: the terms DANN and VADA share.

        The domain loss reaches the model through gradient reversal; ``report``
        holds the detached terms for the history.
        """
        terms, outputs = supervised_terms(model, batch, weights, extra_images=[batch.unlabeled])
        source_embedding = outputs[0][0]
        target_embedding, target_logits = outputs[-1]
        entropy = entropy_from_logits(target_logits).mean()
        coeff = self.hparams.grl_coeff
        domain_loss, domain_accuracy = domain_loss_and_accuracy(
            self._discriminator, grad_reverse(source_embedding, coeff), grad_reverse(target_embedding, coeff)
        )
        supervised = terms.pop("supervised")
        report = {
            **{k: v.detach() for k, v in terms.items()},
            "entropy": entropy.detach(),
            "domain_loss": domain_loss.detach(),
            "domain_accuracy": domain_accuracy.detach(),
        }
        return report, supervised, entropy, domain_loss

    @staticmethod
    def _update(optimizer, loss, adversarial, report):
        """One step on ``loss + adversarial``; the history's ``"loss"`` is ``loss`` alone."""
        optimizer.zero_grad(set_to_none=True)
        (loss + adversarial).backward()
        optimizer.step()
        return {"loss": loss.detach(), **report}

    def state_dict(self) -> dict:
        """Base state plus the discriminator's weights and shape (``None`` if not yet built)."""
        state = super().state_dict()
        disc = self._discriminator
        state["discriminator"] = None if disc is None else {
            "embedding_dim": disc.embedding_dim,
            "hidden_dim": disc.hidden_dim,
            "weights": {k: v.detach().cpu().clone() for k, v in disc.state_dict().items()},
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the call counter and rebuild the discriminator from its saved weights."""
        super().load_state_dict(state)
        saved = state.get("discriminator")
        if saved is None:
            self._discriminator = None
            return
        discriminator = DomainDiscriminator(saved["embedding_dim"], saved["hidden_dim"])
        discriminator.load_state_dict(saved["weights"])
        self._discriminator = discriminator.eval()
