"""Virtual adversarial training loss (Miyato et al., 2018), as VADA uses it."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


@contextlib.contextmanager
def dropout_off(model: nn.Module) -> Iterator[None]:
    """Put every dropout layer of ``model`` in eval mode inside the block.

    The loss compares the prediction at ``x`` with the one at ``x + r``; with
    dropout on, two independent masks would make the two differ even for
    ``r = 0``, and the power iteration would chase that noise.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.training]
    for layer in layers:
        layer.eval()
    try:
        yield
    finally:
        for layer in layers:
            layer.train()


def _unit_rows(t: torch.Tensor) -> torch.Tensor:
    flat = t.flatten(1)
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)).view_as(t)


def _kl_from_logits(reference_log_p: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(p_reference || softmax(logits))."""
    return F.kl_div(F.log_softmax(logits, dim=1), reference_log_p, reduction="batchmean", log_target=True)


def virtual_adversarial_loss(model: nn.Module, images: torch.Tensor, *, radius: float, xi: float) -> torch.Tensor:
    """KL between the prediction at ``images`` and at the worst nearby input.

    One power iteration finds, per image, the direction of L2 length ``radius``
    that changes the prediction most; the loss is the KL divergence from the
    (fixed) clean prediction to the prediction there, so minimising it makes
    the classifier locally smooth. ``model(x)`` must return ``(logits, ...)``.
    Randomness (the start direction) comes from torch's global RNG.
    """
    with dropout_off(model):
        with torch.no_grad():
            clean_log_p = F.log_softmax(model(images)[0], dim=1)
        direction = (xi * _unit_rows(torch.randn_like(images))).requires_grad_(True)
        divergence = _kl_from_logits(clean_log_p, model(images + direction)[0])
        (gradient,) = torch.autograd.grad(divergence, direction)
        adversarial = radius * _unit_rows(gradient.detach())
        return _kl_from_logits(clean_log_p, model(images + adversarial)[0])
