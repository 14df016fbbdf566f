"""Named points between the durable steps of a command, for logs and for crash tests.

Each command calls :func:`completed` right after a step's result is safely
on disk. It only logs; the tests replace it with one that raises at a chosen
step, to check that a rerun continues from there and loses or repeats nothing.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def completed(step: str) -> None:
    """``step`` is done and saved."""
    logger.debug("step done: %s", step)
