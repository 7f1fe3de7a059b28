#!/usr/bin/env bash
# overhead.sh: where splash encode stands against the bare session, in
# alternating pairs on the same batches: the bare session warm (after a
# warm-up pass: the limit in bench/run.sh) and cold (its first pass, paying
# ONNX Runtime's first use as an encode run does), then splash encode
# (documents / (wall - model load), from _SUCCESS). Prints one line per
# round and the medians.
#
# Usage: bash bench/overhead.sh   (after bench/run.sh: uses its binary, models and corpora)
# Environment: ROUNDS [4], CASES [tiny:cran:350 tiny:long:48 base:long:12], THREADS [2].
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$BENCH/out"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
SPLASH="$OUT/splash"
ROUNDS="${ROUNDS:-4}"
THREADS="${THREADS:-2}"
CASES="${CASES:-tiny:cran:350 tiny:long:48 base:long:12}"

rate() { node -e 'const l = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse); console.log(l[l.length - 1].docs_per_s.toFixed(3))'; }

for kase in $CASES; do
  IFS=: read -r mname corpus ndocs <<<"$kase"
  model="$(model_dir "$mname")"
  shard="$(case_shard "$corpus" "$ndocs")"
  warm=() cold=() enc=()
  for r in $(seq 1 "$ROUNDS"); do
    w="$("$SPLASH" model bench --model "$model" --input "$shard" --title-column title --threads "$THREADS" --repeats 1 --log-level warn | rate)"
    c="$("$SPLASH" model bench --model "$model" --input "$shard" --title-column title --threads "$THREADS" --repeats 1 --cold --log-level warn | rate)"
    rm -rf "$OUT/overhead-out"
    "$SPLASH" encode --model "$model" --input "$shard" --output "$OUT/overhead-out" --title-column title \
      --threads "$THREADS" --log-level warn >/dev/null
    e="$(node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log((s.documents / (s.wall_seconds - s.model_load_seconds)).toFixed(3))' "$OUT/overhead-out/_SUCCESS")"
    echo "$kase round $r: bare warm $w, bare cold $c, splash $e docs/s"
    warm+=("$w") cold+=("$c") enc+=("$e")
  done
  node -e '
    const [kase, ...xs] = process.argv.slice(1);
    const n = xs.length / 3, med = (a) => { const s = a.map(Number).sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
    const w = med(xs.slice(0, n)), c = med(xs.slice(n, 2 * n)), e = med(xs.slice(2 * n));
    console.log(`| ${kase} | ${w.toFixed(2)} | ${c.toFixed(2)} | ${e.toFixed(2)} | ${(e / w).toFixed(2)} | ${(e / c).toFixed(2)} |`);
  ' "$kase" "${warm[@]}" "${cold[@]}" "${enc[@]}"
done
