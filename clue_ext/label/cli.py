"""``clue-label`` / ``python -m clue_ext.label``: the labelling loop's commands.

Bad flags are argparse errors naming the flag; bad data or state are one
``error:`` line naming the file, line or flag (exit status 2); Ctrl-C says
how to continue (exit status 130).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from ..experiments.__main__ import configure_logging
from ..experiments.cli import (_device, _existing_file, _existing_folder, _integer, _model_name, _positive_float,
                               add_training_flags, default_device)
from ..adapt import available_da_methods
from ..experiments.configs import SOURCE_STRATEGIES
from ..experiments.presets import PRESETS, get_preset
from ..strategies import available_strategies, canonical_strategy_name
from .example import write_example
from .ingest import ingest
from .init import init_project
from .predict import write_predictions
from .project import Project
from .query import run_query
from .status import status_text

DEFAULT_PRESET = "office"

_TRAINING_FLAGS = ("model", "budget", "seed", "temperature", "epochs", "source_epochs", "uda_epochs",
                   "steps_per_epoch", "source_val_fraction", "batch_size", "lr", "source_lr", "uda_lr", "weights",
                   "init")


def _strategy(text: str) -> str:
    try:
        return canonical_strategy_name(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown strategy {text!r}; valid: {', '.join(available_strategies())}") \
            from None


def _da(text: str) -> str:
    if text.lower() not in available_da_methods():
        raise argparse.ArgumentTypeError(f"unknown DA method {text!r}; valid: {', '.join(available_da_methods())}")
    return text.lower()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clue-label",
        description="Active domain adaptation on your own unlabelled images, with a person labelling: the model "
                    "picks the target images worth labelling (CLUE by default), you label them, it adapts, repeat. "
                    "A PROJECT folder holds the whole state; rerun any command after a crash to continue.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="start a project from a labelled source folder and a target folder",
                               description="Record the folders, classes, target files (with a fingerprint each) "
                                           "and settings. Settings left out come from --preset.")
    init.add_argument("project", metavar="PROJECT", type=Path, help="the project folder to create")
    init.add_argument("--source-dir", required=True, type=_existing_folder,
                      help="labelled source images: one subfolder per class (torchvision ImageFolder)")
    init.add_argument("--target-dir", required=True, type=_existing_folder,
                      help="unlabelled target images: any folder tree of images, no class folders needed")
    init.add_argument("--test-dir", type=_existing_folder,
                      help="optional labelled target images (ImageFolder, the source's class names) to measure "
                           "accuracy after every round")
    init.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                      help=f"hyperparameters to start from (default {DEFAULT_PRESET}: ResNet-34 from ImageNet, "
                           "the authors' Office settings)")
    init.add_argument("--strategy", type=_strategy, default="clue",
                      help=f"how images are picked (default clue): {', '.join(available_strategies())}")
    init.add_argument("--da", type=_da,
                      help=f"how the model adapts (default mme; ft with --init scratch): "
                           f"{', '.join(available_da_methods())}")
    init.add_argument("--budget", type=_integer(1), help="images requested per round")
    init.add_argument("--model", type=_model_name,
                      help="network: lenet (28x28 inputs), resnet34, or any torchvision classification model")
    init.add_argument("--weights", type=_existing_file, help="ImageNet weights file of --model (e.g. "
                                                              "resnet34-b627a593.pth)")
    init.add_argument("--init", choices=("source", "scratch"),
                      help="source (default): train on the source first; scratch: never use source data")
    init.add_argument("--seed", type=_integer(0), help="seed of every random choice")
    init.add_argument("--temperature", type=_positive_float, help="CLUE's softmax temperature T")
    add_training_flags(init)

    query = commands.add_parser("query", help="train what is missing and request the next round's images",
                                description="Train the source model, round 0 and the update on the labels "
                                            "received (whatever is not trained yet), pick the next images and write "
                                            "to_label.csv, tasks.json (Label Studio) and to_label.html.")
    query.add_argument("project", metavar="PROJECT", type=Path)
    query.add_argument("--accept-partial", action="store_true",
                       help="go on although some requested images have no label: train on the labels received "
                            "and return the others to the pool")
    _device_flag(query)

    take = commands.add_parser("ingest", help="record labels from a CSV (path,label) or a Label Studio JSON export",
                               description="All or nothing: a file with a bad line is refused whole, every bad "
                                           "line named. Lines without a label stay requested.")
    take.add_argument("project", metavar="PROJECT", type=Path)
    take.add_argument("file", metavar="FILE", type=Path, help="labels.csv (path,label) or a Label Studio export")
    take.add_argument("--ignore-unrequested", action="store_true",
                      help="pass over lines for target images outside the open request instead of refusing the "
                           "file (a file that labels many images, e.g. ahead of time)")

    status = commands.add_parser("status", help="rounds, labels per class, what is still requested")
    status.add_argument("project", metavar="PROJECT", type=Path)

    predict = commands.add_parser("predict", help="the newest model's class for every target image, as a CSV",
                                  description="Columns: path, predicted, probability, entropy (bits), label (the "
                                              "person's, where given).")
    predict.add_argument("project", metavar="PROJECT", type=Path)
    predict.add_argument("--out", required=True, type=Path, help="the CSV file to write")
    _device_flag(predict)

    example = commands.add_parser("example", help="write example folders from the embedded digits",
                                  description="FOLDER/source (printed digits, labelled), FOLDER/target (handwritten "
                                              "digits, unlabelled), FOLDER/test (labelled) and FOLDER/answers.csv "
                                              "(the target images' true classes).")
    example.add_argument("folder", metavar="FOLDER", type=Path)
    example.add_argument("--source-per-class", type=_integer(1), default=200)
    example.add_argument("--target-images", type=_integer(1), default=300)
    example.add_argument("--test-per-class", type=_integer(1), default=20)
    example.add_argument("--seed", type=_integer(0), default=0)

    for sub in (init, query, take, status, predict, example):
        sub.add_argument("--threads", type=_integer(1),
                         help="torch CPU threads (default: the preset's, kept in the project; 1 for the offline ones)")
        sub.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
        sub.add_argument("--verbose", action="store_true", help="debug logging, tracebacks on errors")
    return parser


def _device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=_device, default=None, help=f"torch device (default: {default_device()})")


def init_config(parser: argparse.ArgumentParser, args: argparse.Namespace):
    preset = get_preset(args.preset)
    changes = {name: getattr(args, name) for name in _TRAINING_FLAGS if getattr(args, name) is not None}
    da = args.da or ("ft" if args.init == "scratch" else "mme")
    changes.update(strategies=(args.strategy,), da_methods=(da,))
    if args.weights is not None:
        changes["pretrained"] = True
    elif changes.get("model") == "lenet":
        changes["pretrained"] = False  # the preset may start a ResNet from ImageNet; LeNet has no weights
    if args.init == "scratch" and args.strategy in SOURCE_STRATEGIES:
        parser.error(f"argument --strategy: {args.strategy} needs source data, which --init scratch never uses")
    try:
        return preset.config.replace(**changes)
    except ValueError as error:
        parser.error(str(error))


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.quiet, args.verbose)
    if args.threads:
        torch.set_num_threads(args.threads)
    progress = not args.quiet
    try:
        with logging_redirect_tqdm():
            return _run(parser, args, progress)
    except KeyboardInterrupt:
        print("\ninterrupted: every completed step is saved; run the same command again to continue",
              file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as error:
        if args.verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, progress: bool) -> int:
    if args.command == "example":
        counts = write_example(args.folder, source_per_class=args.source_per_class, target_images=args.target_images,
                               test_per_class=args.test_per_class, seed=args.seed)
        print(f"wrote {args.folder}/source ({counts['source']} labelled images), {args.folder}/target "
              f"({counts['target']} unlabelled), {args.folder}/test ({counts['test']} labelled) and "
              f"{args.folder}/answers.csv")
        return 0
    if args.command == "init":
        config = init_config(parser, args)
        project, created = init_project(args.project, Path(args.source_dir), Path(args.target_dir), config,
                                        test_dir=None if args.test_dir is None else Path(args.test_dir),
                                        threads=get_preset(args.preset).threads, progress=progress)
        if not created:
            print(f"{args.project} already exists with these settings; nothing to do")
            return 0
        print(f"created {args.project}: {len(project.classes)} classes ({', '.join(project.classes[:10])}"
              f"{', ...' if len(project.classes) > 10 else ''}), {len(project.targets())} target images; "
              f"next: clue-label query {args.project}")
        return 0
    project = Project.open(args.project)
    if not args.threads and project.settings.get("threads"):
        torch.set_num_threads(project.settings["threads"])
    if args.command == "query":
        result = run_query(project, device=args.device or default_device(), progress=progress,
                           accept_partial=args.accept_partial)
        _report_query(args.project, result)
    elif args.command == "ingest":
        result = ingest(project, args.file, ignore_unrequested=args.ignore_unrequested)
        print(f"round {result.round}: {result.new} new label(s) recorded"
              + (f", {result.already} already recorded" if result.already else "")
              + (f", {result.without_label} line(s) without a label" if result.without_label else "")
              + (f", {result.not_requested} line(s) for images not requested passed over"
                 if result.not_requested else "")
              + f"; {result.still_requested} image(s) still requested")
        if result.still_requested == 0:
            print(f"next: clue-label query {args.project}")
    elif args.command == "status":
        print(status_text(project))
    elif args.command == "predict":
        round_index = write_predictions(project, args.out, device=args.device or default_device(), progress=progress)
        model = "round 0 (adapted, no target label)" if round_index == 0 else f"round {round_index}"
        print(f"wrote {args.out}: {len(project.targets())} images, predicted by the model of {model}")
    return 0


def _report_query(folder: Path, result) -> None:
    if result.done:
        print(f"every target image has a label ({result.labels}); the model of round {result.round} is trained: "
              f"clue-label predict {folder} --out predictions.csv")
        return
    state = "requested" if result.new else "still requested (nothing new to train: label these first)"
    print(f"round {result.round}: {result.requested} image(s) {state}.\n"
          f"Label them in {folder / 'to_label.html'} (open it in a browser; it saves labels.csv), or fill the "
          f"label column of {folder / 'to_label.csv'}, or import {folder / 'tasks.json'} into Label Studio; then:\n"
          f"  clue-label ingest {folder} labels.csv")

