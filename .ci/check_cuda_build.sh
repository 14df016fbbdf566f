#!/usr/bin/env bash
# Checks that a built clue_ext extension carries device code (SASS) for every
# required GPU architecture, with cuobjdump --list-elf. Needs no GPU.
#
# Usage: .ci/check_cuda_build.sh [EXTENSION.so]
#   EXTENSION.so   default: the one clue_ext/_C*.so of this checkout
# Environment:
#   REQUIRED_SMS   space-separated compute capabilities (default "80 90")
#   CUOBJDUMP      cuobjdump to use; default: the one of the pip package
#                  nvidia-cuda-cuobjdump (nvidia/cu*/bin/cuobjdump in the
#                  Python's site-packages), else cuobjdump on PATH, else
#                  $CUDA_HOME/bin/cuobjdump
#   PYTHON         the Python whose site-packages are searched (default python3)
# Exit status: 0 when every required architecture is present, 1 otherwise,
# 2 when the extension or cuobjdump cannot be found.

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
required="${REQUIRED_SMS:-80 90}"
python="${PYTHON:-python3}"

so="${1:-}"
if [[ -z "$so" ]]; then
  shopt -s nullglob
  found=("$root"/clue_ext/_C*.so)
  shopt -u nullglob
  if [[ ${#found[@]} -ne 1 ]]; then
    echo "check_cuda_build: expected one clue_ext/_C*.so under $root, found ${#found[@]}" >&2
    exit 2
  fi
  so="${found[0]}"
fi
if [[ ! -f "$so" ]]; then
  echo "check_cuda_build: no such file: $so" >&2
  exit 2
fi

find_cuobjdump() {
  if [[ -n "${CUOBJDUMP:-}" ]]; then
    echo "$CUOBJDUMP"
    return
  fi
  local from_pip
  from_pip="$("$python" - <<'EOF' 2>/dev/null || true
import glob, os, site, sys
bases = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
for base in bases:
    for path in sorted(glob.glob(os.path.join(base, "nvidia", "cu*", "bin", "cuobjdump"))):
        if os.access(path, os.X_OK):
            print(path)
            sys.exit(0)
EOF
)"
  if [[ -n "$from_pip" ]]; then
    echo "$from_pip"
  elif command -v cuobjdump >/dev/null 2>&1; then
    command -v cuobjdump
  elif [[ -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/cuobjdump" ]]; then
    echo "$CUDA_HOME/bin/cuobjdump"
  fi
}

cuobjdump="$(find_cuobjdump)"
if [[ -z "$cuobjdump" ]]; then
  echo "check_cuda_build: cuobjdump not found: pip install nvidia-cuda-cuobjdump, or set CUOBJDUMP" >&2
  exit 2
fi

echo "check_cuda_build: $so"
echo "check_cuda_build: $("$cuobjdump" --version | tail -n 1) ($cuobjdump)"
if ! listing="$("$cuobjdump" --list-elf "$so" 2>&1)"; then
  echo "$listing" >&2
  echo "check_cuda_build: FAIL: cuobjdump could not read device code from $so (built without CUDA?)" >&2
  exit 1
fi
echo "$listing" | sed 's/^/  /'

status=0
for sm in $required; do
  count="$(grep -c "\.sm_${sm}\.cubin" <<<"$listing" || true)"
  if [[ "$count" -gt 0 ]]; then
    echo "check_cuda_build: sm_${sm}: ok ($count cubin(s))"
  else
    echo "check_cuda_build: sm_${sm}: MISSING" >&2
    status=1
  fi
done
if [[ $status -eq 0 ]]; then
  echo "check_cuda_build: PASS (sm_${required// /, sm_})"
else
  echo "check_cuda_build: FAIL" >&2
fi
exit $status
