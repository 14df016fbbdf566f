"""Hyperparameters shared by every DA method, validated once at construction.

All methods accept the same set of names so a runner can pass one config dict
to whichever method it builds; each method reads the ones that concern it (the
docstring of each field says who reads it). Defaults are the authors' DIGITS
configuration: Adam lr 2e-4, weight decay 1e-5, batch 128, loss weights
src/unsup/cent = 0.1/1.0/0.1, StepLR(20, 0.5).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional


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
        step_size: StepLR period in epochs; ``None`` keeps the lr constant.
        gamma: StepLR decay factor.
        seed: seed of every random choice a method makes (shuffling, dropout,
            discriminator init); the global RNG is neither read nor changed.
        uda_lr: learning rate of round-0 ``adapt_unsupervised``; ``None`` uses ``lr``.
        uda_src_weight: source cross-entropy weight in round 0. It defaults to 1
            because round 0 has no target labels: source labels are the only
            supervision keeping the classifier anchored.
        uda_unsup_weight: unsupervised-term weight in round 0; ``None`` uses
            ``unsup_weight``.
        steps_per_epoch: optimisation steps per epoch; ``None`` means one pass
            over the method's epoch-defining dataset (see each method).
        use_source: ``ft`` only: also train on labeled source (weighted by
            ``src_weight``) instead of target labels alone.
        grl_coeff: gradient-reversal coefficient (MME, DANN).
        disc_hidden_dim: hidden width of DANN's domain discriminator MLP.
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
    uda_src_weight: float = 1.0
    uda_unsup_weight: Optional[float] = None
    steps_per_epoch: Optional[int] = None
    use_source: bool = False
    grl_coeff: float = 1.0
    disc_hidden_dim: int = 500
    num_workers: int = 0

    def __post_init__(self) -> None:
        _positive_float("lr", self.lr)
        _nonnegative_float("weight_decay", self.weight_decay)
        _positive_int("batch_size", self.batch_size)
        for name in ("src_weight", "unsup_weight", "cent_weight", "uda_src_weight", "grl_coeff"):
            _nonnegative_float(name, getattr(self, name))
        if self.step_size is not None:
            _positive_int("step_size", self.step_size)
        _positive_float("gamma", self.gamma)
        if self.gamma > 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.uda_lr is not None:
            _positive_float("uda_lr", self.uda_lr)
        if self.uda_unsup_weight is not None:
            _nonnegative_float("uda_unsup_weight", self.uda_unsup_weight)
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
