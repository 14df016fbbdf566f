"""What an experiment is: :class:`ExperimentConfig`, validated, with a stable identity.

A config holds everything that decides the numbers in ``results.jsonl``;
:class:`RunOptions` holds what does not (where outputs go, the device, progress
bars). The *identity* of a config is its hash without the fields that only say
how much of the grid to run (strategies, DA methods, runs, rounds, report
columns): any run sharing an identity can resume, extend or add to another's
output folder, and a different identity in the same folder is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..adapt import available_da_methods
from ..adapt.hparams import EPOCH_LENGTHS
from ..data import available_shifts
from ..models import available_models
from ..strategies import canonical_strategy_name

# Fields that select which part of the (strategy x DA x run x round) grid to
# run, or how to report it; they do not change any single result.
GRID_FIELDS = ("strategies", "da_methods", "runs", "rounds", "report_labels")

# How the model starts: trained on the labeled source domain (Active DA, the
# paper's setting), or from its initialisation alone with no source data at
# any point (conventional active learning, the paper's Sec. 4.6 "from scratch").
INITS = ("source", "scratch")
# Strategies that need labeled source data, which a from-scratch run never sees.
SOURCE_STRATEGIES = ("aada",)


@dataclass(frozen=True)
class ExperimentConfig:
    """One Active DA experiment: a shift, a model, the loop and every hyperparameter.

    Defaults are the authors' DIGITS configuration (LeNet, Adam 2e-4, batch 128,
    weight decay 1e-5, loss weights 0.1 / 1.0 / 0.1, StepLR(20, 0.5) after
    round 0 and none in it, 30 rounds of B = 10, 50 source epochs with the best
    of them on a 20% source validation split kept, 60 round-0 and 60 per-round
    epochs, each ending with its shortest loader).

    Attributes:
        source, target: the shift (see ``clue_ext.data.available_shifts``), or
            with ``source_dir``/``target_dir`` just the names the results carry.
            A shift handed to ``run_experiment`` may have any names.
        source_dir, target_dir: image folders in torchvision's ImageFolder
            layout (one subfolder per class, the class folders shared by
            both) to use instead of a registered shift.
        test_fraction: with folders, the share of every target class held out
            as the test split (seeded by ``data_seed``); the rest is the pool.
        data_seed: seed of the embedded benchmarks' build and split (and of the
            Office-31 pool/test split, and of ``limit_*`` subsampling).
        limit_source, limit_pool, limit_test: use only a seeded random subset
            of that many items (``None``: all); for quick runs and tests.
        model: ``lenet``, ``resnet34`` or another torchvision classification
            model (see ``clue_ext.models.available_models``).
        pretrained: ImageNet initialisation (not lenet); ``weights`` names the file.
        init: ``"source"`` (train on the labeled source, adapt in round 0:
            Active DA) or ``"scratch"``: the model starts from its
            initialisation (random, or ImageNet with ``pretrained``), no
            source data is used anywhere, and the rounds fine-tune on the
            acquired target labels alone, as in conventional active learning;
            it takes ``da_methods=("ft",)`` and no strategy that needs source
            data (``aada``).
        strategies, da_methods: the grid (registered names).
        rounds, budget: acquisition rounds and labels acquired per round.
        runs: independent repetitions (the paper uses 3).
        seed: seed of every random choice (model init, shuffling, sampling).
        temperature: CLUE's softmax temperature T.
        source_epochs, source_lr: supervised training of the source model.
        source_val_fraction: share of the labeled source set held out to keep
            the source model of the best epoch (0.2 in the authors' DIGITS
            code); 0 keeps the last epoch and trains on all of it.
        uda_epochs, uda_lr: round-0 unsupervised adaptation (skipped by ``ft``).
        uda_step_size: StepLR period of round 0 (``None``: constant lr, the authors').
        uda_src_weight, uda_unsup_weight, uda_cent_weight: round-0 loss
            weights; ``None`` takes each DA method's round-0 default (DANN
            1.0 / 0.1 / 0.01 as the authors hard-coded; MME's entropy weight
            ``unsup_weight``, what the authors' code applied). See ``DAHyperParams``.
        epochs, lr: the per-round update after each acquisition.
        batch_size, weight_decay, src_weight, unsup_weight, cent_weight,
        step_size, gamma, epoch_length: passed to the DA methods (see
            ``DAHyperParams``; ``epoch_length="shortest"`` is the authors' epoch).
        steps_per_epoch: cap on optimisation steps per DA epoch (``None``: no
            cap); source training always makes full passes.
        augment_target: train on augmented target images (the ResNet crop and
            flip). The authors never augment target images, only source ones.
        aada_discriminator_epochs: epochs of AADA's per-round discriminator
            when the DA method is not ``dann``.
        report_labels: label counts shown in summary.md and the printed table
            (empty: three spread over the run).
    """

    source: str = "svhn"
    target: str = "mnist"
    source_dir: Optional[str] = None
    target_dir: Optional[str] = None
    test_fraction: float = 0.3
    data_seed: int = 0
    limit_source: Optional[int] = None
    limit_pool: Optional[int] = None
    limit_test: Optional[int] = None
    model: str = "lenet"
    pretrained: bool = False
    weights: Optional[str] = None
    init: str = "source"
    strategies: tuple[str, ...] = ("uniform", "entropy", "margin", "coreset", "badge", "clue")
    da_methods: tuple[str, ...] = ("mme",)
    rounds: int = 30
    budget: int = 10
    runs: int = 3
    seed: int = 0
    temperature: float = 1.0
    source_epochs: int = 50
    source_lr: float = 2e-4
    source_val_fraction: float = 0.2
    uda_epochs: int = 60
    uda_lr: float = 2e-4
    uda_step_size: Optional[int] = None
    uda_src_weight: float = 1.0
    uda_unsup_weight: Optional[float] = None
    uda_cent_weight: Optional[float] = None
    epochs: int = 60
    lr: float = 2e-4
    batch_size: int = 128
    weight_decay: float = 1e-5
    src_weight: float = 0.1
    unsup_weight: float = 1.0
    cent_weight: float = 0.1
    step_size: Optional[int] = 20
    gamma: float = 0.5
    epoch_length: str = "shortest"
    steps_per_epoch: Optional[int] = None
    augment_target: bool = False
    aada_discriminator_epochs: int = 5
    report_labels: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        # Normalise names so "Least_Confidence" and "least-confidence" are one config.
        object.__setattr__(self, "source", _name("source", self.source))
        object.__setattr__(self, "target", _name("target", self.target))
        object.__setattr__(self, "model", _name("model", self.model))
        object.__setattr__(self, "init", _name("init", self.init))
        object.__setattr__(self, "strategies", _strategies(self.strategies))
        object.__setattr__(self, "da_methods", _da_methods(self.da_methods))
        object.__setattr__(self, "report_labels", tuple(int(v) for v in self.report_labels))
        self._validate()

    def _validate(self) -> None:
        if (self.source_dir is None) != (self.target_dir is None):
            raise ValueError("source_dir and target_dir go together: give both image folders or neither")
        for name in ("source_dir", "target_dir"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a folder path, got {value!r}")
        if self.model not in available_models():
            raise ValueError(f"model must be one of {available_models()}, got {self.model!r}")
        for name in ("rounds", "budget", "runs", "batch_size", "aada_discriminator_epochs"):
            _check_int(name, getattr(self, name), low=1)
        for name in ("source_epochs", "uda_epochs", "epochs", "seed", "data_seed"):
            _check_int(name, getattr(self, name), low=0)
        for name in ("limit_source", "limit_pool", "limit_test", "step_size", "uda_step_size", "steps_per_epoch"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low=1)
        for name in ("temperature", "source_lr", "uda_lr", "lr", "gamma"):
            _check_float(name, getattr(self, name), positive=True)
        for name in ("weight_decay", "src_weight", "unsup_weight", "cent_weight", "uda_src_weight"):
            _check_float(name, getattr(self, name), positive=False)
        for name in ("uda_unsup_weight", "uda_cent_weight"):
            if getattr(self, name) is not None:
                _check_float(name, getattr(self, name), positive=False)
        for name, low, high in (("source_val_fraction", 0.0, 0.9), ("test_fraction", 0.05, 0.95)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
            if not ok:
                raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
        if self.epoch_length not in EPOCH_LENGTHS:
            raise ValueError(f"epoch_length must be one of {EPOCH_LENGTHS}, got {self.epoch_length!r}")
        for name in ("pretrained", "augment_target"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if (self.pretrained or self.weights) and self.model == "lenet":
            raise ValueError("lenet has no pretrained weights; pretrained and weights are for the torchvision models")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.init == "scratch":
            if self.da_methods != ("ft",):
                raise ValueError("init='scratch' learns from target labels alone: da_methods must be ('ft',), got "
                                 f"{self.da_methods} (the other DA methods train on the source domain)")
            needs_source = [s for s in self.strategies if s in SOURCE_STRATEGIES]
            if needs_source:
                raise ValueError(f"init='scratch' uses no source data, which strategies {needs_source} need")
        bad = [v for v in self.report_labels if v < 1]
        if bad:
            raise ValueError(f"report_labels must be positive label counts, got {list(self.report_labels)}")

    # ------------------------------------------------------------------ derived

    @property
    def shift_name(self) -> str:
        return f"{self.source}->{self.target}"

    @property
    def uses_folders(self) -> bool:
        """True when the data are the image folders ``source_dir``/``target_dir``."""
        return self.source_dir is not None

    def check_shift_known(self) -> None:
        """Raise ValueError unless the config can load its data itself (a registered shift or folders)."""
        if not self.uses_folders and (self.source, self.target) not in available_shifts():
            valid = ", ".join(f"{s}->{t}" for s, t in available_shifts())
            raise ValueError(
                f"unknown shift {self.source}->{self.target} (source, target); valid: {valid}. "
                "Give source_dir/target_dir for image folders, or pass the data as run_experiment(..., shift=...)"
            )

    @property
    def from_scratch(self) -> bool:
        """True when no source data is used (``init="scratch"``)."""
        return self.init == "scratch"

    @property
    def total_labels(self) -> int:
        return self.rounds * self.budget

    def label_counts_to_report(self) -> list[int]:
        """Label counts for the summary table: ``report_labels``, or three spread over the run."""
        if self.report_labels:
            return sorted(set(self.report_labels))
        rounds = sorted({max(1, round(self.rounds / 5)), max(1, round(self.rounds / 2)), self.rounds})
        return [r * self.budget for r in rounds]

    def replace(self, **changes) -> "ExperimentConfig":
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    def identity_fields(self) -> dict[str, Any]:
        """The fields that decide every single result (all but :data:`GRID_FIELDS`)."""
        data = self.as_dict()
        for key in GRID_FIELDS:
            data.pop(key)
        if self.init == "source":
            # Left out at its default so folders written before the field existed keep their identity.
            data.pop("init")
        if self.weights is not None:
            # The file's size stands in for its content: a different file, not a different path, matters.
            path = Path(self.weights).expanduser()
            data["weights"] = {"name": path.name, "bytes": path.stat().st_size if path.is_file() else None}
        for key in ("source_dir", "target_dir"):
            if data[key] is not None:
                # The same folder reached from another working directory is the same data.
                data[key] = str(Path(data[key]).expanduser().resolve())
        return data

    def identity(self) -> str:
        """Short stable hash of :meth:`identity_fields`."""
        return stable_hash(self.identity_fields())

    def da_hparams(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of ``get_da_method`` for one run (``seed`` per run)."""
        return dict(
            lr=self.lr,
            uda_lr=self.uda_lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            src_weight=self.src_weight,
            unsup_weight=self.unsup_weight,
            cent_weight=self.cent_weight,
            step_size=self.step_size,
            gamma=self.gamma,
            uda_step_size=self.uda_step_size,
            uda_src_weight=self.uda_src_weight,
            uda_unsup_weight=self.uda_unsup_weight,
            uda_cent_weight=self.uda_cent_weight,
            epoch_length=self.epoch_length,
            steps_per_epoch=self.steps_per_epoch,
            seed=seed,
        )

    def strategy_options(self, name: str) -> dict[str, Any]:
        """Keyword arguments of ``get_strategy`` for strategy ``name``."""
        if name in ("clue", "clue-margin", "clue-uniform"):
            return {"temperature": self.temperature}
        if name == "aada":
            return {"discriminator_epochs": self.aada_discriminator_epochs, "discriminator_lr": self.lr}
        return {}


@dataclass(frozen=True)
class RunOptions:
    """How to run a config; none of it changes the results.

    Attributes:
        out_dir: where results, plots and checkpoints go.
        cache_dir: source-model and round-0 checkpoints (``None``: ``out_dir/cache``);
            share one between output folders to reuse them.
        device: torch device string.
        data_root: folder of the real data sets (``None``: ``$CLUE_EXT_DATA``).
        download: let torchvision download SVHN / MNIST / USPS.
        progress: tqdm bars.
        keep_checkpoints: keep the model state of finished (strategy, DA, run)
            units, so a later call with more rounds can extend them; otherwise
            only their result rows are kept (a ResNet-34 state is ~85 MB each).
        plot_picks: save run 0's round-1 picks with the pool's embeddings and
            draw ``picks_round1.png`` (t-SNE, see picks_plot.py).
    """

    out_dir: Path
    cache_dir: Optional[Path] = None
    device: str = "cpu"
    data_root: Optional[str] = None
    download: bool = False
    progress: bool = True
    keep_checkpoints: bool = False
    plot_picks: bool = False

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else Path(self.out_dir) / "cache"


def stable_hash(data: Any) -> str:
    """16 hex digits of the SHA-256 of ``data`` as canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _name(field_name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field_name} must be a non-empty string, got {value!r}")
    return value.strip().lower()


def _strategies(values) -> tuple[str, ...]:
    names = tuple(canonical_strategy_name(v) for v in _as_tuple("strategies", values))
    return _unique("strategies", names)


def _da_methods(values) -> tuple[str, ...]:
    names = []
    for value in _as_tuple("da_methods", values):
        key = value.strip().lower() if isinstance(value, str) else value
        if key not in available_da_methods():
            raise ValueError(f"unknown DA method {value!r} in da_methods; valid names: {', '.join(available_da_methods())}")
        names.append(key)
    return _unique("da_methods", tuple(names))


def _as_tuple(field_name: str, values) -> tuple:
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    values = tuple(values)
    if not values:
        raise ValueError(f"{field_name} must name at least one entry")
    return values


def _unique(field_name: str, names: tuple[str, ...]) -> tuple[str, ...]:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{field_name} lists {', '.join(duplicates)} more than once")
    return names


def _check_int(name: str, value, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_float(name: str, value, *, positive: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} finite number, got {value!r}")
