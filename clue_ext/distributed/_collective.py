"""The collectives the sharded select needs, over one torch.distributed group.

Tensors go through the group on its backend's device (for NCCL the CUDA
device the features are on, else the current one; the CPU otherwise) and
come back on the caller's device. NCCL collectives run with that device
current, so that a rank computing on cuda:1 without torch.cuda.set_device
does not join the group from cuda:0, where another rank may be.
Every call counts the bytes this rank contributes, so the bench can report
what a Lloyd iteration exchanges. A collective that fails (a peer died, or
did not call in before the group's timeout) raises :class:`CollectiveError`.
"""

from __future__ import annotations

import contextlib
from typing import Any, List, Optional

import torch
import torch.distributed as dist


class CollectiveError(RuntimeError):
    """A collective of the sharded select failed: a rank died, or never joined it in time."""


def collective_device(backend: str, features_device: Optional[torch.device]) -> torch.device:
    """Where a group of `backend` exchanges the tensors of features on `features_device`."""
    if backend != "nccl":
        return torch.device("cpu")
    if features_device is not None and torch.device(features_device).type == "cuda":
        device = torch.device(features_device)
        # "cuda" without an index means the current device, as torch reads it.
        return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cuda", torch.cuda.current_device())


class Collective:
    def __init__(self, group: Optional[dist.ProcessGroup], device: Optional[torch.device] = None):
        """`device`: where this rank's features are (None: unknown, as for CPU features)."""
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "clue_ext.distributed.select needs an initialised process group: call "
                "torch.distributed.init_process_group first (torchrun sets up its environment)"
            )
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.device = collective_device(dist.get_backend(group), device)
        self.bytes_sent = 0

    def _run(self, what: str, fn, *args, **kwargs):
        # all_gather_object, for one, picks its device as the current one.
        current = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        try:
            with current:
                return fn(*args, group=self.group, **kwargs)
        except (RuntimeError, dist.DistError) as error:
            raise CollectiveError(
                f"clue_ext.distributed.select: the {what} on rank {self.rank} of {self.size} failed: "
                "a rank died, raised outside select, or did not reach the same step before the process "
                f"group's timeout ({type(error).__name__}: {error})"
            ) from error

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of `tensor` over the ranks (a new tensor)."""
        buffer = tensor.to(self.device, copy=True).contiguous()
        self.bytes_sent += buffer.numel() * buffer.element_size()
        self._run("all-reduce", dist.all_reduce, buffer, op=dist.ReduceOp.SUM)
        return buffer.to(tensor.device)

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Rank `src`'s `tensor` (same shape and dtype on every rank), on every rank."""
        buffer = tensor.to(self.device, copy=True).contiguous()
        if self.rank == src:
            self.bytes_sent += buffer.numel() * buffer.element_size()
        self._run("broadcast", dist.broadcast, buffer, src=src)
        return buffer.to(tensor.device)

    def gather_rows(self, tensor: torch.Tensor, counts: List[int]) -> torch.Tensor:
        """Every rank's rows of `tensor` (rank r holds counts[r] of them), stacked in rank order."""
        width = tuple(tensor.shape[1:])
        longest = max(counts)
        # One buffer receives every rank's (padded) rows, so the result needs no
        # second copy when the counts are equal.
        every = torch.empty((self.size, longest) + width, dtype=tensor.dtype, device=self.device)
        mine = torch.zeros((longest,) + width, dtype=tensor.dtype, device=self.device)
        mine[: tensor.shape[0]] = tensor
        self.bytes_sent += mine.numel() * mine.element_size()
        self._run("all-gather", dist.all_gather, list(every.unbind(0)), mine)
        del mine
        if all(count == longest for count in counts):
            return every.view((-1,) + width).to(tensor.device)
        return torch.cat([part[:count] for part, count in zip(every, counts)]).to(tensor.device)

    def gather_objects(self, obj: Any) -> List[Any]:
        """Every rank's picklable `obj`, in rank order."""
        out: List[Any] = [None] * self.size
        self._run("exchange of inputs", dist.all_gather_object, out, obj)
        return out
