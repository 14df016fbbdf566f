"""The paper's Table 3: query time per round of every strategy, on precomputed features.

    pytest bench/test_bench_table3.py -s

Two scales: DIGITS (SVHN->MNIST: N=60,000, D=500, C=10, B=10) and
Clipart->Sketch (N=48,000, D=512, C=345, B=500). Every strategy of
clue_ext.strategies queries one round (after one round of B random labels,
so that coreset has its labeled centres), beside the original recipes of
CLUE (scikit-learn KMeans + nearest neighbours), BADGE (K-Means++ on the
materialised N x C*D gradient embeddings with scikit-learn distances) and
coreset (greedy K-Center with scikit-learn distances, as Sener & Savarese).
Embeddings and logits are given, so the times leave out the forward pass that
the paper's times include. A recipe that would need more memory than
CLUE_BENCH_MAX_GB (default 4) is reported as not run.
"""

import os

import numpy as np
import pytest
import torch
from torch import nn

from clue_ext.strategies import get_strategy
from clue_ext.strategies.context import QueryContext
from clue_ext.strategies.pool_outputs import PoolOutputs
from workloads import Workload, distinct_nearest

DIGITS = Workload("DIGITS", 60_000, 500, 10, classes=10, mixture=10)
CLIPART_SKETCH = Workload("Clipart->Sketch", 48_000, 512, 500, classes=345)
WORKLOADS = [DIGITS, CLIPART_SKETCH]
STRATEGIES = ["uniform", "entropy", "margin", "least-confidence", "coreset", "badge", "aada", "clue"]
# The paper's Table 3 (seconds per round, forward pass included).
PAPER = {
    "clue": (60, 16.2 * 60), "badge": (103, 16.3 * 60), "coreset": (52, 2.8 * 60),
    "aada": (3.7, 139), "entropy": (3.5, 45), "margin": (3.2, 45),
}
MAX_BYTES = float(os.environ.get("CLUE_BENCH_MAX_GB", "4")) * 2**30
TIMES = {}  # (workload name, method) -> seconds, or a reason it did not run


class GivenOutputs(PoolOutputs):
    """Pool outputs that are already computed: no model, no forward pass."""

    def __init__(self, embeddings, logits):
        super().__init__(nn.Identity(), None, "cpu")
        self._embeddings, self._logits = embeddings, logits


class Discriminator(nn.Module):
    """A DANN-style domain discriminator head (random weights; only its cost matters)."""

    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 500), nn.ReLU(), nn.Linear(500, 1))

    def forward(self, embeddings):
        return torch.sigmoid(self.net(embeddings)).squeeze(1)


class DannLike:
    name = "dann"

    def __init__(self, dim):
        torch.manual_seed(0)
        self.domain_discriminator = Discriminator(dim)


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """Every method is timed once, so first-call costs (imports, lazy
    initialisation) are paid up front, on small problems, by both sides."""
    import clue_ext
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances

    x = torch.rand(500, 16)
    clue_ext.select(x, torch.softmax(torch.randn(500, 4), 1), 5, seed=0)
    KMeans(5, n_init=1, random_state=0).fit(x.numpy(), sample_weight=np.ones(500))
    pairwise_distances(x[:5].numpy(), x.numpy())


@pytest.fixture(scope="module", params=WORKLOADS, ids=lambda w: w.name)
def round_data(request):
    workload = request.param
    x, _, _ = workload.make()
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(workload.n, workload.classes)).astype(np.float32) * 2)
    labeled = torch.zeros(workload.n, dtype=torch.bool)
    labeled[torch.from_numpy(rng.choice(workload.n, workload.budget, replace=False))] = True
    return workload, torch.from_numpy(x), logits, labeled


def context_for(workload, embeddings, logits, labeled):
    return QueryContext(model=nn.Identity(), pool=torch.utils.data.TensorDataset(embeddings), labeled=labeled,
                        device=torch.device("cpu"), generator=torch.Generator().manual_seed(0),
                        outputs=GivenOutputs(embeddings, logits), da_method=DannLike(workload.d))


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_query(benchmark, round_data, name):
    workload, x, logits, labeled = round_data
    strategy = get_strategy(name)
    picks = benchmark.pedantic(lambda: strategy.query(workload.budget, context_for(workload, x, logits, labeled)),
                               rounds=1, iterations=1)
    assert len(set(picks.tolist())) == workload.budget and not bool(labeled[picks].any())
    TIMES[(workload.name, name)] = benchmark.stats.stats.mean


def original_clue(x, logits, labeled, budget):
    from sklearn.cluster import KMeans

    p = torch.softmax(logits.double(), 1).numpy()
    unlabeled = np.flatnonzero(~labeled.numpy())
    emb = x.numpy()[unlabeled]
    weights = -(p[unlabeled] * np.log(p[unlabeled] + 1e-8)).sum(1)  # the authors' +1e-8
    km = KMeans(budget).fit(emb, sample_weight=weights)
    return unlabeled[distinct_nearest(emb, km.cluster_centers_)]


def original_badge(x, logits, labeled, budget):
    """BADGE's init_centers on explicit gradient embeddings."""
    from sklearn.metrics import pairwise_distances

    unlabeled = np.flatnonzero(~labeled.numpy())
    p = torch.softmax(logits[unlabeled].double(), 1).numpy()
    residual = p.copy()
    residual[np.arange(len(p)), p.argmax(1)] -= 1.0
    grads = (residual[:, :, None] * x.numpy()[unlabeled][:, None, :]).reshape(len(p), -1).astype(np.float32)
    rng = np.random.default_rng(0)
    first = int(np.argmax(np.linalg.norm(grads, axis=1)))
    picks = [first]
    d2 = pairwise_distances(grads, grads[[first]]).ravel().astype(np.float64) ** 2
    while len(picks) < budget:
        d2[picks] = 0.0
        nxt = int(rng.choice(len(d2), p=d2 / d2.sum()))
        picks.append(nxt)
        d2 = np.minimum(d2, pairwise_distances(grads, grads[[nxt]]).ravel() ** 2)
    return unlabeled[picks]


def original_coreset(x, logits, labeled, budget):
    """Sener & Savarese's greedy K-Center (furthest first) with scikit-learn distances."""
    from sklearn.metrics import pairwise_distances

    emb = x.numpy()
    unlabeled = np.flatnonzero(~labeled.numpy())
    min_dist = pairwise_distances(emb[unlabeled], emb[labeled.numpy()]).min(axis=1)
    picks = []
    for _ in range(budget):
        idx = int(min_dist.argmax())
        picks.append(idx)
        min_dist = np.minimum(min_dist, pairwise_distances(emb[unlabeled], emb[unlabeled[[idx]]])[:, 0])
    return unlabeled[picks]


ORIGINALS = {"clue": (original_clue, lambda w: 0), "badge": (original_badge, lambda w: w.n * w.classes * w.d * 8),
             "coreset": (original_coreset, lambda w: 0)}


@pytest.mark.parametrize("name", list(ORIGINALS))
def test_original_recipe(benchmark, round_data, name):
    workload, x, logits, labeled = round_data
    recipe, memory = ORIGINALS[name]
    if memory(workload) > MAX_BYTES:
        reason = f"not run: needs {memory(workload) / 2**30:.0f} GB"
        TIMES[(workload.name, f"{name} (original)")] = reason
        pytest.skip(f"{reason} (more than CLUE_BENCH_MAX_GB)")
    picks = benchmark.pedantic(lambda: recipe(x, logits, labeled, workload.budget), rounds=1, iterations=1)
    assert len(set(np.asarray(picks).tolist())) == workload.budget
    TIMES[(workload.name, f"{name} (original)")] = benchmark.stats.stats.mean


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def teardown_module():
    if not TIMES:
        return
    names = [w.name for w in WORKLOADS]
    print("\n| strategy | " + " | ".join(f"{n}: clue_ext | {n}: paper (fwd incl.)" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    for name in STRATEGIES:
        cells = []
        for i, n in enumerate(names):
            cells.append(_cell(TIMES.get((n, name))))
            cells.append(_cell(PAPER[name][i]) if name in PAPER else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| original recipe | " + " | ".join(f"{n}: seconds | {n}: / clue_ext" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    for name in ORIGINALS:
        cells = []
        for n in names:
            t = TIMES.get((n, f"{name} (original)"))
            ours = TIMES.get((n, name))
            cells.append(_cell(t))
            cells.append(f"{t / ours:.0f}x" if isinstance(t, float) and isinstance(ours, float) else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
