"""Hyperparameters shared by every DA method, validated once at construction.

All methods accept the same set of names so a runner can pass one config dict
to whichever method it builds; each method reads the ones that concern it (the
docstring of each field says who reads it). Defaults are the authors' DIGITS
configuration: Adam lr 2e-4, weight decay 1e-5, batch 128, loss weights
src/unsup/cent = 0.1/1.0/0.1, StepLR(20, 0.5) after each acquisition round and
none in round 0, and epochs that end with the shortest stream.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional


#: Values of ``DAHyperParams.epoch_length``.
EPOCH_LENGTHS = ("shortest", "pool")


@dataclass(frozen=True)
class DAHyperParams:
    """Validated DA hyperparameters.

    Attributes:
        lr: Adam learning rate of the per-round update (``train_round``).
        weight_decay: Adam weight decay.
        batch_size: samples per stream per step (source, labeled target and
            unlabeled target each contribute one batch of this size).
        src_weight: weight of the source cross-entropy in ``train_round``
            (target cross-entropy has weight 1).
        unsup_weight: weight of the unsupervised term: MME's adversarial entropy,
            DANN's domain loss, ENT's entropy, MMD's discrepancy.
        cent_weight: DANN's conditional-entropy weight on unlabeled target.
        step_size: StepLR period in epochs of ``train_round``; ``None`` keeps
            the lr constant.
        gamma: StepLR decay factor.
        uda_step_size: StepLR period in round 0 (``adapt_unsupervised``);
            ``None`` (the authors' choice) keeps the lr constant there.
        seed: seed of every random choice a method makes (shuffling, dropout,
            discriminator init); the global RNG is neither read nor changed.
        uda_lr: learning rate of round-0 ``adapt_unsupervised``; ``None`` uses ``lr``.
        uda_src_weight: source cross-entropy weight in round 0. It defaults to 1
            because round 0 has no target labels: source labels are the only
            supervision keeping the classifier anchored.
        uda_unsup_weight: unsupervised-term weight in round 0; ``None`` uses
            the method's round-0 default: ``unsup_weight`` for most, 0.1 for
            ``dann`` and ``vada`` (the authors hard-coded DANN's round 0 as
            1.0 / 0.1 / 0.01). For ``mme`` the default is ``unsup_weight``
            because that is what the authors' code applied: it set a round-0
            weight of 0.1 and then used ``unsup_wt``.
        uda_cent_weight: conditional-entropy weight in round 0; ``None`` uses
            the method's default: ``cent_weight``, or 0.01 for ``dann``/``vada``.
        epoch_length: what one epoch is. ``"shortest"`` (the authors' loop,
            which zips its loaders): an epoch ends when the shortest of the
            streams the call uses has made one pass, the last batch ragged.
            After round 0 that is the labeled target set, so an epoch is
            ``ceil(n_labeled / batch_size)`` steps; in round 0 it is the
            shorter of labeled source and unlabeled target. ``"pool"``: one
            pass over the unlabeled target pool (``ceil(len / batch_size)``
            full batches), the labeled set cycled to fill each batch;
            ``ft``, which streams no pool, still passes over its labeled set.
        steps_per_epoch: at most this many optimisation steps per epoch
            (``None``: no cap).
        use_source: ``ft`` only: also train on labeled source (weighted by
            ``src_weight``) instead of target labels alone.
        grl_coeff: gradient-reversal coefficient (MME, DANN).
        disc_hidden_dim: hidden width of DANN's domain discriminator MLP.
        vat_radius: ``vada``: L2 radius of the virtual adversarial perturbation
            of an input image (3.5 in Shu et al.'s code).
        vat_xi: ``vada``: size of the finite-difference step of the power
            iteration that finds the perturbation's direction.
        vat_source_weight: ``vada``: weight of the virtual adversarial loss on
            source images (the target one is weighted by ``cent_weight``,
            together with the target's conditional entropy, as in VADA).
        num_workers: DataLoader worker processes.
    """

    lr: float = 2e-4
    weight_decay: float = 1e-5
    batch_size: int = 128
    src_weight: float = 0.1
    unsup_weight: float = 1.0
    cent_weight: float = 0.1
    step_size: Optional[int] = 20
    gamma: float = 0.5
    seed: int = 0
    uda_lr: Optional[float] = None
    uda_step_size: Optional[int] = None
    uda_src_weight: float = 1.0
    uda_unsup_weight: Optional[float] = None
    uda_cent_weight: Optional[float] = None
    epoch_length: str = "shortest"
    steps_per_epoch: Optional[int] = None
    use_source: bool = False
    grl_coeff: float = 1.0
    disc_hidden_dim: int = 500
    vat_radius: float = 3.5
    vat_xi: float = 1e-6
    vat_source_weight: float = 1.0
    num_workers: int = 0

    def __post_init__(self) -> None:
        _positive_float("lr", self.lr)
        _nonnegative_float("weight_decay", self.weight_decay)
        _positive_int("batch_size", self.batch_size)
        for name in ("src_weight", "unsup_weight", "cent_weight", "uda_src_weight", "grl_coeff", "vat_source_weight"):
            _nonnegative_float(name, getattr(self, name))
        for name in ("step_size", "uda_step_size"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        _positive_float("gamma", self.gamma)
        if self.gamma > 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.uda_lr is not None:
            _positive_float("uda_lr", self.uda_lr)
        for name in ("uda_unsup_weight", "uda_cent_weight"):
            if getattr(self, name) is not None:
                _nonnegative_float(name, getattr(self, name))
        if self.epoch_length not in EPOCH_LENGTHS:
            raise ValueError(f"epoch_length must be one of {EPOCH_LENGTHS}, got {self.epoch_length!r}")
        _positive_float("vat_radius", self.vat_radius)
        _positive_float("vat_xi", self.vat_xi)
        if self.steps_per_epoch is not None:
            _positive_int("steps_per_epoch", self.steps_per_epoch)
        if not isinstance(self.use_source, bool):
            raise ValueError(f"use_source must be a bool, got {self.use_source!r}")
        _positive_int("disc_hidden_dim", self.disc_hidden_dim)
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {self.num_workers!r}")

    @classmethod
    def from_kwargs(cls, **hparams) -> "DAHyperParams":
        """Build from keyword arguments, naming any unknown ones in the error."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(hparams) - known)
        if unknown:
            raise ValueError(
                f"unknown DA hyperparameter(s) {', '.join(unknown)}; valid names: {', '.join(sorted(known))}"
            )
        return cls(**hparams)

    def as_dict(self) -> dict:
        """Plain dict of all fields (for logs and checkpoints)."""
        return dataclasses.asdict(self)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_float(name: str, value) -> None:
    if not _is_real(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _nonnegative_float(name: str, value) -> None:
    if not _is_real(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_epochs(epochs) -> None:
    """Raise ValueError unless ``epochs`` is an int >= 0."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
