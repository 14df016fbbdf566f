"""GPU benchmark of clue_ext.select (pytest-benchmark); skipped without a CUDA device.

    pytest bench/test_bench_gpu.py --benchmark-only

For N in {50k, 1M}, D in {512, 2048}, B in {500, 2500} it times, in the same
run and on the same data (ReLU'd Gaussian mixture features, softmax
probabilities):

  cuda       clue_ext.select on CUDA tensors (the CUDA kernels);
  torch_gpu  a plain PyTorch CLUE on the GPU: weighted K-Means++ (one
             candidate per centre, torch.multinomial), Lloyd with chunked
             cdist + argmin + index_add_, nearest point by cdist + argmin;
  cpu        clue_ext.select on CPU tensors (the CPU kernels). Only at the
             smallest size by default, it is slow; CLUE_BENCH_CPU=all runs it
             everywhere.

Every implementation runs at most 20 Lloyd iterations (tol=0) so that the
sizes finish in bounded time. Combinations that do not fit in GPU memory are
skipped. The time ratios are printed at the end of the module.
"""

import math
import os
import time

import pytest
import torch

import clue_ext
from clue_ext.selection import entropy_weights
from clue_ext.selftest import embedding_like

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(not clue_ext.build_info()["cuda"], reason="clue_ext built without CUDA kernels"),
]

SIZES = [(n, d, b) for n in (50_000, 1_000_000) for d in (512, 2048) for b in (500, 2500)]
MAX_ITER = 20
CHUNK = 32768
_results = {}  # (n, d, b) -> {impl: seconds}
_data = {}


def _size_id(size):
    n, d, b = size
    return f"N{n // 1000}k-D{d}-B{b}"


def _fits_on_gpu(n, d, b):
    # x and its generation temporaries, the seeding's (n, T) buffers,
    # the tiles and the plain peer's (chunk, b) distance blocks, with slack.
    trials = 2 + int(math.log(b))
    need = 12 * n * d + 12 * n * trials + (64 << 20) + 4 * CHUNK * b * 3 + 4 * b * d * 4
    free, _ = torch.cuda.mem_get_info()
    return need * 1.3 < free


def _cpu_wanted(n, d, b):
    return os.environ.get("CLUE_BENCH_CPU") == "all" or (n, d, b) == SIZES[0]


def _problem(n, d):
    if (n, d) not in _data:
        _data.clear()
        torch.cuda.empty_cache()
        xg, pg = embedding_like(n, d, seed=1, device="cuda")
        _data[(n, d)] = (xg, pg)
    return _data[(n, d)]


def _synchronised(fn):
    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


# --- the plain PyTorch peer -----------------------------------------------------------


def _nearest_centroid(x, c):
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], CHUNK):
        labels[start:start + CHUNK] = torch.cdist(x[start:start + CHUNK], c).argmin(dim=1)
    return labels


def torch_select(x, probs, budget, seed=0, max_iter=MAX_ITER):
    """CLUE in plain PyTorch on x's device (non-distinct nearest points)."""
    w = entropy_weights(probs).to(x.dtype)
    g = torch.Generator(device=x.device).manual_seed(seed)
    centres = torch.empty(budget, dtype=torch.long, device=x.device)
    centres[0:1] = torch.multinomial(w, 1, generator=g)
    d2 = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
    for j in range(1, budget):
        newest = x.index_select(0, centres[j - 1:j])
        d2 = torch.minimum(d2, torch.cdist(x, newest)[:, 0].pow(2))
        centres[j:j + 1] = torch.multinomial(w * d2 + 1e-30, 1, generator=g)
    c = x.index_select(0, centres)
    labels_old = None
    for _ in range(max_iter):
        labels = _nearest_centroid(x, c)
        sums = torch.zeros_like(c).index_add_(0, labels, x * w[:, None])
        mass = torch.zeros(budget, dtype=x.dtype, device=x.device).index_add_(0, labels, w)
        c = torch.where(mass[:, None] > 0, sums / mass.clamp_min(1e-30)[:, None], c)
        if labels_old is not None and bool((labels == labels_old).all()):
            break
        labels_old = labels
    nearest = torch.full((budget,), float("inf"), dtype=x.dtype, device=x.device)
    picks = torch.zeros(budget, dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], CHUNK):
        dist, idx = torch.cdist(x[start:start + CHUNK], c).min(dim=0)
        better = dist < nearest
        nearest = torch.where(better, dist, nearest)
        picks = torch.where(better, idx + start, picks)
    return picks


# --- benchmarks -------------------------------------------------------------------------


IMPLS = ["cuda", "torch_gpu", "cpu"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", SIZES, ids=_size_id)
def test_select(benchmark, size, impl):
    n, d, b = size
    if not _fits_on_gpu(n, d, b):
        pytest.skip(f"N={n} D={d} B={b} does not fit in this GPU's free memory")
    if impl == "cpu" and not _cpu_wanted(n, d, b):
        pytest.skip("the CPU path at this size takes too long (CLUE_BENCH_CPU=all runs it)")
    xg, pg = _problem(n, d)
    if impl == "cuda":
        fn = _synchronised(lambda: clue_ext.select(xg, pg, b, seed=0, max_iter=MAX_ITER, tol=0.0))
    elif impl == "torch_gpu":
        fn = _synchronised(lambda: torch_select(xg, pg, b, seed=0))
    else:
        x, probs = xg.cpu(), pg.cpu()
        fn = lambda: clue_ext.select(x, probs, b, seed=0, max_iter=MAX_ITER, tol=0.0)  # noqa: E731

    # Correctness before timing (this also warms up the CUDA context and cuBLAS).
    picks = fn().cpu()
    assert picks.shape == (b,) and bool(((picks >= 0) & (picks < n)).all())
    if impl != "torch_gpu":
        assert picks.unique().numel() == b, "select returned an index twice"

    rounds = 3 if n * d <= 50_000 * 512 else 1
    benchmark.extra_info.update({"n": n, "d": d, "budget": b, "impl": impl})
    start = time.perf_counter()
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    _results.setdefault(size, {})[impl] = (time.perf_counter() - start) / rounds


@pytest.fixture(scope="module", autouse=True)
def _print_ratios(request):
    yield
    if not _results:
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    write("")
    write(f"clue_ext.select on {torch.cuda.get_device_name()} (mean seconds per call; ratio = peer / cuda)")
    for size, times in sorted(_results.items()):
        cuda = times.get("cuda")
        parts = []
        for impl in IMPLS:
            if impl in times:
                ratio = f" (x{times[impl] / cuda:.1f})" if cuda and impl != "cuda" else ""
                parts.append(f"{impl} {times[impl]:.2f}s{ratio}")
        write(f"  {_size_id(size)}: " + ", ".join(parts))
