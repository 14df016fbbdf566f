"""What real callers pass: model outputs that require grad, other dtypes and layouts,
extreme magnitudes, seeds and masks at the edges of their types."""

import math
import warnings

import numpy as np
import pytest
import torch

import clue_ext
from clue_ext import _magnitude
from clue_ext.kmeans import mean_feature_variance  # the one Lloyd's tolerance comes from


def pool(n=400, d=8, c=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)
    probs = torch.softmax(torch.randn(n, c, generator=g, dtype=torch.float64) * 2, dim=1).to(dtype)
    return x, probs


def test_model_outputs_that_require_grad_and_parameters_are_accepted():
    x, p = pool()
    expected = clue_ext.select(x, p, 20, seed=0).tolist()
    layer = torch.nn.Linear(5, 5)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(5))
        layer.bias.zero_()
    logits = layer(torch.log(p))  # requires grad, as a model's output outside no_grad
    assert logits.requires_grad
    assert clue_ext.select(x.clone().requires_grad_(), torch.softmax(logits, dim=1), 20, seed=0).tolist() == expected
    assert clue_ext.select(torch.nn.Parameter(x.clone()), p, 20, seed=0).tolist() == expected
    w = torch.nn.Parameter(torch.ones(400))
    result = clue_ext.weighted_kmeans(torch.nn.Parameter(x.clone()), w, 5, seed=0)
    assert not result.centroids.requires_grad


def test_sparse_input_is_a_type_error_naming_the_argument():
    x, p = pool()
    with pytest.raises(TypeError, match="features must be a dense tensor"):
        clue_ext.select(x.to_sparse(), p, 5, seed=0)
    with pytest.raises(TypeError, match="probs must be a dense tensor"):
        clue_ext.select(x, p.to_sparse(), 5, seed=0)


def test_big_endian_and_long_double_numpy_arrays_give_the_native_picks():
    x, p = pool(dtype=torch.float64)
    native = clue_ext.select(x.numpy(), p.numpy(), 15, seed=2).tolist()
    swapped = x.numpy().astype(">f8")
    assert not swapped.dtype.isnative
    assert clue_ext.select(swapped, p.numpy().astype(">f8"), 15, seed=2).tolist() == native
    assert clue_ext.select(x.numpy().astype(np.longdouble), p.numpy(), 15, seed=2).tolist() == native


@pytest.mark.parametrize("seed", [2**64, 2**70, -(2**63) - 1])
def test_seeds_outside_64_bits_are_a_value_error_naming_seed(seed):
    x, p = pool()
    with pytest.raises(ValueError, match="seed must be a 64-bit integer"):
        clue_ext.select(x, p, 5, seed=seed)
    with pytest.raises(ValueError, match="seed must be a 64-bit integer"):
        clue_ext.weighted_kmeans(x, torch.ones(400), 3, seed=seed)


def test_seeds_at_the_ends_of_the_64_bit_range_work():
    x, p = pool()
    for seed in (2**64 - 1, -(2**63), torch.tensor(7)):
        assert len(set(clue_ext.select(x, p, 10, seed=seed).tolist())) == 10


def test_an_integer_zero_one_array_of_one_entry_per_row_is_refused_as_ambiguous():
    x, p = pool(n=50)
    marks = np.zeros(50, dtype=np.int64)
    marks[:10] = 1
    with pytest.raises(ValueError, match="exclude holds 50 integers, all 0 or 1"):
        clue_ext.select(x, p, 5, seed=0, exclude=marks)
    as_mask = clue_ext.select(x, p, 5, seed=0, exclude=marks.astype(bool))
    assert not set(as_mask.tolist()) & set(range(10))
    as_indices = clue_ext.select(x, p, 5, seed=0, exclude=np.arange(10))
    assert as_indices.tolist() == as_mask.tolist()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_softmax_outputs_are_accepted(dtype):
    x, _ = pool(n=2000, c=345)
    logits = torch.randn(2000, 345, generator=torch.Generator().manual_seed(0)) * 3
    probs = torch.softmax(logits.to(dtype), dim=1)
    assert float((probs.double().sum(dim=1) - 1).abs().max()) > 1e-3 or dtype == torch.float16
    assert len(set(clue_ext.select(x, probs, 30, seed=0).tolist())) == 30
    with pytest.raises(ValueError, match="rows of probs must sum to 1"):
        clue_ext.select(x, torch.sigmoid(logits).to(dtype), 30, seed=0)  # not a softmax


def test_mean_feature_variance_does_not_cancel_far_from_the_origin():
    g = torch.Generator().manual_seed(0)
    for offset in (10.0, 100.0, 1e4):
        x = (offset + 0.01 * torch.randn(5000, 16, generator=g, dtype=torch.float64)).float()
        expected = float(np.var(x.double().numpy(), axis=0).mean())
        assert mean_feature_variance(x) == pytest.approx(expected, rel=1e-6)
    # Beyond double's range the variance is inf (Lloyd then stops on labels alone), not an OverflowError.
    assert mean_feature_variance(torch.tensor([[1e160], [-1e160]], dtype=torch.float64)) == math.inf


def test_huge_float64_values_select_without_overflow():
    assert clue_ext.select(np.array([[1e160]]), np.ones((1, 1)), 1).tolist() == [0]
    x, p = pool(dtype=torch.float64)
    picks = clue_ext.select(x * 1e300, p, 20, seed=1)
    assert len(set(picks.tolist())) == 20 and 0 <= int(picks.min()) and int(picks.max()) < 400


@pytest.mark.parametrize("value", [1e30, 1e38, 1e-30, 1e-44])
def test_extreme_finite_float32_values_give_distinct_picks(value):
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        x = (torch.rand(9, 1, generator=g, dtype=torch.float64) * 2 - 1).mul(value * 3).float()
        assert bool(torch.isfinite(x).all())
        probs = torch.softmax(torch.randn(9, 3, generator=g), dim=1)
        picks = clue_ext.select(x, probs, 9, seed=trial)
        assert sorted(picks.tolist()) == list(range(9))


@pytest.mark.parametrize("init", ["fast", "k-means++"])
def test_picks_do_not_change_under_a_power_of_two_scale(init):
    for dtype, exponents in ((torch.float32, (60, -60, 100, -100, 1)), (torch.float64, (600, -600))):
        x, p = pool(n=1500, d=72, dtype=dtype, seed=3)
        x = x + torch.randn(1500, 1, generator=torch.Generator().manual_seed(1)).to(dtype) * 3  # a leading direction
        base = clue_ext.select(x, p, 30, seed=5, init=init).tolist()
        for exponent in exponents:
            scaled = _magnitude.scaled_by_power_of_two(x, exponent)
            assert bool(torch.isfinite(scaled).all())
            assert clue_ext.select(scaled, p, 30, seed=5, init=init).tolist() == base, (dtype, exponent)


def test_weighted_kmeans_reports_in_the_callers_scale():
    x, _ = pool(n=500, d=4, dtype=torch.float64)
    w = torch.rand(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = clue_ext.weighted_kmeans(x, w, 6, seed=0)
    tiny = clue_ext.weighted_kmeans(x * 2.0**-600, w, 6, seed=0)
    assert torch.equal(tiny.labels, base.labels)
    assert torch.equal(tiny.centroids, base.centroids * 2.0**-600)
    assert tiny.inertia == pytest.approx(base.inertia * 2.0**-1200, rel=1e-12)


def test_weighted_kmeans_refuses_features_whose_squared_distances_overflow_their_dtype():
    x = torch.tensor([[1e30], [2e30], [-1e30]])
    with pytest.raises(ValueError, match="x holds values up to 2e\\+30"):
        clue_ext.weighted_kmeans(x, torch.ones(3), 2, seed=0)
    assert clue_ext.weighted_kmeans(x.double(), torch.ones(3), 2, seed=0).inertia > 0


def test_weights_far_from_one_keep_their_ratios():
    x, _ = pool(n=600, d=4)
    w = torch.rand(600, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.1
    base = clue_ext.weighted_kmeans(x, w, 8, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fall-back to uniform weights
        tiny = clue_ext.weighted_kmeans(x, w * 2.0**-200, 8, seed=0)
        huge = clue_ext.weighted_kmeans(x, w * 2.0**200, 8, seed=0)
    assert torch.equal(tiny.labels, base.labels) and torch.equal(huge.labels, base.labels)
    assert torch.equal(tiny.centroids, base.centroids)


def test_near_one_hot_probabilities_still_weigh_by_entropy():
    # Entropies below 1e-45 round to 0 in float32; their ratios must survive.
    x, _ = pool(n=300, d=4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    eps = torch.rand(300, generator=g, dtype=torch.float64) * 1e-50 + 1e-52
    p = torch.stack([1 - eps, eps], dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picks = clue_ext.select(x.float(), p, 10, seed=0)
    assert picks.tolist() == clue_ext.select(x, p, 10, seed=0).tolist()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_cpu_variance_op_agrees_with_the_chunked_one_on_any_thread_count(dtype):
    from clue_ext._variance import chunked_mean_feature_variance

    g = torch.Generator().manual_seed(3)
    # Not a multiple of the op's 1,024-row blocks; offsets that would cancel in the short form.
    x = (50.0 + torch.rand(5000, 37, generator=g, dtype=torch.float64) * torch.arange(1, 38)).to(dtype)
    want = float(np.var(x.double().numpy(), axis=0).mean())
    got = torch.ops.clue_ext.mean_feature_variance(x)
    assert got == pytest.approx(want, rel=1e-12)
    assert chunked_mean_feature_variance(x) == pytest.approx(got, rel=1e-12)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.ops.clue_ext.mean_feature_variance(x) == got  # bitwise: fixed blocks, fixed order
    finally:
        torch.set_num_threads(threads)
    assert torch.ops.clue_ext.mean_feature_variance(x[:, :0]) == 0.0
    assert torch.ops.clue_ext.mean_feature_variance(x.t().contiguous().t()) == got  # strided input


def test_max_abs_reads_signed_extremes_and_propagates_nan():
    from clue_ext._magnitude import max_abs

    assert max_abs(torch.tensor([[-7.5, 2.0], [3.0, 1.0]])) == 7.5
    assert max_abs(torch.tensor([1e-45, -1e-44])) == pytest.approx(1e-44, rel=0.2)
    assert max_abs(torch.empty(0, 3)) == 0.0
    assert math.isnan(max_abs(torch.tensor([1.0, float("nan")])))
