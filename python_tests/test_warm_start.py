"""The "fast" init's projected warm start (clue_ext/warm_start.py)."""

import numpy as np
import pytest
import torch

import clue_ext
from clue_ext import ops, reference
from clue_ext.warm_start import (COVARIANCE_ROWS, MIN_VARIANCE_SHARE, covariance_rows, projected_lloyd_start,
                                 weighted_principal_directions)


def low_rank(n, d, rank, seed, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, rank, generator=g) @ torch.randn(rank, d, generator=g) / rank**0.5
    return torch.relu(x + noise * torch.randn(n, d, generator=g)), torch.rand(n, generator=g) + 0.05


def mixture(n, d, components, seed):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(components, d, generator=g)
    x = means[torch.randint(0, components, (n,), generator=g)] + 0.5 * torch.randn(n, d, generator=g)
    return x, torch.rand(n, generator=g) + 0.05


def test_principal_directions_are_numpys_weighted_pca():
    x, w = low_rank(500, 40, 5, seed=0)
    x, w = x.double(), w.double()
    mean, directions, share = weighted_principal_directions(x, w, 6)
    xn, wn = x.numpy(), w.numpy()
    want_mean = np.average(xn, axis=0, weights=wn)
    centred = xn - want_mean
    values, vectors = np.linalg.eigh((centred * wn[:, None]).T @ centred)
    np.testing.assert_allclose(mean.numpy(), want_mean, rtol=1e-10, atol=1e-12)
    # Same subspace (the signs and order of the vectors may differ).
    got_projector = directions @ directions.T
    want_projector = vectors[:, -6:] @ vectors[:, -6:].T
    np.testing.assert_allclose(got_projector.numpy(), want_projector, atol=1e-8)
    assert share == pytest.approx(values[-6:].sum() / values.sum(), rel=1e-9)
    assert weighted_principal_directions(x, torch.zeros_like(w), 6) is None


def test_covariance_rows_are_a_seeded_sample():
    assert covariance_rows(COVARIANCE_ROWS, seed=1) is None
    rows = covariance_rows(10_000, seed=1)
    assert rows.numel() == COVARIANCE_ROWS and torch.equal(rows, rows.unique())
    assert torch.equal(rows, covariance_rows(10_000, seed=1))
    assert not torch.equal(rows, covariance_rows(10_000, seed=2))


def test_projection_is_skipped_when_it_holds_too_little_variance():
    # 300 clusters spread over 256 dimensions: 32 directions hold well under half.
    x, w = mixture(4000, 256, 300, seed=0)
    assert weighted_principal_directions(x, w, 32)[2] < MIN_VARIANCE_SHARE
    seeds = x[:10].clone()
    assert projected_lloyd_start(ops, x, w, seeds, seed=0, tol=1e-4) is seeds
    fast = clue_ext.weighted_kmeans(x, w, 10, seed=3)
    subsample = clue_ext.weighted_kmeans(x, w, 10, seed=3, init="subsample")
    assert torch.equal(fast.labels, subsample.labels)


def test_low_rank_features_need_fewer_full_lloyd_iterations():
    x, w = low_rank(8000, 128, 8, seed=1)
    assert weighted_principal_directions(x, w, 32)[2] >= MIN_VARIANCE_SHARE
    fast = [clue_ext.weighted_kmeans(x, w, 60, seed=s) for s in range(3)]
    subsample = [clue_ext.weighted_kmeans(x, w, 60, seed=s, init="subsample") for s in range(3)]
    assert sum(r.n_iter for r in fast) < 0.7 * sum(r.n_iter for r in subsample)
    assert np.mean([r.inertia for r in fast]) <= 1.005 * np.mean([r.inertia for r in subsample])


def test_warm_start_lowers_the_objective_of_the_seeds():
    x, w = low_rank(3000, 96, 4, seed=2)
    x, w = x.double(), w.double()
    seeds = x[torch.arange(0, 3000, 300)].clone()
    start = projected_lloyd_start(ops, x, w, seeds, seed=0, tol=1e-4)
    assert torch.allclose(start, projected_lloyd_start(reference, x, w, seeds, seed=0, tol=1e-4), rtol=1e-9, atol=1e-12)

    def objective(centroids):
        return float((w * ops.assign(x, centroids)[1]).sum())

    assert objective(start) < 0.9 * objective(seeds)
    # Full-space means of clusters, not points of x.
    assert not bool((torch.cdist(start, x).min(dim=1).values < 1e-9).any())


def test_few_clusters_skip_the_projection_and_its_directions(monkeypatch):
    # Below MIN_CLUSTERS a full-space iteration costs less than the projection's own GEMM.
    from clue_ext import warm_start

    assert not warm_start.worth_projecting(128, warm_start.MIN_CLUSTERS - 1)
    assert warm_start.worth_projecting(128, warm_start.MIN_CLUSTERS)
    x, w = low_rank(3000, 128, 8, seed=4)
    calls = []
    monkeypatch.setattr(warm_start, "weighted_principal_directions",
                        lambda *args, **kwargs: calls.append(1) or weighted_principal_directions(*args, **kwargs))
    few = clue_ext.weighted_kmeans(x, w, warm_start.MIN_CLUSTERS - 1, seed=1)
    assert calls == [] and torch.equal(
        few.labels, clue_ext.weighted_kmeans(x, w, warm_start.MIN_CLUSTERS - 1, seed=1, init="subsample").labels)
    clue_ext.weighted_kmeans(x, w, warm_start.MIN_CLUSTERS, seed=1)
    assert calls == [1]


def test_directions_are_left_out_below_the_share_taken():
    x, w = mixture(4000, 256, 300, seed=0)
    mean, directions, share = weighted_principal_directions(x, w, 32, MIN_VARIANCE_SHARE)
    full = weighted_principal_directions(x, w, 32)
    assert full[1].shape == (256, 32) and torch.equal(full[0], mean)
    # Left out on the norm bound alone: share is then an upper bound of the true one.
    assert directions is None and full[2] <= share < MIN_VARIANCE_SHARE
    # A share above the bound's reach but below the one asked for: decided by the eigenvalues.
    _, directions, exact = weighted_principal_directions(x, w, 32, (full[2] + share) / 2)
    assert directions is None and exact == full[2]
    # Low-rank features: the bound cannot rule them out and the directions are computed.
    lx, lw = low_rank(4000, 128, 8, seed=1)
    taken = weighted_principal_directions(lx, lw, 32, MIN_VARIANCE_SHARE)
    assert taken[1] is not None and taken[2] >= MIN_VARIANCE_SHARE
