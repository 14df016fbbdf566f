"""NoTF32Scope (csrc/ops.h) and clue_ext._precision.full_float32_matmuls, on the CPU.

The scope holds ATen's thread-local NoTF32Guard, whose flag it reports
(NoTF32Scope.tf32_disabled); the flag is what cuBLAS's handle set-up reads,
so a GPU is needed only to see its effect on a GEMM (test_cuda_parity.py).
"""

import gc
import threading

import pytest
import torch

from clue_ext import ops  # noqa: F401  (loads the extension, which registers the class)
from clue_ext._precision import full_float32_matmuls

Scope = torch.classes.clue_ext.NoTF32Scope


def flag() -> bool:
    return Scope.tf32_disabled()


def test_scope_sets_the_flag_until_closed_and_close_is_idempotent():
    assert not flag()
    scope = Scope()
    assert flag()
    scope.close()
    assert not flag()
    scope.close()
    assert not flag()


def test_scope_is_released_when_collected_without_close():
    scope = Scope()
    assert flag()
    del scope
    gc.collect()
    assert not flag()


def test_nested_scopes_leave_the_flag_to_the_outermost():
    outer = Scope()
    inner = Scope()
    inner.close()
    assert flag()
    outer.close()
    assert not flag()


def test_the_flag_belongs_to_the_opening_thread():
    seen = {}
    scope = Scope()
    try:
        worker = threading.Thread(target=lambda: seen.setdefault("other", flag()))
        worker.start()
        worker.join()
    finally:
        scope.close()
    assert seen == {"other": False}


def test_close_on_another_thread_is_refused_and_leaves_the_flag():
    scope = Scope()
    errors = []

    def close_elsewhere():
        try:
            scope.close()
        except RuntimeError as error:
            errors.append(str(error))

    worker = threading.Thread(target=close_elsewhere)
    worker.start()
    worker.join()
    assert errors and "thread that opened" in errors[0]
    assert flag()
    scope.close()
    assert not flag()


def test_full_float32_matmuls_on_cpu_is_a_no_op():
    with full_float32_matmuls(torch.device("cpu")):
        assert not flag()
    assert not flag()


@pytest.mark.parametrize("device", [torch.device("cuda"), torch.device("cuda", 1), "cuda"])
def test_full_float32_matmuls_cuda_branch_holds_the_guard(device):
    # Needs no GPU: the scope touches no device, only the thread's flag.
    with full_float32_matmuls(device):
        assert flag()
    assert not flag()


def test_full_float32_matmuls_releases_the_guard_on_an_exception():
    with pytest.raises(KeyError):
        with full_float32_matmuls(torch.device("cuda")):
            assert flag()
            raise KeyError("inside")
    assert not flag()


def test_scope_leaves_torch_tf32_settings_as_they_read():
    # Only the new API is used here (mixing it with the legacy getters
    # raises in torch); its setting is process state that needs no GPU.
    before = torch.backends.cuda.matmul.fp32_precision
    try:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        with full_float32_matmuls(torch.device("cuda")):
            assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    finally:
        torch.backends.cuda.matmul.fp32_precision = before


def test_a_scope_collected_on_another_thread_leaves_that_threads_flag():
    # The guard's destructor clears the flag of the thread it runs on: a scope
    # opened by a worker and dropped here must not clear this thread's scope.
    made = []
    worker = threading.Thread(target=lambda: made.append(Scope()))
    worker.start()
    worker.join()
    mine = Scope()
    try:
        made.clear()
        gc.collect()
        assert flag()
    finally:
        mine.close()
    assert not flag()
