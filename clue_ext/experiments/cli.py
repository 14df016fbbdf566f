"""Command-line interface: the parser and its translation into a config.

Every flag left out keeps the preset's value; bad values are argparse errors
that name the flag.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable, Optional

import torch

from ..adapt import available_da_methods
from ..data import available_shifts
from ..data.folders import folder_domain_name
from ..adapt.hparams import EPOCH_LENGTHS
from ..models import available_models, is_known_model
from ..strategies import available_strategies, canonical_strategy_name
from .configs import INITS, SOURCE_STRATEGIES, ExperimentConfig, RunOptions
from .presets import DEFAULT_PRESET, PRESETS, Preset, get_preset
from .sweep import SweepSpec, config_for, parse_sweep


def _integer(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _name_list(valid: Callable[[], list[str]], canonical: Callable[[str], str], what: str):
    def parse(text: str) -> tuple[str, ...]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"must list at least one {what}")
        if names == ["all"]:
            return tuple(valid())
        try:
            result = tuple(canonical(name) for name in names)
        except ValueError:
            bad = [n for n in names if not _is_valid(canonical, n)]
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(map(repr, bad))}; valid: {', '.join(valid())} (or 'all')"
            ) from None
        if len(set(result)) != len(result):
            raise argparse.ArgumentTypeError(f"lists a {what} more than once: {text!r}")
        return result

    parse.__name__ = f"{what} list"
    return parse


def _sweep(text: str) -> SweepSpec:
    try:
        return parse_sweep(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


_sweep.__name__ = "sweep"


def _is_valid(canonical, name) -> bool:
    try:
        canonical(name)
        return True
    except ValueError:
        return False


def _da_name(name: str) -> str:
    key = name.lower()
    if key not in available_da_methods():
        raise ValueError(name)
    return key


def _device(text: str) -> str:
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} requested but CUDA is not available here")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"only cpu and cuda devices are supported, got {text!r}")
    return str(device)


def _model_name(text: str) -> str:
    if not is_known_model(text):
        raise argparse.ArgumentTypeError(
            f"unknown model {text!r}; valid: {', '.join(available_models())}"
        )
    return text.lower()


def _fraction(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {text!r}")
        return value

    parse.__name__ = "fraction"
    return parse


def _existing_folder(text: str) -> str:
    if not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text!r}")
    return text


def _existing_file(text: str) -> str:
    if not Path(text).expanduser().is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"



def add_training_flags(group) -> None:
    """The flags of model training (epochs, steps, batch size, learning rates), shared with
    ``clue-label init``."""
    group.add_argument("--epochs", type=_integer(0), help="epochs of the model update after each round")
    group.add_argument("--source-epochs", type=_integer(0), help="epochs of source training")
    group.add_argument("--uda-epochs", type=_integer(0), help="epochs of round-0 unsupervised adaptation")
    group.add_argument("--steps-per-epoch", type=_integer(1), help="cap on steps per DA epoch")
    group.add_argument("--source-val-fraction", type=_fraction(0.0, 0.9),
                       help="share of the source set held out to keep the best source epoch (0: last epoch)")
    group.add_argument("--batch-size", type=_integer(1), help="batch size of every stream")
    group.add_argument("--lr", type=_positive_float, help="learning rate of the per-round update")
    group.add_argument("--source-lr", type=_positive_float, help="learning rate of source training")
    group.add_argument("--uda-lr", type=_positive_float, help="learning rate of round 0")

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clue_ext.experiments",
        description=(
            "Active domain adaptation experiments (CLUE, Prabhu et al. ICCV 2021): train a source model, "
            "then alternate label acquisition by each strategy and model updates by each DA method, and "
            "report target accuracy against the number of target labels. With no flags: the "
            f"'{DEFAULT_PRESET}' preset, offline, a few minutes on a CPU."
        ),
        epilog="presets: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()),
    )
    what = parser.add_argument_group("what to run (default: the preset's values)")
    what.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET, help="start from this preset")
    what.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    what.add_argument("--source", help="source domain, e.g. synth, svhn, clipart (with --source-dir: its name)")
    what.add_argument("--target", help="target domain, e.g. mnist, sketch (with --target-dir: its name)")
    what.add_argument("--source-dir", type=_existing_folder,
                      help="your own source domain: a folder of class folders of images (torchvision ImageFolder)")
    what.add_argument("--target-dir", type=_existing_folder,
                      help="your own target domain, same class folders as --source-dir; split into pool and test")
    what.add_argument("--test-fraction", type=_fraction(0.05, 0.95),
                      help="with --target-dir: share of each class held out for testing (default 0.3)")
    what.add_argument("--strategies", type=_name_list(available_strategies, canonical_strategy_name, "strategy"),
                      help=f"comma-separated, or 'all': {', '.join(available_strategies())}")
    what.add_argument("--da", dest="da_methods", type=_name_list(available_da_methods, _da_name, "DA method"),
                      help=f"comma-separated learning strategies, or 'all': {', '.join(available_da_methods())}")
    what.add_argument("--model", type=_model_name,
                      help="network: lenet (28x28 inputs), resnet34, or any torchvision classification model "
                           "(resnet50, efficientnet_b0, vit_b_16, ...)")
    what.add_argument("--init", choices=INITS,
                      help="source: train on the labeled source first (Active DA, the default); scratch: start "
                           "from the model's initialisation and never use source data, fine-tuning on the target "
                           "labels alone (conventional active learning; implies --da ft)")
    what.add_argument("--rounds", type=_integer(1), help="acquisition rounds")
    what.add_argument("--budget", type=_integer(1), help="target labels acquired per round")
    what.add_argument("--runs", type=_integer(1), help="independent repetitions (mean and std over them)")
    what.add_argument("--seed", type=_integer(0), help="seed of every random choice")
    what.add_argument("--temperature", type=_positive_float, help="CLUE's softmax temperature T")
    what.add_argument("--sweep", type=_sweep, metavar="FIELD=V1,V2,...",
                      help="run the experiment once per value of a numeric config field (e.g. temperature=0.1,1,10; "
                           "budget=5,10,20 keeps the total labels), into one folder")

    train = parser.add_argument_group("training")
    add_training_flags(train)
    train.add_argument("--epoch-length", choices=EPOCH_LENGTHS,
                       help="a DA epoch is one pass over the shortest stream (the authors': after round 0, "
                            "the labeled target set) or over the unlabeled pool")
    train.add_argument("--weights", type=_existing_file,
                       help="ImageNet weights file of the --model (e.g. resnet34-b627a593.pth); implies pretrained")

    where = parser.add_argument_group("where and how")
    where.add_argument("--device", type=_device, default=None, help=f"torch device (default: {default_device()})")
    where.add_argument("--data-root", help="folder of the real data sets (default: $CLUE_EXT_DATA)")
    where.add_argument("--download", action="store_true", help="let torchvision download SVHN / MNIST / USPS")
    where.add_argument("--out", type=Path,
                       help="output folder (default: runs/<preset>, or runs/<source>-to-<target> for folders)")
    where.add_argument("--cache-dir", type=Path, help="source / round-0 model cache (default: <out>/cache)")
    where.add_argument("--plot-picks", action="store_true",
                       help="draw picks_round1.png: a t-SNE of the pool with each strategy's round-1 picks (Fig. 3)")
    where.add_argument("--keep-checkpoints", action="store_true",
                       help="keep finished units' model states, so more --rounds can extend them later")
    where.add_argument("--threads", type=_integer(1), help="torch CPU threads (default: the preset's; 1 for the offline presets)")
    where.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    where.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


_CONFIG_FLAGS = ("init", "source", "target", "source_dir", "target_dir", "test_fraction", "strategies", "da_methods",
                 "model", "rounds", "budget", "runs", "seed", "temperature", "epochs", "source_epochs", "uda_epochs",
                 "steps_per_epoch", "epoch_length", "source_val_fraction", "batch_size", "lr", "source_lr", "uda_lr",
                 "weights")


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Preset, ExperimentConfig, RunOptions]:
    """The preset, config and run options the parsed ``args`` ask for.

    Cross-flag problems (an unknown shift, weights for a model without any)
    are reported through ``parser.error`` naming the flags. A preset's own
    sweep becomes ``args.sweep`` unless ``--sweep`` gave one.
    """
    preset = get_preset(args.preset)
    changes = {name: getattr(args, name) for name in _CONFIG_FLAGS if getattr(args, name) is not None}
    if args.weights is not None:
        changes["pretrained"] = True
    if args.init == "scratch":
        # Learning from scratch has no source data: fine-tuning, and no strategy that needs the source.
        changes.setdefault("da_methods", ("ft",))
        changes.setdefault("strategies", tuple(s for s in preset.config.strategies if s not in SOURCE_STRATEGIES))
    if (args.source_dir is None) != (args.target_dir is None):
        parser.error("arguments --source-dir/--target-dir: give both folders (or neither)")
    if args.test_fraction is not None and args.target_dir is None:
        parser.error("argument --test-fraction: only applies with --source-dir/--target-dir")
    if args.source_dir is not None:
        changes.setdefault("source", folder_domain_name(args.source_dir))
        changes.setdefault("target", folder_domain_name(args.target_dir))
    source = changes.get("source", preset.config.source).lower()
    target = changes.get("target", preset.config.target).lower()
    if args.source_dir is None and (source, target) not in available_shifts():
        valid = ", ".join(f"{s}->{t}" for s, t in available_shifts())
        parser.error(f"argument --source/--target: unknown shift {source}->{target}; valid shifts: {valid}")
    if args.source_dir is not None or (source, target) != (preset.config.source, preset.config.target):
        # Subsampling limits belong to the preset's data set, not to another one.
        changes.update(limit_source=None, limit_pool=None, limit_test=None)
    try:
        config = preset.config.replace(**changes)
    except ValueError as error:
        parser.error(str(error))
    if args.sweep is None and preset.sweep is not None:
        args.sweep = parse_sweep(preset.sweep)
    if args.sweep is not None:
        try:
            for value in args.sweep.values:
                config_for(config, args.sweep.field, value)
        except ValueError as error:
            parser.error(f"argument --sweep: {error}")
    options = RunOptions(
        out_dir=args.out if args.out is not None else default_out_dir(preset, config),
        cache_dir=args.cache_dir,
        device=args.device or default_device(),
        data_root=args.data_root,
        download=args.download,
        progress=not args.quiet,
        keep_checkpoints=args.keep_checkpoints,
        plot_picks=args.plot_picks,
    )
    return preset, config, options


def default_out_dir(preset: Preset, config: ExperimentConfig) -> Path:
    """``runs/<preset>``, or ``runs/<source>-to-<target>`` for image folders."""
    if config.uses_folders:
        return Path("runs") / f"{config.source}-to-{config.target}"
    return Path("runs") / preset.name


def parse(argv: Optional[list[str]] = None) -> tuple[argparse.Namespace, Preset, ExperimentConfig, RunOptions]:
    """Parse ``argv`` (default: ``sys.argv``); exits with status 2 on a bad flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    preset, config, options = resolve(parser, args)
    return args, preset, config, options
