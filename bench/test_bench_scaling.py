"""Time and peak memory of clue_ext.select as the pool grows (D=512, B=1000).

    pytest bench/test_bench_scaling.py -s

Each size runs in a fresh process (bench/scaling_probe.py). The table gives
the wall time and the peak extra resident memory of select as a multiple of
the feature matrix's size. CLUE_BENCH_SCALING_SIZES overrides the sizes
(comma-separated N).
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [int(v) for v in os.environ.get("CLUE_BENCH_SCALING_SIZES", "10000,100000,1000000").split(",")]
ROWS = []


@pytest.mark.parametrize("n", SIZES)
def test_select_scaling(n):
    out = subprocess.run([sys.executable, os.path.join(HERE, "scaling_probe.py"), str(n), "512", "1000"],
                         capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    ROWS.append(row)
    # Peak extra memory must stay below 1.5x the feature matrix.
    assert row["peak_extra_bytes"] < 1.5 * row["feature_bytes"]


def teardown_module():
    if not ROWS:
        return
    print("\n| N | D | B | select seconds | features (MB) | peak extra (MB) | peak extra / features |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in ROWS:
        print(f"| {r['n']:,} | {r['d']} | {r['budget']} | {r['seconds']:.2f} | {r['feature_bytes'] / 2**20:.0f} "
              f"| {r['peak_extra_bytes'] / 2**20:.0f} | {r['peak_extra_bytes'] / r['feature_bytes']:.2f} |")
