"""One rank of the sharded-select tests (test_distributed.py starts one process per rank).

    python distributed_worker.py STORE RANK WORLD CUTS OUT SCENARIO[,SCENARIO...]

Joins a gloo group through the file store STORE, takes the rows from
fraction CUTS[RANK] to CUTS[RANK + 1] of the shared test pool (of
BIG_POOL_ROWS rows for scenarios ending in "-big"), runs each scenario
and saves {scenario: picks, (inertia, picks), or (error type, message)} to
OUT/rank{RANK}.pt. Scenario "die" makes rank 1 leave without calling select;
"tf32-new" and "tf32-legacy" set torch's TF32 switches for the rest of the
process, so each comes last and alone with its kind.
"""

import datetime
import os
import sys

import torch
import torch.distributed as dist

import clue_ext
from clue_ext import distributed
from clue_ext.distributed import _nearest, select_sharded
from clue_ext.distributed._agreement import agree

POOL_ROWS = 2400
# Over the 16,384-row floor of the subsampled seeding, so its rows are gathered.
BIG_POOL_ROWS = 20000


def pool(seed=0, n=POOL_ROWS, d=72, rank_dims=6):
    """Low-rank clustered features (the projected warm start is taken on them) and probabilities."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(40, rank_dims, generator=g) * 4
    codes = centres[torch.randint(0, 40, (n,), generator=g)] + torch.randn(n, rank_dims, generator=g)
    x = codes @ torch.randn(rank_dims, d, generator=g) + 0.3 * torch.randn(n, d, generator=g)
    probs = torch.softmax(torch.randn(n, 6, generator=g) * 2, dim=1)
    return x, probs


EXCLUDE = list(range(0, POOL_ROWS, 7))


def shard_of(n, cuts, rank):
    return slice(int(cuts[rank] * n), int(cuts[rank + 1] * n))


def scenario(name, rank, world, x, probs):
    if name in ("plain", "plain-big"):
        return distributed.select(x, probs, 30, seed=0)
    if name in ("subsample", "k-means++"):
        return distributed.select(x, probs, 30, seed=1, init=name)
    if name == "exclude":
        return distributed.select(x, probs, 30, seed=2, exclude=EXCLUDE)
    if name == "exclude-mask":
        mask = torch.zeros(POOL_ROWS, dtype=torch.bool)
        mask[EXCLUDE] = True
        return distributed.select(x, probs, 30, seed=2, exclude=mask)
    if name.startswith("objective"):  # objective-SEED-INIT[-big]: the sharded pipeline's objective
        _, seed, init = name.removesuffix("-big").split("-", 2)
        comm = distributed.Collective(None)
        shard = agree(comm, x, probs, 40, temperature=1.0, seed=int(seed), exclude=None, init=init, max_iter=300,
                      tol=1e-4)
        run = select_sharded(comm, clue_ext.ops, shard)
        return run.inertia, run.picks
    if name == "grad":  # rank 0's inputs still require grad (a model's outputs, a parameter)
        if rank == 0:
            x, probs = torch.nn.Parameter(x.clone()), probs.clone().requires_grad_(True)
        return distributed.select(x, probs, 30, seed=0)
    if name == "scaled":
        return distributed.select(x * 2.0**60, probs, 30, seed=0)
    if name == "nearest-constructed":  # rows 0..9 on rank 0, row 100 on rank 1; centroids 0..7 and 0.5
        rows = [list(range(10)), [100]][rank] if rank < 2 else []
        mine = torch.tensor(rows, dtype=torch.float64).reshape(-1, 1)
        centroids = torch.tensor(list(range(8)) + [0.5], dtype=torch.float64).reshape(-1, 1)
        return _nearest.nearest_points(distributed.Collective(None), mine, centroids, None, [0, 10, 11][min(rank, 2)])
    if name in ("tf32-new", "tf32-legacy"):
        # A training script switched TF32 on, with one API or the other; select runs, at world
        # size `world` and (on a group of this rank alone) 1, and leaves the switch as it was.
        if name == "tf32-new":
            torch.backends.cuda.matmul.fp32_precision = "tf32"
        else:
            torch.backends.cuda.matmul.allow_tf32 = True
        alone = [dist.new_group([r]) for r in range(world)][rank]
        together = distributed.select(x, probs, 30, seed=0)
        by_itself = distributed.select(x, probs, 5, seed=0, group=alone) if x.shape[0] >= 5 else None
        setting = torch.backends.cuda.matmul.fp32_precision if name == "tf32-new" else \
            torch.backends.cuda.matmul.allow_tf32
        return together, by_itself, setting
    if name == "nan":
        if rank == world - 1 and x.shape[0]:
            x = x.clone()
            x[-1, 3] = float("nan")
        return distributed.select(x, probs, 30, seed=0)
    if name == "width":
        return distributed.select(x[:, :-1] if rank == world - 1 else x, probs, 30, seed=0)
    if name == "budget-differs":
        return distributed.select(x, probs, 30 + rank, seed=0)
    if name == "too-many":
        return distributed.select(x, probs, POOL_ROWS + 1, seed=0)
    raise ValueError(f"unknown scenario {name}")


def main():
    store, rank, world, cuts, out, scenarios = sys.argv[1:7]
    rank, world = int(rank), int(world)
    cuts = [float(c) for c in cuts.split(",")]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=float(os.environ.get("CLUE_TEST_TIMEOUT", "120"))))
    pools = {size: pool(n=size) for size in (POOL_ROWS, BIG_POOL_ROWS)}
    results = {}
    for name in scenarios.split(","):
        if name == "die":
            if rank == 1:
                os._exit(0)
            name = "plain"
        x, probs = pools[BIG_POOL_ROWS if name.endswith("-big") else POOL_ROWS]
        rows = shard_of(x.shape[0], cuts, rank)
        try:
            results[name] = scenario(name, rank, world, x[rows], probs[rows])
        except Exception as error:
            results[name] = (type(error).__name__, str(error))
    torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    if "die" in scenarios:
        # With a peer gone, gloo's teardown at interpreter exit can abort (std::terminate, status -6)
        # after the result is saved; what the test checks is that result, so leave without teardown.
        sys.stdout.flush()
        os._exit(0)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
