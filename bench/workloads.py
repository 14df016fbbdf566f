"""Synthetic embedding-like workloads and the peers the benchmarks compare with.

Features are ReLU'd like post-ReLU penultimate CNN features; probabilities
come from random logits. Three kinds:

* ``mixture``: 345 equal Gaussian components, noise 0.5 (Lloyd converges in
  under ten iterations: the easy case);
* ``unequal``: component sizes from a Dirichlet(0.3) and noise scales from
  0.3 to 1.5 per component;
* ``lowrank``: a rank-32 Gaussian factor model plus isotropic noise 0.5, no
  clusters at all (Lloyd needs 50-60 iterations at K = 500).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    n: int
    d: int
    budget: int
    classes: int = 10
    mixture: int = 345
    kind: str = "mixture"

    def make(self, seed: int = 0):
        """(features float32 (n, d), probs float32 (n, classes), entropy weights float32 (n,))."""
        rng = np.random.default_rng(seed)
        x = _FEATURES[self.kind](self, rng)
        np.maximum(x, 0, out=x)
        logits = rng.normal(size=(self.n, self.classes)) * 2
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w = -(p * np.log(p)).sum(1)
        return np.ascontiguousarray(x), p.astype(np.float32), w.astype(np.float32)


def _mixture(workload, rng):
    means = rng.normal(size=(workload.mixture, workload.d)).astype(np.float32)
    component = rng.integers(0, workload.mixture, workload.n)
    return means[component] + 0.5 * rng.normal(size=(workload.n, workload.d)).astype(np.float32)


def _unequal(workload, rng):
    means = rng.normal(size=(workload.mixture, workload.d)).astype(np.float32)
    component = rng.choice(workload.mixture, workload.n, p=rng.dirichlet(np.full(workload.mixture, 0.3)))
    scale = rng.uniform(0.3, 1.5, workload.mixture).astype(np.float32)
    noise = rng.normal(size=(workload.n, workload.d)).astype(np.float32)
    return means[component] + scale[component, None] * noise


def _lowrank(workload, rng, rank=32):
    factors = rng.normal(size=(workload.n, rank)).astype(np.float32)
    loadings = (rng.normal(size=(rank, workload.d)) / np.sqrt(rank)).astype(np.float32)
    return factors @ loadings + 0.5 * rng.normal(size=(workload.n, workload.d)).astype(np.float32)


_FEATURES = {"mixture": _mixture, "unequal": _unequal, "lowrank": _lowrank}

TARGET = Workload("issue-target", 20_000, 256, 200)
DIGITS = Workload("digits", 60_000, 500, 10)
CLIPART_SKETCH = Workload("clipart-sketch", 48_000, 512, 500)
CLIPART_SKETCH_UNEQUAL = Workload("clipart-sketch-unequal", 48_000, 512, 500, kind="unequal")
CLIPART_SKETCH_LOWRANK = Workload("clipart-sketch-lowrank", 48_000, 512, 500, kind="lowrank")


def weighted_inertia(x: np.ndarray, w: np.ndarray, centroids: np.ndarray) -> float:
    """sum_i w_i min_k ||x_i - c_k||^2, exact (clue_ext's assign recomputes the winner's distance)."""
    from clue_ext import ops

    _, sq = ops.assign(torch.from_numpy(x).double(), torch.from_numpy(np.asarray(centroids)).double())
    return float((torch.from_numpy(w).double() * sq).sum())


def weighted_coverage(x: np.ndarray, w: np.ndarray, picks) -> float:
    """sum_i w_i min_p ||x_i - x_p||^2 over the picked rows p: how well the picks cover the pool."""
    return weighted_inertia(x, w, x[np.asarray(picks)])


def distinct_nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The original CLUE recipe's last step: nearest pool point per centroid,
    collisions filled with the next-nearest points of the first centroids."""
    from sklearn.metrics import pairwise_distances

    dist = pairwise_distances(centroids, x)
    order = np.argsort(dist, axis=1)
    picks = list(dict.fromkeys(order[:, 0].tolist()))
    rank = 1
    while len(picks) < len(centroids):
        for row in order[:, rank]:
            if row not in picks and len(picks) < len(centroids):
                picks.append(int(row))
        rank += 1
    return np.asarray(picks)


def sklearn_recipe(x, w, budget, seed):
    """CLUE as the authors' code runs it: KMeans(B).fit(x, sample_weight=w), then nearest points."""
    from sklearn.cluster import KMeans

    km = KMeans(budget, n_init=1, random_state=seed).fit(x, sample_weight=w)
    return distinct_nearest(x, km.cluster_centers_), km.cluster_centers_


def faiss_recipe(x, w, budget, seed):
    """faiss-cpu's weighted K-Means (random init, 25 iterations) and a flat index for the nearest points."""
    import faiss

    km = faiss.Kmeans(x.shape[1], budget, seed=seed)
    km.train(x, weights=w)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    _, nearest = index.search(km.centroids, min(budget + 1, len(x)))
    picks = list(dict.fromkeys(nearest[:, 0].tolist()))
    for column in nearest.T[1:]:
        for row in column:
            if len(picks) < budget and int(row) not in picks:
                picks.append(int(row))
    return np.asarray(picks[:budget]), km.centroids


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def skactiveml_clue(x, p, budget, seed):
    """scikit-activeml's Clue (the maintained library version of the strategy): entropy
    weights from the given class probabilities, scikit-learn's KMeans, nearest points.
    Returns the picks; scikit-activeml must be installed (the bench extra)."""
    from skactiveml.base import SkactivemlClassifier
    from skactiveml.pool import Clue

    class FixedProbabilities(SkactivemlClassifier):
        """A classifier whose predictions are the pool's given probabilities."""

        def __init__(self, probs=None, classes=None, missing_label=np.nan):
            super().__init__(classes=classes, missing_label=missing_label)
            self.probs = probs

        def fit(self, X, y, sample_weight=None):
            return self

        def predict_proba(self, X):
            return self.probs

    model = FixedProbabilities(p, classes=np.arange(p.shape[1]))
    y = np.full(len(x), np.nan)
    strategy = Clue(random_state=seed, cluster_algo_dict={"n_init": 1, "random_state": seed})
    return np.asarray(strategy.query(x, y, model, fit_estimator=False, batch_size=budget))
