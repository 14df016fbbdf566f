"""The CPU centroid update against the summation order that csrc/ops.h and
csrc/summation_order.h promise (and the README's "bitwise equal" to CUDA
rests on), redone in plain PyTorch by clue_ext.selftest.ordered_centroid_update,
compared bit for bit on clusters around the runs of 256 members."""

from fractions import Fraction

import pytest
import torch

from clue_ext import ops, reference
from clue_ext.selftest import (MEANS_RUN, RUN_BOUNDARY_SIZES, RUN_BOUNDARY_ZEROS, ordered_centroid_update,
                               run_boundary_problem)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_update_is_bitwise_the_promised_order(dtype):
    x, w, labels, old = run_boundary_problem(dtype)
    counts = torch.bincount(labels, minlength=old.shape[0]).tolist()
    assert counts[:len(RUN_BOUNDARY_SIZES)] == list(RUN_BOUNDARY_SIZES)
    means, mass = ops.centroid_update(x, w, labels, old)
    expected_means, expected_mass = ordered_centroid_update(x, w, labels, old)
    assert torch.equal(mass, expected_mass)
    assert torch.equal(means, expected_means)
    # The cluster whose members all weigh 0, and the empty one, keep their rows.
    assert torch.equal(means[-2:], old[-2:]) and bool((mass[-2:] == 0).all())


def test_cpu_update_is_bitwise_the_promised_order_with_one_thread():
    x, w, labels, old = run_boundary_problem(torch.float64, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        means, mass = ops.centroid_update(x, w, labels, old)
    finally:
        torch.set_num_threads(threads)
    expected_means, expected_mass = ordered_centroid_update(x, w, labels, old)
    assert torch.equal(means, expected_means) and torch.equal(mass, expected_mass)


def test_ordered_update_places_the_zero_weights_at_the_runs_edges():
    _, w, labels, _ = run_boundary_problem(torch.float64)
    for c, size in enumerate(RUN_BOUNDARY_SIZES):
        members = (labels == c).nonzero().flatten()
        zero = (w[members] == 0).nonzero().flatten().tolist()
        assert zero == [m for m in RUN_BOUNDARY_ZEROS if m < size]


def test_the_problem_tells_other_orders_apart():
    """The comparison above could not fail if any order gave the same bits:
    summing each cluster in one run (no runs of 256), the plain reference's
    index_add_, or a fused multiply-add (what GCC makes of `s += w * x` with
    FMA instructions unless built with -ffp-contract=off) all differ from the
    promised order on this problem."""
    x, w, labels, old = run_boundary_problem(torch.float64)
    means, mass = ordered_centroid_update(x, w, labels, old)

    plain_means, plain_mass = reference.centroid_update(x, w, labels, old)
    assert not torch.equal(plain_means, means) or not torch.equal(plain_mass, mass)

    one_run_means, _ = ordered_centroid_update(x, w, labels, old, run=max(RUN_BOUNDARY_SIZES))
    assert not torch.equal(one_run_means, means)

    # The largest cluster, each run summed with a fused multiply-add (the
    # product not rounded before the add), computed exactly with fractions.
    c = len(RUN_BOUNDARY_SIZES) - 1
    members = (labels == c).nonzero().flatten().tolist()
    fused = []
    for j in range(x.shape[1]):
        total = 0.0
        for start in range(0, len(members), MEANS_RUN):
            s = 0.0
            for i in members[start:start + MEANS_RUN]:
                if float(w[i]) != 0.0:
                    s = float(Fraction(s) + Fraction(float(w[i])) * Fraction(float(x[i, j])))
            total += s
        fused.append(total / float(mass[c]))
    assert fused != means[c].tolist()


def test_float32_cluster_weights_depend_on_the_order_too():
    # float32 means rarely show the order (double sums rounded to float32),
    # the float64 cluster weights do: they are compared bitwise as well.
    x, w, labels, old = run_boundary_problem(torch.float32)
    _, mass = ordered_centroid_update(x, w, labels, old)
    _, plain_mass = reference.centroid_update(x, w, labels, old)
    assert not torch.equal(plain_mass, mass)
