"""clue_ext.select: CLUE selection end to end, and its handling of bad input."""

import numpy as np
import pytest
import torch

import clue_ext
from clue_ext import reference
from clue_ext.selection import entropy_weights


def pool(n=600, d=10, c=5, seed=0, device="cpu", dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g).to(dtype).to(device)
    probs = torch.softmax(torch.randn(n, c, generator=g) * 2, dim=1).to(dtype).to(device)
    return x, probs


def test_returns_budget_distinct_indices_on_the_input_device(device):
    x, p = pool(device=device)
    idx = clue_ext.select(x, p, 40, seed=0)
    assert idx.dtype == torch.long and idx.device.type == device and idx.shape == (40,)
    assert len(set(idx.tolist())) == 40
    assert 0 <= int(idx.min()) and int(idx.max()) < 600


def test_matches_the_reference_pipeline(device):
    x, p = pool(dtype=torch.float64, device=device)
    got = clue_ext.select(x, p, 25, seed=4)
    assert got.tolist() == reference.select(x, p, 25, seed=4).tolist()


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_accepts_numpy_and_every_float_dtype_and_strided_input(dtype):
    x, p = pool(dtype=torch.float64)
    a = clue_ext.select(x.numpy(), p.numpy(), 20, seed=1)
    b = clue_ext.select(x, p, 20, seed=1)
    assert a.tolist() == b.tolist()
    wide = torch.zeros(600, 20, dtype=dtype)
    wide[:, ::2] = x.to(dtype)
    strided = clue_ext.select(wide[:, ::2], p.to(dtype), 20, seed=1)
    assert len(set(strided.tolist())) == 20


def test_same_seed_same_picks_different_seed_different_picks():
    x, p = pool()
    assert clue_ext.select(x, p, 30, seed=3).tolist() == clue_ext.select(x, p, 30, seed=3).tolist()
    assert clue_ext.select(x, p, 30, seed=3).tolist() != clue_ext.select(x, p, 30, seed=4).tolist()


def test_excluded_points_are_never_picked(device):
    x, p = pool(device=device)
    labeled = list(range(0, 600, 2))
    idx = clue_ext.select(x, p, 50, seed=0, exclude=labeled)
    assert not set(idx.tolist()) & set(labeled)
    mask = torch.zeros(600, dtype=torch.bool, device=device)
    mask[labeled] = True
    assert clue_ext.select(x, p, 50, seed=0, exclude=mask).tolist() == idx.tolist()
    everything_left = clue_ext.select(x, p, 300, seed=0, exclude=labeled)
    assert sorted(everything_left.tolist()) == list(range(1, 600, 2))


def test_budget_equal_to_pool_returns_every_point():
    x, p = pool(n=50)
    assert sorted(clue_ext.select(x, p, 50, seed=0).tolist()) == list(range(50))


def test_duplicate_rows_still_give_distinct_picks():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).repeat(30, 1)
    p = torch.full((60, 3), 1 / 3)
    idx = clue_ext.select(x, p, 20, seed=0)
    assert len(set(idx.tolist())) == 20


def test_confident_model_falls_back_to_uniform_weights():
    x, _ = pool(n=100)
    one_hot = torch.nn.functional.one_hot(torch.arange(100) % 5, 5).float()
    with pytest.warns(RuntimeWarning, match="every sample weight is zero"):
        idx = clue_ext.select(x, one_hot, 10, seed=0)
    assert len(set(idx.tolist())) == 10


def test_uncertainty_weighting_pulls_the_pick_into_the_uncertain_cluster():
    # Two clusters; the model is sure about the large one and unsure about the
    # small one. With budget 1 the weighted mean sits in the uncertain cluster.
    g = torch.Generator().manual_seed(0)
    sure = torch.randn(200, 2, generator=g) * 0.1
    unsure = torch.randn(20, 2, generator=g) * 0.1 + 5
    x = torch.cat([sure, unsure])
    p = torch.cat([torch.tensor([[0.999, 0.001]]).repeat(200, 1), torch.tensor([[0.5, 0.5]]).repeat(20, 1)])
    for seed in range(5):
        assert int(clue_ext.select(x, p, 1, seed=seed)) >= 200
    # Unweighted (uniform probabilities everywhere), the large cluster wins.
    flat = torch.full((220, 2), 0.5)
    assert int(clue_ext.select(x, flat, 1, seed=0)) < 200


def test_temperature_retempers_the_probabilities():
    logits = torch.randn(50, 4, dtype=torch.float64)
    p = torch.softmax(logits, 1)
    for t in (0.1, 1.0, 3.0):
        want = torch.distributions.Categorical(logits=logits / t).entropy()
        assert torch.allclose(entropy_weights(p, t), want, atol=1e-9)


@pytest.mark.parametrize(
    "change,error,match",
    [
        (lambda x, p: (x.clone().index_fill_(0, torch.tensor([3]), float("nan")), p), ValueError, "features must be finite"),
        (lambda x, p: (x, p.clone().index_fill_(0, torch.tensor([1]), float("inf"))), ValueError, "probs must be finite"),
        (lambda x, p: (x, p - 0.5), ValueError, "probs must be >= 0"),
        (lambda x, p: (x, p * 2), ValueError, "rows of probs must sum to 1"),
        (lambda x, p: (x, p[:-1]), ValueError, "one row per row of features"),
        (lambda x, p: (x[:, :, None], p), ValueError, "features must be 2-D"),
        (lambda x, p: (x, p[:, :, None]), ValueError, "probs must be 2-D"),
        (lambda x, p: (x[:0], p[:0]), ValueError, "features is empty"),
        (lambda x, p: (np.array([["a", "b"]] * 60), p), TypeError, "features must hold real numbers"),
        (lambda x, p: (x.tolist(), p), TypeError, "features must be a torch.Tensor or numpy.ndarray"),
        (lambda x, p: (x, p.bool()), TypeError, "probs must hold real numbers"),
    ],
)
def test_bad_arrays_are_rejected(change, error, match):
    x, p = pool(n=60)
    x, p = change(x, p)
    with pytest.raises(error, match=match):
        clue_ext.select(x, p, 5)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(budget=0), ValueError, "budget must be >= 1"),
        (dict(budget=61), ValueError, r"budget must be <= 60 \(the number of rows of features\)"),
        (dict(budget=59, exclude=[0, 1]), ValueError, r"budget must be <= 58 \(the rows of features not excluded\)"),
        (dict(budget=5.0), TypeError, "budget must be an integer"),
        (dict(budget=True), TypeError, "budget must be an integer"),
        (dict(temperature=0.0), ValueError, "temperature must be a finite number > 0"),
        (dict(temperature="1"), TypeError, "temperature must be a real number"),
        (dict(exclude=[60]), ValueError, "exclude holds row indices outside"),
        (dict(exclude=np.ones(3, dtype=bool)), ValueError, "exclude as a bool mask must have shape"),
        (dict(exclude=[0.5]), TypeError, "exclude must hold integer row indices"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    x, p = pool(n=60)
    args = dict(budget=5)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        clue_ext.select(x, p, args.pop("budget"), **args)


def test_build_info_reports_the_build():
    info = clue_ext.build_info()
    assert isinstance(info["cuda"], bool)
    assert info["torch_version"] == torch.__version__.split("+")[0]
    if not info["cuda"]:
        assert info["cuda_archs"] == ""


def test_weightings_differ_where_they_should():
    # 300 confident points in one blob, 60 uncertain ones in another: the
    # uncertainty weightings spend the budget on the uncertain blob, the
    # uniform one (plain K-Means) by the blobs' sizes.
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(300, 8, generator=g), torch.randn(60, 8, generator=g) + 6])
    sure = torch.full((300, 4), 0.001)
    sure[:, 0] = 0.997
    unsure = torch.softmax(torch.randn(60, 4, generator=g) * 0.1, dim=1)
    p = torch.cat([sure, unsure])
    on_unsure = {w: int((clue_ext.select(x, p, 12, seed=0, weighting=w) >= 300).sum())
                 for w in ("entropy", "margin", "uniform")}
    assert on_unsure["entropy"] >= 10 and on_unsure["margin"] >= 10, on_unsure
    assert on_unsure["uniform"] <= 5, on_unsure


def test_uniform_weighting_is_plain_kmeans_and_margin_weights_follow_the_formula():
    x, p = pool(n=400)
    kmeans = clue_ext.weighted_kmeans(x, torch.ones(400), 15, seed=3)
    expected = clue_ext.ops.nearest_points(x, kmeans.centroids)
    assert clue_ext.select(x, p, 15, seed=3, weighting="uniform").tolist() == expected.tolist()
    from clue_ext.selection import margin_weights

    top = torch.sort(p.double(), dim=1, descending=True).values
    torch.testing.assert_close(margin_weights(p), 1 - (top[:, 0] - top[:, 1]))
    retempered = torch.softmax(torch.log(p.double()) / 0.5, dim=1)
    top = torch.sort(retempered, dim=1, descending=True).values
    torch.testing.assert_close(margin_weights(p, 0.5), 1 - (top[:, 0] - top[:, 1]))
    with pytest.raises(ValueError, match="weighting must be one of 'entropy', 'margin', 'uniform'"):
        clue_ext.select(x, p, 5, weighting="variance")
