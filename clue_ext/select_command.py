"""The `python -m clue_ext.select` / `clue-select` command: CLUE over saved features.

Alone, it selects in one process. Under torchrun (which sets RANK and
WORLD_SIZE), rank r of W memory-maps rows [r N / W, (r + 1) N / W) of the
files and the ranks select together (clue_ext.distributed.select). Rank 0
writes OUT once the picks are known, atomically, so a failed run leaves no
output.

What can be refused is refused before the selection starts: the numbers as
the flags are parsed (before any file is opened or process group joined);
an OUT that is one of the inputs, an existing non-regular file (a device
node is never replaced) or in a folder that cannot be written; files that
cannot be read as what they were given for; and, under torchrun, files that
are not the same on every rank (by a cheap fingerprint). Under torchrun the
ranks exchange their verdicts once, so none waits on one that gave up.

Exit status: 0 picked; 2 bad input (on any rank); 1 anything else (a rank
died, a collective timed out); 128 + N stopped by signal N (130 SIGINT, 143
SIGTERM), with no temporary file left. SIGTERM before the write ends the
process at once (nothing is on disk yet), which a shell also reports as 143.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ._atomic import Terminated, atomic_write, check_target
from ._inputs import SEED_RANGE
from ._saved_arrays import InputError, Saved, describe, fingerprint, float_rows, open_saved, whole
from .kmeans import DEFAULT_INIT, INITS

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
#: The longest --timeout: a c10d deadline is kept in int64 nanoseconds of the steady clock (292 years).
MAX_TIMEOUT_S = 1e9
#: The shortest --timeout: joining the process group (connecting to its store) alone takes longer than a
#: shorter one allows, and c10d counts in milliseconds, where 0 is no timeout it can keep.
MIN_TIMEOUT_S = 1.0


def _number(kind: Callable, accept: Callable, wanted: str) -> Callable[[str], object]:
    """An argparse type: `kind(text)` where `accept` holds, else an error saying what was `wanted`."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value
    parse.__name__ = kind.__name__  # what argparse names in its messages
    return parse


_count = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_count = _number(int, lambda v: v >= 1, "an integer >= 1")
_seed = _number(int, lambda v: SEED_RANGE[0] <= v <= SEED_RANGE[1], "an integer that fits in 64 bits")
_positive = _number(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
_non_negative = _number(float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
_share = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
_seconds = _number(float, lambda v: MIN_TIMEOUT_S <= v <= MAX_TIMEOUT_S,  # NaN fails both comparisons
                   f"a finite number of seconds in [{MIN_TIMEOUT_S:g}, {MAX_TIMEOUT_S:g}]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clue-select",
        description="Pick BUDGET rows of a pool to label, by CLUE (entropy-weighted K-Means, nearest point "
                    "per centroid). Run it alone, or under torchrun to shard the pool over processes.",
    )
    parser.add_argument("--features", required=True, type=Path,
                        help="(N, D) embeddings: .npy (memory-mapped; float16/32/64) or .pt (a tensor)")
    parser.add_argument("--probs", required=True, type=Path, help="(N, C) predicted class probabilities, .npy or .pt")
    parser.add_argument("--budget", required=True, type=_positive_count, help="how many rows to pick")
    parser.add_argument("--out", required=True, type=Path,
                        help="where to write the picked row indices (.npy, int64); never one of the inputs, and "
                             "if it exists, a regular file")
    parser.add_argument("--temperature", type=_positive, default=1.0,
                        help="softmax temperature of the weights (default 1)")
    parser.add_argument("--seed", type=_seed, default=None, help="seed of the clustering (default: a random one)")
    parser.add_argument("--exclude", type=Path, default=None,
                        help="rows never to pick (e.g. already labeled): .npy/.pt of global row indices or an "
                             "(N,) bool mask")
    parser.add_argument("--init", choices=INITS, default=DEFAULT_INIT, help=f"how K-Means starts (default {DEFAULT_INIT})")
    parser.add_argument("--max-iter", type=_count, default=300, help="Lloyd iterations at most (default 300)")
    parser.add_argument("--tol", type=_non_negative, default=1e-4, help="Lloyd's relative tolerance (default 1e-4)")
    parser.add_argument("--label-tol", type=_share, default=None,
                        help="Lloyd stops once the labels that changed carry at most this share of the weight "
                             "(default: 1e-3, 0 with --init k-means++)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where to compute; under torchrun, cuda means cuda:LOCAL_RANK and NCCL (default cpu)")
    parser.add_argument("--timeout", type=_seconds, default=1800.0,
                        help="seconds a rank waits for the others at a collective before failing (default 1800)")
    return parser


def _inputs(args) -> List[Tuple[str, Path]]:
    given = (("--features", args.features), ("--probs", args.probs), ("--exclude", args.exclude))
    return [(flag, path) for flag, path in given if path is not None]


def _open_inputs(args, views: Optional[Dict[str, dict]] = None) -> Dict[str, Tuple[Path, Saved]]:
    """{flag: (path, lazily read array)} of the input files given; each one's fingerprint goes into `views`
    as soon as it is open, so a rank that fails on a later file still says what it saw of the earlier ones."""
    opened = {}
    for flag, path in _inputs(args):
        opened[flag] = (path, open_saved(path, flag))
        if views is not None:
            views[flag] = fingerprint(path, opened[flag][1])
    return opened


def _shape(array, flag: str):
    if array.ndim != 2:
        raise InputError(f"{flag}: must be 2-D (N, ...), got shape {tuple(array.shape)}")
    return tuple(array.shape)


def _load(args, rank: int, world: int, opened: Optional[Dict[str, Tuple[Path, Saved]]] = None):
    """(this rank's features, its probs, exclude, (start, stop, N))."""
    opened = _open_inputs(args) if opened is None else opened
    features, probs = opened["--features"][1], opened["--probs"][1]
    n, _ = _shape(features, "--features")
    if _shape(probs, "--probs")[0] != n:
        raise InputError(f"--probs: must have one row per row of --features ({n}), got {probs.shape[0]}")
    start, stop = rank * n // world, (rank + 1) * n // world
    device = torch.device("cuda", torch.cuda.current_device()) if args.device == "cuda" else torch.device("cpu")
    exclude = whole(opened["--exclude"][1]) if "--exclude" in opened else None
    return (float_rows(features, start, stop, "--features").to(device),
            float_rows(probs, start, stop, "--probs").to(device), exclude, (start, stop, n))


def _check_out(args) -> None:
    """Refuses, before any work, an --out that is one of the inputs or that the write could not or must not
    replace."""
    out = args.out
    for flag, path in _inputs(args):
        if _same_file(out, path):
            raise InputError(f"--out: {out} is the same file as {flag}; the picks would replace it")
    try:
        check_target(out)
    except ValueError as error:
        raise InputError(f"--out: {error}") from error


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a loop of symbolic links: samefile decides
        pass
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except (OSError, NotImplementedError):  # one of them does not exist
        return False


def _disagreement(views: List[Dict[str, dict]]) -> Optional[str]:
    """What the ranks saw differently of the files every rank opened (by their fingerprints), or None."""
    lines = []
    for flag in [flag for flag in views[0] if all(flag in view for view in views)]:
        seen: Dict[str, List[int]] = {}
        for rank, view in enumerate(views):
            seen.setdefault(describe(view[flag]), []).append(rank)
        if len(seen) > 1:
            lines.append(f"{flag}: " + "; ".join(f"{_ranks(ranks)} {'see' if len(ranks) > 1 else 'sees'} {what}"
                                                   for what, ranks in seen.items()))
    if not lines:
        return None
    return ("the ranks do not read the same files (every rank must be given the same files, e.g. on a shared "
            "file system): " + " | ".join(lines))


def _ranks(ranks: List[int]) -> str:
    return f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))


def _say(rank: int):
    def say(line: str) -> None:
        if rank == 0:
            print(f"clue-select: {line}", file=sys.stderr, flush=True)
    return say


def _write(path: Path, picks: torch.Tensor) -> None:
    atomic_write(path, lambda handle: np.save(handle, picks.cpu().numpy().astype(np.int64)), binary=True)


def run(args) -> int:
    import torch.distributed as dist

    from . import distributed
    from .selection import select

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    say = _say(rank)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is visible")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if world == 1:
        _check_out(args)
        features, probs, exclude, (_, _, n) = _load(args, 0, 1)
        say(f"selecting {args.budget} of {n} rows in one process")
        picks = select(features, probs, args.budget, temperature=args.temperature, seed=args.seed,
                       exclude=exclude, init=args.init, max_iter=args.max_iter, tol=args.tol,
                       label_tol=args.label_tol)
    else:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=args.timeout))
        try:
            comm = distributed.Collective(None)
            views: Dict[str, dict] = {}
            try:
                if rank == 0:  # the one that writes
                    _check_out(args)
                loaded, error = _load(args, rank, world, _open_inputs(args, views)), None
            except Exception as caught:  # told to every rank before anyone stops
                loaded, error = None, caught
            # One exchange: every rank's error, if any, and what it saw of the files. Files that differ come
            # first: they are the likely cause of whatever else went wrong.
            reports = comm.gather_objects((None if error is None else str(error), views))
            disagreement = _disagreement([seen for _, seen in reports])
            if disagreement is not None:
                raise InputError(disagreement) from error
            failed = [(r, message) for r, (message, _) in enumerate(reports) if message is not None]
            if failed:
                if error is not None:
                    raise error
                raise InputError(f"rank {failed[0][0]} of {world}: {failed[0][1]}")
            features, probs, exclude, (start, stop, n) = loaded
            say(f"{world} ranks; rank 0 holds rows [{start}, {stop}) of {n}")
            picks = distributed.select(features, probs, args.budget, temperature=args.temperature, seed=args.seed,
                                       exclude=exclude, init=args.init, max_iter=args.max_iter, tol=args.tol,
                                       label_tol=args.label_tol, progress=say)
        finally:
            dist.destroy_process_group()
    if rank == 0:
        _write(args.out, picks)
        say(f"wrote {picks.numel()} row indices to {args.out}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .distributed import CollectiveError

    try:
        args = build_parser().parse_args(argv)  # a bad flag: exit 2 here, before any file or process group
    except SystemExit as parsed:
        return parsed.code
    rank = os.environ.get("RANK", "0")
    try:
        return run(args)
    except (ValueError, TypeError) as error:
        print(f"clue-select: error (rank {rank}): {error}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except (CollectiveError, RuntimeError, OSError) as error:
        print(f"clue-select: failed (rank {rank}): {error}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as stopped:
        signum = signal.SIGINT if isinstance(stopped, KeyboardInterrupt) else stopped.signum
        print(f"clue-select: stopped by {signal.Signals(signum).name} (rank {rank})",
              file=sys.stderr, flush=True)
        return 128 + signum
