"""Time and peak memory of clue_ext.select as the pool grows (D=512, B=1000).

    pytest bench/test_bench_scaling.py -s

Each size runs in a fresh process (bench/scaling_probe.py), with select's
default init and then with init="k-means++" (exact seeding). The table gives
the wall time, the default's speed-up over the exact seeding, and the peak
extra resident memory of select as a multiple of the feature matrix's size.
CLUE_BENCH_SCALING_SIZES overrides the sizes (comma-separated N).
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [int(v) for v in os.environ.get("CLUE_BENCH_SCALING_SIZES", "10000,100000,1000000").split(",")]
ROWS = []


@pytest.mark.parametrize("init", ["fast", "k-means++"])
@pytest.mark.parametrize("n", SIZES)
def test_select_scaling(n, init):
    out = subprocess.run([sys.executable, os.path.join(HERE, "scaling_probe.py"), str(n), "512", "1000", init],
                         capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    ROWS.append(row)
    # Peak extra memory must stay below the feature matrix.
    assert row["peak_extra_bytes"] < row["feature_bytes"]


def teardown_module():
    if not ROWS:
        return
    exact = {r["n"]: r["seconds"] for r in ROWS if r["init"] == "k-means++"}
    print("\n| N | D | B | init | select seconds | k-means++ / this | features (MB) | peak extra (MB) "
          "| peak extra / features |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in ROWS:
        ratio = f"{exact[r['n']] / r['seconds']:.1f}x" if r["n"] in exact else "-"
        print(f"| {r['n']:,} | {r['d']} | {r['budget']} | {r['init']} | {r['seconds']:.2f} | {ratio} "
              f"| {r['feature_bytes'] / 2**20:.0f} | {r['peak_extra_bytes'] / 2**20:.0f} "
              f"| {r['peak_extra_bytes'] / r['feature_bytes']:.2f} |")
