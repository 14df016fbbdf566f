"""Acquisition strategies: the shared contract, and each one against a brute-force version."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import clue_ext
from clue_ext import reference
from clue_ext.kmeans import draw_uniforms
from clue_ext.strategies import QueryContext, available_strategies, get_strategy
from clue_ext.strategies.aada import aada_scores, sample_from_top
from clue_ext.strategies.badge import badge_picks, gradient_embedding_factors
from clue_ext.strategies.coreset import greedy_k_center

N_POOL, IN_DIM, EMB_DIM, N_CLASSES = 120, 6, 5, 4


class VectorNet(nn.Module):
    """A tiny model on vectors with the interface strategies rely on."""

    embedding_dim = EMB_DIM

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(nn.Linear(IN_DIM, EMB_DIM), nn.Tanh())
        self.classifier = nn.Linear(EMB_DIM, N_CLASSES)

    def features(self, x):
        return self.encoder(x)

    def forward(self, x):
        embedding = self.features(x)
        return self.classifier(embedding), embedding


class FixedDiscriminator(nn.Module):
    """P(target) = sigmoid(first embedding coordinate * 3): a known, non-trivial d(x)."""

    embedding_dim = EMB_DIM

    def forward(self, embedding):
        return torch.sigmoid(3 * embedding[:, 0])


class DannLike:
    """Stands in for a DA method that owns a domain discriminator."""

    name = "dann"

    def __init__(self):
        self.domain_discriminator = FixedDiscriminator()


def vectors(n, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, IN_DIM, generator=g) + shift, torch.randint(N_CLASSES, (n,), generator=g))


@pytest.fixture(scope="module")
def model():
    return VectorNet()


@pytest.fixture(scope="module")
def pool():
    return vectors(N_POOL, seed=1, shift=0.5)


@pytest.fixture(scope="module")
def source():
    return vectors(80, seed=2)


def labeled_mask(seed=3, fraction=0.4):
    return torch.rand(N_POOL, generator=torch.Generator().manual_seed(seed)) < fraction


def context(model, pool, labeled, seed=0, **kwargs):
    return QueryContext.create(model, pool, labeled, device="cpu", seed=seed, **kwargs)


# ------------------------------------------------------------------ the contract


@pytest.mark.parametrize("name", available_strategies())
@pytest.mark.parametrize("n", [1, 7])
def test_returns_n_distinct_unlabeled_indices(name, n, model, pool, source):
    labeled = labeled_mask()
    picks = get_strategy(name).query(n, context(model, pool, labeled, source_train=source))
    assert picks.dtype == torch.long and picks.device.type == "cpu" and picks.shape == (n,)
    assert len(set(picks.tolist())) == n
    assert 0 <= int(picks.min()) and int(picks.max()) < N_POOL
    assert not labeled[picks].any()


@pytest.mark.parametrize("name", available_strategies())
def test_can_take_every_unlabeled_item_and_no_more(name, model, pool, source):
    labeled = labeled_mask(fraction=0.9)
    left = int((~labeled).sum())
    ctx = context(model, pool, labeled, source_train=source)
    picks = get_strategy(name).query(left, ctx)
    assert sorted(picks.tolist()) == (~labeled).nonzero().flatten().tolist()
    with pytest.raises(ValueError, match="at most the number of unlabeled"):
        get_strategy(name).query(left + 1, ctx)


@pytest.mark.parametrize("name", available_strategies())
def test_same_seed_same_picks(name, model, pool, source):
    labeled = labeled_mask()
    first = get_strategy(name).query(8, context(model, pool, labeled, seed=5, source_train=source))
    again = get_strategy(name).query(8, context(model, pool, labeled, seed=5, source_train=source))
    assert first.tolist() == again.tolist()


@pytest.mark.parametrize("name", available_strategies())
def test_contract_holds_on_every_device(name, device, pool, source):
    model = VectorNet().to(device)
    labeled = labeled_mask()
    ctx = QueryContext.create(model, pool, labeled, device=device, seed=0, source_train=source)
    assert ctx.outputs.embeddings.device.type == device
    picks = get_strategy(name).query(7, ctx)
    assert picks.device.type == "cpu" and len(set(picks.tolist())) == 7 and not labeled[picks].any()


def test_bad_n_is_rejected_with_its_name(model, pool):
    ctx = context(model, pool, labeled_mask())
    with pytest.raises(ValueError, match="n must be >= 0"):
        get_strategy("uniform").query(-1, ctx)
    with pytest.raises(TypeError, match="n must be an integer"):
        get_strategy("uniform").query(2.0, ctx)
    assert get_strategy("entropy").query(0, ctx).tolist() == []


def test_strategies_share_one_forward_pass_over_the_pool(model, pool):
    ctx = context(model, pool, labeled_mask())
    for name in ("entropy", "margin", "least-confidence", "coreset", "badge", "clue"):
        get_strategy(name).query(3, ctx)
    assert ctx.outputs.forward_passes == 1
    untouched = context(model, pool, labeled_mask())
    get_strategy("uniform").query(3, untouched)
    assert untouched.outputs.forward_passes == 0


def test_labeled_may_be_a_mask_or_indices_and_is_checked(model, pool):
    mask = labeled_mask()
    by_mask = get_strategy("entropy").query(5, context(model, pool, mask))
    by_indices = get_strategy("entropy").query(5, context(model, pool, mask.nonzero().flatten().tolist()))
    assert by_mask.tolist() == by_indices.tolist()
    with pytest.raises(ValueError, match="labeled indices must lie in"):
        context(model, pool, [0, N_POOL])
    with pytest.raises(ValueError, match="shape"):
        context(model, pool, torch.zeros(3, dtype=torch.bool))


def test_registry_names_and_options():
    assert available_strategies() == [
        "uniform", "entropy", "margin", "least-confidence", "coreset", "badge", "aada", "clue", "clue-margin",
        "clue-uniform"]
    assert get_strategy("Least_Confidence").name == "least-confidence"
    with pytest.raises(ValueError, match="unknown strategy 'bald'.*valid names: uniform"):
        get_strategy("bald")
    with pytest.raises(ValueError, match="bad options for strategy 'entropy'"):
        get_strategy("entropy", temperature=0.1)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        get_strategy("clue", temperature=0)


# ----------------------------------------------------------- uncertainty sampling


def brute_force_top(scores, labeled, n):
    ranked = sorted((i for i in range(len(scores)) if not labeled[i]), key=lambda i: (-float(scores[i]), i))
    return ranked[:n]


def test_uncertainty_strategies_take_the_top_scores(model, pool):
    labeled = labeled_mask()
    with torch.no_grad():
        logits, _ = model(pool.tensors[0])
    p = torch.softmax(logits.double(), dim=1)
    top2 = p.topk(2, dim=1).values
    expected_scores = {
        "entropy": -(p * p.log()).sum(1),
        "margin": top2[:, 1] - top2[:, 0],
        "least-confidence": 1 - top2[:, 0],
    }
    for name, scores in expected_scores.items():
        picks = get_strategy(name).query(9, context(model, pool, labeled))
        assert picks.tolist() == brute_force_top(scores, labeled, 9), name


# ------------------------------------------------------------------------ coreset


def brute_force_k_center(x, labeled, n, first=None):
    x = x.double()
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    centres = labeled.nonzero().flatten().tolist() + ([first] if first is not None else [])
    picks = [] if first is None else [first]
    while len(picks) < n:
        nearest = d[:, centres].min(dim=1).values
        nearest[centres] = -1
        nearest[labeled] = -1
        best = int(torch.argmax(nearest))
        picks.append(best)
        centres.append(best)
    return picks


def test_coreset_matches_brute_force_greedy_k_center(model, pool):
    labeled = labeled_mask(fraction=0.2)
    ctx = context(model, pool, labeled)
    picks = get_strategy("coreset").query(12, ctx)
    assert picks.tolist() == brute_force_k_center(ctx.outputs.embeddings, labeled, 12)


def test_coreset_without_labels_starts_anywhere_then_goes_farthest(model, pool):
    none = torch.zeros(N_POOL, dtype=torch.bool)
    ctx = context(model, pool, none)
    picks = get_strategy("coreset").query(10, ctx).tolist()
    assert picks == brute_force_k_center(ctx.outputs.embeddings, none, 10, first=picks[0])


def test_greedy_k_center_on_a_hand_checked_line():
    # Points 0, 1, 2, 5, 8, 10 on a line, 0 labeled. Farthest from 0: 10. Then from {0, 10}: 5.
    # Then from {0, 5, 10}: 2 and 8 are both 2 away (1 is 1 away): the lower index, 2, wins the tie.
    x = torch.tensor([[0.0], [1.0], [2.0], [5.0], [8.0], [10.0]])
    initial = torch.tensor([0])
    allowed = torch.tensor([False, True, True, True, True, True])
    picks = greedy_k_center(x, initial, allowed, 3, torch.Generator())
    assert picks.tolist() == [5, 3, 2]


# -------------------------------------------------------------------------- BADGE


def test_badge_equals_kmeanspp_on_materialised_gradient_embeddings():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 3, generator=g, dtype=torch.float64) * 2
    phi = torch.randn(50, 4, generator=g, dtype=torch.float64)
    residual, factor = gradient_embedding_factors(logits, phi)
    p = torch.softmax(logits, dim=1)
    expected_residual = p - torch.nn.functional.one_hot(p.argmax(1), 3).double()
    assert torch.allclose(residual, expected_residual)
    gradients = (expected_residual[:, :, None] * phi[:, None, :]).flatten(1)  # (N, C*D), materialised
    for seed in range(3):
        expected = reference.kmeanspp_seed(gradients, torch.ones(50, dtype=torch.float64), 8,
                                           uniforms_from_largest_norm(gradients, 8, seed), 1)
        assert badge_picks(residual, factor, 8, seed).tolist() == expected.tolist()


def uniforms_from_largest_norm(gradients, n, seed):
    """BADGE's draws with the first centre forced to the largest gradient embedding (unit weights)."""
    uniforms = draw_uniforms(n, seed)
    uniforms[0] = (int(gradients.norm(dim=1).argmax()) + 0.5) / gradients.shape[0]
    return uniforms


def test_badge_starts_from_the_largest_gradient_embedding():
    """Ash et al. seed K-Means++ with the point of largest gradient norm, whatever the draws."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(200, 5, generator=g)
    phi = torch.rand(200, 16, generator=g)
    phi[137] *= 10.0  # a long embedding ...
    logits[137] = 0.0  # ... with a uniform prediction: by far the largest |p - onehot| |phi|
    residual, factor = gradient_embedding_factors(logits, phi)
    firsts = {int(badge_picks(residual, factor, 5, seed)[0]) for seed in range(20)}
    assert firsts == {137}


def test_badge_strategy_matches_brute_force_on_its_pool_outputs(model, pool):
    labeled = labeled_mask()
    ctx = context(model, pool, labeled, seed=11)
    picks = get_strategy("badge").query(6, ctx)

    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(11)))
    unlabeled = (~labeled).nonzero().flatten()
    with torch.no_grad():
        logits, phi = model(pool.tensors[0][unlabeled])
    p = torch.softmax(logits.double(), dim=1)
    a = p - torch.nn.functional.one_hot(p.argmax(1), N_CLASSES).double()
    gradients = (a[:, :, None] * phi.double()[:, None, :]).flatten(1)
    expected = reference.kmeanspp_seed(gradients, torch.ones(len(unlabeled), dtype=torch.float64), 6,
                                       uniforms_from_largest_norm(gradients, 6, seed), 1)
    assert picks.tolist() == unlabeled[expected].tolist()


# --------------------------------------------------------------------------- AADA


def test_aada_draws_at_random_from_the_top_two_percent():
    g = torch.Generator().manual_seed(0)
    n_items = 1000  # top 2% = 20 candidates
    log_probs = torch.log_softmax(torch.randn(n_items, 5, generator=g), dim=1)
    p_target = torch.rand(n_items, generator=g)
    scores = aada_scores(log_probs, p_target)
    expected = -(log_probs.exp() * log_probs).sum(1).double() * p_target.double() / (1 - p_target.double())
    assert torch.allclose(scores, expected)
    candidates = torch.arange(n_items) + 5000  # pool indices differ from positions
    top20 = set((candidates[torch.argsort(scores, descending=True)[:20]]).tolist())

    seen = set()
    for seed in range(10):
        picks = sample_from_top(scores, candidates, 5, 0.02, torch.Generator().manual_seed(seed)).tolist()
        assert len(set(picks)) == 5 and set(picks) <= top20
        seen |= set(picks)
    assert len(seen) > 10  # random within the top set, not always its best five
    # A batch larger than the top 2% takes the top n.
    top30 = set((candidates[torch.argsort(scores, descending=True)[:30]]).tolist())
    assert set(sample_from_top(scores, candidates, 30, 0.02, torch.Generator()).tolist()) == top30


def test_aada_uses_the_da_methods_discriminator(model, pool):
    labeled = torch.zeros(N_POOL, dtype=torch.bool)
    ctx = context(model, pool, labeled, da_method=DannLike())
    picks = get_strategy("aada", top_fraction=0.0).query(4, ctx)  # top_fraction 0: the top n exactly
    with torch.no_grad():
        logits, phi = model(pool.tensors[0])
    d = torch.sigmoid(3 * phi[:, 0]).double()
    scores = -(torch.softmax(logits.double(), 1) * torch.log_softmax(logits.double(), 1)).sum(1) * d / (1 - d)
    assert set(picks.tolist()) == set(torch.argsort(scores, descending=True)[:4].tolist())


def test_aada_without_a_discriminator_needs_source_data(model, pool, source):
    with pytest.raises(ValueError, match="source_train"):
        get_strategy("aada").query(3, context(model, pool, labeled_mask()))
    ctx = context(model, pool, labeled_mask(), source_train=source)
    assert len(get_strategy("aada", discriminator_epochs=1).query(3, ctx)) == 3


# --------------------------------------------------------------------------- CLUE


@pytest.mark.parametrize("name,weighting", [("clue", "entropy"), ("clue-margin", "margin"),
                                            ("clue-uniform", "uniform")])
@pytest.mark.parametrize("temperature", [1.0, 0.1])
def test_clue_is_select_with_the_labeled_set_excluded(model, pool, temperature, name, weighting):
    labeled = labeled_mask()
    ctx = context(model, pool, labeled, seed=4)
    picks = get_strategy(name, temperature=temperature).query(10, ctx)
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(4)))
    with torch.no_grad():
        logits, phi = model(pool.tensors[0])
    expected = clue_ext.select(phi, torch.softmax(logits.double(), 1), 10, temperature=temperature, seed=seed,
                               exclude=labeled, weighting=weighting)
    assert picks.tolist() == expected.tolist()
