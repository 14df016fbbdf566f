"""Loaders for the paper's real benchmarks (never download unless asked)."""

from .layout import DATA_ENV_VAR, resolve_data_root
from .shifts import (
    DIGIT_PAIRS,
    DOMAINNET_PAIRS,
    OFFICE31_PAIRS,
    load_digit_shift,
    load_domainnet_shift,
    load_office31_shift,
)

__all__ = [
    "DATA_ENV_VAR",
    "DIGIT_PAIRS",
    "DOMAINNET_PAIRS",
    "OFFICE31_PAIRS",
    "load_digit_shift",
    "load_domainnet_shift",
    "load_office31_shift",
    "resolve_data_root",
]
