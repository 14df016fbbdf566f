"""Named experiment presets: the paper's setups and fast offline ones.

``digits``, ``office`` and the four ``domainnet-*`` presets reproduce the
paper's setups (Sec. 4.2 and the authors' configs) and need the real data
sets (see ``clue_ext.data``). The embedded presets run offline on data that
ships with ordinary packages, sized to finish in minutes on a laptop CPU;
``tiny`` exists for tests and smoke checks. ``scratch-mnist`` is the
paper's from-scratch comparison (Sec. 4.6) and the ``analysis-*`` presets its
analyses (Fig. 4a-d) on the default offline shift; the sweeps among them run
as ``--sweep`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .configs import ExperimentConfig

ALL_STRATEGIES = ("uniform", "entropy", "margin", "least-confidence", "coreset", "badge", "aada", "clue",
                  "clue-margin", "clue-uniform")
PAPER_STRATEGIES = ("uniform", "entropy", "margin", "coreset", "badge", "clue")


@dataclass(frozen=True)
class Preset:
    """A named config with a one-line description.

    ``threads``: torch CPU threads the CLI uses unless ``--threads`` is given
    (``None``: torch's default). The embedded presets use one: LeNet's small
    layers gain little from a second thread on an idle machine (~1.4x) and lose
    several-fold on a shared one, where OpenMP threads wait on each other
    behind other processes.

    ``sweep``: a ``--sweep`` the preset runs unless the command line gives
    its own (``FIELD=v1,v2,...``).
    """

    name: str
    description: str
    config: ExperimentConfig
    threads: Optional[int] = None
    sweep: Optional[str] = None


# The authors' DomainNet configuration (ResNet-34, batch 64, Adam 1e-5, loss
# weights 0.1 / 0.1 / 0.01, 10 rounds of B = 500, T = 0.1). Their config names
# a round-0 learning rate of 3e-7, but their code ignored it and trained round
# 0 with the source learning rate, 1e-5: the paper's numbers come from 1e-5,
# so that is what we set (and, unlike the original, actually use). Their
# preprocessing held out 10% of each train list as validation, whence the
# source validation share. Table 1 also reports AADA under DANN.
_DOMAINNET = dict(
    model="resnet34",
    pretrained=True,
    strategies=PAPER_STRATEGIES + ("aada",),
    da_methods=("ft", "mme", "dann"),
    rounds=10,
    budget=500,
    runs=3,
    temperature=0.1,
    source_epochs=50,
    source_lr=1e-5,
    source_val_fraction=0.1,
    uda_epochs=50,
    uda_lr=1e-5,
    epochs=20,
    lr=1e-5,
    batch_size=64,
    src_weight=0.1,
    unsup_weight=0.1,
    cent_weight=0.01,
    report_labels=(1000, 2000, 5000),
)

# Offline presets: LeNet on the embedded 28x28 benchmarks. The rounds follow
# the authors' loop (60 epochs, each one pass over the labels, StepLR(20, 0.5));
# source training (3 epochs at lr 1e-3) and round 0 (3 epochs of at most 20
# steps) are shortened, so a 5-round comparison of four strategies under MME
# fits in a few minutes on two CPU cores.
_EMBEDDED = dict(
    model="lenet",
    strategies=("uniform", "entropy", "margin", "clue"),
    da_methods=("mme",),
    rounds=5,
    budget=10,
    runs=2,
    source_epochs=3,
    source_lr=1e-3,
    uda_epochs=3,
    uda_lr=2e-4,
    epochs=60,
    lr=2e-4,
    batch_size=64,
    steps_per_epoch=20,
    report_labels=(10, 20, 30, 50),
)


def _preset(name: str, description: str, threads: Optional[int] = None, sweep: Optional[str] = None,
            **fields) -> Preset:
    return Preset(name, description, ExperimentConfig(**fields), threads, sweep)


def _analysis(name: str, description: str, sweep: Optional[str] = None, **changes) -> Preset:
    """A preset of the paper's Sec. 4.5-4.6 analyses: ``synth-mnist`` with ``changes``."""
    return _preset(name, description, sweep=sweep, source="synth", target="mnist", threads=1,
                   **{**_EMBEDDED, **changes})


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        _preset(
            "synth-mnist",
            "offline: synthetic printed digits -> 5k real MNIST digits, LeNet, MME, 5 x 10 labels, 2 runs (the default)",
            source="synth", target="mnist", threads=1, **_EMBEDDED,
        ),
        _preset(
            "mnist-mnistm",
            "offline: MNIST -> MNIST-M-style blends on photos, LeNet, MME, 5 x 10 labels, 2 runs",
            source="mnist", target="mnistm", threads=1, **_EMBEDDED,
        ),
        _preset(
            "uci-mnist",
            "offline: scikit-learn's 8x8 digits upscaled -> 5k real MNIST digits, LeNet, MME, 5 x 10 labels, 2 runs",
            source="uci", target="mnist", threads=1, **_EMBEDDED,
        ),
        _analysis(
            "scratch-mnist",
            "offline, Sec. 4.6: active learning from scratch on 5k real MNIST digits (no source data), LeNet "
            "fine-tuned on the labels alone, the paper's strategies, 5 x 20 labels, 2 runs",
            init="scratch", da_methods=("ft",), strategies=PAPER_STRATEGIES, budget=20,
            report_labels=(20, 40, 60, 100),
        ),
        _analysis(
            "analysis-weighting",
            "offline, Fig. 4a: CLUE's sample weights (entropy, margin, none) against uniform sampling, synth->mnist, "
            "MME, 5 x 10 labels, 2 runs",
            strategies=("uniform", "clue", "clue-margin", "clue-uniform"),
        ),
        _analysis(
            "analysis-temperature",
            "offline, Fig. 4b: CLUE at temperatures T = 0.1, 1, 10 (a sweep), synth->mnist, MME, 5 x 10 labels, 2 runs",
            sweep="temperature=0.1,1,10", strategies=("clue",),
        ),
        _analysis(
            "analysis-budget",
            "offline, Fig. 4c: CLUE and uniform with B = 5, 10, 25 per round for 50 labels in all (a sweep), "
            "synth->mnist, MME, 2 runs",
            sweep="budget=5,10,25", strategies=("uniform", "clue"), report_labels=(),
        ),
        _analysis(
            "analysis-da",
            "offline, Fig. 4d: CLUE and uniform under six DA methods (ft, DANN, MME, MMD, VADA, ENT), synth->mnist, "
            "5 x 10 labels, 1 run",
            strategies=("uniform", "clue"), da_methods=("ft", "dann", "mme", "mmd", "vada", "ent"), runs=1,
        ),
        _preset(
            "tiny",
            "seconds: a few hundred synth->mnist images, every strategy, ft/mme/dann, 2 x 10 labels (tests)",
            source="synth", target="mnist", threads=1, limit_source=512, limit_pool=160, limit_test=160,
            model="lenet", strategies=ALL_STRATEGIES, da_methods=("ft", "mme", "dann"),
            rounds=2, budget=10, runs=1, source_epochs=5, source_lr=1e-3, uda_epochs=1, epochs=1,
            batch_size=32, steps_per_epoch=2, step_size=None, aada_discriminator_epochs=1,
        ),
        _preset(
            "digits",
            "paper: SVHN -> MNIST, LeNet, 30 rounds x B=10, the authors' DIGITS hyperparameters (Table 2)",
            source="svhn", target="mnist", model="lenet", strategies=PAPER_STRATEGIES + ("aada",),
            da_methods=("ft", "mme", "dann"), rounds=30, budget=10, runs=3, temperature=1.0,
            source_epochs=50, uda_epochs=60, epochs=60, report_labels=(30, 60, 150),
        ),
        _preset(
            "office",
            "paper: Office-31 DSLR -> Amazon, ResNet-34, 10 rounds x B=30, T=1 (Table 2)",
            source="dslr", target="amazon",
            **{**_DOMAINNET, "budget": 30, "temperature": 1.0, "report_labels": (30, 60, 150)},
        ),
        _preset("domainnet-rc", "paper: DomainNet Real -> Clipart, ResNet-34, 10 x B=500, T=0.1 (Table 1)",
                source="real", target="clipart", **_DOMAINNET),
        _preset("domainnet-cs", "paper: DomainNet Clipart -> Sketch, ResNet-34, 10 x B=500, T=0.1 (Table 1)",
                source="clipart", target="sketch", **_DOMAINNET),
        _preset("domainnet-sp", "paper: DomainNet Sketch -> Painting, ResNet-34, 10 x B=500, T=0.1 (Table 1)",
                source="sketch", target="painting", **_DOMAINNET),
        _preset("domainnet-cq", "paper: DomainNet Clipart -> Quickdraw, ResNet-34, 10 x B=500, T=0.1 (Table 1)",
                source="clipart", target="quickdraw", **_DOMAINNET),
    )
}

DEFAULT_PRESET = "synth-mnist"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ValueError listing the valid names otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]
