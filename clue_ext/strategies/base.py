"""The interface every acquisition strategy implements."""

from __future__ import annotations

import abc
import numbers
from typing import ClassVar

import torch

from .context import QueryContext


class Strategy(abc.ABC):
    """An active learning strategy: picks which unlabeled pool items to label.

    Subclasses set ``name`` and implement :meth:`_select`; :meth:`query` does
    the checks common to all of them, before and after.
    """

    name: ClassVar[str] = ""

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"

    def query(self, n: int, context: QueryContext) -> torch.Tensor:
        """Pick ``n`` distinct pool items that are not labeled yet.

        Args:
            n: how many to pick, ``0 <= n <=`` the number of unlabeled items.
            context: the round's :class:`QueryContext`.

        Returns:
            int64 CPU tensor of ``n`` distinct indices into ``context.pool``.

        Raises:
            ValueError: ``n`` is negative or larger than the unlabeled pool.
            TypeError: ``n`` is not an integer or ``context`` not a QueryContext.
        """
        if not isinstance(context, QueryContext):
            raise TypeError(f"context must be a QueryContext, got {type(context).__name__}")
        available = int(context.unlabeled_indices.numel())
        n = check_query_size(n, available)
        if n == 0:
            return torch.empty(0, dtype=torch.long)
        picks = self._select(n, context).to("cpu", torch.long).flatten()
        _check_picks(self.name, picks, n, context.labeled)
        return picks

    @abc.abstractmethod
    def _select(self, n: int, context: QueryContext) -> torch.Tensor:
        """Return ``n`` distinct unlabeled pool indices (``1 <= n <=`` unlabeled count)."""


def check_query_size(n, available: int) -> int:
    """``n`` as an int, or a ValueError/TypeError naming it."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n > available:
        raise ValueError(f"n must be at most the number of unlabeled pool items ({available}), got {n}")
    return n


def _check_picks(name: str, picks: torch.Tensor, n: int, labeled: torch.Tensor) -> None:
    # A strategy returning the wrong thing is a bug in the strategy, not user error.
    if picks.numel() != n:
        raise RuntimeError(f"strategy {name!r} returned {picks.numel()} indices instead of {n}")
    if picks.unique().numel() != n:
        raise RuntimeError(f"strategy {name!r} returned duplicate indices")
    if int(picks.min()) < 0 or int(picks.max()) >= labeled.numel():
        raise RuntimeError(f"strategy {name!r} returned indices outside the pool")
    if bool(labeled[picks].any()):
        raise RuntimeError(f"strategy {name!r} returned already-labeled indices")


def top_scoring(scores: torch.Tensor, candidates: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` entries of ``candidates`` with the highest ``scores`` (one score each).

    A stable sort makes ties go to the earlier candidate, so picks do not
    depend on the sorting algorithm or the device.
    """
    order = torch.sort(scores.cpu(), descending=True, stable=True).indices[:n]
    return candidates[order]
