"""ops.lloyd_assigner (the CPU Lloyd kernel's bounded assignment step) and the sharded
Lloyd's incremental cluster sums."""

import pytest
import torch

import clue_ext
from clue_ext import ops
from clue_ext.distributed._lloyd import LocalSums, cluster_sums


def clustered(n=3000, d=24, k=30, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g, dtype=torch.float64) * 3
    x = centres[torch.randint(0, k, (n,), generator=g)] + torch.randn(n, d, generator=g, dtype=torch.float64)
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_assigner_labels_match_assign_along_lloyd(dtype):
    x = clustered(dtype=dtype)
    w = torch.rand(x.shape[0], dtype=dtype)
    centroids = x[:40].clone()
    assigner = ops.lloyd_assigner(x, 40)
    previous = None
    skipped_work = False
    for step in range(12):
        drift = torch.zeros(40, dtype=torch.float64) if previous is None else \
            (centroids.double() - previous.double()).pow(2).sum(dim=1).sqrt()
        labels = assigner.assign(centroids, drift)
        expected, expected_sq = ops.assign(x, centroids)
        assert torch.equal(labels, expected), f"step {step}"
        torch.testing.assert_close(assigner.sq_dists(centroids), expected_sq)
        skipped_work |= step > 0 and bool((drift == 0).any())
        previous = centroids
        centroids, _ = ops.centroid_update(x, w, labels, centroids)
    assert skipped_work  # some centroids stopped moving: the bounds were used


def test_assigner_with_a_false_drift_keeps_stale_labels():
    # The bounds trust the drift they are told: a centroid moved far with
    # drift 0 reported leaves rows on their old label (what the contract warns of).
    x = clustered(n=500, k=5)
    centroids = x[:5].clone()
    assigner = ops.lloyd_assigner(x, 5)
    first = assigner.assign(centroids, torch.zeros(5, dtype=torch.float64))
    moved = centroids.clone()
    moved[0] = moved[1]  # centroid 0 jumps onto centroid 1
    assert torch.equal(assigner.assign(moved, torch.zeros(5, dtype=torch.float64)), first)
    honest = ops.lloyd_assigner(x, 5)
    honest.assign(centroids, torch.zeros(5, dtype=torch.float64))
    drift = (moved - centroids).double().pow(2).sum(dim=1).sqrt()
    assert torch.equal(honest.assign(moved, drift), ops.assign(x, moved)[0])


def test_assigner_rejects_bad_arguments():
    x = clustered(n=100)
    with pytest.raises(ValueError, match="k must be >= 1"):
        ops.lloyd_assigner(x, 0)
    assigner = ops.lloyd_assigner(x, 4)
    with pytest.raises(ValueError, match="centroids must have 4 rows"):
        assigner.assign(x[:3].clone(), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="drift must have shape"):
        assigner.assign(x[:4].clone(), torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="columns like x"):
        assigner.assign(x[:4, :5].clone(), torch.zeros(4, dtype=torch.float64))


def test_local_sums_follow_the_labels_and_empty_clusters_are_exact_zeros():
    x = clustered(n=2000, d=8, k=10, dtype=torch.float32)
    w = torch.rand(2000)
    sums = LocalSums(x, w, 6)
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 6, (2000,), generator=g)
    for step in range(6):
        got = sums(labels)
        torch.testing.assert_close(got, cluster_sums(x, w, labels, 6), rtol=1e-12, atol=1e-9)
        labels = labels.clone()
        moving = torch.randperm(2000, generator=g)[:100 * (step + 1)]
        labels[moving] = torch.randint(0, 6, (moving.numel(),), generator=g)
    labels = torch.where(labels == 5, torch.zeros_like(labels), labels)  # cluster 5 empties
    assert bool((sums(labels)[5] == 0).all())


def test_sharded_lloyd_equals_the_lloyd_op_in_one_process(tmp_path):
    # One rank: the sharded loop (assigner + all-reduced sums) takes the same
    # steps as the fused op, so the result is the same bit for bit.
    import torch.distributed as dist

    from clue_ext import distributed
    from clue_ext.distributed import _lloyd

    x = clustered(n=4000, d=16, k=25)
    w = torch.rand(4000)
    start = x[torch.randperm(4000, generator=torch.Generator().manual_seed(2))[:40]].clone()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        centroids, labels, sq, n_iter = _lloyd.lloyd(distributed.Collective(None), ops, x, w, start, max_iter=300,
                                                     tol=0.0, offset=0)
    finally:
        dist.destroy_process_group()
    expected = clue_ext.kmeans.lloyd(ops, x, w, start, max_iter=300, tol=0.0)
    assert n_iter == expected.n_iter
    assert torch.equal(labels, expected.labels)
    torch.testing.assert_close(centroids, expected.centroids, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sq, expected.sq_dists)


def test_assigner_refuses_a_drift_that_is_not_a_float64_cpu_tensor():
    # The kernel reads drift's memory as host doubles: a float32 drift was
    # converted silently, one on another device read as host memory.
    x = clustered(n=200, d=6)
    assigner = ops.lloyd_assigner(x, 4)
    centroids = x[:4].clone()
    wrong = [torch.zeros(4, dtype=torch.float32), torch.zeros(4, dtype=torch.int64),
             torch.zeros(4, dtype=torch.float64, device="meta")]
    if torch.cuda.is_available():
        wrong.append(torch.zeros(4, dtype=torch.float64, device="cuda"))
    for drift in wrong:
        with pytest.raises(ValueError, match="drift must be a float64 CPU tensor"):
            assigner.assign(centroids, drift)
    labels = assigner.assign(centroids, torch.zeros(4, dtype=torch.float64))
    assert torch.equal(labels, ops.assign(x, centroids)[0])
