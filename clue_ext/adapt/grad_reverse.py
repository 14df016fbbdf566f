"""Gradient reversal (Ganin & Lempitsky, 2015).

Identity in the forward pass; multiplies the incoming gradient by ``-coeff`` in
the backward pass. Placed between a feature extractor and a head, it lets one
optimizer step make the head minimise a loss while the features maximise it
(DANN's domain loss, MME's entropy).
"""

from __future__ import annotations

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        # view_as: an output that is a new tensor object, so autograd records this node.
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output.neg() * ctx.coeff, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Return ``x`` unchanged; its gradient flows back as ``-coeff * grad``."""
    return _ReverseGradient.apply(x, float(coeff))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"
