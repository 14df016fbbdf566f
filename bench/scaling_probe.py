"""Runs clue_ext.select once in this process and prints its time and memory.

    python bench/scaling_probe.py N D B [INIT]

Used by test_bench_scaling.py, one fresh process per size and init (INIT:
select's init, default its default). Peak extra memory
is the process's peak resident memory during the call (VmHWM, restarted just
before it) minus its resident memory before it. The features are written
chunk by chunk into one preallocated array, so making them costs no more
memory than holding them.
"""

import json
import resource
import sys
import time

import numpy as np
import torch

import clue_ext


def features(n, d, seed=0, mixture=345, chunk=65536):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(mixture, d)).astype(np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        part = x[start:stop]
        part[:] = means[rng.integers(0, mixture, stop - start)]
        part += 0.5 * rng.standard_normal(size=part.shape, dtype=np.float32)
        np.maximum(part, 0, out=part)
    logits = rng.normal(size=(n, 10)).astype(np.float32) * 2
    probs = torch.softmax(torch.from_numpy(logits), dim=1)
    return torch.from_numpy(x), probs


def _status_bytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def start_peak_tracking():
    """Resident memory now; also restarts the peak count where Linux allows it.

    Without the restart the peak would still hold the temporaries of building
    the features, which can hide what select itself adds.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # 5: reset the peak resident set size (VmHWM)
        return _status_bytes("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def peak_rss_bytes():
    try:
        return _status_bytes("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    n, d, budget = (int(v) for v in sys.argv[1:4])
    init = sys.argv[4] if len(sys.argv) > 4 else clue_ext.DEFAULT_INIT
    x, probs = features(n, d)
    clue_ext.select(x[:2000], probs[:2000], 10, seed=0, init=init)  # load kernels, warm allocator
    before = start_peak_tracking()
    start = time.perf_counter()
    picks = clue_ext.select(x, probs, budget, seed=0, init=init)
    seconds = time.perf_counter() - start
    assert len(set(picks.tolist())) == budget
    after = peak_rss_bytes()
    print(json.dumps(dict(n=n, d=d, budget=budget, init=init, seconds=seconds, feature_bytes=x.numel() * 4,
                          peak_extra_bytes=max(0, after - before), peak_bytes=after)))


if __name__ == "__main__":
    main()
