#!/usr/bin/env bash
# cuda-check.sh: the compile checks of the GPU code, for machines without a
# GPU (CI). It needs nvcc and the CUDA headers (scripts/install-cuda-toolkit.sh):
#   - the committed PTX (kernels/*.ptx) must equal what nvcc makes of
#     kernels/*.cu now (scripts/gen-ptx.sh --check);
#   - every package builds and vets with -tags cuda, which compiles
#     gorgonia.org/cu and gpu/cuda against the toolkit;
#   - the splash binary and gpu/cuda's test binary link with -tags cuda.
# Nothing here runs CUDA code: gorgonia.org/cu exits a process that starts
# without a GPU. scripts/gpu-check.sh runs the binaries on a GPU machine.
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
log "go vet -tags cuda ./..."
go vet -tags cuda ./...
log "go build -tags cuda ./... and the binaries"
go build -tags cuda ./...
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -tags cuda -o "$tmp/splash" ./cmd/splash
go test -c -tags cuda -o "$tmp/cuda.test" ./gpu/cuda
log "ok"
