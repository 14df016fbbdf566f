"""Each op against the plain-PyTorch reference, plus the contract's edge cases."""

import pytest
import torch

from clue_ext import ops, reference
from clue_ext.kmeans import draw_uniforms

DTYPES = [torch.float64, torch.float32]


def blobs(n, d, centres, generator, dtype=torch.float64, spread=0.3):
    means = torch.randn(centres, d, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, centres, (n,), generator=generator)
    x = means[labels] + spread * torch.randn(n, d, generator=generator, dtype=torch.float64)
    return x.to(dtype)


def seed_inputs(n, d, k, trials, generator, dtype, device):
    x = blobs(n, d, 7, generator, dtype).to(device)
    w = torch.rand(n, generator=generator, dtype=torch.float64).to(dtype).to(device)
    u = draw_uniforms(1 + (k - 1) * trials, 99).to(device)
    return x, w, u


# --- seeding -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,k,trials", [(300, 5, 12, 4), (700, 33, 40, 5), (64, 3, 64, 2), (500, 16, 20, 1)])
def test_seed_matches_reference(device, dtype, n, d, k, trials, rng):
    x, w, u = seed_inputs(n, d, k, trials, rng, dtype, device)
    got = ops.kmeanspp_seed(x, w, k, u, trials)
    want = reference.kmeanspp_seed(x, w, k, u, trials)
    assert got.dtype == torch.long and got.device.type == device
    assert got.tolist() == want.tolist()


def test_seed_with_factor_matches_explicit_outer_products(device, rng):
    n, k, trials = 200, 15, 4
    a = torch.randn(n, 6, generator=rng, dtype=torch.float64).to(device)
    f = torch.randn(n, 9, generator=rng, dtype=torch.float64).to(device)
    w = torch.rand(n, generator=rng, dtype=torch.float64).to(device)
    u = draw_uniforms(1 + (k - 1) * trials, 3).to(device)
    explicit = (a[:, :, None] * f[:, None, :]).flatten(1)
    got = ops.kmeanspp_seed(a, w, k, u, trials, f)
    assert got.tolist() == reference.kmeanspp_seed(a, w, k, u, trials, f).tolist()
    assert got.tolist() == ops.kmeanspp_seed(explicit, w, k, u, trials).tolist()


def test_seed_half_precision_filter_changes_no_pick(rng):
    # float32 seeding measures points on a half-precision copy first. Seeding
    # the same points as outer products with a column of ones takes the plain
    # float32 path (no copy, same products), so the picks must be identical.
    for n, d, k, spread in [(4000, 64, 60, 0.3), (3000, 300, 40, 2.0), (2000, 7, 120, 0.05)]:
        x = blobs(n, d, 25, rng, torch.float32, spread=spread) * 1000.0
        w = torch.rand(n, generator=rng)
        u = draw_uniforms(1 + (k - 1) * 6, n)
        filtered = ops.kmeanspp_seed(x, w, k, u, 6)
        plain = ops.kmeanspp_seed(x, w, k, u, 6, torch.ones(n, 1))
        assert filtered.tolist() == plain.tolist()


def test_seed_never_repeats_an_index_with_duplicate_rows(device):
    # 5 distinct points, each repeated 8 times, and k larger than 5.
    base = torch.arange(5, dtype=torch.float64)[:, None] * torch.ones(1, 3, dtype=torch.float64)
    x = base.repeat(8, 1).to(device)
    w = torch.ones(40, dtype=torch.float64, device=device)
    for k in (5, 12, 40):
        idx = ops.kmeanspp_seed(x, w, k, draw_uniforms(1 + (k - 1) * 3, k).to(device), 3)
        assert len(set(idx.tolist())) == k
        # The first five picks cover the five distinct points.
        assert len({int(x[i, 0]) for i in idx[:5].tolist()}) == 5


def test_seed_skips_zero_weight_points_while_others_remain(device):
    # An 8-point square; point 0 is far away but has zero weight.
    x = torch.tensor([[100.0, 100.0], [0, 0], [0, 1], [1, 0], [1, 1], [5, 5], [5, 6], [6, 5]],
                     dtype=torch.float64, device=device)
    w = torch.ones(8, dtype=torch.float64, device=device)
    w[0] = 0.0
    for seed in range(20):
        idx = ops.kmeanspp_seed(x, w, 7, draw_uniforms(1 + 6 * 3, seed).to(device), 3)
        assert 0 not in idx.tolist()
    # Once every positive-weight point is a centre, the zero-weight one is used.
    idx = ops.kmeanspp_seed(x, w, 8, draw_uniforms(1 + 7 * 3, 0).to(device), 3)
    assert sorted(idx.tolist()) == list(range(8))


def test_seed_with_all_zero_weights_draws_uniformly_and_distinct(device):
    x = torch.randn(50, 4, dtype=torch.float64, device=device)
    w = torch.zeros(50, dtype=torch.float64, device=device)
    idx = ops.kmeanspp_seed(x, w, 10, draw_uniforms(1 + 9 * 2, 0).to(device), 2)
    assert len(set(idx.tolist())) == 10
    assert idx.tolist() == reference.kmeanspp_seed(x, w, 10, draw_uniforms(1 + 9 * 2, 0).to(device), 2).tolist()


def test_seed_greedy_picks_the_far_cluster(device):
    # Two tight pairs far apart: after the first centre, every candidate in the
    # other pair removes far more potential, so the second centre is there.
    x = torch.tensor([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]], dtype=torch.float64, device=device)
    w = torch.ones(4, dtype=torch.float64, device=device)
    for seed in range(10):
        idx = ops.kmeanspp_seed(x, w, 2, draw_uniforms(1 + 3, seed).to(device), 3).tolist()
        assert {idx[0] // 2, idx[1] // 2} == {0, 1}


def test_seed_rejects_bad_arguments(device):
    x = torch.randn(10, 3, dtype=torch.float64, device=device)
    w = torch.ones(10, dtype=torch.float64, device=device)
    u = draw_uniforms(1 + 4 * 2, 0).to(device)
    with pytest.raises(ValueError, match="k must be in"):
        ops.kmeanspp_seed(x, w, 11, draw_uniforms(1 + 10 * 2, 0).to(device), 2)
    with pytest.raises(ValueError, match="uniforms must hold"):
        ops.kmeanspp_seed(x, w, 5, u[:-1], 2)
    with pytest.raises(TypeError, match="weights must have the dtype of x"):
        ops.kmeanspp_seed(x, w.float(), 5, u, 2)
    with pytest.raises(ValueError, match="x must be 2-D"):
        ops.kmeanspp_seed(x[0], w, 5, u, 2)


# --- assignment -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,k", [(1000, 17, 9), (257, 64, 300), (3, 2, 1)])
def test_assign_matches_reference(device, dtype, n, d, k, rng):
    x = blobs(n, d, 5, rng, dtype).to(device)
    c = (x[torch.randperm(n, generator=rng)[: min(k, n)]] + 0.01).repeat((k + n - 1) // n, 1)[:k]
    labels, sq = ops.assign(x, c)
    ref_labels, ref_sq = reference.assign(x, c)
    assert labels.dtype == torch.long and sq.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    # Compare costs at the chosen labels, not the labels (ties are possible).
    chosen = ((x.double() - c.double()[labels]) ** 2).sum(1)
    assert torch.allclose(chosen, ref_sq.double(), rtol=tol, atol=tol)
    assert torch.allclose(sq.double(), chosen, rtol=1e-6, atol=1e-6)
    if dtype == torch.float64:
        assert torch.equal(labels, ref_labels)


def test_assign_breaks_ties_to_the_lowest_index(device):
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]], dtype=torch.float64, device=device)
    c = torch.tensor([[5.0, 5.0], [1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64, device=device)
    labels, sq = ops.assign(x, c)
    # Point 0 is 1 away from centroids 1, 2 and 3: the lowest index wins.
    assert labels.tolist() == [1, 1, 1]
    assert sq.tolist() == [1.0, 1.0, 0.0]


def test_assign_rejects_mismatched_columns(device):
    x = torch.randn(5, 3, device=device)
    with pytest.raises(ValueError, match="centroids must have 3 columns"):
        ops.assign(x, torch.randn(2, 4, device=device))


# --- centroid update ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_centroid_update_matches_reference(device, dtype, rng):
    x = blobs(2000, 24, 6, rng, dtype).to(device)
    w = torch.rand(2000, generator=rng, dtype=torch.float64).to(dtype).to(device)
    c = x[:30].clone()
    labels = torch.randint(0, 30, (2000,), generator=rng).to(device)
    got, mass = ops.centroid_update(x, w, labels, c)
    want, want_mass = reference.centroid_update(x, w, labels, c)
    assert mass.dtype == torch.float64
    assert torch.allclose(mass, want_mass, rtol=1e-12)
    assert torch.allclose(got.double(), want.double(), rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=1e-6)


def test_centroid_update_keeps_rows_of_zero_weight_clusters(device):
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0], [7.0, 7.0]], dtype=torch.float64, device=device)
    w = torch.tensor([1.0, 3.0, 0.0, 0.0], dtype=torch.float64, device=device)
    labels = torch.tensor([0, 0, 1, 1], device=device)
    old = torch.tensor([[0.0, 0.0], [-5.0, -5.0], [4.0, 4.0]], dtype=torch.float64, device=device)
    new, mass = ops.centroid_update(x, w, labels, old)
    assert new.tolist() == [[1.5, 0.0], [-5.0, -5.0], [4.0, 4.0]]
    assert mass.tolist() == [4.0, 0.0, 0.0]


def test_centroid_update_is_independent_of_thread_count(rng):
    x = torch.randn(20000, 40, generator=rng)
    w = torch.rand(20000, generator=rng)
    labels = torch.randint(0, 17, (20000,), generator=rng)
    c = torch.zeros(17, 40)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(ops.centroid_update(x, w, labels, c))
    finally:
        torch.set_num_threads(before)
    for new, mass in results[1:]:
        assert torch.equal(new, results[0][0]) and torch.equal(mass, results[0][1])


def test_centroid_update_rejects_out_of_range_labels(device):
    x = torch.randn(4, 2, device=device)
    with pytest.raises(ValueError, match="labels must be in"):
        ops.centroid_update(x, torch.ones(4, device=device), torch.tensor([0, 1, 2, 3], device=device),
                            torch.zeros(3, 2, device=device))


def _means_in_run_order(x, w, labels, k, run=256):
    """The contract's summation order, in Python floats (IEEE doubles, no fused
    multiply-add): runs of `run` members in point order summed one by one, then
    the runs' sums added in order."""
    x, w, labels = x.double().tolist(), w.double().tolist(), labels.tolist()
    members = [[i for i, label in enumerate(labels) if label == c] for c in range(k)]
    means, masses = [], []
    for c in range(k):
        total, mass = [0.0] * len(x[0]), 0.0
        for start in range(0, len(members[c]), run):
            part, part_mass = [0.0] * len(x[0]), 0.0
            for i in members[c][start:start + run]:
                if w[i] == 0.0:
                    continue
                part = [s + w[i] * v for s, v in zip(part, x[i])]
                part_mass += w[i]
            total = [s + p for s, p in zip(total, part)]
            mass += part_mass
        means.append([s / mass for s in total])
        masses.append(mass)
    return torch.tensor(means, dtype=torch.float64), torch.tensor(masses, dtype=torch.float64)


def test_centroid_update_sums_in_runs_of_256_members_bitwise(device, rng):
    # Clusters of 1 to ~1500 members: one run, several runs, a partial last run.
    labels = torch.cat([torch.zeros(1500, dtype=torch.long), torch.ones(300, dtype=torch.long),
                        torch.full((256,), 2), torch.tensor([3])])
    labels = labels[torch.randperm(labels.numel(), generator=rng)]
    n = labels.numel()
    x = torch.randn(n, 3, generator=rng, dtype=torch.float64) * 1e3 + 7.0
    w = torch.rand(n, generator=rng, dtype=torch.float64)
    w[::17] = 0.0
    want_c, want_w = _means_in_run_order(x, w, labels, 4)
    got_c, got_w = ops.centroid_update(x.to(device), w.to(device), labels.to(device), torch.zeros(4, 3, device=device,
                                                                                                   dtype=torch.float64))
    assert torch.equal(got_c.cpu(), want_c) and torch.equal(got_w.cpu(), want_w)


def test_out_of_range_labels_name_the_first_bad_position(device):
    # The first bad label (position 10, too large) comes before a smaller
    # bad one (position 50000, negative); enough points for several threads.
    labels = torch.zeros(60000, dtype=torch.long)
    labels[10] = 7
    labels[50000] = -2
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got 7 at position 10$"):
            ops.centroid_update(torch.zeros(60000, 2, device=device), torch.ones(60000, device=device),
                                labels.to(device), torch.zeros(3, 2, device=device))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_ops_reject_weights_that_are_not_finite_and_non_negative(device, bad):
    x = torch.randn(30, 4, device=device)
    w = torch.ones(30, device=device)
    w[12] = bad
    labels = torch.arange(30, device=device) % 3
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        ops.centroid_update(x, w, labels, x[:3])
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        ops.lloyd(x, w, x[:3], 5, 0.0)
    if device == "cpu":  # the CUDA seeding leaves the check to its callers (ops.h)
        with pytest.raises(ValueError, match="weights must be finite and >= 0"):
            ops.kmeanspp_seed(x, w, 3, draw_uniforms(1 + 2 * 2, 0), 2)


# --- nearest points ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_nearest_points_matches_reference(device, dtype, rng):
    x = blobs(1500, 12, 4, rng, dtype).to(device)
    c = blobs(60, 12, 4, rng, dtype).to(device)
    got = ops.nearest_points(x, c)
    want = reference.nearest_points(x, c)
    assert len(set(got.tolist())) == 60
    if dtype == torch.float64:
        assert got.tolist() == want.tolist()
    else:  # compare the distances at the picks (ties are possible)
        dist = lambda idx: ((x.double()[idx] - c.double()) ** 2).sum(1)
        assert torch.allclose(dist(got), dist(want), rtol=1e-4, atol=1e-4)


def test_nearest_points_resolves_collisions_in_centroid_order(device):
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0]], dtype=torch.float64, device=device)
    # Every centroid is nearest to point 0; they are served in order.
    c = torch.tensor([[0.2], [0.1], [0.0], [-1.0]], dtype=torch.float64, device=device)
    assert ops.nearest_points(x, c).tolist() == [0, 1, 2, 3]


def test_nearest_points_with_many_collisions_matches_reference(device, rng):
    x = torch.randn(300, 5, generator=rng, dtype=torch.float64).to(device)
    c = torch.zeros(40, 5, dtype=torch.float64, device=device)  # 40 identical centroids
    assert ops.nearest_points(x, c).tolist() == reference.nearest_points(x, c).tolist()


def test_nearest_points_honours_exclude(device, rng):
    x = torch.randn(100, 3, generator=rng, dtype=torch.float64).to(device)
    c = x[:10].clone()
    exclude = torch.zeros(100, dtype=torch.bool, device=device)
    exclude[:5] = True
    got = ops.nearest_points(x, c, exclude)
    assert not set(got.tolist()) & set(range(5))
    assert got.tolist() == reference.nearest_points(x, c, exclude).tolist()
    exclude[:] = True
    exclude[:9] = False
    with pytest.raises(ValueError, match="only 9 points of x are not excluded"):
        ops.nearest_points(x, c, exclude)


# --- registration ------------------------------------------------------------------------


def test_ops_pass_opcheck(device, rng):
    x = torch.randn(64, 5, generator=rng, dtype=torch.float64).to(device)
    w = torch.rand(64, generator=rng, dtype=torch.float64).to(device)
    c = x[:6].clone()
    labels = torch.randint(0, 6, (64,), generator=rng).to(device)
    u = draw_uniforms(1 + 5 * 3, 0).to(device)
    cases = [
        (torch.ops.clue_ext.kmeanspp_seed.default, (x, w, 6, u, 3, None)),
        (torch.ops.clue_ext.assign.default, (x, c)),
        (torch.ops.clue_ext.centroid_update.default, (x, w, labels, c)),
        (torch.ops.clue_ext.nearest_points.default, (x, c, None)),
        (torch.ops.clue_ext.lloyd.default, (x, w, c, 5, 0.0)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


# --- Lloyd -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [5, 8, 30, 120])
def test_lloyd_matches_the_loop_on_reference_ops(k, rng):
    # k <= 8 keeps every centroid in each point's list; larger k exercises
    # the lists, their bounds and the GEMM refresh of stale points.
    x = blobs(3000, 20, 12, rng, torch.float64, spread=1.0)
    w = torch.rand(3000, generator=rng, dtype=torch.float64)
    c = x[torch.randperm(3000, generator=rng)[:k]].clone()
    got_c, got_labels, got_sq, n_iter = ops.lloyd(x, w, c, 100, 0.0)
    want_c, want_labels, _, want_iter = reference.lloyd(x, w, c, 100, 0.0)
    assert torch.equal(got_labels, want_labels)
    assert int(n_iter) == int(want_iter)
    assert torch.allclose(got_c, want_c, rtol=1e-10, atol=1e-12)
    assert torch.allclose(got_sq, reference.assign(x, got_c)[1], rtol=1e-10, atol=1e-10)


# Cases where a cluster empties after the bounds let some points keep their
# label unmeasured: relocation must rank the points by their exact current
# distances (the reference's), not by distances from an earlier iteration.
STALE_BOUND_CASES = [
    ([[-0.43, -0.23], [0.24, -0.07], [-0.03, 0.55], [0.18, -0.19], [0.02, 0.18], [1.09, -0.21], [0.08, -0.4],
      [-0.79, -0.29], [-0.02, 0.23]],
     [0.82, 0.74, 0.1, 0.26, 0.11, 0.15, 0.92, 1.02, 0.2],
     [[-0.01, 0.93], [-1.02, 1.16], [0.63, 1.24], [-0.57, 0.82], [-1.18, -0.11], [0.39, -1.45], [-0.15, 2.02]]),
    ([[-0.31, -0.08], [-0.24, 0.1], [-2.23, -0.6], [0.42, -0.89], [0.02, -0.76], [1.41, 1.53], [0.51, -0.93],
      [0.0, -0.29], [-1.26, 0.19], [-0.29, -0.76], [-0.29, -2.27]],
     [0.98, 0.63, 0.25, 0.53, 0.53, 0.73, 0.41, 0.35, 0.9, 0.7, 0.48],
     [[-0.81, 0.29], [-2.22, -0.03], [-1.01, 0.4], [0.04, -0.82], [0.38, 0.59], [-0.51, -0.08], [-0.25, -0.09]]),
]


@pytest.mark.parametrize("x,w,c", STALE_BOUND_CASES)
def test_lloyd_relocates_empty_clusters_by_exact_current_distances(device, x, w, c):
    x, w, c = (torch.tensor(v, dtype=torch.float64, device=device) for v in (x, w, c))
    got_c, got_labels, _, got_iter = ops.lloyd(x, w, c, 50, 0.0)
    want_c, want_labels, _, want_iter = reference.lloyd(x.cpu(), w.cpu(), c.cpu(), 50, 0.0)
    assert got_labels.cpu().tolist() == want_labels.tolist()
    assert int(got_iter) == int(want_iter)
    torch.testing.assert_close(got_c.cpu(), want_c, rtol=1e-12, atol=1e-12)


def test_lloyd_with_no_iteration_returns_new_centroids(device):
    x = torch.randn(20, 3, device=device)
    c = x[:4].clone()
    out_c, labels, _, n_iter = ops.lloyd(x, torch.ones(20, device=device), c, 0, 0.0)
    assert int(n_iter) == 0 and torch.equal(out_c, c)
    assert out_c.data_ptr() != c.data_ptr()  # the schema forbids an output aliasing an input
    assert torch.equal(labels, ops.assign(x, c)[0])


def test_lloyd_float32_agrees_with_float64(rng):
    x = blobs(4000, 16, 20, rng, torch.float64, spread=0.5)
    w = torch.rand(4000, generator=rng, dtype=torch.float64)
    c = x[:60].clone()
    c64, l64, _, _ = ops.lloyd(x, w, c, 50, 0.0)
    c32, l32, _, _ = ops.lloyd(x.float(), w.float(), c.float(), 50, 0.0)
    assert (l32 == l64).float().mean() > 0.999
    assert torch.allclose(c32.double(), c64, atol=1e-4)


def test_lloyd_stops_on_tolerance_and_max_iter(rng):
    x = blobs(2000, 8, 5, rng, torch.float64)
    w = torch.ones(2000, dtype=torch.float64)
    c = x[:40].clone()
    _, _, _, n_full = ops.lloyd(x, w, c, 300, 0.0)
    _, _, _, n_tol = ops.lloyd(x, w, c, 300, 1e6)
    _, labels, sq, n_two = ops.lloyd(x, w, c, 2, 0.0)
    assert int(n_tol) == 1 and int(n_two) == 2 and int(n_full) > 2
    # After stopping early the labels still describe the returned centroids.
    assert torch.allclose(sq, reference.assign(x, ops.lloyd(x, w, c, 2, 0.0)[0])[1])


def test_lloyd_rejects_bad_arguments():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="max_iter must be >= 0"):
        ops.lloyd(x, torch.ones(10), x[:2], -1, 0.0)
    with pytest.raises(ValueError, match="centroids must have at most 10 rows"):
        ops.lloyd(x, torch.ones(10), torch.randn(11, 3), 5, 0.0)
