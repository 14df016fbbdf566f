"""Name -> strategy registry."""

from __future__ import annotations

from .aada import AADA
from .badge import Badge
from .base import Strategy
from .clue import Clue, ClueMargin, ClueUniform
from .coreset import Coreset
from .entropy import Entropy
from .least_confidence import LeastConfidence
from .margin import Margin
from .uniform import Uniform

_STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (Uniform, Entropy, Margin, LeastConfidence, Coreset, Badge, AADA, Clue, ClueMargin, ClueUniform)
}


def canonical_strategy_name(name: str) -> str:
    """The registered spelling of ``name`` (case-insensitive, ``_`` read as ``-``).

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in _STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid names: {', '.join(available_strategies())}")
    return key


def available_strategies() -> list[str]:
    """Names accepted by :func:`get_strategy`, in the paper's order of presentation."""
    return list(_STRATEGIES)


def get_strategy(name: str, **options) -> Strategy:
    """Build strategy ``name`` with its options (e.g. ``temperature`` for ``clue``).

    Raises:
        ValueError: unknown name, or an option the strategy does not take.
    """
    cls = _STRATEGIES[canonical_strategy_name(name)]
    try:
        return cls(**options)
    except TypeError as error:
        raise ValueError(f"bad options for strategy {cls.name!r}: {error}") from error
