#!/usr/bin/env bash
# fuzz.sh runs the fuzz targets of splash (the readers of foreign bytes), one
# after the other, for $FUZZTIME each (default 12s), and prints one line per
# target: its package, the fuzz time, the executions go test reports and the
# size of its committed seed corpus (<package>/testdata/fuzz/<target>/). It
# exits non-zero when a target fails; go test then prints the failing input,
# which it has written to the seed corpus directory: fix the bug and commit
# that file as a regression seed.
#
#   bash scripts/fuzz.sh                       # every target, 12s each
#   FUZZTIME=5m bash scripts/fuzz.sh FuzzParse # one target, longer
#
# $FUZZMINIMIZETIME (default 2s) bounds the minimization of each new
# interesting input: go test's default, 60s, would spend a short run on it.
# The first run compiles every package with fuzzing instrumentation (a few
# minutes on two cores); later runs use the build cache.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FUZZTIME="${FUZZTIME:-12s}"
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-2s}"

# package target
TARGETS=(
  "./shards FuzzInputReader"
  "./shards FuzzReadManifest"
  "./shards FuzzReadShard"
  "./shards FuzzTextParts"
  "./encode/tokenizer FuzzEncode"
  "./encode/tokenizer FuzzParse"
  "./encode/tokenizer FuzzEncodeBPE"
  "./encode/safetensors FuzzOpen"
  "./encode/weights FuzzOpenONNX"
  "./gpu/ort FuzzInspectModel"
  "./gpu/ort FuzzAppendPooling"
)

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
ran=0
start_all=$SECONDS
printf '%-18s %-18s %6s %10s %6s %9s  %s\n' target package time execs seeds bytes result
for entry in "${TARGETS[@]}"; do
  read -r pkg name <<<"$entry"
  if [[ $# -gt 0 ]] && ! printf '%s\n' "$@" | grep -qx "$name"; then
    continue
  fi
  ran=$((ran + 1))
  start=$SECONDS
  result=FAIL
  for attempt in 1 2; do
    if go test -v -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" \
      -fuzzminimizetime "$FUZZMINIMIZETIME" -timeout 10m "$pkg" >"$log" 2>&1; then
      result=ok
      break
    fi
    # go's fuzzer sometimes ends a run that found nothing with "context
    # deadline exceeded" when -fuzztime runs out (a toolchain flake, no
    # input written): run it once more; a real failure writes its input.
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "$name: go's fuzzer timed out at the end of the run without a failing input; running it again" >&2
      continue
    fi
    break
  done
  if [[ $result == FAIL ]]; then
    status=1
  fi
  # The last progress line, "fuzz: elapsed: 15s, execs: 12345 (823/sec), ...".
  execs="$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')"
  dir="${pkg#./}/testdata/fuzz/$name"
  files="$(find "$dir" -type f 2>/dev/null | wc -l | tr -d ' ')"
  bytes="$(find "$dir" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')"
  printf '%-18s %-18s %6s %10s %6s %9s  %s\n' "$name" "${pkg#./}" "$FUZZTIME" "${execs:-0}" \
    "$files" "$bytes" "$result ($((SECONDS - start))s with the build)"
  if [[ $result == FAIL ]]; then
    tail -n 40 "$log" | sed 's/^/    /'
  fi
done
if [[ $ran -eq 0 ]]; then
  echo "fuzz.sh: no target named $*" >&2
  exit 2
fi
echo "fuzz.sh: $ran targets in $((SECONDS - start_all))s"
exit $status
