#!/usr/bin/env bash
# setup-peers.sh installs the peers that bench/ compares splash with, on the
# same machine: PyTorch (Debian's python3-torch, run by /usr/bin/python3) for
# the naver/splade encoding loop, and transformers.js (npm
# @huggingface/transformers, pinned in bench/peers/package.json, on
# onnxruntime-node 1.30.0, the ONNX Runtime splash itself loads).
#
# Idempotent: re-running it only checks. Needs root (apt-get), node and npm.
# It also makes sure the repository's npm test tools (tokenizers, DuckDB) are
# there: the peers read Parquet with DuckDB and the torch peer's ids come from
# the npm `tokenizers` package (Debian has neither python3-pyarrow nor
# python3-tokenizers/transformers; PyPI is not reachable).
#
# Prints the exact versions installed, and writes them to
# bench/peers/out/versions.txt.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
PEERS="$BENCH/peers"
PY=/usr/bin/python3 # Debian's python; a pyenv python first on PATH lacks Debian's packages

log() { printf 'setup-peers: %s\n' "$*" >&2; }

# Debian bookworm: python3-torch 1.13.1, python3-numpy 1.24.2, python3-onnx
# 1.12.0 (reads the initializers of model.onnx). No python3-pyarrow,
# python3-tokenizers or python3-transformers exist in bookworm.
# Debian's torch does its float32 matmuls through libblas.so.3; libtorch1.13
# recommends libopenblas0 (what a plain `apt-get install python3-torch` pulls
# in, pthread variant). Without it the alternative is the single-threaded
# reference BLAS, many times slower: install OpenBLAS explicitly.
# OpenBLAS 0.3.21 is a DYNAMIC_ARCH build that picks its kernels (the core)
# by CPU model; on a model it does not know it can pick a generic one
# (Prescott: about 3.5x slower SGEMM than SkylakeX on an AVX-512 CPU). This
# script reports the core it picks here; bench/run.sh and bench/peers/check.sh
# set OPENBLAS_CORETYPE for the torch peer when that core is below what the
# CPU's flags allow (openblas_coretype in lib.sh).
APT_PKGS=(python3-torch python3-numpy python3-onnx libopenblas0-pthread)

missing=()
for p in "${APT_PKGS[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages already installed: ${APT_PKGS[*]}"
fi
blas="$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
case "$blas" in
  *openblas*) ;;
  *) log "libblas.so.3 is $blas, not OpenBLAS: update-alternatives --auto libblas.so.3-x86_64-linux-gnu"; exit 1 ;;
esac
"$PY" -c 'import torch, numpy, onnx' || { log "$PY cannot import torch, numpy, onnx"; exit 1; }

# The repository's npm tools (tokenizers, @duckdb/node-api): scripts/setup.sh
# installs them (and the ONNX Runtime library splash uses).
if ! (cd "$ROOT" && node -e "require('tokenizers'); require('@duckdb/node-api')") >/dev/null 2>&1; then
  log "installing the repository's npm tools (scripts/setup.sh)"
  bash "$ROOT/scripts/setup.sh"
fi

# transformers.js, into bench/peers/node_modules. onnxruntime-node's
# postinstall would download CUDA binaries from a host that is unreachable
# here; the CPU library is inside the npm package, so skip that step.
if (cd "$PEERS" && node --input-type=module -e "
    import fs from 'node:fs';
    const want = JSON.parse(fs.readFileSync('package.json')).dependencies['@huggingface/transformers'];
    const got = JSON.parse(fs.readFileSync('node_modules/@huggingface/transformers/package.json')).version;
    if (got !== want) process.exit(1);
    await import('@huggingface/transformers');") >/dev/null 2>&1; then
  log "transformers.js already installed"
else
  log "npm install (bench/peers)"
  (cd "$PEERS" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi

mkdir -p "$PEERS/out"
{
  for p in "${APT_PKGS[@]}" libtorch1.13 libdnnl2 python3.11; do
    printf 'deb %s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
  done
  printf 'libblas.so.3 %s\n' "$blas"
  "$PY" -c 'import sys, torch, numpy, onnx
print("python", sys.version.split()[0])
print("torch", torch.__version__, "threads", torch.get_num_threads())
print("numpy", numpy.__version__)
print("onnx", onnx.__version__)'
  printf 'node %s\n' "$(node --version)"
  for d in "$PEERS/node_modules/@huggingface/transformers" "$PEERS/node_modules/@huggingface/tokenizers" \
           "$PEERS/node_modules/onnxruntime-node" "$PEERS/node_modules/onnxruntime-common" \
           "$ROOT/node_modules/tokenizers" "$ROOT/node_modules/@duckdb/node-api"; do
    node -e 'const p=require(process.argv[1]+"/package.json"); console.log("npm "+p.name+" "+p.version)' "$d"
  done
} | tee "$PEERS/out/versions.txt"

# Which OpenBLAS core torch loads here, and whether bench/run.sh will set
# OPENBLAS_CORETYPE for the peer (informational; run.sh decides again).
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
openblas_coretype "$PY"
