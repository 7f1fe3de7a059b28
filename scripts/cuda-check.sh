#!/usr/bin/env bash
# cuda-check.sh: the check of the GPU code that needs the CUDA toolkit, for
# machines without a GPU (CI): the committed PTX (kernels/*.ptx) must equal
# what nvcc makes of kernels/*.cu now (scripts/gen-ptx.sh --check). It needs
# nvcc (scripts/install-cuda-toolkit.sh). The rest of splash's CUDA support
# builds, vets and runs its tests with the ordinary suite: it needs no CUDA
# header or library to build (gpu/cuda/sys loads the driver and cuBLAS at
# run time) and its GPU tests skip without a GPU. scripts/gpu-check.sh runs
# them on a GPU machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'cuda-check: %s\n' "$*" >&2; }

command -v nvcc >/dev/null 2>&1 || {
  log "nvcc not found: run scripts/install-cuda-toolkit.sh (as root)"
  exit 1
}
log "$(nvcc --version | tail -n 1)"
bash scripts/gen-ptx.sh --check
log "ok"
