#!/usr/bin/env bash
# test.sh installs what the tests need (scripts/setup.sh) and runs the whole
# suite: gofmt, go vet (also for builds without cgo), go test, go test again
# without cgo (every package that builds without it), a short run of every
# fuzz target (scripts/fuzz.sh; FUZZTIME=0 skips it), and the CUDA PTX
# drift check (scripts/cuda-check.sh). That needs Debian's CUDA toolkit:
# when nvcc is missing and this runs as root, scripts/install-cuda-toolkit.sh
# installs it (about 5 minutes, in the background while the tests run);
# without root it is skipped with a message. SPLASH_CUDA_CHECK=0 skips it.
# When run as root it also installs Debian's chromium (scripts/install-
# chromium.sh, about 155 MB) for the report's headless-browser test, which
# skips, saying so, without it.
# ../shared (Cranfield data and real tokenizers) must stand beside the checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cuda_pid=""
cuda_log="$(mktemp)"
trap 'rm -f "$cuda_log"' EXIT
if [[ "${SPLASH_CUDA_CHECK:-1}" == 0 ]]; then
  echo "test.sh: CUDA compile checks skipped (SPLASH_CUDA_CHECK=0)" >&2
elif command -v nvcc >/dev/null 2>&1 || [[ "$(id -u)" == 0 ]]; then
  bash scripts/install-cuda-toolkit.sh >"$cuda_log" 2>&1 &
  cuda_pid=$!
else
  echo "test.sh: CUDA compile checks skipped: nvcc is missing and installing it needs root (scripts/install-cuda-toolkit.sh)" >&2
fi

bash scripts/setup.sh
# The report's headless-browser test needs Chromium (it skips, saying so,
# without it); installed here when root, otherwise left to the machine.
if [[ "$(id -u)" == 0 ]]; then
  bash scripts/install-chromium.sh || echo "test.sh: could not install chromium; the report's browser test will skip" >&2
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
# lists exactly the packages that build without it. Measured 2026-12-06 on
# two cores: about 70 s with a warm build cache, the slowest package
# encode/testmodel (about 40 s).
CGO_ENABLED=0 go test -count=1 -timeout 10m ./...
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
  bash scripts/cuda-check.sh
fi
