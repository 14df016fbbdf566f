"""Lloyd's label rule (label_tol): stop once the labels that changed in an iteration carry at
most that share of the weight, counted exactly in quanta of 2^-20 of the largest weight."""

import pytest
import torch

import clue_ext
from clue_ext import ops, reference
from clue_ext.kmeans import DEFAULT_LABEL_TOL, resolve_label_tol, weight_quanta

from test_bounded_lloyd import mixture


def creeping_case(seed=7, n=3000, d=16, k=40):
    # Overlapping unequal components: Lloyd creeps for many iterations, a few labels at a time.
    x = mixture(n, d, 12, seed=seed, unequal=True)
    w = torch.rand(n, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    c = x[torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))[:k]].clone()
    return x, w, c


def changed_shares(x, w, c, iterations):
    """The weight share (in quanta) of the labels that changed in each iteration of the plain loop."""
    quanta = weight_quanta(w)
    shares, before = [], None
    for _ in range(iterations):
        labels = reference.assign(x, c)[0]
        if before is not None:
            shares.append(int(quanta[labels != before].sum()) / int(quanta.sum()))
        c = reference.centroid_update(x, w, labels, c)[0]
        before = labels
    return shares


@pytest.mark.parametrize("label_tol", [0.02, 0.005, 1e-3])
def test_the_op_stops_where_the_reference_loop_does_and_earlier_than_without(label_tol):
    x, w, c = creeping_case()
    full = int(ops.lloyd(x, w, c, 300, 0.0)[3])
    got_c, got_labels, got_sq, n_iter = ops.lloyd(x, w, c, 300, 0.0, label_tol)
    want_c, want_labels, _, want_iter = reference.lloyd(x, w, c, 300, 0.0, label_tol)
    assert int(n_iter) == int(want_iter)
    assert torch.equal(got_labels, want_labels)
    torch.testing.assert_close(got_c, want_c, rtol=1e-10, atol=1e-12)
    # It stopped at the first iteration whose changed share is within label_tol...
    shares = changed_shares(x, w, c, full)
    first = next(i for i, share in enumerate(shares) if share <= label_tol) + 2
    assert int(n_iter) == first < full
    # ...and, stopping on the rule, assigned once more: the labels describe the returned centroids.
    labels, sq = reference.assign(x, got_c)
    assert torch.equal(got_labels, labels)
    torch.testing.assert_close(got_sq, sq, rtol=1e-10, atol=1e-10)


def test_label_tol_one_stops_after_the_first_iteration_and_zero_is_off():
    x, w, c = creeping_case(seed=3)
    assert int(ops.lloyd(x, w, c, 300, 0.0, 1.0)[3]) == 1
    assert int(reference.lloyd(x, w, c, 300, 0.0, 1.0)[3]) == 1
    off = ops.lloyd(x, w, c, 300, 0.0, 0.0)
    plain = ops.lloyd(x, w, c, 300, 0.0)
    assert int(off[3]) == int(plain[3]) > 5
    assert torch.equal(off[1], plain[1])


def test_the_rule_depends_on_weight_ratios_only():
    # Quanta are relative to the largest weight: scaling every weight by any factor keeps the
    # iteration it stops at (a power of two keeps every other number bitwise too).
    x, w, c = creeping_case(seed=11)
    stops = {int(ops.lloyd(x, w * scale, c, 300, 0.0, 0.004)[3]) for scale in (1.0, 2.0**-70, 2.0**60)}
    assert len(stops) == 1
    quanta = weight_quanta(w)
    assert int(quanta.max()) == 2**20 and int(quanta.min()) >= 0
    assert torch.equal(weight_quanta(torch.zeros(5)), torch.zeros(5, dtype=torch.long))


def test_defaults_follow_init():
    assert resolve_label_tol(None, "fast") == resolve_label_tol(None, "subsample") == DEFAULT_LABEL_TOL
    assert resolve_label_tol(None, "k-means++") == 0.0
    x, w, _ = creeping_case(seed=5)
    exact = clue_ext.weighted_kmeans(x, w, 40, seed=1, init="k-means++")
    exact_off = clue_ext.weighted_kmeans(x, w, 40, seed=1, init="k-means++", label_tol=0)
    assert exact.n_iter == exact_off.n_iter and torch.equal(exact.labels, exact_off.labels)
    fast = clue_ext.weighted_kmeans(x, w, 40, seed=1)
    fast_off = clue_ext.weighted_kmeans(x, w, 40, seed=1, label_tol=0)
    assert fast.n_iter < fast_off.n_iter
    assert fast.inertia <= 1.005 * fast_off.inertia
    picks = clue_ext.select(x, torch.softmax(x[:, :5], dim=1), 30, seed=2)
    assert torch.equal(picks, reference.select(x, torch.softmax(x[:, :5], dim=1), 30, seed=2))


@pytest.mark.parametrize("bad,error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                       ("0.1", TypeError), (True, TypeError)])
def test_bad_label_tol_is_refused_naming_it(bad, error):
    x = torch.randn(50, 4)
    with pytest.raises(error, match="label_tol"):
        clue_ext.weighted_kmeans(x, torch.ones(50), 3, label_tol=bad)
    with pytest.raises(error, match="label_tol"):
        clue_ext.select(x, torch.full((50, 2), 0.5), 3, label_tol=bad)
    if error is ValueError and bad == bad:
        with pytest.raises(ValueError, match="label_tol"):
            ops.lloyd(x, torch.ones(50), x[:3].clone(), 10, 0.0, bad)


@pytest.mark.parametrize("label_tol", [0.3, 1.0])
def test_no_rule_stops_the_loop_right_after_a_relocation(label_tol):
    # Centroids far from every row leave clusters empty in the first iterations: they are
    # relocated, and that iteration goes on whatever share of labels changed, in the op as
    # in the reference loop.
    g = torch.Generator().manual_seed(11)
    base = mixture(300, 16, 6, seed=12)
    x = torch.cat([base, base[:200]])
    w = torch.rand(x.shape[0], generator=g, dtype=torch.float64)
    w[::3] = 0.0
    c = torch.cat([x[:20], torch.full((4, 16), 50.0, dtype=torch.float64)])
    got_c, got_labels, _, n_iter = ops.lloyd(x, w, c, 60, 0.0, label_tol)
    want_c, want_labels, _, want_iter = reference.lloyd(x, w, c, 60, 0.0, label_tol)
    assert int(n_iter) == int(want_iter) >= 2  # the first iteration relocated: it could not stop there
    assert torch.equal(got_labels, want_labels)
    torch.testing.assert_close(got_c, want_c, rtol=1e-10, atol=1e-12)
