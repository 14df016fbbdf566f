"""The sharded select's steps against the one-process ops, with the ranks as threads.

A ThreadedCollective stands in for a torch.distributed group: each rank runs
in its own thread and the collectives meet at a barrier, so many shardings
can be compared in seconds (test_distributed.py runs the real gloo group).
"""

import functools
import threading
import types

import pytest
import torch
import torch.distributed as dist

import clue_ext
from clue_ext import ops
from clue_ext.distributed import _agreement, _collective, _lloyd, _nearest, select_sharded


class ThreadedCollective:
    """Collective's interface over threads of one process (rank = thread)."""

    def __init__(self, hub, rank):
        self.hub, self.rank, self.size = hub, rank, hub["size"]
        self.device = torch.device("cpu")
        self.bytes_sent = 0

    def _exchange(self, obj):
        barrier, slots = self.hub["barrier"], self.hub["slots"]
        barrier.wait()
        slots[self.rank] = obj
        barrier.wait()
        every = list(slots)
        barrier.wait()
        return every

    def sum(self, tensor):
        return functools.reduce(torch.add, self._exchange(tensor.clone()))

    def broadcast(self, tensor, src=0):
        return self._exchange(tensor.clone())[src].clone()

    def gather_rows(self, tensor, counts):
        return torch.cat([part[:count] for part, count in zip(self._exchange(tensor.clone()), counts)])

    def gather_objects(self, obj):
        return self._exchange(obj)


def run_ranks(cuts, body):
    """[body(comm, rows of rank r) for each rank r], the ranks running together as threads;
    cuts: the row bounds of the ranks ([0, ..., N])."""
    size = len(cuts) - 1
    hub = dict(size=size, barrier=threading.Barrier(size, timeout=120), slots=[None] * size)
    results, errors = [None] * size, [None] * size

    def rank_main(rank):
        try:
            results[rank] = body(ThreadedCollective(hub, rank), slice(cuts[rank], cuts[rank + 1]))
        except BaseException as error:  # noqa: BLE001 (re-raised below)
            errors[rank] = error
            hub["barrier"].abort()

    threads = [threading.Thread(target=rank_main, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None and not isinstance(error, threading.BrokenBarrierError):
            raise error
    return results


def random_cuts(n, world, g):
    """Bounds of `world` ranks over n rows, drawn at random (a rank may be empty)."""
    return [0] + sorted(torch.randint(0, n + 1, (world - 1,), generator=g).tolist()) + [n]


def sharded_nearest(x, centroids, keep, cuts):
    picks = run_ranks(cuts, lambda comm, rows: _nearest.nearest_points(
        comm, x[rows], centroids, None if keep is None else keep[rows], rows.start))
    for rank, other in enumerate(picks[1:], start=1):
        assert torch.equal(other, picks[0]), f"rank {rank} resolved differently"
    return picks[0]


# Integer-valued float64 rows and half-integer centroids: every squared distance,
# expanded or not, is exact, so "the same picks" leaves no room for rounding.


def test_nearest_points_a_rank_whose_listed_rows_are_taken_may_hold_the_nearest_free_one():
    x = torch.tensor([[float(i)] for i in list(range(10)) + [100]], dtype=torch.float64)
    centroids = torch.tensor([[float(i)] for i in list(range(8)) + [0.5]], dtype=torch.float64)
    expected = ops.nearest_points(x, centroids)
    assert expected.tolist() == list(range(9))
    # Rank 0 lists rows 0..7 for the last centroid, all taken; its row 8 is nearer than rank 1's row 100.
    assert sharded_nearest(x, centroids, None, [0, 10, 11]).tolist() == list(range(9))


def test_nearest_points_equal_the_op_for_any_sharding():
    g = torch.Generator().manual_seed(0)
    for trial in range(40):
        n = int(torch.randint(20, 200, (1,), generator=g))
        d = int(torch.randint(1, 4, (1,), generator=g))
        x = torch.randint(-5, 6, (n, d), generator=g).double()  # many duplicate rows: ties by index
        excluded = torch.rand(n, generator=g) < 0.2 if trial % 2 else torch.zeros(n, dtype=torch.bool)
        available = n - int(excluded.sum())
        # Budgets up to every available row: late centroids find their lists taken.
        k = max(1, available - int(torch.randint(0, 4, (1,), generator=g))) if trial % 3 else \
            int(torch.randint(1, available + 1, (1,), generator=g))
        centroids = torch.randint(-10, 11, (k, d), generator=g).double() / 2
        expected = ops.nearest_points(x, centroids, excluded if bool(excluded.any()) else None)
        cuts = random_cuts(n, 2 + trial % 2, g)
        got = sharded_nearest(x, centroids, ~excluded if bool(excluded.any()) else None, cuts)
        assert torch.equal(got, expected), f"trial {trial}: n {n}, k {k}, cuts {cuts}"


def test_nearest_points_on_float_data_equal_the_op():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3000, 4, generator=g)
    centroids = torch.randn(700, 4, generator=g) * 0.7
    assert torch.equal(sharded_nearest(x, centroids, None, [0, 1100, 1100, 3000]), ops.nearest_points(x, centroids))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cluster_sums_are_centroid_updates_sums_in_its_order(dtype):
    g = torch.Generator().manual_seed(2)
    for n, k in ((2000, 3), (3000, 700), (600, 1)):  # clusters of one run of 256 rows and of several
        x = torch.randn(n, 5, generator=g, dtype=dtype) * 10
        w = torch.rand(n, generator=g, dtype=dtype)
        w[torch.rand(n, generator=g) < 0.5] = 0
        labels = torch.randint(0, k, (n,), generator=g)
        sums = _lloyd.cluster_sums(x, w, labels, k)
        # The order that needs no index_add_ (CUDA's) gives the same bits.
        assert torch.equal(_lloyd.cluster_sums(x, w, labels, k, by_steps=True), sums)
        means, weights = _lloyd.means_from_sums(sums, x[:k])
        expected, expected_weights = ops.centroid_update(x, w, labels, x[:k].clone())
        assert torch.equal(weights, expected_weights)
        assert torch.equal(means, expected)
        # A cluster's sums depend on its own rows only.
        some = torch.isin(labels, torch.tensor([0, k - 1]))
        alone = _lloyd.cluster_sums(x, w, labels, k, rows=some.nonzero().flatten())
        assert torch.equal(alone[[0, k - 1]], sums[[0, k - 1]])


def sharded_lloyd(x, w, start, cuts, max_iter):
    results = run_ranks(cuts, lambda comm, rows: _lloyd.lloyd(comm, ops, x[rows], w[rows], start, max_iter=max_iter,
                                                              tol=0.0, offset=rows.start))
    return results[0][0], torch.cat([r[1] for r in results])


@pytest.mark.parametrize("n,k,max_iter", [(2000, 400, 25), (20000, 4000, 12)], ids=["small", "20k"])
def test_sharded_lloyd_treats_clusters_of_zero_weight_rows_as_the_op_does(n, k, max_iter):
    # 80% zero weights (excluded rows, one-hot probabilities): many clusters keep
    # only rows of weight 0 and must be empty, and relocated, as in the op.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g, dtype=torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64)
    w[torch.rand(n, generator=g) < 0.8] = 0
    start = x[torch.randperm(n, generator=g)[:k]].clone()
    expected_centroids, expected_labels, _, _ = ops.lloyd(x, w, start, max_iter, 0.0)
    centroids, labels = sharded_lloyd(x, w, start, [0, n], max_iter)
    assert torch.equal(labels, expected_labels)
    assert torch.equal(centroids, expected_centroids)  # one rank sums in the op's order
    centroids, labels = sharded_lloyd(x, w, start, [0, 2 * n // 5, n], max_iter)
    assert torch.equal(labels, expected_labels)
    # Two ranks add a cluster's two partial sums: the same up to that last rounding.
    torch.testing.assert_close(centroids, expected_centroids, rtol=1e-13, atol=1e-13)


def sharded_select(x, probs, budget, cuts, **kwargs):
    arguments = dict(temperature=1.0, seed=0, exclude=None, init="fast", max_iter=300, tol=1e-4)
    arguments.update(kwargs)

    def body(comm, rows):
        shard = _agreement.agree(comm, x[rows], probs[rows], budget, **arguments)
        return select_sharded(comm, ops, shard).picks

    picks = run_ranks(cuts, body)
    for other in picks[1:]:
        assert torch.equal(other, picks[0])
    return picks[0]


def clustered_pool(n=600, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(15, d, generator=g) * 4
    x = centres[torch.randint(0, 15, (n,), generator=g)] + torch.randn(n, d, generator=g)
    return x, torch.softmax(torch.randn(n, 5, generator=g) * 2, dim=1)


def test_sharded_picks_do_not_change_under_power_of_two_scaling():
    x, probs = clustered_pool()
    expected = clue_ext.select(x, probs, 30, seed=0)
    for cuts in ([0, 250, 600], [0, 0, 400, 600]):
        for exponent in (0, 60, -60, 120):
            got = sharded_select(x * 2.0 ** exponent, probs, 30, cuts)
            assert torch.equal(got, expected), (cuts, exponent)
        # The largest value on one rank decides the scale of every rank.
        scaled = x.clone()
        scaled[:250] *= 2.0 ** 70
        assert torch.equal(sharded_select(scaled, probs, 30, cuts), clue_ext.select(scaled, probs, 30, seed=0))


def test_sharded_select_takes_extreme_finite_features():
    x = torch.tensor([[1e30 * i] for i in range(9)], dtype=torch.float32)
    probs = torch.full((9, 2), 0.5)
    picks = sharded_select(x, probs, 9, [0, 4, 9])
    assert sorted(picks.tolist()) == list(range(9))
    tiny = torch.tensor([[1e-30 * i, 1e-30] for i in range(40)], dtype=torch.float32)
    probs = torch.softmax(torch.randn(40, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    assert torch.equal(sharded_select(tiny, probs, 10, [0, 13, 40]), clue_ext.select(tiny, probs, 10, seed=0))


def test_weights_are_normalised_from_the_largest_weight_of_any_rank():
    # Near one-hot probabilities: entropies of 1e-44 (rank 0) and 1e-50 (the others), which
    # round to denormals and zeros in float32 unless multiplied by a power of two first,
    # and by the same one on every rank, or their ratios change.
    x, _ = clustered_pool()
    g = torch.Generator().manual_seed(3)
    confident = (torch.rand(600, generator=g, dtype=torch.float64) + 0.01) * 1e-52
    confident[:200] *= 1e6
    probs = torch.stack([1 - confident, confident], dim=1)
    expected = clue_ext.select(x, probs, 30, seed=0)
    assert torch.equal(sharded_select(x, probs, 30, [0, 200, 600]), expected)
    assert torch.equal(sharded_select(x, probs, 30, [0, 100, 400, 600]), expected)


def test_sharded_tolerance_comes_from_a_variance_that_does_not_cancel():
    g = torch.Generator().manual_seed(4)
    x = 100.0 + 0.01 * torch.randn(5000, 3, generator=g)  # float32, far from the origin
    expected = float(x.double().var(dim=0, unbiased=False).mean())
    variances = run_ranks([0, 1000, 1000, 5000], lambda comm, rows: _lloyd.mean_feature_variance(comm, x[rows], 5000))
    for variance in variances:
        assert variance == pytest.approx(expected, rel=1e-9)


def test_weighting_is_agreed_and_used():
    x, probs = clustered_pool()
    for weighting in ("margin", "uniform"):
        assert torch.equal(sharded_select(x, probs, 20, [0, 300, 600], weighting=weighting),
                           clue_ext.select(x, probs, 20, seed=0, weighting=weighting))
    with pytest.raises(ValueError, match="weighting must be the same on every rank"):
        run_ranks([0, 300, 600], lambda comm, rows: _agreement.agree(
            comm, x[rows], probs[rows], 20, temperature=1.0, seed=0, exclude=None, init="fast", max_iter=300,
            tol=1e-4, weighting="margin" if comm.rank else "entropy"))


def test_an_integer_exclude_of_zeros_and_ones_for_every_row_is_refused_on_every_rank():
    x, probs = clustered_pool()
    mask = torch.arange(600) % 7 == 0

    def body(comm, rows):
        try:
            _agreement.agree(comm, x[rows], probs[rows], 20, temperature=1.0, seed=0, init="fast", max_iter=300,
                             tol=1e-4, exclude=mask.long() if comm.rank else mask.long().numpy())
        except ValueError as error:
            return str(error)

    for message in run_ranks([0, 300, 600], body):
        assert "looks like a mask stored as integers" in message
    # As a bool mask, or as the indices it marks, it excludes the same rows as in one process.
    expected = clue_ext.select(x, probs, 20, seed=0, exclude=mask)
    assert torch.equal(sharded_select(x, probs, 20, [0, 300, 600], exclude=mask), expected)
    assert torch.equal(sharded_select(x, probs, 20, [0, 300, 600], exclude=mask.nonzero().flatten()), expected)


def test_inputs_that_require_grad_on_one_rank_pick_as_plain_values():
    x, probs = clustered_pool()
    expected = sharded_select(x, probs, 20, [0, 300, 600])

    def body(comm, rows):
        features, p = x[rows], probs[rows]
        if comm.rank == 0:
            features = torch.nn.Parameter(features.clone())
            p = p.clone().requires_grad_(True)
        shard = _agreement.agree(comm, features, p, 20, temperature=1.0, seed=0, exclude=None, init="fast",
                                 max_iter=300, tol=1e-4)
        return select_sharded(comm, ops, shard).picks

    for picks in run_ranks([0, 300, 600], body):
        assert torch.equal(picks, expected)


def test_nccl_collectives_run_on_the_features_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert _collective.collective_device("nccl", torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert _collective.collective_device("nccl", torch.device("cuda")) == torch.device("cuda", 0)
    assert _collective.collective_device("nccl", torch.device("cpu")) == torch.device("cuda", 0)
    assert _collective.collective_device("nccl", None) == torch.device("cuda", 0)
    assert _collective.collective_device("gloo", torch.device("cuda", 1)) == torch.device("cpu")
    # And a Collective of an NCCL group built for features on cuda:1 uses cuda:1.
    fake = types.SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True,
                                 get_rank=lambda group: 1, get_world_size=lambda group: 2,
                                 get_backend=lambda group: "nccl")
    for name, value in vars(fake).items():
        monkeypatch.setattr(dist, name, value)
    assert _collective.Collective(None, device=torch.device("cuda", 1)).device == torch.device("cuda", 1)
    assert _collective.Collective(None).device == torch.device("cuda", 0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cluster_sums_on_cuda_are_the_cpus_bit_for_bit():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(20000, 16, generator=g)
    w = torch.rand(20000, generator=g)
    labels = torch.randint(0, 50, (20000,), generator=g)
    expected = _lloyd.cluster_sums(x, w, labels, 50)
    for _ in range(3):
        got = _lloyd.cluster_sums(x.cuda(), w.cuda(), labels.cuda(), 50)
        assert torch.equal(got.cpu(), expected)


