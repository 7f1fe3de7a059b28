#!/usr/bin/env bash
# setup.sh installs everything splash needs to build, run and test on a fresh
# machine: Go modules, the ONNX Runtime shared library (from the npm package
# onnxruntime-node, checked by sha256) and the npm tools the tests use as
# independent references. Idempotent: re-running it is cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ORT_VERSION="1.30.0"
ORT_LIB_SHA256="ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23"
ORT_DIR="$ROOT/third_party/onnxruntime"
ORT_LIB="$ORT_DIR/libonnxruntime.so.1"

log() { printf 'setup: %s\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || { log "missing $1: $2"; exit 1; }
}
need go "install Go 1.26 or newer"
need gcc "apt-get install -y gcc (cgo builds the ONNX Runtime binding)"
need node "apt-get install -y nodejs npm (npm provides ONNX Runtime and the reference tokenizer)"
need npm "apt-get install -y npm"

sha256_of() { sha256sum "$1" | awk '{print $1}'; }

install_ort() {
  if [[ -f "$ORT_LIB" && "$(sha256_of "$ORT_LIB")" == "$ORT_LIB_SHA256" ]]; then
    log "ONNX Runtime $ORT_VERSION already installed at $ORT_LIB"
    install_ort_license ""
    return
  fi
  log "fetching ONNX Runtime $ORT_VERSION (npm package onnxruntime-node)"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null 2>&1)
  tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" \
    package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  local got
  got="$(sha256_of "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1")"
  if [[ "$got" != "$ORT_LIB_SHA256" ]]; then
    log "sha256 mismatch for libonnxruntime.so.1: got $got, want $ORT_LIB_SHA256"
    exit 1
  fi
  mkdir -p "$ORT_DIR"
  install -m 0644 "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ORT_LIB.tmp"
  mv -f "$ORT_LIB.tmp" "$ORT_LIB"
  log "installed $ORT_LIB"
  # The package's licence files, where it ships them (onnxruntime-node
  # 1.30.0 ships none; its package.json says MIT).
  tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" --wildcards \
    'package/LICENSE*' 'package/ThirdPartyNotices*' 2>/dev/null || true
  install_ort_license "$tmp/package"
}

# install_ort_license puts ONNX Runtime's licence beside the library:
# LICENSE and ThirdPartyNotices.txt from the npm package's folder $1 when it
# has them, else (and when $1 is empty and none is there yet) ONNX
# Runtime's MIT licence kept in licenses/onnxruntime-LICENSE.txt.
install_ort_license() {
  local pkg="$1" f copied=""
  for f in LICENSE LICENSE.txt ThirdPartyNotices.txt; do
    if [[ -n "$pkg" && -f "$pkg/$f" ]]; then
      install -m 0644 "$pkg/$f" "$ORT_DIR/${f/LICENSE.txt/LICENSE}"
      copied=1
    fi
  done
  if [[ -z "$copied" && ! -f "$ORT_DIR/LICENSE" ]]; then
    install -m 0644 "$ROOT/licenses/onnxruntime-LICENSE.txt" "$ORT_DIR/LICENSE"
  fi
}

install_npm_tools() {
  # Independent references used by tests, pinned to exact versions in
  # package.json: Hugging Face's tokenizers, DuckDB (reads our Parquet) and
  # apache-arrow (reads our Arrow IPC files).
  # No lock file: npm here writes one that lists only this platform's
  # optional binaries, which `npm ci` then refuses.
  if node -e "require('tokenizers'); require('@duckdb/node-api'); require('apache-arrow')" >/dev/null 2>&1; then
    log "npm test tools already installed"
    return
  fi
  log "installing npm test tools (tokenizers, @duckdb/node-api, apache-arrow)"
  npm install --no-package-lock --no-audit --no-fund --loglevel=error
}

install_ort
install_npm_tools
log "downloading Go modules"
go mod download
log "done"
