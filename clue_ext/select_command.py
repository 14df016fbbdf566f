"""The `python -m clue_ext.select` / `clue-select` command: CLUE over saved features.

Alone, it selects in one process. Under torchrun (which sets RANK and
WORLD_SIZE), rank r of W memory-maps rows [r N / W, (r + 1) N / W) of the
files and the ranks select together (clue_ext.distributed.select). Rank 0
writes OUT once the picks are known, atomically, so a failed run leaves no
output. Exit status: 0 picked, 2 bad input (on any rank), 1 anything else
(a rank died, a collective timed out).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ._atomic import atomic_write
from .kmeans import DEFAULT_INIT, INITS

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clue-select",
        description="Pick BUDGET rows of a pool to label, by CLUE (entropy-weighted K-Means, nearest point "
                    "per centroid). Run it alone, or under torchrun to shard the pool over processes.",
    )
    parser.add_argument("--features", required=True, type=Path,
                        help="(N, D) embeddings: .npy (memory-mapped; float16/32/64) or .pt (a tensor)")
    parser.add_argument("--probs", required=True, type=Path, help="(N, C) predicted class probabilities, .npy or .pt")
    parser.add_argument("--budget", required=True, type=int, help="how many rows to pick")
    parser.add_argument("--out", required=True, type=Path, help="where to write the picked row indices (.npy, int64)")
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of the weights (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the clustering (default: a random one)")
    parser.add_argument("--exclude", type=Path, default=None,
                        help="rows never to pick (e.g. already labeled): .npy/.pt of global row indices or an "
                             "(N,) bool mask")
    parser.add_argument("--init", choices=INITS, default=DEFAULT_INIT, help=f"how K-Means starts (default {DEFAULT_INIT})")
    parser.add_argument("--max-iter", type=int, default=300, help="Lloyd iterations at most (default 300)")
    parser.add_argument("--tol", type=float, default=1e-4, help="Lloyd's relative tolerance (default 1e-4)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where to compute; under torchrun, cuda means cuda:LOCAL_RANK and NCCL (default cpu)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds a rank waits for the others at a collective before failing (default 1800)")
    return parser


class InputError(ValueError):
    """A file that cannot be read as the argument it was given for."""


def _open_rows(path: Path, name: str):
    """A lazily sliceable (rows, ...) array of `path`: a numpy memmap (.npy) or a memory-mapped tensor (.pt)."""
    if not path.is_file():
        raise InputError(f"--{name}: no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r")
        if suffix == ".pt":
            data = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
            if not isinstance(data, torch.Tensor):
                raise InputError(f"--{name}: {path} must hold one tensor, got {type(data).__name__}")
            return data
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"--{name}: cannot read {path}: {error}") from error
    raise InputError(f"--{name}: {path} must be a .npy or .pt file")


def _rows(array, start: int, stop: int, name: str) -> torch.Tensor:
    """Rows [start, stop) of a float array as a tensor, reading only those rows."""
    if isinstance(array, np.ndarray):
        if array.dtype.type not in _FLOAT_DTYPES:
            raise InputError(f"--{name}: must hold float16/32/64 values, got {array.dtype}")
        return torch.from_numpy(np.array(array[start:stop]))  # copies just this slice out of the map
    if not array.is_floating_point():
        raise InputError(f"--{name}: must hold floating-point values, got {array.dtype}")
    return array[start:stop]


def _exclude(path: Optional[Path]):
    if path is None:
        return None
    data = _open_rows(path, "exclude")
    return torch.from_numpy(np.array(data)) if isinstance(data, np.ndarray) else data.clone()


def _shape(array, name: str):
    if array.ndim != 2:
        raise InputError(f"--{name}: must be 2-D (N, ...), got shape {tuple(array.shape)}")
    return tuple(array.shape)


def _load(args, rank: int, world: int):
    """(this rank's features, its probs, exclude, (start, stop, N))."""
    features = _open_rows(args.features, "features")
    probs = _open_rows(args.probs, "probs")
    n, _ = _shape(features, "features")
    if _shape(probs, "probs")[0] != n:
        raise InputError(f"--probs: must have one row per row of --features ({n}), got {probs.shape[0]}")
    start, stop = rank * n // world, (rank + 1) * n // world
    device = torch.device("cuda", torch.cuda.current_device()) if args.device == "cuda" else torch.device("cpu")
    return (_rows(features, start, stop, "features").to(device), _rows(probs, start, stop, "probs").to(device),
            _exclude(args.exclude), (start, stop, n))


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
        features, probs, exclude, (_, _, n) = _load(args, 0, 1)
        say(f"selecting {args.budget} of {n} rows in one process")
        picks = select(features, probs, args.budget, temperature=args.temperature, seed=args.seed,
                       exclude=exclude, init=args.init, max_iter=args.max_iter, tol=args.tol)
    else:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=args.timeout))
        try:
            comm = distributed.Collective(None)
            try:
                loaded, error = _load(args, rank, world), None
            except Exception as caught:  # told to every rank before anyone stops
                loaded, error = None, caught
            errors = comm.gather_objects(None if error is None else str(error))
            failed = [(r, message) for r, message in enumerate(errors) if message is not None]
            if failed:
                if error is not None:
                    raise error
                raise InputError(f"rank {failed[0][0]} of {world}: {failed[0][1]}")
            features, probs, exclude, (start, stop, n) = loaded
            say(f"{world} ranks; rank 0 holds rows [{start}, {stop}) of {n}")
            picks = distributed.select(features, probs, args.budget, temperature=args.temperature, seed=args.seed,
                                       exclude=exclude, init=args.init, max_iter=args.max_iter, tol=args.tol,
                                       progress=say)
        finally:
            dist.destroy_process_group()
    if rank == 0:
        _write(args.out, picks)
        say(f"wrote {picks.numel()} row indices to {args.out}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .distributed import CollectiveError

    args = build_parser().parse_args(argv)
    rank = os.environ.get("RANK", "0")
    try:
        return run(args)
    except (ValueError, TypeError) as error:
        print(f"clue-select: error (rank {rank}): {error}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except (CollectiveError, RuntimeError, OSError) as error:
        print(f"clue-select: failed (rank {rank}): {error}", file=sys.stderr, flush=True)
        return EXIT_FAILED
