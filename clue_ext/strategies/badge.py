"""``badge``: K-Means++ seeding on gradient embeddings (Ash et al., ICLR 2020).

An item's gradient embedding is the gradient of the cross-entropy at its
predicted label with respect to the last layer's weights:
``(p - onehot(argmax p)) ⊗ phi(x)``, ``C * D`` numbers (176k on DomainNet with a
ResNet-34). It is never materialised: ``clue_ext.ops.kmeanspp_seed`` takes the
two factors and uses ``<g_i, g_j> = <a_i, a_j> <phi_i, phi_j>``. BADGE picks the
K-Means++ centres themselves, with plain K-Means++ (one candidate per centre)
and every item weighted equally. Its norm carries the uncertainty: a confident
prediction has ``p`` close to the one-hot vector and a small gradient.

The first centre is the item with the largest gradient-embedding norm
``|a_i| |phi_i|``, as in Ash et al.'s code (the CLUE authors' copy takes the
norm of the residual factor ``a_i`` alone); the K-Means++ draws start from it.
"""

from __future__ import annotations

import torch

from .. import ops
from ..kmeans import draw_uniforms
from .base import Strategy


def gradient_embedding_factors(logits: torch.Tensor, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two factors ``(p - onehot(argmax p), phi)`` of the gradient embeddings."""
    probs = torch.softmax(logits.double(), dim=1)
    residual = probs.clone()
    residual[torch.arange(probs.shape[0], device=probs.device), probs.argmax(dim=1)] -= 1.0
    return residual.to(embeddings.dtype), embeddings


def largest_gradient_norm(residual: torch.Tensor, embeddings: torch.Tensor) -> int:
    """Row of the largest ``|residual_i ⊗ embeddings_i| = |residual_i| |embeddings_i|`` (first on ties)."""
    norms = residual.double().norm(dim=1) * embeddings.double().norm(dim=1)
    return int(norms.argmax())


def badge_picks(residual: torch.Tensor, embeddings: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Rows picked by plain K-Means++ on the rows of ``residual ⊗ embeddings``, from the largest-norm row."""
    count = residual.shape[0]
    ones = torch.ones(count, dtype=residual.dtype, device=residual.device)
    uniforms = draw_uniforms(n, seed)  # 1 + (n - 1) * 1 trial
    # With unit weights the seeding's first centre is the first row i with
    # i + 1 > uniforms[0] * count (ops.h), so a draw in the middle of row
    # `first`'s unit interval selects exactly that row.
    first = largest_gradient_norm(residual, embeddings)
    uniforms[0] = (first + 0.5) / count
    return ops.kmeanspp_seed(
        residual.contiguous(), ones, n, uniforms.to(residual.device), 1, x_factor=embeddings.contiguous()
    )


class Badge(Strategy):
    """BADGE on the unlabeled pool."""

    name = "badge"

    def _select(self, n, context):
        unlabeled = context.unlabeled_indices
        rows = unlabeled.to(context.device)
        residual, embeddings = gradient_embedding_factors(
            context.outputs.logits[rows], context.outputs.embeddings[rows]
        )
        picks = badge_picks(residual, embeddings, n, context.random_seed())
        return unlabeled[picks.cpu()]
