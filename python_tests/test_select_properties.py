"""Property-based tests of clue_ext.select over the inputs real callers pass.

For any shape, dtype, magnitude, duplicate rows, one-hot probabilities,
exclude mask and budget, select returns `budget` distinct indices outside
`exclude`, the same ones for the same seed, or raises a ValueError/TypeError
that names the argument at fault; never a RuntimeError from C++. Hypothesis
runs derandomized with a bounded example count, so CI is reproducible.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clue_ext

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
ARGUMENTS = ("features", "probs", "budget", "exclude", "seed", "temperature", "init", "weighting")

SETTINGS = settings(max_examples=100, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def pools(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 5))
    c = draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    base = torch.randn(n, d, generator=g, dtype=torch.float64)
    distinct = draw(st.integers(1, n))
    if distinct < n:  # duplicate rows: only `distinct` different ones
        base = base[torch.randint(0, distinct, (n,), generator=g)]
    # Magnitudes where float32 squared distances overflow (2**60 and up) or
    # underflow (2**-60 and down) are as likely as ordinary ones.
    bits = draw(st.sampled_from([(-8, 8), (55, 124), (-146, -55)]))
    scale = 2.0 ** draw(st.integers(*bits))
    if draw(st.booleans()):
        scale *= draw(st.floats(1.0, 1.9))
    features = base * scale + draw(st.sampled_from([0.0, 0.0, 1.0, 1e6])) * scale
    dtype = draw(st.sampled_from(DTYPES))
    features = features.to(dtype)
    kind = draw(st.sampled_from(["soft", "one-hot", "mixed"]))
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * 3
    probs = torch.softmax(logits, dim=1)
    if kind != "soft":
        hot = torch.nn.functional.one_hot(logits.argmax(dim=1), c).double()
        rows = torch.ones(n, dtype=torch.bool) if kind == "one-hot" else torch.rand(n, generator=g) < 0.5
        probs[rows] = hot[rows]
    probs = probs.to(draw(st.sampled_from([dtype, torch.float32])))
    exclude_kind = draw(st.sampled_from([None, "mask", "indices", "list"]))
    excluded = torch.rand(n, generator=g) < draw(st.floats(0, 0.9))
    exclude = {None: None, "mask": excluded, "indices": excluded.nonzero().flatten(),
               "list": excluded.nonzero().flatten().tolist()}[exclude_kind]
    left = n - (int(excluded.sum()) if exclude is not None else 0)
    budget = draw(st.integers(0, n + 1) if draw(st.integers(0, 9)) == 0 else st.integers(1, max(1, left)))
    as_numpy = draw(st.booleans()) and dtype not in (torch.bfloat16,)
    if as_numpy:
        features, probs = features.numpy(), probs.float().numpy() if probs.dtype == torch.bfloat16 else probs.numpy()
    return dict(features=features, probs=probs, budget=budget, exclude=exclude,
                init=draw(st.sampled_from(["fast", "subsample", "k-means++"])),
                weighting=draw(st.sampled_from(["entropy", "margin", "uniform"])),
                temperature=draw(st.sampled_from([1.0, 0.1, 10.0])))


def _excluded_set(exclude, n):
    if exclude is None:
        return set()
    if isinstance(exclude, torch.Tensor) and exclude.dtype == torch.bool:
        return set(exclude.nonzero().flatten().tolist())
    return set(int(i) for i in (exclude.tolist() if isinstance(exclude, torch.Tensor) else exclude))


@SETTINGS
@given(pools(), st.integers(0, 2**63))
def test_select_returns_distinct_allowed_picks_or_names_the_argument(case, seed):
    import warnings

    n = case["features"].shape[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-zero weights fall back to uniform, with a warning
            first = clue_ext.select(seed=seed, **case)
            second = clue_ext.select(seed=seed, **case)
    except (ValueError, TypeError) as error:
        assert any(name in str(error) for name in ARGUMENTS), f"{type(error).__name__} names no argument: {error}"
        return
    picks = first.tolist()
    assert first.dtype == torch.long and len(picks) == case["budget"] == len(set(picks))
    assert all(0 <= i < n for i in picks)
    assert not set(picks) & _excluded_set(case["exclude"], n)
    assert picks == second.tolist(), "the same seed gave other picks"


def _exactly_scalable(x: torch.Tensor, exponent: int) -> bool:
    """Whether x * 2**exponent keeps every value normal (or zero): then the scale is exact."""
    info = torch.finfo(x.dtype)
    magnitudes = x.abs()[x != 0].double() * 2.0**exponent
    return bool(((magnitudes >= info.tiny) & (magnitudes <= info.max)).all())


@settings(SETTINGS, max_examples=80)
@given(pools(), st.sampled_from([-70, -60, 60, 70]), st.sampled_from([torch.float32, torch.float64]))
def test_a_power_of_two_scale_of_the_features_changes_no_pick(case, exponent, dtype):
    import warnings

    features = torch.as_tensor(case["features"]).to(dtype)
    if not bool(torch.isfinite(features).all()) or not _exactly_scalable(features, exponent):
        return
    case["features"] = features
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            base = clue_ext.select(seed=1, **case).tolist()
    except ValueError:
        return  # a budget the pool cannot meet; covered above
    case["features"] = features * 2.0**exponent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert clue_ext.select(seed=1, **case).tolist() == base


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_features_name_features(value):
    x = np.ones((5, 2))
    x[3, 1] = value
    with pytest.raises(ValueError, match="features must be finite"):
        clue_ext.select(x, np.full((5, 2), 0.5), 2, seed=0)
