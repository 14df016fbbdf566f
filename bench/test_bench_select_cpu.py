"""CPU timing of CLUE selection against the original recipe (scikit-learn) and faiss-cpu.

    pytest bench/test_bench_select_cpu.py --benchmark-disable-gc -s

Every method runs once per seed; the table printed at the end gives the mean
time per run as a ratio to clue_ext.select (its default, init="fast"), the mean
weighted K-Means objective as a ratio to scikit-learn's, and the picks' mean
weighted coverage (sum of w times the squared distance to the nearest pick) as
a ratio to the original recipe's. scikit-activeml's Clue (the maintained library
version of the strategy) runs as a peer when installed. The exact seeding (init="k-means++") and the
default without Lloyd's label rule (label_tol=0: scikit-learn's stopping rules only) run as extra rows. The methods run one after the other,
each for a few seconds, and this machine's speed drifts on that scale, so a
second measurement alternates select and the scikit-learn recipe seed by seed:
both then see the same conditions, and their ratio is printed under the table.
"""

import time

import numpy as np
import pytest
import torch

import clue_ext
from clue_ext import ops
from clue_ext.kmeans import DEFAULT_LABEL_TOL, default_local_trials, lloyd, seed_centroids, warm_start
from clue_ext.warm_start import PROJECTION_DIMS, covariance_rows, weighted_principal_directions
from conftest import bench_seeds
from workloads import CLIPART_SKETCH, CLIPART_SKETCH_LOWRANK, CLIPART_SKETCH_UNEQUAL, DIGITS, TARGET
from workloads import faiss_recipe, skactiveml_clue, sklearn_recipe, weighted_coverage, weighted_inertia

WORKLOADS = [TARGET, DIGITS, CLIPART_SKETCH, CLIPART_SKETCH_UNEQUAL, CLIPART_SKETCH_LOWRANK]


@pytest.fixture(scope="module", params=WORKLOADS, ids=lambda w: w.name)
def data(request):
    workload = request.param
    x, p, w = workload.make()
    return workload, x, p, w


def per_seed(benchmark, fn, warmup=None):
    """Runs fn(seed) once per seed under the benchmark; returns the results.

    One untimed call first, `warmup()` or else a full fn(first seed), takes the
    first-call costs (imports, page faults of fresh buffers, lazy
    initialisation) out of the timings.
    """
    seeds = iter(bench_seeds())
    results = []
    if warmup is not None:
        warmup()
    else:
        fn(bench_seeds()[0])

    def setup():
        return (next(seeds),), {}

    def run(seed):
        results.append(fn(seed))

    benchmark.pedantic(run, setup=setup, rounds=len(bench_seeds()), iterations=1)
    return results


def mean_coverage(x, w, runs):
    return np.mean([weighted_coverage(x, w, picks) for picks in runs])


@pytest.mark.parametrize("method,options", [
    ("clue_ext.select", {}),
    ("clue_ext.select init=k-means++", dict(init="k-means++")),
    ("clue_ext.select label_tol=0", dict(label_tol=0)),
], ids=["default", "exact-seeding", "no-label-rule"])
def test_clue_ext_select(benchmark, data, record, method, options):
    workload, x, p, w = data
    picks = per_seed(benchmark, lambda seed: clue_ext.select(x, p, workload.budget, seed=seed, **options))
    for idx in picks:
        assert len(set(idx.tolist())) == workload.budget
    inertia = np.mean([clue_ext.weighted_kmeans(x, w, workload.budget, seed=s, **options).inertia
                       for s in bench_seeds()])
    record(workload, method, benchmark.stats.stats.mean, inertia, coverage=mean_coverage(x, w, picks))


def test_weighted_kmeans(benchmark, data, record):
    workload, x, p, w = data
    results = per_seed(benchmark, lambda seed: clue_ext.weighted_kmeans(x, w, workload.budget, seed=seed))
    record(workload, "clue_ext.weighted_kmeans", benchmark.stats.stats.mean, np.mean([r.inertia for r in results]))


def test_sklearn_recipe(benchmark, data, record):
    workload, x, p, w = data
    # The recipe runs for seconds: a small problem is enough to warm it up.
    runs = per_seed(benchmark, lambda seed: sklearn_recipe(x, w, workload.budget, seed),
                    warmup=lambda: sklearn_recipe(x[:2000], w[:2000], 10, 0))
    for picks, _ in runs:
        assert len(set(picks.tolist())) == workload.budget
    inertia = np.mean([weighted_inertia(x, w, centroids) for _, centroids in runs])
    record(workload, "scikit-learn recipe", benchmark.stats.stats.mean, inertia,
           coverage=mean_coverage(x, w, [picks for picks, _ in runs]))


def test_faiss(benchmark, data, record):
    pytest.importorskip("faiss")
    workload, x, p, w = data
    runs = per_seed(benchmark, lambda seed: faiss_recipe(x, w, workload.budget, seed))
    for picks, _ in runs:
        assert len(set(picks.tolist())) == workload.budget
    inertia = np.mean([weighted_inertia(x, w, centroids) for _, centroids in runs])
    record(workload, "faiss-cpu", benchmark.stats.stats.mean, inertia,
           coverage=mean_coverage(x, w, [picks for picks, _ in runs]))


def test_skactiveml_clue(benchmark, data, record):
    pytest.importorskip("skactiveml")
    workload, x, p, w = data
    runs = per_seed(benchmark, lambda seed: skactiveml_clue(x, p, workload.budget, seed),
                    warmup=lambda: skactiveml_clue(x[:2000], p[:2000], 10, 0))
    for picks in runs:
        assert len(set(picks.tolist())) == workload.budget
    # Its centroids stay inside the strategy: coverage only.
    record(workload, "scikit-activeml Clue", benchmark.stats.stats.mean, None, coverage=mean_coverage(x, w, runs))


def test_interleaved_with_sklearn(data, record_interleaved):
    workload, x, p, w = data
    clue_ext.select(x, p, workload.budget, seed=bench_seeds()[0])  # first-call costs out of the timings
    sklearn_recipe(x[:2000], w[:2000], 10, 0)
    ours = theirs = 0.0
    for seed in bench_seeds():
        start = time.perf_counter()
        clue_ext.select(x, p, workload.budget, seed=seed)
        middle = time.perf_counter()
        picks, _ = sklearn_recipe(x, w, workload.budget, seed)
        ours += middle - start
        theirs += time.perf_counter() - middle
        assert len(set(picks.tolist())) == workload.budget
    record_interleaved(workload, ours / len(bench_seeds()), theirs / len(bench_seeds()))


def test_stages_of_select(data, record_stages):
    """Times the stages of the default select one by one: seeding on the
    subsample, the projected warm start, Lloyd on every row, nearest points
    (from Lloyd's labels, as select finds them; the plain pass timed beside it)."""
    workload, x, p, w = data
    x, w = torch.from_numpy(x), torch.from_numpy(w)
    k, trials = workload.budget, default_local_trials(workload.budget)
    fastest = {}
    iterations, projected, passes, plain_seconds, agreeing = [], [], [], [], []

    def timed(stage, fn):
        start = time.perf_counter()
        out = fn()
        fastest[stage] = min(fastest.get(stage, float("inf")), time.perf_counter() - start)
        return out

    def one_select(seed):
        seeds = timed("seeding", lambda: seed_centroids(ops, x, w, k, seed=seed, n_local_trials=trials, init="fast"))
        start = timed("warm start", lambda: warm_start(ops, x, w, seeds, seed=seed, max_iter=300, tol=1e-4,
                                                       init="fast", label_tol=DEFAULT_LABEL_TOL))
        result = timed("Lloyd", lambda: lloyd(ops, x, w, start, max_iter=300, tol=1e-4, label_tol=DEFAULT_LABEL_TOL))
        iterations.append(result.n_iter)
        # Distances each assignment computed, as a fraction of N x K (one full pass = 1).
        passes.append([count / (x.shape[0] * k) for count in torch.ops.clue_ext.lloyd_distance_counts()])
        projected.append(start is not seeds)
        picks = timed("nearest points", lambda: ops.nearest_points_labelled(x, result.centroids, result.labels))
        assert len(set(picks.tolist())) == k
        # The plain pass over every (point, centroid), timed beside it.
        start_plain = time.perf_counter()
        plain = ops.nearest_points(x, result.centroids)
        plain_seconds.append(time.perf_counter() - start_plain)
        agreeing.append(int((plain == picks).sum()))  # float32 near-ties may rank either way

    one_select(bench_seeds()[0])  # first-call costs out of the timings
    fastest.clear()
    iterations.clear()
    projected.clear()
    passes.clear()
    plain_seconds.clear()
    agreeing.clear()
    for seed in bench_seeds():
        one_select(seed)
    rows = covariance_rows(x.shape[0], bench_seeds()[0])
    share = weighted_principal_directions(x[rows], w[rows], PROJECTION_DIMS)[2]
    record_stages(workload, fastest, f"Lloyd iterations (mean): {np.mean(iterations):.1f}; "
                                     f"projected warm start taken: {sum(projected)} of {len(projected)} seeds "
                                     f"(the {PROJECTION_DIMS} leading directions hold {100 * share:.0f}% of the "
                                     "weighted variance). " + distance_note(passes) +
                                     f". Nearest points by the plain pass: {min(plain_seconds):.3f} s, "
                                     f"{min(agreeing)} of {k} picks the same")


def distance_note(passes):
    """Distances Lloyd computed, in full passes over N x K: the mean total, and the
    first seed's per assignment (machine independent, unlike the seconds)."""
    first = ", ".join(f"{p:.3f}" for p in passes[0])
    return (f"Lloyd's distances in passes of N x K: {np.mean([sum(p) for p in passes]):.2f} in all (mean); "
            f"per assignment, seed {bench_seeds()[0]}: {first}")
