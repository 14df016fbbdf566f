"""Where select's time goes under each seeding, and what the cheaper ones cost in objective.

    cd bench && python init_probe.py [WORKLOAD ...] [--per-cluster 8,32] [--faiss]
    (default workloads: the three 48k x 512, K = 500 ones)

For each seed: seeding time, Lloyd time and iterations to the default tolerance,
and the weighted objective relative to exact greedy K-Means++ seeding (mean over
seeds). Also Lloyd stopped after a fixed number of iterations, which shows how
much of the objective the last iterations buy. One process, 2 threads.

The "+ PCA-q Lloyd" rows try a cheaper Lloyd: from the subsample's seeds, Lloyd
runs to convergence on the rows projected onto their q leading weighted
principal directions (each iteration costs q/D of a full one), the full-space
weighted means of the clusters it found start the full Lloyd, which then needs
only a few iterations; "seed s" includes the projection and the projected Lloyd.
``--faiss`` adds faiss-cpu's recipe (the peer of the select benchmarks) as a
last line, its whole time and its objective.
"""

import argparse
import time

import numpy as np
import torch

from clue_ext import ops
from clue_ext.kmeans import default_local_trials, draw_uniforms, mean_feature_variance, subsample_rows
from clue_ext.warm_start import weighted_principal_directions
from workloads import CLIPART_SKETCH, CLIPART_SKETCH_LOWRANK, CLIPART_SKETCH_UNEQUAL, DIGITS, TARGET
from workloads import faiss_recipe, weighted_inertia

WORKLOADS = {w.name: w for w in (TARGET, DIGITS, CLIPART_SKETCH, CLIPART_SKETCH_UNEQUAL, CLIPART_SKETCH_LOWRANK)}
SEEDS = (0, 1, 2)
CAPS = (10, 20)
PROJECTIONS = (32, 64)


def objective(x, w, centroids):
    return weighted_inertia(x.numpy(), w.numpy(), centroids.numpy())


def starts(x, w, k, seed, per_cluster_sizes):
    """(name, seconds, starting centroids) of each seeding."""
    trials = default_local_trials(k)
    uniforms = draw_uniforms(1 + (k - 1) * trials, seed)
    start = time.perf_counter()
    exact = x.index_select(0, ops.kmeanspp_seed(x, w, k, uniforms, trials))
    yield "k-means++", time.perf_counter() - start, exact
    for per_cluster in per_cluster_sizes:
        rows = subsample_rows(x.shape[0], k, seed, per_cluster=per_cluster, min_rows=0)
        if rows is None:
            continue
        start = time.perf_counter()
        xs, ws = x.index_select(0, rows), w.index_select(0, rows)
        centres = xs.index_select(0, ops.kmeanspp_seed(xs, ws, k, uniforms, trials))
        seconds = time.perf_counter() - start
        yield f"subsample {per_cluster}k", seconds, centres
        if per_cluster == 32:
            for q in PROJECTIONS:
                start = time.perf_counter()
                warm = projected_lloyd_start(x, w, centres, q)
                yield f"  + PCA-{q} Lloyd", seconds + time.perf_counter() - start, warm


def projected_lloyd_start(x, w, centres, q):
    """Full-space centres after Lloyd to convergence on the q-dimensional weighted PCA projection of x
    (all rows; the default init estimates the directions on a sample and stops after 20 iterations)."""
    mean, directions, _ = weighted_principal_directions(x, w, q)
    projected = ((x - mean) @ directions).contiguous()
    tol = mean_feature_variance(projected) * 1e-4
    _, labels, _, _ = ops.lloyd(projected, w, ((centres - mean) @ directions).contiguous(), 300, tol)
    means, _ = ops.centroid_update(x, w, labels, centres)
    return means


def probe(workload, per_cluster_sizes, with_faiss):
    x, _, w = workload.make()
    x, w = torch.from_numpy(x), torch.from_numpy(w)
    tol = mean_feature_variance(x) * 1e-4
    table = {}
    for seed in SEEDS:
        for name, seed_seconds, centres in starts(x, w, workload.budget, seed, per_cluster_sizes):
            start = time.perf_counter()
            final, _, _, n_iter = ops.lloyd(x, w, centres, 300, tol)
            row = [seed_seconds, time.perf_counter() - start, int(n_iter), objective(x, w, final)]
            for cap in CAPS:
                capped, _, _, _ = ops.lloyd(x, w, centres, cap, tol)
                row.append(objective(x, w, capped))
            table.setdefault(name, []).append(row)
    base = np.mean([row[3] for row in table["k-means++"]])
    share = weighted_principal_directions(x, w, 32)[2]
    print(f"\n{workload.name}: N={workload.n} D={workload.d} K={workload.budget}; "
          f"the 32 leading weighted principal directions hold {100 * share:.0f}% of the variance")
    print(f"{'seeding':16s} {'seed s':>7s} {'Lloyd s':>8s} {'iters':>6s} {'objective':>10s}"
          + "".join(f" {'at ' + str(c) + ' it':>9s}" for c in CAPS))
    for name, rows in table.items():
        a = np.asarray(rows)
        print(f"{name:16s} {a[:, 0].mean():7.2f} {a[:, 1].mean():8.2f} {a[:, 2].mean():6.1f} "
              f"{100 * (a[:, 3].mean() / base - 1):+9.2f}%"
              + "".join(f" {100 * (a[:, 4 + i].mean() / base - 1):+8.2f}%" for i in range(len(CAPS))))
    if with_faiss:
        runs = []
        for seed in SEEDS:
            start = time.perf_counter()
            _, centroids = faiss_recipe(x.numpy(), w.numpy(), workload.budget, seed)
            runs.append((time.perf_counter() - start, objective(x, w, torch.from_numpy(centroids))))
        a = np.asarray(runs)
        print(f"{'faiss-cpu recipe':16s} {a[:, 0].mean():7.2f} s in all {100 * (a[:, 1].mean() / base - 1):+15.2f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help=f"any of {', '.join(sorted(WORKLOADS))}",
                        default=["clipart-sketch", "clipart-sketch-unequal", "clipart-sketch-lowrank"])
    parser.add_argument("--per-cluster", default="8,32",
                        help="subsample sizes to try, in rows per centre (the PCA rows start from 32)")
    parser.add_argument("--faiss", action="store_true", help="also time faiss-cpu's recipe")
    args = parser.parse_args()
    unknown = [n for n in args.workloads if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; valid: {', '.join(sorted(WORKLOADS))}")
    sizes = tuple(int(v) for v in args.per_cluster.split(","))
    torch.set_num_threads(2)
    for name in args.workloads:
        probe(WORKLOADS[name], sizes, args.faiss)


if __name__ == "__main__":
    main()
