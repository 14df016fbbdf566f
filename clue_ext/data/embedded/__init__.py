"""Offline benchmarks built from real data shipped in ordinary packages."""

from .loader import FORMAT_VERSION, build_arrays, load_embedded_shift
from .recipes import RECIPES

__all__ = ["FORMAT_VERSION", "RECIPES", "build_arrays", "load_embedded_shift"]
