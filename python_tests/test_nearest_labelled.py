"""nearest_points_labelled (CPU): the picks of nearest_points, found from a labelling of the
points (Lloyd's final labels) instead of a pass over every centroid."""

import pytest
import torch

from clue_ext import ops


def labelled(x, c, labels, exclude=None):
    # scatter_cost=0: the labelled search however many candidates it leaves (by default
    # it hands crowded cases to the plain pass), so that it is what gets tested.
    return torch.ops.clue_ext.nearest_points_labelled(x, c, labels, exclude, 0)


def case(seed, n, d, k, clusters, dtype):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(clusters, d, generator=g, dtype=torch.float64) * 3
    member = torch.randint(0, clusters, (n,), generator=g)
    scale = 0.2 + torch.rand(clusters, generator=g, dtype=torch.float64)
    x = means[member] + scale[member, None] * torch.randn(n, d, generator=g, dtype=torch.float64)
    if seed % 3 == 0:
        x = torch.cat([x, x[: n // 4]])  # exact duplicates: ties go to the lower index
    c = x[torch.randperm(x.shape[0], generator=g)[:k]] + 0.3 * torch.randn(k, d, generator=g, dtype=torch.float64)
    return x.to(dtype), c.to(dtype), g


@pytest.mark.parametrize("seed", range(24))
def test_same_picks_as_nearest_points(seed):
    n, d, k = [(400, 8, 20), (900, 24, 60), (300, 3, 50), (1200, 16, 7)][seed % 4]
    x, c, g = case(seed, n, d, k, clusters=max(2, k // 3), dtype=torch.float64)
    exclude = None
    if seed % 2:
        exclude = torch.rand(x.shape[0], generator=g) < 0.3
    want = ops.nearest_points(x, c, exclude)
    # Nearest-centroid labels (the cheap case) and random labels (still exact, just less pruned).
    assert torch.equal(labelled(x, c, ops.assign(x, c)[0], exclude), want)
    random_labels = torch.randint(0, k, (x.shape[0],), generator=g)
    assert torch.equal(labelled(x, c, random_labels, exclude), want)


def test_float32_and_collisions_that_use_up_the_short_lists():
    # Many centroids on top of one another: each takes the next point, the later ones
    # go past the eight remembered and rescan.
    x, c, _ = case(5, 600, 12, 40, clusters=10, dtype=torch.float32)
    c[10:30] = c[10]
    labels = ops.assign(x, c)[0]
    assert torch.equal(labelled(x, c, labels), ops.nearest_points(x, c))


def test_crowded_cases_take_the_plain_pass_with_the_same_picks():
    x, c, _ = case(2, 500, 10, 30, clusters=3, dtype=torch.float64)
    labels = torch.zeros(x.shape[0], dtype=torch.long)  # one label for all: every point a candidate
    assert torch.equal(torch.ops.clue_ext.nearest_points_labelled(x, c, labels), ops.nearest_points(x, c))


def test_rejects_bad_labels():
    x = torch.randn(20, 3)
    c = x[:4].clone()
    with pytest.raises(ValueError, match="labels must be in"):
        labelled(x, c, torch.full((20,), 4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        labelled(x, c, torch.zeros(19, dtype=torch.long))
    with pytest.raises(ValueError, match="only 2 points"):
        labelled(x, c, torch.zeros(20, dtype=torch.long), torch.arange(20) >= 2)
