#!/usr/bin/env bash
# check.sh: parity of the peers with splash. On a tiny generated model
# (1 layer, hidden 32, 2 heads, bert-base-uncased vocabulary) and ~50 Cranfield
# documents (the first 44, the 4 longest, which exceed 512 tokens, and any
# empty ones), splash, the PyTorch naver/splade loop and transformers.js must
# give the same SPLADE weights: within 1e-4 relative for weights >= 0.1 and
# 1e-5 absolute below (see compare.mjs for why small weights are compared
# absolutely). transformers.js is checked twice:
# as its users run it (its truncation drops [SEP], so documents over 512
# tokens are expected to differ and are reported, not failed) and with
# --keep-sep (Hugging Face's truncation), which must match everywhere.
#
# Usage (from anywhere; run bench/setup-peers.sh first):
#   bash bench/peers/check.sh [THREADS] [BATCH_SIZE]
# Environment (defaults in brackets): CHECK_LAYERS [1], CHECK_HIDDEN [32],
# CHECK_HEADS [2] (the generated model), CHECK_FIRST [44], CHECK_LONGEST [4]
# (the documents), CHECK_INPUT [all Cranfield shards].
# Outputs go to bench/peers/out/check/ (git-ignored).
# The torch peer runs with the OpenBLAS core that bench/run.sh gives it
# (openblas_coretype in bench/lib.sh: OpenBLAS's own choice unless that is
# below what the CPU's flags allow; OPENBLAS_CORETYPE from the environment
# wins), so its vectors are checked as they are benchmarked.
set -euo pipefail

PEERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$PEERS/../.." && pwd)"
TESTDATA="$ROOT/testdata"
THREADS="${1:-1}"
BATCH="${2:-8}"
OUT="$PEERS/out/check"
PY=/usr/bin/python3

log() { printf 'check: %s\n' "$*" >&2; }
BENCH="$(cd "$PEERS/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

mkdir -p "$OUT"
log "building splash"
(cd "$ROOT" && go build -o "$OUT/splash" ./cmd/splash)

LAYERS="${CHECK_LAYERS:-1}" HIDDEN="${CHECK_HIDDEN:-32}" HEADS="${CHECK_HEADS:-2}"
MODEL="$PEERS/out/models/l$LAYERS-h$HIDDEN-a$HEADS"
if [[ ! -f "$MODEL/model.onnx" ]]; then
  "$OUT/splash" model gen-test --output "$MODEL" --layers "$LAYERS" --hidden "$HIDDEN" --heads "$HEADS" \
    --tokenizer "$TESTDATA/tokenizers/bert-base-uncased/tokenizer.json"
fi

DOCS_PQ="$OUT/docs-subset.parquet"
node "$PEERS/subset.mjs" --input "${CHECK_INPUT:-$TESTDATA/cranfield/docs-*.parquet}" --output "$DOCS_PQ" \
  --first "${CHECK_FIRST:-44}" --longest "${CHECK_LONGEST:-4}"

log "splash encode"
rm -rf "$OUT/splash-out"
"$OUT/splash" encode --model "$MODEL" --input "$DOCS_PQ" --output "$OUT/splash-out" \
  --title-column title --threads "$THREADS" 2>"$OUT/splash.log"
tail -n 3 "$OUT/splash.log" >&2

log "documents and token ids (npm tokenizers)"
node "$PEERS/docs.mjs" --input "$DOCS_PQ" --title-column title \
  --tokenizer "$MODEL/tokenizer.json" --max-length 512 >"$OUT/docs.jsonl"

log "PyTorch (naver/splade loop)"
openblas_coretype "$PY" # sets TORCH_ENV
"${TORCH_ENV[@]}" "$PY" "$PEERS/splade_torch.py" --model "$MODEL" --docs "$OUT/docs.jsonl" \
  --batch-size "$BATCH" --threads "$THREADS" --output "$OUT/torch.jsonl" | tail -n 1 >&2

log "transformers.js (as users run it)"
node "$PEERS/transformersjs.mjs" --model "$MODEL" --docs "$OUT/docs.jsonl" \
  --batch-size "$BATCH" --threads "$THREADS" --output "$OUT/tjs.jsonl" | tail -n 1 >&2
log "transformers.js --keep-sep"
node "$PEERS/transformersjs.mjs" --model "$MODEL" --docs "$OUT/docs.jsonl" --keep-sep \
  --batch-size "$BATCH" --threads "$THREADS" --output "$OUT/tjs-keepsep.jsonl" | tail -n 1 >&2

log "compare with splash"
rc=0
node "$PEERS/compare.mjs" --splash "$OUT/splash-out" \
  --peer torch="$OUT/torch.jsonl" --peer transformersjs-keep-sep="$OUT/tjs-keepsep.jsonl" || rc=$?
# Informational: transformers.js's own truncation. Documents over 512 tokens
# lose [SEP] there, so they may fall outside the tolerance.
node "$PEERS/compare.mjs" --splash "$OUT/splash-out" --peer transformersjs-default="$OUT/tjs.jsonl" || true
if ((rc == 0)); then
  log "PASS"
else
  log "FAIL"
fi
exit "$rc"
