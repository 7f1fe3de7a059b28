#!/usr/bin/env bash
# tune.sh: the effect of ONNX Runtime session settings on the bare session
# (`splash model bench`, the same batches each time), for choosing splash's
# defaults: sessions × threads, graph optimization level, the CPU memory
# arena and the batch token budget. Prints one Markdown row per variant:
# median (min–max) documents/s over REPEATS timed passes and peak RSS.
#
# Usage: bash bench/tune.sh   (after bench/run.sh has built splash, models and corpora)
# Environment: REPEATS [2], CASES [tiny:cran:350 base:long:12].
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$BENCH/out"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
ROOT="$(cd "$BENCH/.." && pwd)"
SPLASH="$OUT/splash-tune"
REPEATS="${REPEATS:-2}"
CASES="${CASES:-tiny:cran:350 base:long:12}"
NCPU="$(nproc)"

variants=(
  "--sessions 1 --threads $NCPU"
  "--sessions $NCPU --threads 1"
  "--sessions 1 --threads $NCPU --ort-opt-level extended"
  "--sessions 1 --threads $NCPU --ort-opt-level basic"
  "--sessions 1 --threads $NCPU --ort-no-arena"
  "--sessions 1 --threads $NCPU --ort-no-spin"
  "--sessions 1 --threads $NCPU --batch-tokens 1024"
  "--sessions 1 --threads $NCPU --batch-tokens 4096"
)

(cd "$ROOT" && go build -o "$SPLASH" ./cmd/splash)
echo "| case | settings | docs/s median (min–max) | padding waste | peak RSS MiB |"
echo "| --- | --- | --- | --- | --- |"
for kase in $CASES; do
  IFS=: read -r mname corpus ndocs <<<"$kase"
  model="$(model_dir "$mname")"
  shard="$(case_shard "$corpus" "$ndocs")"
  for v in "${variants[@]}"; do
    # shellcheck disable=SC2086
    "$SPLASH" model bench --model "$model" --input "$shard" --title-column title --repeats "$REPEATS" \
      --log-level warn $v | node -e '
        const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
        const d = lines.map((r) => r.docs_per_s).sort((a, b) => a - b);
        const med = d.length % 2 ? d[d.length >> 1] : (d[d.length / 2 - 1] + d[d.length / 2]) / 2;
        const f = (x) => x.toFixed(2);
        const [kase, v] = process.argv.slice(1);
        console.log(`| ${kase} | \`${v}\` | ${f(med)} (${f(d[0])}–${f(d[d.length - 1])}) | ` +
          `${(100 * lines[0].padding_waste).toFixed(1)}% | ${Math.max(...lines.map((r) => r.peak_rss_mb)).toFixed(0)} |`);
      ' "$kase" "$v"
  done
done
