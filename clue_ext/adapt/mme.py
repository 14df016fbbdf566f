"""``mme``: minimax entropy (Saito et al., ICCV 2019).

Each step makes two optimiser updates:

1. supervised: ``src_weight * CE(source) + CE(labeled target)``;
2. adversarial entropy on an unlabeled target batch, with a gradient-reversal
   layer between features and classifier. The loss ``-unsup_weight * H`` makes
   the classifier *maximise* the entropy (moving its class prototypes towards
   the target features) while the reversed gradient makes the feature
   extractor *minimise* it (clustering target features around the prototypes).

Round 0 (``adapt_unsupervised``) runs the same step without target labels,
with source weight ``uda_src_weight`` (1.0) and entropy weight
``uda_unsup_weight``. Left at ``None``, the latter is ``unsup_weight``: the
authors' code set a round-0 weight of 0.1 and then applied ``unsup_wt`` (1.0 on
DIGITS, 0.1 on DomainNet), so that is what the paper's round-0 numbers used.
Set ``uda_unsup_weight=0.1`` for what their code meant to do.
"""

from __future__ import annotations

from .base import DAMethod, supervised_terms
from .grad_reverse import grad_reverse
from .losses import entropy_from_logits


class MME(DAMethod):
    """Minimax entropy; ``"entropy"`` in the history is the mean target entropy."""

    name = "mme"

    def _train_step(self, model, batch, optimizer, weights):
        terms, _ = supervised_terms(model, batch, weights)
        supervised = terms.pop("supervised")
        optimizer.zero_grad(set_to_none=True)
        supervised.backward()
        optimizer.step()

        optimizer.zero_grad(set_to_none=True)
        logits_u = model.classifier(grad_reverse(model.features(batch.unlabeled), self.hparams.grl_coeff))
        entropy = entropy_from_logits(logits_u).mean()
        if weights.unsup > 0:
            (-weights.unsup * entropy).backward()
            optimizer.step()
        return {"loss": supervised.detach(), **{k: v.detach() for k, v in terms.items()}, "entropy": entropy.detach()}
