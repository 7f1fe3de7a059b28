#!/usr/bin/env bash
# gpu-check.sh runs prebuilt binaries on a GPU machine (no Go toolchain
# needed there). Build them from the repository root on a machine with Go
# (no CUDA toolkit needed: the binaries load the driver and cuBLAS at run
# time):
#
#   go test -c -o bin/cuda.test ./gpu/cuda
#   go build -o bin/splash ./cmd/splash   # optional
#
# It prints the GPU and driver (nvidia-smi), runs every test and benchmark
# of gpu/cuda (benchmarks 20 iterations), then, when bin/splash is there,
# `splash selftest` with --device auto and --device cuda (the latter fails,
# with its reason, where the GPU cannot be used).
# The ONNX Runtime library is found as usual (third_party/onnxruntime or
# $ONNXRUNTIME_SHARED_LIBRARY_PATH). When $OUT is set, the whole output is
# also written to "$OUT/gpu-check.log". Takes about two minutes on one H200.
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
    echo "bin/cuda.test is missing: build it with go test -c -o bin/cuda.test ./gpu/cuda"
    return 1
  fi
  echo "== ldd bin/cuda.test"
  ldd bin/cuda.test
  echo "== bin/cuda.test"
  (cd gpu/cuda && timeout 300 ../../bin/cuda.test -test.v -test.run . -test.bench . -test.benchtime 20x -test.timeout 280s)
  local rc=$?
  echo "== bin/cuda.test exit status $rc"
  local bin
  for bin in bin/splash; do
    [[ -x "$bin" ]] || continue
    local dev
    for dev in auto cuda; do
      echo "== $bin selftest --device $dev"
      timeout 300 "$bin" selftest --device "$dev"
      echo "== $bin selftest --device $dev: exit status $?"
    done
  done
  if [[ -x bin/splash ]]; then
    echo "== CUDA_VISIBLE_DEVICES=0 bin/splash selftest --device cuda:1 (must name the missing GPU)"
    CUDA_VISIBLE_DEVICES=0 timeout 60 bin/splash selftest --device cuda:1
    echo "== exit status $?"
  fi
  return "$rc"
}

if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  run_all 2>&1 | tee "$OUT/gpu-check.log"
  exit "${PIPESTATUS[0]}"
fi
run_all
