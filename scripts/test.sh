#!/usr/bin/env bash
# test.sh installs what the tests need (scripts/setup.sh) and runs the whole
# suite: gofmt, go vet (also for builds without cgo), go test, and a short
# run of every fuzz target (scripts/fuzz.sh; FUZZTIME=0 skips it).
# ../shared (Cranfield data and real tokenizers) must stand beside the checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
CGO_ENABLED=0 go vet ./...
go test -count=1 -timeout 30m ./...
if [[ "${FUZZTIME:-}" != 0 ]]; then
  bash scripts/fuzz.sh
fi
