"""Self-test of an installed clue_ext: ``python -m clue_ext.selftest``.

Always checks the CPU kernels against the plain-PyTorch reference on small
problems. On a machine with a CUDA device, and a build with CUDA kernels,
it also checks the CUDA kernels against the CPU kernels on the same
pre-drawn uniforms, and times :func:`clue_ext.select` on a 50,000 x 512 pool
with a budget of 500, GPU against CPU. It prints a verdict and exits with 0
when every check passed.

The checks are plain functions ``check_*(candidate, oracle)`` that raise
AssertionError on a mismatch; python_tests/test_cuda_parity.py runs the same
functions under pytest.

What "the same" means, per op (see csrc/ops.h):

- seeding: identical indices. Exact on float64 data, and on float32 data
  whose arithmetic is exact (small integers); float32 data in general may
  differ at near-ties, so it is only checked for validity and potential.
- assignment: identical labels except where two centroids are within
  rounding of each other; squared distances within rounding.
- centroid update: bitwise equal to the summation order that
  csrc/summation_order.h promises, redone here in plain PyTorch
  (ordered_centroid_update), so CUDA and CPU are bitwise equal too, also for
  clusters that span several runs with zero weights at the runs' edges;
  within 1e-5 relative (float32) / 1e-12 (float64) of the plain reference,
  which sums in another order; clusters of zero weight keep their row
  exactly.
- nearest points: identical indices (float64, or exact float32 data).
"""

from __future__ import annotations

import argparse
import sys
import time
from types import SimpleNamespace
from typing import Callable, List, NamedTuple, Optional, Tuple

import torch

from . import ops, reference


class Backend:
    """One implementation of the four ops (clue_ext.ops or clue_ext.reference) on one device.

    Calling it runs an op on copies of the tensor arguments moved to the
    device and returns the results moved back to the CPU.
    """

    def __init__(self, module, device: str):
        self.module = module
        self.device = torch.device(device)
        self.name = "%s/%s" % ("reference" if module is reference else "kernels", self.device.type)

    def __call__(self, op: str, *args, **kwargs):
        move = lambda v: v.to(self.device) if isinstance(v, torch.Tensor) else v  # noqa: E731
        out = getattr(self.module, op)(*[move(a) for a in args], **{k: move(v) for k, v in kwargs.items()})
        if isinstance(out, tuple):
            return tuple(o.cpu() for o in out)
        return out.cpu()


# --- problems ------------------------------------------------------------------------


def random_problem(n: int, d: int, dtype=torch.float64, seed: int = 0, clusters: int = 8):
    """Points around `clusters` random centres and positive weights with a few zeros."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, d, generator=g, dtype=torch.float64) * 3
    x = centres[torch.randint(0, clusters, (n,), generator=g)] + torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64)
    w[torch.randperm(n, generator=g)[: n // 10]] = 0.0
    return x.to(dtype), w.to(dtype)


def grid_problem(n: int, d: int, dtype=torch.float32, seed: int = 0):
    """Small-integer points and weights: every sum and product is exact in float32
    and double, so any two correct implementations agree exactly, ties included."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-4, 5, (n, d), generator=g).to(dtype)
    w = torch.randint(0, 4, (n,), generator=g).to(dtype)
    return x, w


# Cluster sizes around the runs of csrc/summation_order.h (kMeansRun = 256).
RUN_BOUNDARY_SIZES = (1, 255, 256, 257, 511, 513, 1300)
# Members (in point order) of each cluster given weight 0: the edges of runs.
RUN_BOUNDARY_ZEROS = (255, 256, 511, 512)


def run_boundary_problem(dtype=torch.float64, d: int = 19, seed: int = 0):
    """(x, w, labels, old centroids) with clusters of RUN_BOUNDARY_SIZES members
    interleaved in point order, zero weights at members RUN_BOUNDARY_ZEROS of
    each cluster, a cluster whose 40 members all weigh 0 and an empty one.
    Weights and values span several orders of magnitude around an offset, so
    that summing in another order (or fusing multiply and add) changes the
    last bits of the means."""
    g = torch.Generator().manual_seed(seed)
    sizes = RUN_BOUNDARY_SIZES + (40,)
    k = len(sizes) + 1  # the last cluster is empty
    labels = torch.cat([torch.full((size,), c, dtype=torch.long) for c, size in enumerate(sizes)])
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    n = labels.numel()
    scale = 10.0 ** torch.randint(-3, 4, (n, 1), generator=g).double()
    x = (3.0 + torch.randn(n, d, generator=g, dtype=torch.float64) * scale).to(dtype)
    w = (torch.rand(n, generator=g, dtype=torch.float64) * 10.0 ** torch.randint(-6, 7, (n,), generator=g)).to(dtype)
    for c in range(len(sizes)):
        members = (labels == c).nonzero().flatten()
        edges = [m for m in RUN_BOUNDARY_ZEROS if m < members.numel()]
        w[members[edges]] = 0.0
    w[labels == len(sizes) - 1] = 0.0
    old = torch.randn(k, d, generator=g, dtype=torch.float64).to(dtype)
    return x, w, labels, old


MEANS_RUN = 256  # kMeansRun of csrc/summation_order.h


def ordered_centroid_update(x: torch.Tensor, w: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor,
                            run: int = MEANS_RUN) -> Tuple[torch.Tensor, torch.Tensor]:
    """centroid_update in the order csrc/summation_order.h promises, in plain
    PyTorch on the CPU, one rounding per multiply and per add: each cluster's
    members in point order, in runs of `run` summed sequentially in double
    (zero weights skipped, but counted in the run), the runs' sums then added
    in order from 0, and each mean divided once and rounded to x's dtype.
    Both kernels must match it bit for bit."""
    x64, w64, labels = x.cpu().double(), w.cpu().double(), labels.cpu()
    old = centroids.cpu()
    k, d = old.shape
    order = torch.sort(labels, stable=True).indices
    in_order = labels[order]
    counts = torch.bincount(labels, minlength=k)
    rank = torch.arange(labels.numel()) - (torch.cumsum(counts, 0) - counts)[in_order]
    runs = (counts + run - 1) // run
    first_run = torch.cumsum(runs, 0) - runs
    run_of, place = first_run[in_order] + rank // run, rank % run
    run_sum = torch.zeros(int(runs.sum()), d, dtype=torch.float64)
    run_mass = torch.zeros(int(runs.sum()), dtype=torch.float64)
    weighted = w64[order] != 0
    for q in range(int(place.max()) + 1 if place.numel() else 0):  # a run holds one member at each place
        at = (place == q) & weighted
        rows, r = order[at], run_of[at]
        run_sum[r] = run_sum[r] + w64[rows, None] * x64[rows]
        run_mass[r] = run_mass[r] + w64[rows]
    total = torch.zeros(k, d, dtype=torch.float64)
    mass = torch.zeros(k, dtype=torch.float64)
    for j in range(int(runs.max()) if k else 0):
        c = (runs > j).nonzero().flatten()
        total[c] = total[c] + run_sum[first_run[c] + j]
        mass[c] = mass[c] + run_mass[first_run[c] + j]
    means = (total / torch.where(mass > 0, mass, 1.0)[:, None]).to(x.dtype)
    return torch.where((mass > 0)[:, None], means, old), mass


def uniforms(k: int, trials: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1 + (k - 1) * trials, dtype=torch.float64, generator=g)


def seeding_potential(x: torch.Tensor, w: torch.Tensor, idx: torch.Tensor) -> float:
    c = x.double()[idx]
    d2 = torch.cdist(x.double(), c).pow(2).min(dim=1).values
    return float((w.double() * d2).sum())


# --- checks --------------------------------------------------------------------------


def _assert_equal(a: torch.Tensor, b: torch.Tensor, what: str, cand: Backend, oracle: Backend):
    if not torch.equal(a, b):
        diff = (a != b).nonzero().flatten()
        first = int(diff[0])
        raise AssertionError(
            f"{what}: {cand.name} and {oracle.name} differ at {diff.numel()} of {a.numel()} positions, "
            f"first at {first}: {a[first].item()} vs {b[first].item()}"
        )


def _assert_distinct(idx: torch.Tensor, n: int, what: str):
    assert idx.dtype == torch.long, f"{what}: dtype {idx.dtype}, expected int64"
    assert bool(((idx >= 0) & (idx < n)).all()), f"{what}: index out of [0, {n})"
    assert idx.unique().numel() == idx.numel(), f"{what}: an index is returned twice"


def _seed_both(cand: Backend, oracle: Backend, x, w, k: int, trials: int, seed: int, what: str, **kwargs):
    """Seeding by both backends from the same uniforms; the candidate's picks checked distinct."""
    u = uniforms(k, trials, seed=seed)
    a = cand("kmeanspp_seed", x, w, k, u, trials, **kwargs)
    b = oracle("kmeanspp_seed", x, w, k, u, trials, **kwargs)
    _assert_distinct(a, x.shape[0], what)
    return a, b


def check_seed_float64(cand: Backend, oracle: Backend) -> str:
    x, w = random_problem(1500, 24)
    k, trials = 40, 3
    a, b = _seed_both(cand, oracle, x, w, k, trials, 1, "kmeanspp_seed")
    _assert_equal(a, b, "kmeanspp_seed float64", cand, oracle)
    return f"{k} centres, identical"


def check_seed_grid_float32(cand: Backend, oracle: Backend) -> str:
    x, w = grid_problem(700, 5)
    k, trials = 60, 4
    a, b = _seed_both(cand, oracle, x, w, k, trials, 2, "kmeanspp_seed")
    _assert_equal(a, b, "kmeanspp_seed float32 (exact data)", cand, oracle)
    return f"{k} centres, identical"


def check_seed_float32_random(cand: Backend, oracle: Backend) -> str:
    x, w = random_problem(2000, 32, dtype=torch.float32, seed=3)
    k, trials = 50, 3
    a, b = _seed_both(cand, oracle, x, w, k, trials, 3, "kmeanspp_seed")
    pa, pb = seeding_potential(x, w, a), seeding_potential(x, w, b)
    assert pa <= 1.25 * pb, f"kmeanspp_seed float32: potential {pa:.6g} vs {pb:.6g} of {oracle.name}"
    same = int((a == b).sum())
    return f"{same}/{k} picks identical (near-ties may differ), potential ratio {pa / pb:.4f}"


def check_seed_factor(cand: Backend, oracle: Backend) -> str:
    x, w = random_problem(600, 10, seed=4)
    f, _ = random_problem(600, 6, seed=5)
    k, trials = 25, 3
    a, b = _seed_both(cand, oracle, x, w, k, trials, 4, "kmeanspp_seed x_factor", x_factor=f)
    _assert_equal(a, b, "kmeanspp_seed with x_factor", cand, oracle)
    return f"{k} centres, identical"


def check_seed_no_mass_left(cand: Backend, oracle: Backend) -> str:
    # 8 distinct points, each 6 times, some of zero weight; k = 30 > 8 forces
    # the uniform draws among unchosen points.
    # Small integers keep D^2 = 0 exact for the copies of a chosen point.
    base = torch.randint(-4, 5, (8, 5), generator=torch.Generator().manual_seed(6)).double()
    x = base.repeat(6, 1)
    w = torch.ones(48, dtype=torch.float64)
    w[::5] = 0.0
    k, trials = 30, 2
    a, b = _seed_both(cand, oracle, x, w, k, trials, 6, "kmeanspp_seed duplicates")
    _assert_equal(a, b, "kmeanspp_seed with duplicates", cand, oracle)
    zero = torch.zeros_like(w)
    a0 = cand("kmeanspp_seed", x, zero, 10, uniforms(10, 2, seed=7), 2)
    b0 = oracle("kmeanspp_seed", x, zero, 10, uniforms(10, 2, seed=7), 2)
    _assert_equal(a0, b0, "kmeanspp_seed with all weights zero", cand, oracle)
    return "duplicates and all-zero weights identical"


def _exact_sq_dists(x: torch.Tensor, c: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (x.double() - c.double()[labels]).pow(2).sum(dim=1)


def check_assign_float64(cand: Backend, oracle: Backend) -> str:
    x, _ = random_problem(3000, 20, seed=8)
    c = x[torch.randperm(3000, generator=torch.Generator().manual_seed(8))[:70]] + 0.25
    la, da = cand("assign", x, c)
    lb, db = oracle("assign", x, c)
    ea, eb = _exact_sq_dists(x, c, la), _exact_sq_dists(x, c, lb)
    # Where the labels differ the two centroids must tie to rounding.
    differ = la != lb
    gap = (ea - eb).abs()[differ]
    assert bool((gap <= 1e-9 * (1 + eb[differ])).all()), "assign float64: labels differ beyond a near-tie"
    assert int(differ.sum()) <= 3, f"assign float64: {int(differ.sum())} labels differ"
    torch.testing.assert_close(da, ea.to(da.dtype), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(da, db, rtol=1e-12, atol=1e-12)
    return f"{int(differ.sum())} near-tie label(s) differ of {x.shape[0]}"


def check_assign_grid_float32(cand: Backend, oracle: Backend) -> str:
    x, _ = grid_problem(2500, 4, seed=9)
    c = torch.randint(-3, 4, (40, 4), generator=torch.Generator().manual_seed(9)).to(torch.float32)
    c[5] = c[3]  # duplicate centroid: the lower index must win
    la, da = cand("assign", x, c)
    lb, db = oracle("assign", x, c)
    _assert_equal(la, lb, "assign labels (exact ties)", cand, oracle)
    _assert_equal(da, db, "assign sq_dists (exact data)", cand, oracle)
    assert not bool((la == 5).any()), "assign: a duplicate centroid won over its lower index"
    return "identical labels and distances, ties to the lowest index"


def check_assign_float32(cand: Backend, oracle: Backend) -> str:
    x, _ = random_problem(4000, 48, dtype=torch.float32, seed=10)
    c = x[:64] * 0.9
    la, da = cand("assign", x, c)
    lb, db = oracle("assign", x, c)
    ea, eb = _exact_sq_dists(x, c, la), _exact_sq_dists(x, c, lb)
    differ = la != lb
    scale = x.double().pow(2).sum(dim=1) + c.double().pow(2).sum(dim=1).max()
    assert bool(((ea - eb).abs() <= 1e-5 * scale)[differ].all()), "assign float32: labels differ beyond a near-tie"
    torch.testing.assert_close(da, ea.float(), rtol=1e-5, atol=1e-5)
    return f"{int(differ.sum())} near-tie label(s) differ of {x.shape[0]}"


_ORDERED = SimpleNamespace(name="the promised summation order (ordered_centroid_update)")


def _check_update_against_order(cand: Backend, oracle: Backend, x, w, labels, old, rtol: float) -> float:
    """Bitwise against the promised order (and against `oracle` when it runs
    the kernels too); within `rtol` of the plain reference. Returns the
    largest relative difference from `oracle`."""
    ca, ma = cand("centroid_update", x, w, labels, old)
    cb, mb = oracle("centroid_update", x, w, labels, old)
    co, mo = ordered_centroid_update(x, w, labels, old)
    what = f"centroid_update {x.dtype}"
    _assert_equal(ca, co, what, cand, _ORDERED)
    _assert_equal(ma, mo, what + " cluster weights", cand, _ORDERED)
    if oracle.module is ops:
        _assert_equal(ca, cb, what, cand, oracle)
        _assert_equal(ma, mb, what + " cluster weights", cand, oracle)
    else:
        torch.testing.assert_close(ca, cb, rtol=rtol, atol=rtol)
        torch.testing.assert_close(ma, mb, rtol=1e-12, atol=0.0)
    assert ma.dtype == torch.float64, "cluster_weights must be float64"
    return float(((ca.double() - cb.double()).abs() / cb.double().abs().clamp_min(1e-30)).max())


def check_centroid_update(cand: Backend, oracle: Backend) -> str:
    details = []
    for dtype, rtol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        x, w = random_problem(5000, 33, dtype=dtype, seed=11)
        k = 50
        g = torch.Generator().manual_seed(11)
        labels = torch.randint(0, k - 3, (5000,), generator=g)  # clusters k-3.. are empty
        labels[labels == 7] = 8
        w[labels == 9] = 0.0  # cluster 9: points, but no weight
        old = torch.randn(k, 33, generator=g, dtype=torch.float64).to(dtype)
        diff = _check_update_against_order(cand, oracle, x, w, labels, old, rtol)
        ca, ma = cand("centroid_update", x, w, labels, old)
        for empty in (7, 9, k - 3, k - 2, k - 1):
            assert torch.equal(ca[empty], old[empty]), f"centroid_update: empty cluster {empty} moved"
            assert float(ma[empty]) == 0.0
        # Clusters of several runs, zero weights at the runs' edges.
        diff = max(diff, _check_update_against_order(cand, oracle, *run_boundary_problem(dtype), rtol))
        details.append(f"{dtype}: bitwise the promised order, max rel diff from {oracle.name} {diff:.2e}")
    bad = torch.zeros(5000, dtype=torch.long)
    bad[17] = 50
    try:
        cand("centroid_update", x, w, bad, old)
    except ValueError as e:
        assert "labels must be in [0, 50), got 50 at position 17" in str(e), str(e)
    else:
        raise AssertionError("centroid_update accepted a label out of range")
    return "; ".join(details)


def check_nearest_points(cand: Backend, oracle: Backend) -> str:
    x, _ = random_problem(2000, 16, seed=12)
    g = torch.Generator().manual_seed(12)
    c = x[torch.randperm(2000, generator=g)[:60]] + 0.1 * torch.randn(60, 16, generator=g, dtype=torch.float64)
    # 20 copies of one centroid exhaust their short lists: rescans on both sides.
    c[30:50] = c[30]
    exclude = torch.zeros(2000, dtype=torch.bool)
    exclude[torch.randperm(2000, generator=g)[:300]] = True
    a = cand("nearest_points", x, c)
    b = oracle("nearest_points", x, c)
    _assert_distinct(a, 2000, "nearest_points")
    _assert_equal(a, b, "nearest_points", cand, oracle)
    a = cand("nearest_points", x, c, exclude)
    b = oracle("nearest_points", x, c, exclude)
    _assert_distinct(a, 2000, "nearest_points with exclude")
    assert not bool(exclude[a].any()), "nearest_points returned an excluded point"
    _assert_equal(a, b, "nearest_points with exclude", cand, oracle)
    return "identical, with exclude and short-list rescans"


def check_nearest_points_grid(cand: Backend, oracle: Backend) -> str:
    x, _ = grid_problem(400, 3, seed=13)  # many exact duplicates and ties
    c = x[:50].clone()
    a = cand("nearest_points", x, c)
    b = oracle("nearest_points", x, c)
    _assert_distinct(a, 400, "nearest_points grid")
    _assert_equal(a, b, "nearest_points (exact ties)", cand, oracle)
    return "identical under exact ties"


def check_lloyd(cand: Backend, oracle: Backend) -> str:
    x, w = random_problem(3000, 12, seed=14)
    c = x[torch.randperm(3000, generator=torch.Generator().manual_seed(14))[:50]].clone()
    a_c, a_labels, a_sq, a_iter = cand("lloyd", x, w, c, 60, 0.0)
    b_c, b_labels, b_sq, b_iter = oracle("lloyd", x, w, c, 60, 0.0)
    _assert_equal(a_labels, b_labels, "lloyd labels", cand, oracle)
    assert int(a_iter) == int(b_iter), f"lloyd ran {int(a_iter)} iterations on {cand.name}, {int(b_iter)} on {oracle.name}"
    assert torch.allclose(a_c, b_c, rtol=1e-10, atol=1e-12), "lloyd centroids differ"
    assert torch.allclose(a_sq, b_sq, rtol=1e-10, atol=1e-12), "lloyd distances differ"
    return f"identical labels after {int(a_iter)} iterations"


PARITY_CHECKS: List[Callable[[Backend, Backend], str]] = [
    check_seed_float64,
    check_seed_grid_float32,
    check_seed_float32_random,
    check_seed_factor,
    check_seed_no_mass_left,
    check_assign_float64,
    check_assign_grid_float32,
    check_assign_float32,
    check_centroid_update,
    check_nearest_points,
    check_nearest_points_grid,
    check_lloyd,
]


class Outcome(NamedTuple):
    name: str
    passed: bool
    detail: str


def run_checks(cand: Backend, oracle: Backend) -> List[Outcome]:
    outcomes = []
    for check in PARITY_CHECKS:
        try:
            outcomes.append(Outcome(check.__name__, True, check(cand, oracle)))
        except AssertionError as e:
            outcomes.append(Outcome(check.__name__, False, str(e)))
    return outcomes


# --- benchmark -----------------------------------------------------------------------


def embedding_like(n: int, d: int, classes: int = 10, seed: int = 0, device="cpu"):
    """ReLU'd Gaussian mixture features (float32) and softmax probabilities, made on `device`."""
    g = torch.Generator(device=device).manual_seed(seed)
    centres = torch.randn(64, d, generator=g, device=device)
    labels = torch.randint(0, 64, (n,), generator=g, device=device)
    x = torch.relu(centres[labels] + 0.5 * torch.randn(n, d, generator=g, device=device))
    probs = torch.softmax(2.0 * torch.randn(n, classes, generator=g, device=device), dim=1)
    return x, probs


def _timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def benchmark(n: int = 50_000, d: int = 512, budget: int = 500, with_cpu: bool = True) -> str:
    from .selection import select

    x, probs = embedding_like(n, d)
    xg, pg = x.cuda(), probs.cuda()
    select(xg[:2000], pg[:2000], 20, seed=0)  # warm-up: CUDA context, cuBLAS handles
    picks = []
    t_gpu = _timed(lambda: picks.append(select(xg, pg, budget, seed=0)))
    _assert_distinct(picks[0].cpu(), n, "select on the GPU")
    line = f"select N={n} D={d} B={budget}: GPU {t_gpu:.2f} s"
    if with_cpu:
        t_cpu = _timed(lambda: select(x, probs, budget, seed=0))
        line += f", CPU ({torch.get_num_threads()} threads) {t_cpu:.2f} s, speed-up x{t_cpu / t_gpu:.1f}"
    return line


# --- entry point ---------------------------------------------------------------------


def _print_outcomes(title: str, outcomes: List[Outcome]) -> bool:
    print(title)
    for o in outcomes:
        print(f"  [{'ok' if o.passed else 'FAIL'}] {o.name}: {o.detail}")
    return all(o.passed for o in outcomes)


def cuda_unavailable_reason() -> Optional[str]:
    from . import build_info

    if not build_info().get("cuda"):
        return "this build of clue_ext has no CUDA kernels (rebuild with FORCE_CUDA=1)"
    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clue_ext.selftest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-bench", action="store_true", help="skip the GPU vs CPU timing")
    parser.add_argument("--no-cpu-bench", action="store_true", help="time the GPU only")
    args = parser.parse_args(argv)

    from . import build_info

    info = build_info()
    print(f"clue_ext build: {info}")
    ok = _print_outcomes("CPU kernels vs plain-PyTorch reference:",
                         run_checks(Backend(ops, "cpu"), Backend(reference, "cpu")))
    why_not = cuda_unavailable_reason()
    if why_not is None:
        print(f"CUDA device: {torch.cuda.get_device_name()}")
        ok &= _print_outcomes("CUDA kernels vs CPU kernels (same uniforms):",
                              run_checks(Backend(ops, "cuda"), Backend(ops, "cpu")))
        if ok and not args.no_bench:
            print(benchmark(with_cpu=not args.no_cpu_bench))
    verdict = "PASS" if ok else "FAIL"
    if why_not is not None:
        verdict += f" (CPU only; CUDA kernels NOT checked: {why_not})"
    print(f"verdict: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
