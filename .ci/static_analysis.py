"""clang-tidy over every C++ and CUDA file in csrc/, with the checks of .clang-tidy.

    python .ci/static_analysis.py [FILE ...]      (default: every csrc/ file)

Headers of csrc/ are checked through the files that include them. The .cu
files go through clang's CUDA host pass (-x cuda --cuda-host-only), which
parses the kernels too, against the toolkit that nvcc reports (its TOP= line,
or CUDA_HOME) and the CUDA library headers of torch's nvidia packages. Needs
no GPU. Exit status 0 when clang-tidy reports nothing, 1 otherwise.
"""

import atexit
import concurrent.futures
import glob
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# omp.h alone, from the compiler that builds the extension: clang-tidy's wheel
# ships none, and gcc's other headers (its intrinsics) do not parse in clang.
OMP_INCLUDE = tempfile.mkdtemp(prefix="clue-omp-")
atexit.register(shutil.rmtree, OMP_INCLUDE, True)


def cuda_home():
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    dry = subprocess.run([nvcc, "-v", "--dryrun", "-x", "cu", os.devnull], capture_output=True, text=True)
    top = re.search(r"^#\$ TOP=(.+)$", dry.stderr + dry.stdout, re.M)
    return os.path.realpath(top.group(1).strip()) if top else None


def compiler_args(file: Path, cuda):
    torch_include = Path(torch.__file__).parent / "include"
    common = ["-std=c++20", f"-I{torch_include}", f"-I{torch_include / 'torch/csrc/api/include'}",
              f"-I{sysconfig.get_paths()['include']}", f"-I{ROOT / 'csrc'}"]
    if file.suffix != ".cu":
        return ["-x", "c++", "-fopenmp", f"-isystem{OMP_INCLUDE}"] + common
    if cuda is None:
        raise SystemExit(f"static analysis: no CUDA toolkit found for {file} (put nvcc on PATH or set CUDA_HOME)")
    library_headers = sorted(d for base in site.getsitepackages()
                             for d in glob.glob(os.path.join(base, "nvidia", "cu*", "include")))
    return (["-x", "cuda", "--cuda-host-only", f"--cuda-path={cuda}", f"-I{cuda}/include/cccl"]
            + [f"-I{d}" for d in library_headers] + common)


def tidy(file: Path, cuda):
    """(findings in csrc/, clang-tidy's exit status) for one file."""
    cmd = ["clang-tidy", "--quiet", f"--header-filter=^{ROOT / 'csrc'}/", str(file), "--"] + compiler_args(file, cuda)
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = (done.stdout + done.stderr).splitlines()
    ours = [line.replace(f"{ROOT}/", "") for line in lines
            if re.search(r"(warning|error):", line) and (line.startswith(str(ROOT / "csrc")) or "error:" in line)]
    if done.returncode != 0 and not ours:
        ours = lines[-20:]
    return ours, done.returncode


def link_omp_header():
    gcc_include = subprocess.run(["gcc", "-print-file-name=include"], capture_output=True, text=True).stdout.strip()
    gcc_omp = os.path.join(gcc_include, "omp.h")
    if not os.path.isfile(gcc_omp):
        raise SystemExit("static analysis: gcc's omp.h not found (the extension is built with -fopenmp)")
    os.symlink(gcc_omp, os.path.join(OMP_INCLUDE, "omp.h"))


def main(argv):
    link_omp_header()
    files = [Path(f).resolve() for f in argv] or sorted(
        p for p in (ROOT / "csrc").rglob("*") if p.suffix in (".cpp", ".cu"))
    cuda = cuda_home()
    jobs = int(os.environ.get("JOBS", os.cpu_count() or 1))
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for file, (findings, status) in zip(files, pool.map(lambda f: tidy(f, cuda), files)):
            if findings or status != 0:
                failed += 1
                print(f"--- {file.relative_to(ROOT)}")
                print("\n".join(findings))
    version = subprocess.run(["clang-tidy", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"version (\S+)", version).group(1)
    if failed:
        print(f"static analysis: clang-tidy {version} reported findings in {failed} of {len(files)} files "
              "(checks in .clang-tidy)")
        return 1
    print(f"static analysis: clang-tidy {version}: nothing reported in {len(files)} files of csrc/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
