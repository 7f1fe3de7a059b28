#!/usr/bin/env bash
# prepare.sh builds, on a machine with Go (no CUDA toolkit needed: the
# binaries load the driver and cuBLAS at run time), what scripts/gpu-check.sh
# and scripts/gpu-check-llama.sh run on a GPU machine without Go or network,
# compressed with xz so that it travels in a few megabytes:
#
#   bin/splash.xz        the CLI
#   bin/cuda.test.xz     gpu/cuda's tests and benchmarks (the device ones
#                        skip without a GPU)
#   bin/repeatcorpus.xz  scripts/repeatcorpus (the 100k-document corpus)
#   bin/onnxruntime.xz   third_party/onnxruntime/libonnxruntime.so.1, for
#                        the selftest's CPU reference (scripts/setup.sh
#                        installs it)
#
# Carry bin/*.xz (the four files, not bin/ with its unpacked binaries) to the
# GPU machine with the working tree and run `bash scripts/gpu-check.sh` or
# `bash scripts/gpu-check-llama.sh` there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
mkdir -p bin
# -s -w: no symbol table or DWARF (a third smaller); the device machine
# takes 64 MiB per call.
LDFLAGS="-s -w"
# The version (splash --version, shard metadata): git describe of the checkout.
go build -trimpath -ldflags "$LDFLAGS -X main.version=$(bash scripts/version.sh)" -o bin/splash ./cmd/splash
go test -c -trimpath -ldflags "$LDFLAGS" -o bin/cuda.test ./gpu/cuda
go build -trimpath -ldflags "$LDFLAGS" -o bin/repeatcorpus ./scripts/repeatcorpus
cp third_party/onnxruntime/libonnxruntime.so.1 bin/onnxruntime
for f in splash cuda.test repeatcorpus onnxruntime; do
  xz -T0 -9 -f "bin/$f"
done
ls -l bin/*.xz
total=$(du -cb bin/*.xz | tail -n 1 | cut -f1)
echo "total $((total >> 20)) MiB (the device machine takes 64 MiB per call)"
if ((total > 60 << 20)); then
  echo "prepare: bin/*.xz is too large to carry" >&2
  exit 1
fi
