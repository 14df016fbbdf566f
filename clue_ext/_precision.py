"""Full float32 precision for the GEMMs of the select path, whatever a script set for TF32.

The CUDA ops already compute their distance GEMMs in full float32 (csrc/ops.h),
so the picks do not depend on torch's TF32 switches. The select path also
runs GEMMs of its own in torch (the warm start's covariance and projection,
the sharded nearest-point lists); TF32 there changed picks. They run under
the same guard as the ops, ATen's thread-local NoTF32Guard, held by the
extension's NoTF32Scope class. Unlike setting torch's switches from Python, it
neither reads nor writes them, so it cannot trip torch's refusal to mix the
legacy (allow_tf32, set_float32_matmul_precision) and new (fp32_precision)
APIs, and the caller's setting is untouched afterwards.
"""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def full_float32_matmuls(device: torch.device):
    """Within the block, float32 GEMMs on `device` by this thread run without TF32."""
    if torch.device(device).type != "cuda":
        yield
        return
    from . import ops  # noqa: F401  (loads the extension, which registers the class)

    scope = torch.classes.clue_ext.NoTF32Scope()
    try:
        yield
    finally:
        scope.close()
