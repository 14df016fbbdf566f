"""clue_ext: fast CLUE active domain adaptation.

CLUE (Prabhu et al., "Active Domain Adaptation via Clustering
Uncertainty-weighted Embeddings", ICCV 2021) picks which unlabeled target
images to label: it weights each embedding by the model's predictive entropy,
runs weighted K-Means with K = budget and takes the point nearest each
centroid. The clustering runs in C++ (CPU) and CUDA kernels.

    >>> idx = clue_ext.select(features, probs, budget=500)
"""

from .kmeans import DEFAULT_INIT, INITS, KMeansResult, weighted_kmeans
from .ops import build_info as _ops_build_info
from .selection import entropy_weights, select

__version__ = "0.1.0"


def build_info() -> dict:
    """How the extension was built.

    Returns a dict with `cuda` (whether CUDA kernels were compiled),
    `cuda_archs` (e.g. "8.0;9.0"), `cuda_version` and `torch_version` (the
    torch the extension was compiled against), plus `torch_runtime`, the torch
    running now.
    """
    import torch

    info = _ops_build_info()
    info["torch_runtime"] = torch.__version__
    return info


__all__ = ["select", "weighted_kmeans", "KMeansResult", "entropy_weights", "build_info", "INITS", "DEFAULT_INIT",
           "__version__"]
