#!/usr/bin/env bash
# cuda-check.sh: the check of the GPU code that needs the CUDA toolkit, for
# machines without a GPU (CI): the committed PTX (kernels/*.ptx) must equal
# what nvcc makes of kernels/*.cu now (scripts/gen-ptx.sh --check). It needs
# nvcc (scripts/install-cuda-toolkit.sh). The rest of splash's CUDA support
# builds, vets and runs its tests with the ordinary suite: it needs no CUDA
# header or library to build (gpu/cuda/sys loads the driver and cuBLAS at
# run time) and its GPU tests skip without a GPU. scripts/gpu-check.sh runs
# them on a GPU machine. With an nvcc of another CUDA version than the one
# that generated the committed PTX (11.8) the check is skipped, saying so.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'cuda-check: %s\n' "$*" >&2; }

command -v nvcc >/dev/null 2>&1 || {
  log "nvcc not found: run scripts/install-cuda-toolkit.sh (as root)"
  exit 1
}
# The committed PTX is nvcc 11.8's (its header names the toolkit; the
# pinned one is scripts/install-cuda-toolkit.sh's, Debian bookworm's). Another
# nvcc generates other PTX from the same sources, so the comparison would
# only report the version: skip it, saying so.
want="$(grep -h -m 1 -o 'Cuda compilation tools, release [0-9.]*' kernels/*.ptx | head -n 1 | sed 's/.*release //')"
got="$(nvcc --version | grep -o 'release [0-9.]*' | head -n 1 | sed 's/release //')"
log "$(nvcc --version | tail -n 1)"
if [[ -n "$want" && "$got" != "$want" ]]; then
  log "skipped: nvcc is CUDA ${got:-of an unknown version}, the committed PTX is CUDA $want's; the drift check needs nvcc $want (scripts/install-cuda-toolkit.sh on Debian bookworm)"
  exit 0
fi
bash scripts/gen-ptx.sh --check
log "ok"
