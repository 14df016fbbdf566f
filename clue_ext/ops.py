"""Thin typed wrappers over torch.ops.clue_ext.*, with their fake kernels.

The contract of each op (shapes, dtypes, ties, zero weights, empty clusters)
is documented in csrc/ops.h. These wrappers do no validation beyond what the
ops do themselves: the public API in kmeans.py and select.py does that.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import _extension

_extension.load()
_ops = torch.ops.clue_ext


def kmeanspp_seed(
    x: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    uniforms: torch.Tensor,
    n_local_trials: int,
    x_factor: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Indices (k,) of weighted greedy K-Means++ centres, drawn by `uniforms`."""
    return _ops.kmeanspp_seed(x, weights, k, uniforms, n_local_trials, x_factor)


def assign(x: torch.Tensor, centroids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(labels, squared distances) of each point's nearest centroid."""
    return _ops.assign(x, centroids)


def centroid_update(
    x: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(weighted cluster means, cluster weights); empty clusters keep `centroids`' row."""
    return _ops.centroid_update(x, weights, labels, centroids)


def lloyd(
    x: torch.Tensor, weights: torch.Tensor, centroids: torch.Tensor, max_iter: int, tol: float,
    label_tol: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centroids, labels, squared distances, n_iter) of weighted Lloyd iterations; tol is absolute,
    label_tol a share of the weight (csrc/ops.h)."""
    return _ops.lloyd(x, weights, centroids, max_iter, tol, label_tol)


def lloyd_assigner(x: torch.Tensor, k: int):
    """The CPU Lloyd loop's assignment step as an object that keeps its bounds between calls:
    ``.assign(centroids, drift) -> labels`` and ``.sq_dists(centroids)`` (csrc/ops.h, LloydAssigner)."""
    return torch.classes.clue_ext.LloydAssigner(x, k)


def nearest_points(
    x: torch.Tensor, centroids: torch.Tensor, exclude: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Distinct nearest point of each centroid, centroids served in order."""
    return _ops.nearest_points(x, centroids, exclude)


def nearest_points_labelled(
    x: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor, exclude: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """The picks of :func:`nearest_points`, found faster from `labels` (Lloyd's final labelling of x).

    On the CPU the op measures each centroid only against the points its bounds cannot rule out
    (csrc/ops.h); elsewhere this is :func:`nearest_points`.
    """
    if x.device.type == "cpu":
        return _ops.nearest_points_labelled(x, centroids, labels, exclude)
    return _ops.nearest_points(x, centroids, exclude)


def build_info() -> dict:
    """How the extension was built: CUDA or not, architectures, torch version."""
    return _extension.build_info()


_extension.check_built_torch(build_info()["torch_version"])


@torch.library.register_fake("clue_ext::kmeanspp_seed")
def _kmeanspp_seed_fake(x, weights, k, uniforms, n_local_trials, x_factor=None):
    return x.new_empty((k,), dtype=torch.long)


@torch.library.register_fake("clue_ext::assign")
def _assign_fake(x, centroids):
    return x.new_empty((x.shape[0],), dtype=torch.long), x.new_empty((x.shape[0],))


@torch.library.register_fake("clue_ext::centroid_update")
def _centroid_update_fake(x, weights, labels, centroids):
    return centroids.new_empty(centroids.shape), centroids.new_empty((centroids.shape[0],), dtype=torch.float64)


@torch.library.register_fake("clue_ext::lloyd")
def _lloyd_fake(x, weights, centroids, max_iter, tol):
    n = x.shape[0]
    return (centroids.new_empty(centroids.shape), x.new_empty((n,), dtype=torch.long), x.new_empty((n,)),
            x.new_empty((), dtype=torch.long))


@torch.library.register_fake("clue_ext::nearest_points")
def _nearest_points_fake(x, centroids, exclude=None):
    return x.new_empty((centroids.shape[0],), dtype=torch.long)
