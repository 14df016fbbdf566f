"""Memory per rank and time of the sharded select, with 1 and 2 processes.

    cd bench && pytest test_bench_distributed.py -s

The pool (N = CLUE_BENCH_DIST_ROWS, default 1,000,000, x 512 float32, the
scaling bench's mixture; B = 1,000) is saved once as .npy; every run reads it
as `python -m clue_ext.select` does, each rank memory-mapping only its rows
(distributed_probe.py). Runs: one process as the command runs it alone
(clue_ext.select), the sharded pipeline on one rank, and on two ranks under
torchrun (gloo). On a 2-core machine two ranks share the cores: the point is
the memory each process needs and what the sharding costs, not speed.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = int(os.environ.get("CLUE_BENCH_DIST_ROWS", "1000000"))
BUDGET = 1000
RESULTS = []


@pytest.fixture(scope="module")
def saved_pool(tmp_path_factory):
    sys.path.insert(0, HERE)
    from scaling_probe import features

    folder = tmp_path_factory.mktemp("pool")
    x, probs = features(ROWS, 512)
    np.save(folder / "features.npy", x.numpy())
    np.save(folder / "probs.npy", probs.numpy())
    del x, probs
    return folder


@pytest.mark.parametrize("mode,world", [("select", 1), ("sharded", 1), ("sharded", 2)],
                         ids=["alone", "sharded-1", "sharded-2"])
def test_sharded_select_memory(saved_pool, mode, world):
    probe = [os.path.join(HERE, "distributed_probe.py"), str(saved_pool / "features.npy"),
             str(saved_pool / "probs.npy"), str(BUDGET), mode]
    launcher = [] if world == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}"]
    environment = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // world)))
    done = subprocess.run([sys.executable, *launcher, *probe], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == world
    assert len({str(r["picks"]) for r in rows}) == 1  # every rank got the same picks
    RESULTS.extend(rows)


def teardown_module():
    if not RESULTS:
        return
    alone = next((set(r["picks"]) for r in RESULTS if r["mode"] == "select"), None)
    print("\n| run | rank | rows | select seconds | slice (MB) | peak extra (MB) | peak extra / slice "
          "| Lloyd iterations | sent (MB) | picks shared with alone |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in RESULTS:
        name = "alone (clue_ext.select)" if r["mode"] == "select" else f"sharded, {r['world']} rank(s)"
        shared = f"{len(alone & set(r['picks']))} / {len(r['picks'])}" if alone is not None else "-"
        print(f"| {name} | {r['rank']} | {r['rows']:,} | {r['seconds']:.1f} | {r['slice_bytes'] / 2**20:.0f} "
              f"| {r['peak_extra_bytes'] / 2**20:.0f} | {r['peak_extra_bytes'] / r['slice_bytes']:.2f} "
              f"| {r['n_iter'] if r['n_iter'] is not None else '-'} | {r['bytes_sent'] / 2**20:.1f} | {shared} |")
    for r in RESULTS:
        if r["stages"]:
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
            print(f"stages, sharded {r['world']} rank(s), rank {r['rank']}: {stages}")
    r = RESULTS[0]
    print(f"one Lloyd iteration's all-reduce: {r['lloyd_iteration_bytes'] / 2**20:.2f} MB per rank "
          f"(K x (D + 1) + 1 float64, K = {r['budget']}, D = {r['d']})")
