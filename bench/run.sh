#!/usr/bin/env bash
# run.sh: splash against its limit and its peers, on one machine, in one run.
#
# For each case (a model and a corpus) it runs, REPEATS times each:
#   bare-session  `splash model bench`: the ONNX Runtime session with the
#                 pooled graph alone, on the batches the pipeline would form
#                 (read, tokenized and packed before the clock starts), timed
#                 after one warm-up pass over all of them;
#   splash        `splash encode` end to end on the Parquet shard (reading,
#                 tokenizing, batching, ONNX Runtime, sparsifying, writing
#                 and committing the impact shard);
#   torch         the naver/splade encoding loop in PyTorch (peers/splade_torch.py);
#   transformers.js  @huggingface/transformers on onnxruntime-node (peers/transformersjs.mjs);
# all with THREADS intra-op threads, then prints a Markdown table
# (summarize.mjs) of min/median/max documents/s and tokens/s, padding waste
# and peak RSS. Raw results: bench/out/results.jsonl; table: bench/out/results.md.
#
# Models (generated here once, never committed; random weights, real
# architecture and vocabulary): tiny = 2 layers, hidden 64, 4 heads (the
# tests' model); base = 12 layers, hidden 768, 12 heads (BERT-base sized).
# Corpora (from testdata/cranfield): cran = the first documents, as
# they are; long = 8 consecutive documents joined into one, so that every
# document is truncated at 512 tokens.
#
# Usage: bash bench/setup-peers.sh && bash bench/run.sh
# Environment: THREADS [2], REPEATS [3], PEER_BATCH [32] (the peers' batch
# size), PEERS [torch transformers.js] (empty: none), CASES (model:corpus:
# documents[:systems], systems comma-separated, default all) [
#   tiny:cran:1400:bare,splash  (the whole corpus: too slow for the peers here)
#   tiny:cran:350 tiny:long:48 base:cran:30 base:long:12 ].
# OPENBLAS_CORETYPE: the torch peer's OpenBLAS core. Unset, the script leaves
# OpenBLAS's own choice alone unless it is of a lower class than the CPU's
# flags allow (an unknown CPU model landing on a generic core), and then sets
# the best one for the peer (openblas_coretype in lib.sh); either way the
# core the peer ran with goes into machine.txt (the table's header) and into
# each torch result (`openblas`).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
TESTDATA="$ROOT/testdata"
export THREADS="${THREADS:-2}"
REPEATS="${REPEATS:-3}"
PEER_BATCH="${PEER_BATCH:-32}"
CASES="${CASES:-tiny:cran:1400:bare,splash tiny:cran:350 tiny:long:48 base:cran:30 base:long:12}"
PEERS="${PEERS-torch transformers.js}"
OUT="$BENCH/out"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
MODELS="$BENCH/peers/out/models"
PY=/usr/bin/python3
CRAN="$TESTDATA/cranfield/docs-*.parquet"

log() { printf 'bench: %s\n' "$*" >&2; }

mkdir -p "$OUT" "$MODELS"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
log "building splash"
(cd "$ROOT" && go build -o "$OUT/splash" ./cmd/splash)
SPLASH="$OUT/splash"

ensure_model() {
  local dir="$1" l h a
  [[ -f "$dir/model.onnx" ]] && return
  IFS=- read -r l h a <<<"$(basename "$dir")"
  log "generating test model $(basename "$dir")"
  "$SPLASH" model gen-test --output "$dir" --layers "${l#l}" --hidden "${h#h}" --heads "${a#a}" \
    --tokenizer "$TESTDATA/tokenizers/bert-base-uncased/tokenizer.json"
}

# record SYSTEM CASE RUN JSON: appends one result line, tagged.
record() {
  node -e '
    const [system, kase, run, json] = process.argv.slice(1);
    const r = JSON.parse(json);
    const [model, corpus] = kase.split(":");
    console.log(JSON.stringify({ ...r, case: kase, model, corpus, system, run: +run }));
  ' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

TORCH_ENV=(env)
OPENBLAS_CORE_INFO=""
if [[ " $PEERS $CASES " == *torch* ]]; then
  openblas_coretype "$PY" # sets TORCH_ENV, OPENBLAS_CORE_INFO
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') (family $(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "splash: $("$SPLASH" --version 2>&1 | head -n 1), go $(go env GOVERSION)"
  echo "threads: $THREADS, repeats: $REPEATS, peer batch size: $PEER_BATCH"
  [[ -n "$OPENBLAS_CORE_INFO" ]] && echo "torch peer OpenBLAS: $OPENBLAS_CORE_INFO"
  [[ -f "$BENCH/peers/out/versions.txt" ]] && cat "$BENCH/peers/out/versions.txt"
} >"$OUT/machine.txt"

for kase in $CASES; do
  IFS=: read -r mname corpus ndocs systems <<<"$kase"
  kase="$mname:$corpus:$ndocs"
  systems="${systems:-bare,splash,${PEERS// /,}}"
  model="$(model_dir "$mname")"
  ensure_model "$model"
  data="$OUT/data/$corpus-$ndocs"
  mkdir -p "$data"
  shard="$data/docs.parquet"
  if [[ ! -f "$shard" ]]; then
    if [[ "$corpus" == long ]]; then
      node "$BENCH/corpus.mjs" --input "$CRAN" --output "$shard" --docs "$ndocs" --join 8
    else
      node "$BENCH/corpus.mjs" --input "$CRAN" --output "$shard" --docs "$ndocs"
    fi
  fi
  jsonl="$data/docs.jsonl"
  if [[ "$systems" == *torch* || "$systems" == *transformers.js* ]] && [[ ! -f "$jsonl" ]]; then
    node "$BENCH/peers/docs.mjs" --input "$shard" --title-column title \
      --tokenizer "$model/tokenizer.json" --max-length 512 >"$jsonl"
  fi
  # Repeats are interleaved (every system once, then again), so that a slow
  # spell of the machine falls on all systems alike.
  for i in $(seq 1 "$REPEATS"); do
    for sys in ${systems//,/ }; do
      log "case $kase: $sys, run $i"
      case "$sys" in
        bare)
          # One untimed warm-up pass, then one timed pass.
          line="$("$SPLASH" model bench --model "$model" --input "$shard" --title-column title \
            --threads "$THREADS" --repeats 1 --log-level warn | tail -n 1)"
          record bare-session "$kase" "$i" "$line" ;;
        splash)
          rm -rf "$data/splash-out"
          /usr/bin/time -f '%M %e' -o "$data/time.txt" "$SPLASH" encode --model "$model" --input "$shard" \
            --output "$data/splash-out" --title-column title --threads "$THREADS" --log-level warn >/dev/null
          read -r rss_kb wall <"$data/time.txt"
          line="$(node -e '
            const fs = require("fs");
            const [success, rssKB, wall] = process.argv.slice(1);
            const s = JSON.parse(fs.readFileSync(success, "utf8"));
            const enc = s.wall_seconds - s.model_load_seconds;
            console.log(JSON.stringify({
              docs: s.documents, tokens: s.tokens, padding_waste: s.padding_waste,
              wall_s: enc, docs_per_s: s.documents / enc, tokens_per_s: s.tokens / enc,
              process_wall_s: +wall, e2e_docs_per_s: s.documents / +wall, model_load_s: s.model_load_seconds,
              peak_rss_mb: +rssKB / 1024, threads: +process.env.THREADS,
            }));
          ' "$data/splash-out/_SUCCESS" "$rss_kb" "$wall")"
          record splash "$kase" "$i" "$line" ;;
        torch)
          line="$("${TORCH_ENV[@]}" "$PY" "$BENCH/peers/splade_torch.py" --model "$model" --docs "$jsonl" \
            --batch-size "$PEER_BATCH" --threads "$THREADS" | tail -n 1)"
          record torch "$kase" "$i" "$line" ;;
        transformers.js)
          line="$(node "$BENCH/peers/transformersjs.mjs" --model "$model" --docs "$jsonl" \
            --batch-size "$PEER_BATCH" --threads "$THREADS" | tail -n 1)"
          record transformers.js "$kase" "$i" "$line" ;;
        *) log "unknown system $sys"; exit 2 ;;
      esac
    done
  done
done
node "$BENCH/summarize.mjs" "$RESULTS" "$OUT/machine.txt" | tee "$OUT/results.md"
