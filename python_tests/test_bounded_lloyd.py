"""The CPU Lloyd's bounded assignment (csrc/cpu/bounded_assign.h): labels stay those of the
reference loop where the bounds prune, in both memory regimes (per-centroid bounds when
they fit, group bounds only above the cap), and on cases built to break bounds."""

import numpy as np
import pytest
import torch

from clue_ext import ops, reference


def lloyd_counts():
    return list(torch.ops.clue_ext.lloyd_distance_counts())


def mixture(n, d, components, seed, dtype=torch.float64, spread=0.6, unequal=False):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(components, d, generator=g, dtype=torch.float64) * 2
    if unequal:  # a few heavy components, many light ones, noise of varying scale
        # From the seed alone (torch.distributions draws from the global RNG, which made the data,
        # and so the pruning asserted below, depend on the tests run before).
        p = torch.from_numpy(np.random.default_rng(seed).dirichlet(np.full(components, 0.3)))
        member = torch.multinomial(p, n, replacement=True, generator=g)
        scale = 0.3 + 1.2 * torch.rand(components, generator=g, dtype=torch.float64)
        x = means[member] + scale[member, None] * torch.randn(n, d, generator=g, dtype=torch.float64)
    else:
        member = torch.randint(0, components, (n,), generator=g)
        x = means[member] + spread * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x.to(dtype)


# (n, d, k): k <= d keeps per-centroid bounds (their floats fit the features' bytes), k > d
# leaves group bounds only.
REGIMES = [(2000, 32, 30), (2000, 6, 40)]


@pytest.mark.parametrize("n,d,k", REGIMES, ids=["per-centroid", "groups-only"])
@pytest.mark.parametrize("unequal", [False, True], ids=["mixture", "unequal"])
def test_lloyd_equals_the_reference_loop_while_the_bounds_prune(n, d, k, unequal):
    x = mixture(n, d, 25, seed=3, unequal=unequal)
    w = torch.rand(n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    c = x[torch.randperm(n, generator=torch.Generator().manual_seed(5))[:k]].clone()
    got_c, got_labels, got_sq, n_iter = ops.lloyd(x, w, c, 100, 0.0)
    counts = lloyd_counts()
    want_c, want_labels, _, want_iter = reference.lloyd(x, w, c, 100, 0.0)
    assert torch.equal(got_labels, want_labels)
    assert int(n_iter) == int(want_iter)
    torch.testing.assert_close(got_c, want_c, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_sq, reference.assign(x, got_c)[1], rtol=1e-10, atol=1e-10)
    # The first assignment is a full pass; after it the bounds must skip most distances.
    assert counts[0] == n * k
    assert int(n_iter) >= 4
    assert sum(counts[1:]) < 0.5 * (len(counts) - 1) * n * k, counts


def replay(x, steps, k):
    """Labels from the assigner along `steps` (a list of centroid tensors), with honest drifts,
    and the distances it computed per step."""
    assigner = ops.lloyd_assigner(x, k)
    previous, out = None, []
    for c in steps:
        drift = torch.zeros(k, dtype=torch.float64) if previous is None else \
            (c.double() - previous.double()).pow(2).sum(dim=1).sqrt()
        out.append((assigner.assign(c, drift), assigner.distances()))
        previous = c
    return out


@pytest.mark.parametrize("n,d,k", REGIMES, ids=["per-centroid", "groups-only"])
def test_one_centroid_moving_far_only_costs_the_rows_it_concerns(n, d, k):
    # The case that voided every row's single lower bound: one centroid jumps across the
    # space while the rest stay put. Labels must follow it, and with per-centroid bounds
    # only the rows near its old or new place are measured.
    x = mixture(n, d, 25, seed=7)
    c0 = x[:k].clone()
    c1 = c0.clone()
    c1[3] = x[n // 2] + 0.01  # centroid 3 lands on a far row
    c2 = c1.clone()
    c2[3] = c0[3]  # and jumps back
    results = replay(x, [c0, c1, c2, c2], k)
    for (labels, _), c in zip(results, [c0, c1, c2, c2]):
        assert torch.equal(labels, reference.assign(x, c)[0])
    assert results[0][1] == n * k
    assert results[3][1] == 0  # nothing moved: no distance at all
    if d >= k:
        assert results[1][1] < 0.2 * n * k and results[2][1] < 0.2 * n * k, [r[1] for r in results]


def test_duplicates_zero_weights_and_empty_clusters_follow_the_reference():
    g = torch.Generator().manual_seed(11)
    base = mixture(300, 16, 6, seed=12)
    x = torch.cat([base, base[:200], base[:50]])  # many exact duplicate rows
    w = torch.rand(x.shape[0], generator=g, dtype=torch.float64)
    w[::3] = 0.0  # zero-weight rows still get labels
    c = torch.cat([x[:20], torch.full((4, 16), 50.0, dtype=torch.float64)])  # four centroids far from every row
    c[5] = c[6]  # two identical centroids: the lower index wins every tie
    got_c, got_labels, _, n_iter = ops.lloyd(x, w, c, 60, 0.0)
    want_c, want_labels, _, want_iter = reference.lloyd(x, w, c, 60, 0.0)
    assert torch.equal(got_labels, want_labels)
    assert int(n_iter) == int(want_iter)
    torch.testing.assert_close(got_c, want_c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n,d,k", REGIMES, ids=["per-centroid", "groups-only"])
def test_float32_labels_are_assigns_up_to_near_ties(n, d, k):
    x = mixture(n, d, 25, seed=21, unequal=True, dtype=torch.float32)
    w = torch.rand(n, generator=torch.Generator().manual_seed(22))
    c = x[:k].clone()
    got_c, got_labels, _, _ = ops.lloyd(x, w, c, 100, 0.0)
    want_labels, _ = ops.assign(x, got_c)
    differ = (got_labels != want_labels).nonzero().flatten()
    xd, cd = x.double(), got_c.double()
    for i in differ.tolist():
        mine = float((xd[i] - cd[got_labels[i]]).pow(2).sum())
        theirs = float((xd[i] - cd[want_labels[i]]).pow(2).sum())
        assert abs(mine - theirs) <= 1e-4 * max(mine, theirs), (i, mine, theirs)
    assert differ.numel() <= 2
