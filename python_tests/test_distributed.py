"""clue_ext.distributed.select over gloo, one process per rank (distributed_worker.py)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import clue_ext
from clue_ext.selection import entropy_weights

sys.path.insert(0, str(Path(__file__).parent))
from distributed_worker import BIG_POOL_ROWS, EXCLUDE, POOL_ROWS, pool  # noqa: E402

WORKER = Path(__file__).parent / "distributed_worker.py"
FAILING = ("nan", "width", "budget-differs", "too-many")


def run_ranks(tmp_path, world, cuts, scenarios, timeout=240, env=None, label=""):
    """Each rank's {scenario: result}, after every process ended by itself within `timeout` seconds."""
    out = tmp_path / f"ws{world}{label}"
    out.mkdir()
    command = [str(out / "store"), "", str(world), ",".join(map(str, cuts)), str(out), ",".join(scenarios)]
    environment = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    processes = []
    for rank in range(world):
        command[1] = str(rank)
        processes.append(subprocess.Popen([sys.executable, str(WORKER)] + command, env=environment,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    deadline = time.monotonic() + timeout
    for rank, process in enumerate(processes):
        try:
            output, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail(f"rank {rank} of {world} hung (more than {timeout} s)")
        assert process.returncode == 0, f"rank {rank} failed:\n{output}"
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(world)
            if (out / f"rank{rank}.pt").exists()]


def single(name):
    """What one process picks for the worker's scenario `name`."""
    big = name.endswith("-big")
    x, probs = pool(n=BIG_POOL_ROWS if big else POOL_ROWS)
    base = name.removesuffix("-big")
    if base == "plain":
        return clue_ext.select(x, probs, 30, seed=0)
    if base in ("subsample", "k-means++"):
        return clue_ext.select(x, probs, 30, seed=1, init=base)
    if base in ("exclude", "exclude-mask"):
        return clue_ext.select(x, probs, 30, seed=2, exclude=EXCLUDE)
    raise AssertionError(name)


def single_objective(seed, init, big=False):
    x, probs = pool(n=BIG_POOL_ROWS if big else POOL_ROWS)
    return clue_ext.weighted_kmeans(x, entropy_weights(probs).float(), 40, seed=seed, init=init).inertia


def coverage(picks, big=False):
    """sum of w * squared distance to the nearest pick: what a good selection keeps low."""
    x, probs = pool(n=BIG_POOL_ROWS if big else POOL_ROWS)
    return float((entropy_weights(probs) * torch.cdist(x.double(), x[picks].double()).min(dim=1).values ** 2).sum())


def assert_same_on_every_rank(results, name):
    first = results[0][name]
    for rank, result in enumerate(results[1:], start=1):
        if isinstance(first, torch.Tensor):
            assert torch.equal(result[name], first), f"{name}: rank {rank} picked differently from rank 0"
        else:
            assert str(result[name]) == str(first), f"{name}: rank {rank} got {result[name]}, rank 0 {first}"
    return first


def assert_valid_picks(picks, budget=30, n=POOL_ROWS, exclude=()):
    assert picks.dtype == torch.int64 and picks.shape == (budget,)
    assert len(set(picks.tolist())) == budget
    assert 0 <= int(picks.min()) and int(picks.max()) < n
    assert not set(picks.tolist()) & set(exclude)


@pytest.mark.slow
def test_world_size_one_is_select(tmp_path):
    names = ["plain", "k-means++", "exclude", "exclude-mask", "plain-big"]
    (results,) = run_ranks(tmp_path, 1, [0, 1], names)
    for name in names:
        assert torch.equal(results[name], single(name)), name


@pytest.mark.slow
@pytest.mark.parametrize("world,cuts", [(2, [0, 0.3, 1]), (3, [0, 0.45, 0.45, 1])],
                         ids=["2-unequal", "3-with-an-empty-rank"])
def test_sharded_select_matches_one_process(tmp_path, world, cuts):
    names = ["plain", "subsample", "k-means++", "exclude", "exclude-mask", "plain-big",
             "objective-0-fast", "objective-1-fast", "objective-2-fast", "objective-0-k-means++",
             "objective-3-fast-big"]
    results = run_ranks(tmp_path, world, cuts, names)
    for name in ("plain", "subsample", "k-means++", "exclude", "exclude-mask", "plain-big"):
        picks = assert_same_on_every_rank(results, name)
        big = name.endswith("-big")
        assert_valid_picks(picks, n=BIG_POOL_ROWS if big else POOL_ROWS,
                           exclude=EXCLUDE if name.startswith("exclude") else ())
        # The same clustering up to rounding: as good a cover of the pool as one process's picks.
        assert coverage(picks, big) <= 1.01 * coverage(single(name), big), name
    assert torch.equal(results[0]["exclude"], results[0]["exclude-mask"])
    sharded, alone = [], []
    for name in [n for n in names if n.startswith("objective")]:
        inertia, picks = assert_same_on_every_rank(results, name)
        _, seed, init = name.removesuffix("-big").split("-", 2)
        sharded.append(inertia)
        alone.append(single_objective(int(seed), init, big=name.endswith("-big")))
        assert_valid_picks(picks, budget=40, n=BIG_POOL_ROWS if name.endswith("-big") else POOL_ROWS)
    assert sum(sharded) <= 1.005 * sum(alone), (sharded, alone)


@pytest.mark.slow
def test_bad_input_on_one_rank_fails_every_rank_alike(tmp_path):
    results = run_ranks(tmp_path, 3, [0, 0.2, 0.6, 1], list(FAILING))
    expected = {
        "nan": ("ValueError", "rank 2 of 3: features must be finite"),
        "width": ("ValueError", "features have 72 columns on rank 0 but 71 on rank 2"),
        "budget-differs": ("ValueError", "budget must be the same on every rank"),
        "too-many": ("ValueError", f"budget must be <= {POOL_ROWS}"),
    }
    for name, (kind, message) in expected.items():
        got = assert_same_on_every_rank(results, name)
        assert got[0] == kind and message in got[1], (name, got)


@pytest.mark.slow
def test_edge_inputs_on_some_ranks_pick_as_one_process(tmp_path):
    # Inputs that require grad on one rank only, features scaled by 2**60 and the
    # nearest-point lists of the constructed case; then scripts that turned TF32 on
    # through torch's new or legacy API (each in processes of its own).
    cuts = [0, 0.4, 1]
    results = run_ranks(tmp_path, 2, cuts, ["plain", "grad", "scaled", "nearest-constructed", "tf32-new"])
    plain = assert_same_on_every_rank(results, "plain")
    assert torch.equal(assert_same_on_every_rank(results, "grad"), plain)
    assert torch.equal(assert_same_on_every_rank(results, "scaled"), plain)
    assert assert_same_on_every_rank(results, "nearest-constructed").tolist() == list(range(9))
    legacy = run_ranks(tmp_path, 2, cuts, ["tf32-legacy"], label="-legacy")
    x, probs = pool()
    for name, rank_results, switched in (("tf32-new", results, "tf32"), ("tf32-legacy", legacy, True)):
        for rank, result in enumerate(rank_results):
            together, by_itself, setting = result[name]
            assert torch.equal(together, plain), name
            rows = slice(int(cuts[rank] * POOL_ROWS), int(cuts[rank + 1] * POOL_ROWS))
            assert torch.equal(by_itself, clue_ext.select(x[rows], probs[rows], 5, seed=0)), name
            assert setting == switched, name


@pytest.mark.slow
def test_a_dead_rank_ends_select_with_a_message(tmp_path):
    started = time.monotonic()
    results = run_ranks(tmp_path, 2, [0, 0.5, 1], ["die"], timeout=120, env={"CLUE_TEST_TIMEOUT": "10"})
    assert len(results) == 1  # rank 1 left without a word
    kind, message = results[0]["plain"]
    assert kind == "CollectiveError" and "a rank died" in message
    assert time.monotonic() - started < 120


def test_select_needs_a_process_group():
    from clue_ext import distributed

    x, probs = pool(n=50)
    with pytest.raises(RuntimeError, match="init_process_group"):
        distributed.select(x, probs, 5)
