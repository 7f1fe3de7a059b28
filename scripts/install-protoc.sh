#!/usr/bin/env bash
# install-protoc.sh installs what scripts/gen-proto.sh needs to regenerate,
# or check (--check), the committed Go types of the CIFF and ONNX schemas:
# Debian's protoc (protobuf-compiler, 3.21.12 on bookworm; a few MB) and
# protoc-gen-go at the version of google.golang.org/protobuf in go.mod, into
# $(go env GOPATH)/bin. Idempotent. apt-get needs root; protoc-gen-go does
# not.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'install-protoc: %s\n' "$*" >&2; }

if ! command -v protoc >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    log "protoc is missing and installing it needs root (apt-get install protobuf-compiler)"
    exit 1
  fi
  log "apt-get update"
  apt-get update -q
  log "installing protobuf-compiler"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends protobuf-compiler
fi
log "protoc: $(protoc --version)"
want="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
gobin="$(go env GOPATH)/bin"
have="$("$gobin/protoc-gen-go" --version 2>/dev/null | awk '{print $2}' || true)"
if [[ "$have" != "$want" ]]; then
  log "go install google.golang.org/protobuf/cmd/protoc-gen-go@$want"
  go install "google.golang.org/protobuf/cmd/protoc-gen-go@$want"
fi
log "protoc-gen-go: $("$gobin/protoc-gen-go" --version)"
