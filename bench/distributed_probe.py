"""One rank of the sharded-select bench: loads its slice of saved features and times select.

    python bench/distributed_probe.py FEATURES PROBS BUDGET MODE            # one process
    torchrun --nproc-per-node 2 bench/distributed_probe.py FEATURES PROBS BUDGET MODE

MODE "select": what `python -m clue_ext.select` runs (clue_ext.select alone,
clue_ext.distributed.select under torchrun); "sharded": the sharded pipeline
even on one rank. The rank reads only its rows (as the command does), then
prints one JSON line: its time, the peak resident memory select added
(VmHWM restarted just before), the size of its slice, the bytes it sent to
the collectives and Lloyd's iterations. Used by test_bench_distributed.py.
"""

import argparse
import datetime
import json
import os
import sys
import time

import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scaling_probe import peak_rss_bytes, start_peak_tracking  # noqa: E402

import clue_ext  # noqa: E402
from clue_ext import distributed, select_command  # noqa: E402
from clue_ext.distributed._agreement import agree  # noqa: E402
from clue_ext.distributed._lloyd import bytes_per_iteration  # noqa: E402


def main():
    features, probs, budget, mode = sys.argv[1:5]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    args = argparse.Namespace(features=select_command.Path(features), probs=select_command.Path(probs),
                              exclude=None, device="cpu")
    x, p, _, (start, stop, n) = select_command._load(args, rank, world)
    budget = int(budget)
    if world > 1 or mode == "sharded":
        if not dist.is_initialized():
            if world == 1:
                os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
                os.environ.setdefault("MASTER_PORT", "29533")
            dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(hours=1))
    before = start_peak_tracking()
    started = time.perf_counter()
    n_iter, sent, stages = None, 0, {}
    if mode == "sharded" or world > 1:
        comm = distributed.Collective(None)
        shard = agree(comm, x, p, budget, temperature=1.0, seed=0, exclude=None, init=clue_ext.DEFAULT_INIT,
                      max_iter=300, tol=1e-4)
        run = distributed.select_sharded(comm, clue_ext.ops, shard)
        picks, n_iter, sent, stages = run.picks, run.n_iter, run.bytes_sent, run.seconds
    else:
        picks = clue_ext.select(x, p, budget, seed=0)
    seconds = time.perf_counter() - started
    assert len(set(picks.tolist())) == budget
    peak = peak_rss_bytes()
    print(json.dumps(dict(mode=mode, world=world, rank=rank, rows=stop - start, n=n, d=x.shape[1], budget=budget,
                          seconds=seconds, stages=stages, slice_bytes=x.numel() * x.element_size(),
                          peak_extra_bytes=max(0, peak - before), bytes_sent=sent, n_iter=n_iter,
                          lloyd_iteration_bytes=bytes_per_iteration(budget, x.shape[1]),
                          picks=picks.tolist())), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
