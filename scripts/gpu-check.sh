#!/usr/bin/env bash
# gpu-check.sh runs the prebuilt CUDA test binary on a GPU machine (no Go
# toolchain needed there). Run it from the repository root after building,
# on a machine with Go and the CUDA toolkit (scripts/install-cuda-toolkit.sh):
#
#   go test -c -tags cuda -o bin/cuda.test ./gpu/cuda
#
# It prints the GPU and driver (nvidia-smi), then runs every test and
# benchmark of gpu/cuda (benchmarks 20 iterations). When $OUT is set, the
# whole output is also written to "$OUT/gpu-check.log". Takes under two
# minutes on one H200.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# libcuda.so.1 comes from the driver; these are where containers and Debian put it.
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

run_all() {
  echo "== gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "== nvidia-smi"
  nvidia-smi || echo "nvidia-smi failed (exit $?)"
  echo "== libc: $(ldd --version 2>&1 | head -n 1)"
  if [[ ! -x bin/cuda.test ]]; then
    echo "bin/cuda.test is missing: build it with go test -c -tags cuda -o bin/cuda.test ./gpu/cuda"
    return 1
  fi
  echo "== ldd bin/cuda.test"
  ldd bin/cuda.test
  echo "== bin/cuda.test"
  (cd gpu/cuda && timeout 300 ../../bin/cuda.test -test.v -test.run . -test.bench . -test.benchtime 20x -test.timeout 280s)
  local rc=$?
  echo "== bin/cuda.test exit status $rc"
  return "$rc"
}

if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  run_all 2>&1 | tee "$OUT/gpu-check.log"
  exit "${PIPESTATUS[0]}"
fi
run_all
