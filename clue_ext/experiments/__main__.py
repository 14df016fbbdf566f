"""``python -m clue_ext.experiments``: run an Active DA experiment and print its summary."""

from __future__ import annotations

import logging
import sys
from typing import Optional

import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from .cli import parse
from .presets import PRESETS
from .reporting import summary_text
from .runner import ConfigMismatchError, run_experiment
from .sweep import run_sweep


def configure_logging(quiet: bool, verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not verbose:
        # The DA methods log every training call at INFO; the runner's per-round line says enough.
        logging.getLogger("clue_ext.adapt").setLevel(logging.WARNING)


def main(argv: Optional[list[str]] = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if "--list-presets" in argv:
        for preset in PRESETS.values():
            print(f"{preset.name:20s} {preset.description}")
        return 0
    args, preset, config, options = parse(argv)
    configure_logging(args.quiet, args.verbose)
    threads = args.threads or preset.threads
    if threads:
        torch.set_num_threads(threads)
    try:
        with logging_redirect_tqdm():
            if args.sweep is not None:
                return _report_sweep(run_sweep(config, options, args.sweep, metadata={"preset": preset.name}))
            result = run_experiment(config, options, metadata={"preset": preset.name})
    except KeyboardInterrupt:
        print(f"\ninterrupted: every completed round is saved in {options.out_dir}; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    except (ConfigMismatchError, FileNotFoundError, ValueError) as error:
        # Data or weights missing, no data root, a foreign output folder, a budget larger
        # than the pool: the message says what to do. --verbose keeps the traceback.
        if args.verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    print()
    start = ", from scratch" if config.from_scratch else ""
    print(f"{config.shift_name} (preset {preset.name}{start}): {len(config.strategies)} strategies x "
          f"{','.join(config.da_methods)} x {config.runs} run(s) x {config.rounds} rounds of {config.budget} labels, "
          f"{result.seconds:.0f} s")
    print("target test accuracy (%), mean ± std over runs:")
    print(summary_text(result.rows, config))
    print(f"wrote {result.out_dir}/: results.jsonl, summary.md, accuracy.png, config.json")
    return 0


def _report_sweep(result) -> int:
    field = next(iter(result.rows))["sweep_field"] if result.rows else "?"
    for value, config in result.configs.items():
        print(f"\n{field} = {value:g}: {config.rounds} rounds of {config.budget} labels")
        print(summary_text([r for r in result.rows if r["sweep_value"] == value], config))
    print(f"wrote {result.out_dir}/: results.jsonl, summary.md, sweep.png, and one folder per value")
    return 0


if __name__ == "__main__":
    sys.exit(main())
