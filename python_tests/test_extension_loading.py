"""What `import clue_ext` says when its compiled extension is missing or unusable."""

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import clue_ext
from clue_ext import _extension

PACKAGE = Path(clue_ext.__file__).resolve().parent


def _copy_package(root: Path, *, checkout: bool) -> Path:
    """The package's Python files (no compiled extension) under root, as a checkout or a bare folder."""
    shutil.copytree(PACKAGE, root / "clue_ext", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    if checkout:
        (root / "setup.py").write_text("# marks a source checkout\n")
    return root / "clue_ext"


# An editable install of this checkout would resolve clue_ext._C to the
# built library whatever folder clue_ext itself comes from: its finder goes.
IMPORT_ALONE = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
    "import clue_ext"
)


def _import_error(cwd: Path) -> str:
    """Last line of stderr of `import clue_ext` run from cwd, which must fail."""
    done = subprocess.run([sys.executable, "-c", IMPORT_ALONE], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0, "import clue_ext succeeded without the compiled extension"
    return done.stderr.strip().splitlines()[-1]


def test_unbuilt_checkout_says_how_to_build_in_place(tmp_path):
    _copy_package(tmp_path, checkout=True)
    message = _import_error(tmp_path)
    assert message.startswith("ImportError: clue_ext's compiled extension is not built in the source checkout")
    assert "circular import" not in message
    assert f"cd {tmp_path} && pip install --no-build-isolation -e ." in message


def test_unbuilt_installed_copy_says_to_reinstall(tmp_path):
    _copy_package(tmp_path, checkout=False)
    message = _import_error(tmp_path)
    assert "compiled extension is missing from" in message
    assert "pip install --no-build-isolation --force-reinstall --no-deps" in message


def test_extension_built_against_another_torch_names_the_running_torch(tmp_path):
    package = _copy_package(tmp_path, checkout=True)
    # What loading a library built against another torch raises.
    (package / "_C.py").write_text('raise ImportError("_C.so: undefined symbol: _ZN3c104impl8GPUTrace9haveStateE")\n')
    message = _import_error(tmp_path)
    assert f"does not load with torch {torch.__version__}" in message
    assert "undefined symbol" in message and "built against another torch" in message
    assert "pip install --no-build-isolation -e ." in message


def test_warns_when_loaded_extension_was_built_for_another_torch_release():
    with pytest.warns(RuntimeWarning, match="built against torch 1.0.0"):
        _extension.check_built_torch("1.0.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _extension.check_built_torch(torch.__version__.split("+")[0])  # the local tag (+cu130) is ignored


def test_cuda_tensors_on_a_cpu_only_build_get_the_rebuild_command(monkeypatch):
    monkeypatch.setattr(_extension, "compiled_devices", lambda: frozenset({"cpu"}))
    with pytest.raises(ValueError, match=r"features is on cuda:0, but this clue_ext build has no CUDA kernels.*"
                                         r"FORCE_CUDA=1 pip install --no-build-isolation"):
        _extension.check_device(torch.device("cuda", 0), "features")
    _extension.check_device(torch.device("cpu"), "features")


def test_tensors_on_a_device_without_kernels_are_refused_by_the_public_api():
    features = torch.empty(20, 4, device="meta")
    with pytest.raises(ValueError, match="features is on meta; clue_ext has kernels for cpu and cuda"):
        clue_ext.select(features, torch.full((20, 3), 1 / 3), 2)
    with pytest.raises(ValueError, match="x is on meta"):
        clue_ext.weighted_kmeans(features, torch.ones(20), 2)
