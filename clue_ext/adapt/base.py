"""The interface every DA method implements and the training loop they share.

A method is built once per experiment (``get_da_method(name, **hparams)``) and
then called for round 0 (``adapt_unsupervised``) and after every acquisition
round (``train_round``). Each call builds a fresh Adam optimiser with the
learning rate of that stage, as the original code does per round (a StepLR
schedule only where ``step_size`` / ``uda_step_size`` asks for one), and
returns the per-epoch mean of every loss term it optimised.

Data: datasets are map-style and yield ``(image, label)``. The unlabeled
target pool is wrapped in :class:`~.streams.ImagesOnly` before use, so its
labels are never read. Every stream is endless (see :mod:`.streams`); what one
*epoch* is, is set by the ``epoch_length`` hyperparameter: by default the
authors' rule, one pass over the shortest stream of the call (after round 0:
the labeled target set), optionally capped by ``steps_per_epoch``.

Determinism: the ``k``-th call of a method draws all its randomness (shuffling,
dropout, lazily created modules) from seeds derived from ``(seed, k)``; the
caller's global RNG is left untouched. ``k`` is part of ``state_dict`` so a
resumed run continues with the same seeds.
"""

from __future__ import annotations

import abc
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .hparams import DAHyperParams, check_epochs
from .seeding import derive_seeds, isolated_global_rng, seeded_generator
from .streams import ImagesOnly, batches_per_pass, endless_batches

logger = logging.getLogger(__name__)

History = dict[str, list[float]]
#: Called after every epoch with the number of epochs done so far (1, 2, ...).
EpochCallback = Callable[[int], None]


class Batch(NamedTuple):
    """One training step's data, already on the device; ``None`` for unused streams."""

    source: Optional[tuple[torch.Tensor, torch.Tensor]]
    target: Optional[tuple[torch.Tensor, torch.Tensor]]
    unlabeled: Optional[torch.Tensor]


class RoundData(NamedTuple):
    """The datasets one call streams from; ``None`` for those the method does not use."""

    source: Optional[Dataset]
    target_labeled: Optional[Dataset]
    target_unlabeled: Optional[Dataset]


@dataclass(frozen=True)
class LossWeights:
    """Loss weights in effect for one call (round 0 and later rounds differ)."""

    src: float
    unsup: float
    cent: float


class DAMethod(abc.ABC):
    """Base class of the DA learning strategies (``ft``, ``mme``, ``dann``, ...).

    Subclasses set ``name``, implement :meth:`_train_step` and, when they use
    other data than labeled source + unlabeled target (+ optional labeled
    target), override :meth:`_round_data`; those whose round 0 weighs its
    losses differently override :attr:`round0_unsup_weight` /
    :attr:`round0_cent_weight`.
    """

    name: ClassVar[str] = ""
    #: Round-0 weight of the unsupervised term when ``uda_unsup_weight`` is
    #: ``None``; ``None`` here means "the round weight, ``unsup_weight``".
    round0_unsup_weight: ClassVar[Optional[float]] = None
    #: Round-0 conditional-entropy weight when ``uda_cent_weight`` is ``None``;
    #: ``None`` here means ``cent_weight``.
    round0_cent_weight: ClassVar[Optional[float]] = None

    def __init__(self, **hparams):
        self.hparams = DAHyperParams.from_kwargs(**hparams)
        self._num_calls = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hparams})"

    # ----------------------------------------------------------------- public API

    @property
    def domain_discriminator(self) -> Optional[nn.Module]:
        """The method's trained domain discriminator, or ``None`` if it has none."""
        return None

    def adapt_unsupervised(
        self,
        model: nn.Module,
        source_train: Dataset,
        target_unlabeled: Dataset,
        *,
        epochs: int,
        device,
        progress: bool = True,
    ) -> History:
        """Round 0: unsupervised adaptation from labeled source to unlabeled target.

        Uses the round-0 hyperparameters ``uda_lr`` (falling back to ``lr``),
        ``uda_step_size`` and the loss weights of :meth:`round0_weights`.
        Trains ``model`` in place (moving it to ``device``) and returns
        per-epoch mean losses.
        """
        check_epochs(epochs)
        require_dataset("source_train", source_train)
        require_dataset("target_unlabeled", target_unlabeled)
        h = self.hparams
        return self._fit(
            model,
            RoundData(source_train, None, target_unlabeled),
            epochs=epochs,
            device=device,
            lr=h.lr if h.uda_lr is None else h.uda_lr,
            step_size=h.uda_step_size,
            weights=self.round0_weights(),
            stage="adapt_unsupervised",
            progress=progress,
        )

    def round0_weights(self) -> LossWeights:
        """The loss weights of round 0: the ``uda_*`` hyperparameters, else the method's defaults."""
        h = self.hparams
        unsup = h.uda_unsup_weight
        if unsup is None:
            unsup = h.unsup_weight if self.round0_unsup_weight is None else self.round0_unsup_weight
        cent = h.uda_cent_weight
        if cent is None:
            cent = h.cent_weight if self.round0_cent_weight is None else self.round0_cent_weight
        return LossWeights(src=h.uda_src_weight, unsup=unsup, cent=cent)

    def train_round(
        self,
        model: nn.Module,
        source_train: Optional[Dataset],
        target_labeled: Optional[Dataset],
        target_unlabeled: Optional[Dataset],
        *,
        epochs: int,
        device,
        progress: bool = True,
        after_epoch: Optional[EpochCallback] = None,
    ) -> History:
        """Semi-supervised update after a round of label acquisition.

        Trains ``model`` in place (moving it to ``device``) with ``lr``, the
        StepLR of ``step_size`` and the loss weights ``src_weight`` /
        ``unsup_weight`` / ``cent_weight``; returns per-epoch mean losses (key
        ``"loss"`` is always present). ``after_epoch(done)`` runs after each
        epoch, with the model still in training mode (e.g. to keep the best
        epoch on a validation set; it may switch modes, the loop restores them).
        """
        check_epochs(epochs)
        data = self._round_data(source_train, target_labeled, target_unlabeled)
        h = self.hparams
        return self._fit(
            model,
            data,
            epochs=epochs,
            device=device,
            lr=h.lr,
            step_size=h.step_size,
            weights=LossWeights(src=h.src_weight, unsup=h.unsup_weight, cent=h.cent_weight),
            stage="train_round",
            progress=progress,
            after_epoch=after_epoch,
        )

    def state_dict(self) -> dict:
        """The method's own state, to checkpoint next to the model."""
        return {"name": self.name, "hparams": self.hparams.as_dict(), "num_calls": self._num_calls}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (hyperparameters stay as constructed)."""
        if state.get("name") != self.name:
            raise ValueError(f"state was saved by DA method {state.get('name')!r}, not {self.name!r}")
        if state.get("hparams") != self.hparams.as_dict():
            logger.warning("loading %s state saved with different hyperparameters", self.name)
        self._num_calls = int(state["num_calls"])

    # ------------------------------------------------------------- subclass hooks

    def _round_data(self, source_train, target_labeled, target_unlabeled) -> RoundData:
        """Validate ``train_round``'s datasets and pick the ones to stream.

        Default: labeled source and unlabeled target are required; labeled
        target is optional (a round with no labels yet trains without it).
        """
        require_dataset("source_train", source_train)
        require_dataset("target_unlabeled", target_unlabeled)
        if target_labeled is None or len(target_labeled) == 0:
            logger.warning("%s.train_round got no labeled target data; training without target labels", self.name)
            target_labeled = None
        return RoundData(source_train, target_labeled, target_unlabeled)

    def _prepare(self, model: nn.Module, device: torch.device) -> list[nn.Module]:
        """Create/move auxiliary modules; return those the optimiser should also train.

        Runs inside the call's seeded RNG context, so lazily built modules get
        a reproducible initialisation.
        """
        return []

    @abc.abstractmethod
    def _train_step(
        self, model: nn.Module, batch: Batch, optimizer: torch.optim.Optimizer, weights: LossWeights
    ) -> dict[str, torch.Tensor]:
        """One optimisation step (zero_grad/backward/step included).

        Returns detached scalar tensors; ``"loss"`` is the objective minimised
        by all parameters (adversarial terms are reported under their own keys).
        """

    # ---------------------------------------------------------------- the loop

    def epoch_plan(self, data: RoundData) -> tuple[int, set[str]]:
        """``(steps per epoch, streams cut into ragged one-pass batches)`` for ``data``.

        See ``DAHyperParams.epoch_length``. Under ``"shortest"`` every stream
        the call uses bounds the epoch, as in a loop that zips loaders and
        stops at the first exhausted one; the stream(s) with the fewest
        batches pass once per epoch with a ragged last batch. Under ``"pool"``
        the unlabeled pool (or, without one, the labeled target set) sets the
        length, in full batches. ``steps_per_epoch`` caps either.
        """
        h = self.hparams
        lengths = {key: len(dataset) for key, dataset in data._asdict().items() if dataset is not None}
        if not lengths:
            raise ValueError("a DA call needs at least one dataset to stream")
        if h.epoch_length == "shortest":
            passes = {key: batches_per_pass(length, h.batch_size) for key, length in lengths.items()}
            steps = min(passes.values())
            ragged = {key for key, count in passes.items() if count == steps}
        else:
            key = "target_unlabeled" if "target_unlabeled" in lengths else "target_labeled"
            if key not in lengths:
                key = next(iter(lengths))
            steps = batches_per_pass(lengths[key], h.batch_size)
            ragged = set()
        if h.steps_per_epoch is not None:
            steps = min(steps, h.steps_per_epoch)
        return steps, ragged

    def _fit(
        self,
        model: nn.Module,
        data: RoundData,
        *,
        epochs: int,
        device,
        lr: float,
        step_size: Optional[int],
        weights: LossWeights,
        stage: str,
        progress: bool,
        after_epoch: Optional[EpochCallback] = None,
    ) -> History:
        _check_model(model)
        device = torch.device(device)
        h = self.hparams
        call_index = self._num_calls
        self._num_calls += 1
        model.to(device)
        if epochs == 0:
            return {"loss": []}

        rng_seed, *stream_seeds = derive_seeds(h.seed, call_index, count=4)
        datasets = {
            "source": data.source,
            "target_labeled": data.target_labeled,
            "target_unlabeled": None if data.target_unlabeled is None else ImagesOnly(data.target_unlabeled),
        }
        steps, ragged = self.epoch_plan(data)
        was_training = model.training
        history: History = defaultdict(list)

        with isolated_global_rng(rng_seed, device):
            extra_modules = self._prepare(model, device)
            parameters = [p for m in (model, *extra_modules) for p in m.parameters() if p.requires_grad]
            optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=h.weight_decay)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size, h.gamma) if step_size else None
            streams = {
                key: endless_batches(
                    dataset,
                    h.batch_size,
                    seeded_generator(seed),
                    num_workers=h.num_workers,
                    pin_memory=device.type == "cuda",
                    ragged=key in ragged,
                )
                for (key, dataset), seed in zip(datasets.items(), stream_seeds)
                if dataset is not None
            }
            logger.info(
                "%s %s #%d: %d epochs x %d steps, lr=%g, weights=%s",
                self.name, stage, call_index, epochs, steps, lr, weights,
            )
            for module in (model, *extra_modules):
                module.train()
            try:
                bar = tqdm(range(epochs), desc=f"{self.name} {stage}", disable=not progress, leave=False)
                for epoch in bar:
                    totals: dict[str, torch.Tensor] = {}
                    for _ in range(steps):
                        batch = _next_batch(streams, device)
                        for key, value in self._train_step(model, batch, optimizer, weights).items():
                            totals[key] = totals.get(key, 0) + value.detach()
                    # One host sync per epoch, not per step.
                    means = {key: float(total) / steps for key, total in totals.items()}
                    for key, value in means.items():
                        history[key].append(value)
                    bar.set_postfix(loss=f"{means['loss']:.4f}")
                    logger.debug(
                        "%s %s #%d epoch %d/%d: %s",
                        self.name, stage, call_index, epoch + 1, epochs,
                        ", ".join(f"{k}={v:.4f}" for k, v in means.items()),
                    )
                    if scheduler is not None:
                        scheduler.step()
                    if after_epoch is not None:
                        after_epoch(epoch + 1)
                        for module in (model, *extra_modules):
                            module.train()
            finally:
                model.train(was_training)
                for module in extra_modules:
                    module.eval()
        logger.info(
            "%s %s #%d done: %s",
            self.name, stage, call_index,
            ", ".join(f"{k} {v[0]:.4f} -> {v[-1]:.4f}" for k, v in history.items()),
        )
        return dict(history)


# ------------------------------------------------------------------ helpers


def _next_batch(streams: dict, device: torch.device) -> Batch:
    def labeled(key):
        if key not in streams:
            return None
        images, labels = next(streams[key])
        return images.to(device, non_blocking=True), labels.to(device, non_blocking=True).long()

    unlabeled = next(streams["target_unlabeled"]).to(device, non_blocking=True) if "target_unlabeled" in streams else None
    return Batch(source=labeled("source"), target=labeled("target_labeled"), unlabeled=unlabeled)


def require_dataset(name: str, dataset) -> None:
    if dataset is None:
        raise ValueError(f"{name} is required by this DA method, got None")
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise TypeError(f"{name} must be a map-style Dataset (with __len__ and __getitem__), got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError(f"{name} must not be empty")


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    missing = [attr for attr in ("features", "classifier", "embedding_dim") if not hasattr(model, attr)]
    if missing:
        raise TypeError(
            f"model must expose features(x), classifier(embedding) and embedding_dim; missing: {', '.join(missing)}"
        )


def forward_parts(model: nn.Module, images: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run ``model`` once over the concatenation of ``images``; split ``(embedding, logits)`` back.

    One forward pass means BatchNorm normalises source and target together,
    as in the original MME/DANN implementations.
    """
    sizes = [x.shape[0] for x in images]
    embedding = model.features(torch.cat(list(images), dim=0))
    logits = model.classifier(embedding)
    return list(zip(embedding.split(sizes), logits.split(sizes)))


def supervised_terms(
    model: nn.Module, batch: Batch, weights: LossWeights, extra_images: Sequence[torch.Tensor] = ()
) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """Cross-entropy on whichever labeled streams ``batch`` has, in one forward pass.

    Returns the loss terms (``"supervised"`` = ``src * ce_source + ce_target``,
    plus the individual terms) and the ``(embedding, logits)`` of every part:
    source, labeled target (when present), then each of ``extra_images``.
    """
    labeled = [part for part in (batch.source, batch.target) if part is not None]
    outputs = forward_parts(model, [x for x, _ in labeled] + list(extra_images))
    terms: dict[str, torch.Tensor] = {}
    supervised = outputs[0][1].new_zeros(())
    position = 0
    if batch.source is not None:
        terms["ce_source"] = F.cross_entropy(outputs[position][1], batch.source[1])
        supervised = supervised + weights.src * terms["ce_source"]
        position += 1
    if batch.target is not None:
        terms["ce_target"] = F.cross_entropy(outputs[position][1], batch.target[1])
        supervised = supervised + terms["ce_target"]
    terms["supervised"] = supervised
    return terms, outputs
