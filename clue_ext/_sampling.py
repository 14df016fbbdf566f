"""Seeded draws shared by the seeding and the warm start.

Row samples are functions of (n, size, seed) alone, so processes holding
shards of the rows can draw the same global sample.
"""

from __future__ import annotations

from typing import Optional

import torch


def draw_seed() -> int:
    """A seed from torch's global RNG (so `torch.manual_seed` makes runs repeatable)."""
    return int(torch.randint(0, 2**62, (1,)).item())


def seeded_rows(n: int, size: int, seed: Optional[int], salt: int) -> Optional[torch.Tensor]:
    """Sorted CPU indices of `size` distinct rows of `n`, drawn from `seed` (mixed with `salt`
    so that different uses of one seed draw different samples); None when size >= n."""
    if size >= n:
        return None
    if seed is None:
        seed = draw_seed()
    generator = torch.Generator().manual_seed(int(seed) ^ salt)
    return torch.randperm(n, generator=generator)[:size].sort().values
