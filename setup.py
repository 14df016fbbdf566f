"""Build of clue_ext: the C++ extension, with CUDA kernels when asked for or possible.

Environment:
  FORCE_CUDA=1            build the CUDA kernels even without a visible GPU
  FORCE_NO_CUDA=1         never build them
  CUDA_HOME               the CUDA toolkit root (found from nvcc when unset)
  TORCH_CUDA_ARCH_LIST    e.g. "8.0;9.0" (default for CUDA builds: "8.0;9.0")
  NVCC_FLAGS              extra flags for nvcc
  DEBUG=1                 -O0 -g, and bounds checks in CUDA kernels
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CUDA_ARCHS = "8.0;9.0"


def _flag(name):
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _cuda_home_from_nvcc():
    """The toolkit root that nvcc itself reports.

    The nvcc found on PATH may be a wrapper script outside the toolkit, so
    the root is read from `nvcc -v --dryrun` (its TOP= line) rather than
    from nvcc's location.
    """
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    try:
        out = subprocess.run(
            [nvcc, "-v", "--dryrun", "-x", "cu", os.devnull],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"^#\$ TOP=(.+)$", out.stderr + out.stdout, re.MULTILINE)
    if match is None:
        return None
    # TOP is already the toolkit root (it reads <toolkit>/bin/..).
    return os.path.realpath(match.group(1).strip())


def _resolve_cuda_home():
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if home:
        return home
    home = _cuda_home_from_nvcc()
    if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
        return home
    return None


def _wants_cuda(cuda_home):
    if _flag("FORCE_NO_CUDA"):
        return False, "FORCE_NO_CUDA=1"
    if _flag("FORCE_CUDA"):
        if cuda_home is None:
            sys.exit("FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME")
        return True, "FORCE_CUDA=1"
    if cuda_home is None:
        return False, "no CUDA toolkit found"
    import torch

    if torch.version.cuda is None:
        return False, "torch was built without CUDA"
    if not torch.cuda.is_available():
        return False, "no GPU visible (set FORCE_CUDA=1 to build anyway)"
    return True, "GPU visible and CUDA toolkit found"


def _nvidia_include_dirs():
    """CUDA library headers (cusparse.h, cublas_v2.h, ...) from torch's pip packages."""
    import site

    dirs = []
    for base in site.getsitepackages() + [site.getusersitepackages()]:
        dirs += glob.glob(os.path.join(base, "nvidia", "cu*", "include"))
        dirs += glob.glob(os.path.join(base, "nvidia", "*", "include"))
    return sorted({d for d in dirs if os.path.isdir(d)})


def _relative_sources(*patterns):
    """Source files under csrc/, relative to this file's folder as setuptools requires."""
    found = []
    for pattern in patterns:
        found += sorted(glob.glob(os.path.join(ROOT, "csrc", pattern)))
    return [os.path.relpath(path, ROOT) for path in found]


def _extensions():
    cuda_home = _resolve_cuda_home()
    if cuda_home is not None:
        # torch.utils.cpp_extension reads CUDA_HOME when it is imported.
        os.environ["CUDA_HOME"] = cuda_home
    with_cuda, reason = _wants_cuda(cuda_home)
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    debug = _flag("DEBUG")
    csrc = os.path.join(ROOT, "csrc")
    sources = _relative_sources("clue_ext.cpp", "no_tf32_scope.cpp", "python_module.cpp", "cpu/*.cpp")
    opt = ["-O0", "-g"] if debug else ["-O3"]
    # -ffp-contract=off: the centroid update promises its summation order
    # (csrc/summation_order.h), multiply then add, bitwise like the CUDA
    # kernel; GCC's default (fast) would fuse `s += w * x` into an FMA where
    # the target has one (aarch64, x86 with -mfma). Baseline x86-64 has no
    # FMA, so there the flag changes no instruction.
    cxx_flags = opt + ["-fopenmp", "-ffp-contract=off"]
    define_macros = []
    include_dirs = [csrc]
    archs = ""
    if with_cuda:
        archs = os.environ.get("TORCH_CUDA_ARCH_LIST") or DEFAULT_CUDA_ARCHS
        os.environ["TORCH_CUDA_ARCH_LIST"] = archs
        sources += _relative_sources("cuda/*.cu")
        include_dirs += _nvidia_include_dirs()
        nvcc_flags = opt + ["--expt-relaxed-constexpr"]
        if debug:
            nvcc_flags += ["-lineinfo", "-DCLUE_EXT_DEBUG_BOUNDS"]
        nvcc_flags += os.environ.get("NVCC_FLAGS", "").split()
        import torch

        define_macros += [
            ("CLUE_EXT_CUDA_ARCHS", '"%s"' % archs),
            ("CLUE_EXT_CUDA_VERSION", '"%s"' % (torch.version.cuda or "")),
        ]
        ext = CUDAExtension(
            "clue_ext._C", sources, include_dirs=include_dirs, define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "clue_ext._C", sources, include_dirs=include_dirs, define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags}, extra_link_args=["-fopenmp"],
        )
    print(
        "clue_ext build: cuda=%s (%s), archs=%r, cuda_home=%r, debug=%s"
        % (with_cuda, reason, archs, cuda_home, debug),
        flush=True,
    )
    return [ext]


def _build_ext():
    from torch.utils.cpp_extension import BuildExtension

    return BuildExtension.with_options(use_ninja=shutil.which("ninja") is not None)


setup(
    packages=find_packages(include=["clue_ext", "clue_ext.*"]),
    ext_modules=_extensions(),
    cmdclass={"build_ext": _build_ext()},
)
