"""A dataset view that moves a progress bar as its items are read: embedding the pool shows progress."""

from __future__ import annotations

from torch.utils.data import Dataset
from tqdm.auto import tqdm


class ProgressPool(Dataset):
    """``pool``, item for item, ticking a tqdm bar (on stderr) for every item read.

    The strategies read the pool through its forward pass, which takes no
    progress argument; reading through this view shows the pass advancing
    without changing a single value.
    """

    def __init__(self, pool: Dataset, description: str, *, enabled: bool):
        self.pool = pool
        self.bar = tqdm(total=len(pool), desc=description, unit="img", disable=not enabled, leave=False)

    def __len__(self) -> int:
        return len(self.pool)

    def __getitem__(self, index: int):
        item = self.pool[index]
        self.bar.update(1)
        return item

    def __getattr__(self, name: str):
        # targets, with_mode, classes...: whatever the pool offers.
        if name == "pool":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.pool, name)

    def close(self) -> None:
        self.bar.close()
