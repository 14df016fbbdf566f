"""``ft``: fine-tune on the labeled target set (optionally with labeled source)."""

from __future__ import annotations

import logging

from .base import DAMethod, RoundData, require_dataset, supervised_terms
from .hparams import check_epochs

logger = logging.getLogger(__name__)


class FineTune(DAMethod):
    """Cross-entropy on acquired target labels; with ``use_source=True`` also
    ``src_weight`` x cross-entropy on labeled source.

    ``adapt_unsupervised`` does nothing and returns ``{"loss": []}``: fine-tuning
    has no unsupervised stage, so an Active DA run with ``ft`` starts from the
    source model itself (its accuracy is the round-0 accuracy).

    One epoch of ``train_round`` is one pass over the labeled target set
    (``ceil(n / batch_size)`` steps, the last batch ragged, as the authors'
    loop); with ``epoch_length="pool"`` its batches are full, a set smaller
    than ``batch_size`` cycled to fill them.
    """

    name = "ft"

    def adapt_unsupervised(self, model, source_train, target_unlabeled, *, epochs, device, progress=True):
        check_epochs(epochs)
        logger.info("ft has no unsupervised stage; the model is left as trained on source")
        return {"loss": []}

    def _round_data(self, source_train, target_labeled, target_unlabeled) -> RoundData:
        require_dataset("target_labeled", target_labeled)
        if self.hparams.use_source:
            require_dataset("source_train", source_train)
            return RoundData(source_train, target_labeled, None)
        return RoundData(None, target_labeled, None)

    def _train_step(self, model, batch, optimizer, weights):
        terms, _ = supervised_terms(model, batch, weights)
        loss = terms.pop("supervised")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
