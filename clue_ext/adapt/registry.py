"""Name -> DA method registry."""

from __future__ import annotations

from .base import DAMethod
from .dann import DANN
from .ent import EntropyMinimization
from .ft import FineTune
from .mmd import MMD
from .mme import MME
from .vada import VADA

_DA_METHODS: dict[str, type[DAMethod]] = {
    cls.name: cls for cls in (FineTune, MME, DANN, VADA, EntropyMinimization, MMD)
}


def available_da_methods() -> list[str]:
    """Names accepted by :func:`get_da_method`, sorted."""
    return sorted(_DA_METHODS)


def get_da_method(name: str, **hparams) -> DAMethod:
    """Build the DA method ``name`` (case-insensitive) with validated hyperparameters.

    See :class:`~.hparams.DAHyperParams` for the accepted names and defaults.

    Raises:
        ValueError: unknown method name, unknown hyperparameter name or a bad value.
    """
    if not isinstance(name, str) or name.lower() not in _DA_METHODS:
        raise ValueError(f"unknown DA method {name!r}; valid names: {', '.join(available_da_methods())}")
    return _DA_METHODS[name.lower()](**hparams)
