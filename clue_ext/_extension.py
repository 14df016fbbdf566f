"""Loading of the compiled extension, clue_ext._C, with errors a user can act on.

The ops live in a C++ library that links to torch's C++ ABI, so it must be
built in place (editable install) or installed, and against the torch that
runs now. When it is missing or does not load, Python's own message points
elsewhere (a "circular import" when the source folder shadows an installed
copy, an undefined C++ symbol after a torch upgrade); these messages say what
happened and which command fixes it.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import warnings

import torch

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
EXTENSION = "clue_ext._C"


def _in_checkout() -> bool:
    return os.path.isfile(os.path.join(os.path.dirname(PACKAGE_DIR), "setup.py"))


def rebuild_command(env: str = "") -> str:
    """The command that (re)builds the extension for the torch installed now; `env` prefixes pip."""
    if _in_checkout():
        return f"cd {os.path.dirname(PACKAGE_DIR)} && {env}pip install --no-build-isolation -e ."
    return f"{env}pip install --no-build-isolation --force-reinstall --no-deps <clue_ext source folder>"


def explain_load_failure(error: BaseException) -> str:
    """One sentence: why the extension did not load, and the command that fixes it."""
    if isinstance(error, ModuleNotFoundError) and error.name == EXTENSION:
        if _in_checkout():
            return (
                f"clue_ext's compiled extension is not built in the source checkout {PACKAGE_DIR} (`pip install .` "
                f"puts it in site-packages only, and this folder shadows that copy when Python runs at the "
                f"checkout's root); build it in place with: {rebuild_command()}"
            )
        return f"clue_ext's compiled extension is missing from {PACKAGE_DIR}; reinstall with: {rebuild_command()}"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"clue_ext's compiled extension in {PACKAGE_DIR} does not load with torch {torch.__version__} "
        f"({first_line}), most likely because it was built against another torch; rebuild it with: "
        f"{rebuild_command()}"
    )


def load() -> None:
    """Import clue_ext._C, which registers the ops with torch's dispatcher."""
    try:
        importlib.import_module(EXTENSION)
    except (ImportError, OSError) as error:
        raise ImportError(explain_load_failure(error)) from error


def _release(version: str) -> str:
    # The build records torch's C++ TORCH_VERSION ("2.14.1"), Python reports
    # the local build too ("2.14.1+cu130").
    return version.split("+")[0]


def check_built_torch(built_against: str) -> None:
    """Warn when the extension loaded but was compiled against another torch release."""
    if built_against and _release(built_against) != _release(torch.__version__):
        warnings.warn(
            f"clue_ext's extension was built against torch {built_against} but torch {torch.__version__} "
            f"is running; if it misbehaves, rebuild it with: {rebuild_command()}",
            RuntimeWarning,
            stacklevel=3,
        )


def build_info() -> dict:
    """How the loaded extension was built (csrc/ops.h: build_info), as a dict."""
    load()
    return json.loads(torch.ops.clue_ext.build_info())


@functools.lru_cache(maxsize=None)
def compiled_devices() -> frozenset:
    """Device types with compiled kernels: always 'cpu', and 'cuda' when the build included it."""
    return frozenset({"cpu", "cuda"} if build_info()["cuda"] else {"cpu"})


def check_device(device: torch.device, name: str) -> None:
    """A clear error when the ops have no kernels for `device` in this build."""
    if device.type in compiled_devices():
        return
    if device.type == "cuda":
        raise ValueError(
            f"{name} is on {device}, but this clue_ext build has no CUDA kernels (it was compiled without a "
            f"CUDA toolkit or without FORCE_CUDA=1); move {name} to the CPU, or rebuild with: "
            f"{rebuild_command('FORCE_CUDA=1 ')}"
        )
    raise ValueError(f"{name} is on {device}; clue_ext has kernels for cpu and cuda tensors only")
