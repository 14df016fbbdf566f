"""Accuracy over runs per (DA method, strategy, number of labels), for the tables and the plots."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable


class Stat:
    """Mean and sample standard deviation of one cell over runs."""

    def __init__(self, values: list[float]):
        self.values = list(values)
        self.count = len(self.values)
        self.mean = sum(self.values) / self.count
        self.std = (
            math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (self.count - 1)) if self.count > 1 else 0.0
        )

    def format(self, digits: int = 1) -> str:
        text = f"{self.mean:.{digits}f}"
        return text + (f" ± {self.std:.{digits}f}" if self.count > 1 else "")


def accuracy_stats(rows: Iterable[dict]) -> dict[tuple[str, str], dict[int, Stat]]:
    """``{(da_method, strategy): {n_labels: Stat of accuracy over runs}}``."""
    grouped: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[(row["da_method"], row["strategy"])][row["n_labels"]].append(row["accuracy"])
    return {key: {n: Stat(v) for n, v in sorted(cells.items())} for key, cells in grouped.items()}
