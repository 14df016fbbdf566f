"""Active learning strategies: which unlabeled target items to label next.

``get_strategy(name, **options)`` builds one of :func:`available_strategies`;
every strategy answers ``query(n, context) -> LongTensor`` of ``n`` distinct
pool indices that are not labeled yet. The :class:`QueryContext` carries the
model, the pool, the labeled mask, a seeded generator and the round's cached
pool outputs (one forward pass shared by all strategies that need it)::

    context = QueryContext.create(model, pool, labeled_mask, device="cpu", seed=0)
    picks = get_strategy("clue", temperature=1.0).query(10, context)

Adding a strategy is one file with a :class:`Strategy` subclass and one entry
in ``registry.py``.
"""

from .aada import AADA
from .badge import Badge
from .base import Strategy
from .clue import Clue, ClueMargin, ClueUniform
from .context import QueryContext
from .coreset import Coreset
from .entropy import Entropy
from .least_confidence import LeastConfidence
from .margin import Margin
from .pool_outputs import PoolOutputs
from .registry import available_strategies, canonical_strategy_name, get_strategy
from .uniform import Uniform

__all__ = [
    "AADA",
    "Badge",
    "Clue",
    "ClueMargin",
    "ClueUniform",
    "Coreset",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "PoolOutputs",
    "QueryContext",
    "Strategy",
    "Uniform",
    "available_strategies",
    "canonical_strategy_name",
    "get_strategy",
]
