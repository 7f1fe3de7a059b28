#!/usr/bin/env bash
# test.sh runs the whole suite: gofmt, go vet (also for builds without cgo),
# go test, go test again without cgo (every package that builds without it),
# a short run of every fuzz target (scripts/fuzz.sh; FUZZTIME=0 skips it),
# and the CUDA PTX drift check (scripts/cuda-check.sh). It first runs
# scripts/setup.sh, which installs into the checkout only (Go modules,
# third_party/onnxruntime, node_modules).
#
# System packages are installed only when asked: with --install, or when
# CI=true (.ci/run sets it), and as root:
#   - Debian's chromium (scripts/install-chromium.sh, about 155 MB) for the
#     report's headless-browser test, first;
#   - Debian's protoc and protoc-gen-go (scripts/install-protoc.sh, a few MB)
#     for the drift check of the generated CIFF and ONNX types;
#   - then Debian's CUDA toolkit (scripts/install-cuda-toolkit.sh, about
#     1.6 GB, some 5 minutes) for the PTX drift check, in the background
#     while the tests run. The two apt-get runs never overlap (apt's lock).
# Otherwise the browser test skips without chromium, saying so (with CI=true
# it fails instead), and the drift check runs when nvcc is on PATH, skipped
# with a message when it is missing or of another CUDA version than the
# pinned 11.8. SPLASH_CUDA_CHECK=0 skips the drift check. The protobuf drift
# check (scripts/gen-proto.sh --check) runs when protoc is on PATH.
#
#   bash scripts/test.sh            # a contributor's machine: installs nothing system-wide
#   bash scripts/test.sh --install  # also the system packages (as root)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

install=0
for arg in "$@"; do
  case "$arg" in
    --install) install=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument $arg (want --install)" >&2; exit 2 ;;
  esac
done
if [[ "${CI:-}" == true ]]; then
  install=1
fi
if ((install)) && [[ "$(id -u)" != 0 ]]; then
  echo "test.sh: installing system packages (--install or CI=true) needs root; installing none" >&2
  install=0
fi

bash scripts/setup.sh

# Chromium first, in the foreground: the browser test needs it, and the
# CUDA toolkit's apt-get must not run at the same time.
if ((install)); then
  bash scripts/install-chromium.sh || echo "test.sh: could not install chromium; the report's browser test will fail under CI=true, skip otherwise" >&2
  bash scripts/install-protoc.sh || echo "test.sh: could not install protoc; the protobuf drift check will fail under CI=true" >&2
fi

cuda_pid=""
cuda_log="$(mktemp)"
trap 'rm -f "$cuda_log"' EXIT
run_cuda_check=0
if [[ "${SPLASH_CUDA_CHECK:-1}" == 0 ]]; then
  echo "test.sh: CUDA compile checks skipped (SPLASH_CUDA_CHECK=0)" >&2
elif command -v nvcc >/dev/null 2>&1; then
  run_cuda_check=1
elif ((install)); then
  bash scripts/install-cuda-toolkit.sh >"$cuda_log" 2>&1 &
  cuda_pid=$!
  run_cuda_check=1
else
  echo "test.sh: CUDA compile checks skipped: nvcc is missing (bash scripts/test.sh --install, as root, installs it with scripts/install-cuda-toolkit.sh)" >&2
fi

unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
CGO_ENABLED=0 go vet ./...
go test -count=1 -timeout 30m ./...
# The tests again in a build without cgo, where the ONNX Runtime backend is
# a stand-in that says so (gpu/ort/backend_nocgo.go): tests that need ONNX
# Runtime skip (ort.Usable), the pure-Go ones (tokenizer, pipeline stages
# with a fake backend, shards, oracles) run. Without cgo, go list ./...
# lists exactly the packages that build without it. -short: what differs
# without cgo is the build and the stand-ins, not the pure-Go numerics,
# which the run above covered in full, so the slowest of those (generated
# models, fp8 forward passes, long parity runs) skip here. Measured
# 2026-12-06 on two cores: about 70 s with a warm build cache before -short.
CGO_ENABLED=0 go test -short -count=1 -timeout 10m ./...
if [[ "${FUZZTIME:-}" != 0 ]]; then
  bash scripts/fuzz.sh
fi
if [[ -n "$cuda_pid" ]]; then
  if ! wait "$cuda_pid"; then
    cat "$cuda_log" >&2
    echo "test.sh: installing the CUDA toolkit failed (log above)" >&2
    exit 1
  fi
  tail -n 1 "$cuda_log" >&2
fi
if ((run_cuda_check)); then
  bash scripts/cuda-check.sh
fi
if command -v protoc >/dev/null 2>&1; then
  bash scripts/gen-proto.sh --check
elif [[ "${CI:-}" == true ]]; then
  echo "test.sh: protoc is missing under CI=true (scripts/install-protoc.sh)" >&2
  exit 1
else
  echo "test.sh: protobuf drift check skipped: protoc is missing (bash scripts/install-protoc.sh installs it)" >&2
fi
