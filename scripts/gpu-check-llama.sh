#!/usr/bin/env bash
# gpu-check-llama.sh is the GPU check of splash's CUDA engine on Llama- and
# Mistral-shaped models (issue 19), for one call of at most 10 minutes on a
# GPU machine without Go or network; it stops its steps by $BUDGET_S seconds
# (default 520). Build its binaries first with scripts/gpu/prepare.sh and
# carry bin/*.xz with the working tree. It needs, on the machine: the NVIDIA
# driver, a cuBLAS 13/12/11 library (found on the disk as scripts/gpu-check.sh
# does, unless $SPLASH_CUBLAS is set), and for the peer python3 with torch and
# transformers ($PYTHON, default python3).
#
# Steps, the most important evidence first, each under `timeout` and logged
# with its exit status:
#   1. the card (nvidia-smi) and the cuBLAS found;
#   2. gpu/cuda's device tests: TestDeviceDecoderEngine (generated Llama and
#      Mistral models, causal, bidirectional and echo, fp32 against the
#      float64 oracle <= 1e-4, bf16/fp16 top-20 overlap, and fp8 where the
#      binary has it) and TestKernelCheckOnDevice (every kernel against its
#      Go twin);
#   3. a Llama-3.2-1B-shaped model generated here (16 layers, hidden 2048,
#      32 heads, 8 KV heads, intermediate 8192, tied head, llama3 rope
#      scaling, 128,256 ids: mistral-7b's tokenizer padded by gen-test
#      --vocab, a few of the new ids reachable from text; bf16 safetensors) and
#      $DOCS Cranfield documents repeated (default 10000);
#   4. splash encode --device cuda end to end in bf16: documents/s, tokens/s
#      (both also after the model load), peak GPU memory (nvidia-smi every
#      100 ms) and model TFLOP/s;
#   5. the PyTorch peer (scripts/gpu/torch_llama_peer.py encode):
#      LlamaForCausalLM from the same safetensors in bf16 with SDPA, the same
#      tokenizer, length-sorted batches, SPLADE max pooling in vocabulary
#      chunks; torch's bf16 GEMM rate (the card's ceiling); parity of the
#      first 32 documents, splash's bf16 vectors against the peer's (top-20
#      overlap, largest relative difference); then splash encode with
#      --precision fp8 (recorded as not supported when the binary refuses
#      it) and its top-20 overlap with splash's bf16 vectors;
#   6. one batch of an 8B-shaped model (32 layers, $LAYERS_8B to shorten;
#      hidden 4096, 32 heads, 8 KV heads, intermediate 14336, 128,256 ids;
#      random bf16 weights written by torch_llama_peer.py gen-weights, as
#      gen-test takes ~20 s/GB): splash model bench --device cuda on 64
#      documents of 512 tokens in bf16 and fp8 with peak GPU memory, and the
#      same batch through the PyTorch peer;
#   7. CSPLADE's variants end to end on 256 documents: --echo with
#      --attention bidirectional (their parity is step 2's);
#   8. a summary table.
#
# Model FLOPs per token (torch_llama_peer.py flops, = gpu/cuda's
# ModelFLOPsPerToken): per layer 2·H·(heads+2·kv)·d + 2·heads·d·H + 6·H·I +
# 4·l·heads·d, then 2·H·V for the LM head. For encode, l is the mean
# document length (tokens / documents), which undercounts the attention term
# (mean of n² over mean of n is larger) by a few percent of a term that is
# ~1% of the FLOPs at l = 250 on the 1B shape; the 8B batch has l = 512.
#
# Everything goes to stdout and, when $OUT is set, to
# $OUT/gpu-check-llama.log. DRY_RUN=1 rehearses the shell logic on the CPU
# with tiny shapes (no nvidia-smi, no device tests, encode and model bench
# --device cpu on the small model's ONNX, 4 documents in the batch, the peer
# only where torch and transformers import and see a GPU); BIN
# names the folder of unpacked binaries (default bin; DRY_RUN skips the
# unpacking).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DOCS="${DOCS:-10000}"
LAYERS_8B="${LAYERS_8B:-32}"
BUDGET_S="${BUDGET_S:-520}"
DRY_RUN="${DRY_RUN:-}"
BIN="$(realpath -m "${BIN:-bin}")"
PYTHON="${PYTHON:-python3}"
PEER=(scripts/gpu/torch_llama_peer.py)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
SUMMARY="$WORK/summary.tsv"
: >"$SUMMARY"

# step, gpu_unpack, gpu_find_cublas, gpu_mem_start/stop; the loader's path.
source scripts/gpu/lib.sh

# Shapes: the real ones, or tiny ones for DRY_RUN.
if [[ -n "$DRY_RUN" ]]; then
  DEVICE=cpu
  SHAPE_1B=(--layers 2 --hidden 64 --heads 8 --kv-heads 2 --intermediate 192)
  ONNX_1B=()
  SHAPE_8B=(--layers 1 --hidden 128 --heads 8 --kv-heads 2 --intermediate 448 --shards 2)
  BENCH_MODEL=llama-1b # gen-weights writes no model.onnx, which the CPU path needs
  BATCH_DOCS=4
  VARIANT_DOCS=16
else
  DEVICE=cuda
  SHAPE_1B=(--layers 16 --hidden 2048 --heads 32 --kv-heads 8 --intermediate 8192)
  ONNX_1B=(--no-onnx)
  SHAPE_8B=(--layers "$LAYERS_8B" --hidden 4096 --heads 32 --kv-heads 8 --intermediate 14336 --shards 4)
  BENCH_MODEL=llama-8b
  BATCH_DOCS=64
  VARIANT_DOCS=256
fi

# within N ITEM sets T to min(N, seconds left before the budget ends); it
# fails when fewer than 20 seconds are left, saying so and recording ITEM as
# skipped.
SKIPPED=0
within() {
  local left=$((START + BUDGET_S - $(date +%s)))
  if ((left < 20)); then
    echo "skipped: $left s left of the ${BUDGET_S} s budget"
    printf '%s\t%s\n' "$2" "skipped: out of time (BUDGET_S)" >>"$SUMMARY"
    SKIPPED=$((SKIPPED + 1))
    return 1
  fi
  T=$(($1 < left ? $1 : left))
}

# record ITEM VALUE: a row of the summary table; fail ITEM VALUE also
# counts a failed step (the exit status is 1 when any failed).
record() { printf '%s\t%s\n' "$1" "$2" >>"$SUMMARY"; }
FAILED=0
fail() { record "$1" "$2"; FAILED=$((FAILED + 1)); }

# jfield FILE PREFIX KEY...: fields of the JSON object that starts at the
# first "{" of the last line of FILE beginning with PREFIX, 4 significant
# figures; "-" when missing.
jfield() {
  "$PYTHON" - "$@" <<'EOF' 2>/dev/null || echo "-"
import json, sys
path, prefix, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
line = [l for l in open(path, encoding="utf-8", errors="replace") if l.startswith(prefix)][-1]
obj = json.loads(line[line.index("{"):])
def fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)
print(" ".join(fmt(obj[k]) for k in keys))
EOF
}

# calc EXPR: a Python arithmetic expression, 3 significant figures; "-" on error.
calc() { "$PYTHON" -c "print(f'{($1):.3g}')" 2>/dev/null || echo "-"; }

# splash_encode NAME PRECISION: splash encode of the 1B model over the corpus
# into $WORK/out-NAME, with peak GPU memory; the summary line (JSON) in
# $WORK/encode-NAME.json. Returns encode's exit status.
splash_encode() {
  local name="$1" precision="$2" rc
  local args=(encode --model "$WORK/llama-1b" --input "$WORK/input" --output "$WORK/out-$name" --device "$DEVICE" --log-format json)
  [[ -n "$precision" ]] && args+=(--precision "$precision")
  within 150 "encode 1B $name" || return 124
  [[ -n "$DRY_RUN" ]] || gpu_mem_start "$WORK/mem-$name.csv"
  timeout "$T" "$BIN/splash" "${args[@]}" >"$WORK/encode-$name.json" 2>"$WORK/encode-$name.err"
  rc=$?
  [[ -n "$DRY_RUN" ]] || gpu_mem_stop
  grep -v '"msg":"shard done"\|"msg":"progress"' "$WORK/encode-$name.err" | tail -n 20
  cat "$WORK/encode-$name.json"
  echo "== encode $name: exit status $rc"
  if ((rc != 0)); then
    if ((rc == 2)) && grep -q -- '--precision' "$WORK/encode-$name.err"; then
      record "encode 1B $name" "not supported: $(grep -m 1 -- '--precision' "$WORK/encode-$name.err" | cut -c1-120)"
    else
      fail "encode 1B $name" "failed (exit $rc)"
    fi
    return "$rc"
  fi
  local docs tokens wall load
  read -r docs tokens wall load < <(jfield "$WORK/encode-$name.json" '{"summary":"encode"' documents tokens wall_seconds model_load_seconds)
  local flops
  flops="$("$PYTHON" "${PEER[@]}" flops "$WORK/llama-1b/config.json" "$(calc "$tokens / $docs")")"
  local dps tps tflops
  dps="$(calc "$docs / ($wall - $load)")"
  tps="$(calc "$tokens / ($wall - $load)")"
  tflops="$(calc "$tokens / ($wall - $load) * $flops / 1e12")"
  echo "encode $name: $docs documents, $tokens tokens, ${wall} s (model load ${load} s): after the load $dps docs/s, $tps tokens/s, $tflops model TFLOP/s ($flops FLOPs/token); peak GPU memory ${GPU_MEM_PEAK:-?} MiB (before: ${GPU_MEM_BASE:-?} MiB)"
  record "encode 1B $name docs/s (after load; end to end)" "$dps; $(calc "$docs / $wall")"
  record "encode 1B $name tokens/s, model TFLOP/s" "$tps, $tflops"
  record "encode 1B $name peak GPU MiB" "${GPU_MEM_PEAK:-?}"
  eval "ENC_${name}_DPS=\$dps ENC_${name}_TFLOPS=\$tflops"
  return 0
}

# splash_bench NAME PRECISION: splash model bench of the 8B-shaped model on
# the one batch, with peak GPU memory.
splash_bench() {
  local name="$1" precision="$2" rc
  local args=(model bench --model "$WORK/$BENCH_MODEL" --input "$WORK/long.jsonl" --device "$DEVICE" --max-length 512
    --max-batch "$BATCH_DOCS" --batch-tokens "$((BATCH_DOCS * 512))" --repeats 3 --log-format json)
  [[ -n "$precision" ]] && args+=(--precision "$precision")
  within 150 "bench 8B $name" || return 124
  [[ -n "$DRY_RUN" ]] || gpu_mem_start "$WORK/mem-b$name.csv"
  timeout "$T" "$BIN/splash" "${args[@]}" >"$WORK/bench-$name.json" 2>"$WORK/bench-$name.err"
  rc=$?
  [[ -n "$DRY_RUN" ]] || gpu_mem_stop
  tail -n 5 "$WORK/bench-$name.err"
  cat "$WORK/bench-$name.json"
  echo "== bench 8B $name: exit status $rc; peak GPU memory ${GPU_MEM_PEAK:-?} MiB"
  if ((rc != 0)); then
    if ((rc == 2)) && grep -q -- '--precision' "$WORK/bench-$name.err"; then
      record "bench 8B $name" "not supported: $(grep -m 1 -- '--precision' "$WORK/bench-$name.err" | cut -c1-120)"
    else
      fail "bench 8B $name" "failed (exit $rc)"
    fi
    return "$rc"
  fi
  local best
  # The best of the timed passes: the largest tokens/s.
  best="$("$PYTHON" -c '
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
r = max(runs, key=lambda r: r["tokens_per_s"])
print(r["docs"], r["tokens"], r["padded_tokens"], r["batches"], r["wall_s"], r["docs_per_s"], r["tokens_per_s"])
' "$WORK/bench-$name.json" 2>/dev/null)"
  local docs tokens padded batches wall dps tps
  read -r docs tokens padded batches wall dps tps <<<"$best"
  local flops tflops
  flops="$("$PYTHON" "${PEER[@]}" flops "$WORK/$BENCH_MODEL/config.json" "$(calc "$tokens / $docs")")"
  tflops="$(calc "$tps * $flops / 1e12")"
  echo "bench 8B $name: $docs documents, $tokens tokens ($padded padded) in $batches batch(es), best pass $wall s: $(calc "$dps") docs/s, $(calc "$tps") tokens/s, $tflops model TFLOP/s"
  record "bench 8B $name docs/s, model TFLOP/s" "$(calc "$dps"), $tflops"
  record "bench 8B $name peak GPU MiB" "${GPU_MEM_PEAK:-?}"
  eval "BENCH_${name}_DPS=\$dps"
  return 0
}

run_all() {
  step "gpu-check-llama on $(uname -n) (budget ${BUDGET_S} s${DRY_RUN:+, DRY_RUN on the CPU})"
  if [[ -z "$DRY_RUN" ]]; then
    nvidia-smi || echo "nvidia-smi failed (exit $?)"
    record "card" "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
    gpu_unpack || return 1
    gpu_find_cublas
  fi
  local peer_ok=1
  if ! "$PYTHON" -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null; then
    peer_ok=
    echo "the PyTorch peer is skipped: $PYTHON cannot import torch and transformers or sees no GPU"
    record "PyTorch peer" "skipped: $PYTHON cannot import torch and transformers or sees no GPU"
  fi

  step "device tests (gpu/cuda): decoder engine parity and the kernels against their twins"
  if [[ -n "$DRY_RUN" ]]; then
    echo "skipped (DRY_RUN)"
  elif within 150 "device tests"; then
    (cd gpu/cuda && timeout "$T" "$BIN/cuda.test" -test.v -test.run 'DeviceDecoder|KernelCheckOnDevice|Device.*FP8|FP8.*Device' \
      -test.timeout "$((T - 5))s") | tee "$WORK/devtests.log" | grep -v '^=== RUN'
    local rc=${PIPESTATUS[0]}
    echo "== device tests: exit status $rc"
    ((rc == 0)) || FAILED=$((FAILED + 1))
    record "device tests (decoder engine, kernels)" \
      "exit $rc: $(grep -c '^--- PASS' "$WORK/devtests.log") passed, $(grep -c '^--- FAIL' "$WORK/devtests.log") failed, $(grep -c '^--- SKIP' "$WORK/devtests.log") skipped"
  fi

  step "Llama-3.2-1B-shaped model (${SHAPE_1B[*]}, 128,256 ids, bf16) and $DOCS documents"
  within 150 "gen-test 1B" || return 1
  local t0=$SECONDS
  timeout "$T" "$BIN/splash" model gen-test --output "$WORK/llama-1b" --arch llama "${SHAPE_1B[@]}" --vocab 128256 \
    --rope-theta 500000 --rope-scaling llama3 --tied --safetensors-dtype BF16 --shards 2 "${ONNX_1B[@]}" \
    --tokenizer testdata/tokenizers/mistral-7b/tokenizer.json --seed 1 2>&1 | tail -n 2
  local rc=${PIPESTATUS[0]}
  echo "== gen-test 1B: exit status $rc ($((SECONDS - t0)) s, $(du -sh "$WORK/llama-1b" 2>/dev/null | cut -f1))"
  ((rc == 0)) || { fail "gen-test 1B" "failed (exit $rc)"; return 1; }
  # gen-test --vocab pads tokenizer.json itself; this only checks it (a no-op then).
  "$PYTHON" "${PEER[@]}" pad-tokenizer "$WORK/llama-1b" 128256 || return 1
  "$BIN/repeatcorpus" -in testdata/cranfield/docs-00000.parquet -n "$DOCS" -shards 4 -out "$WORK/corpus" || return 1
  mkdir -p "$WORK/input" && mv "$WORK"/corpus/*.parquet "$WORK/input/"

  step "splash encode --device $DEVICE (end to end), bf16"
  if [[ -n "$DRY_RUN" ]]; then splash_encode bf16 ""; else splash_encode bf16 bf16; fi
  local bf16_rc=$?

  step "PyTorch peer on the 1B shape: throughput, GEMM ceiling, parity of 32 documents"
  local parity=()
  if ((bf16_rc == 0)) && within 60 "export bf16"; then
    timeout "$T" "$BIN/splash" export --format seismic --input "$WORK/out-bf16" --output "$WORK/splash-bf16.bin" &&
      parity=(--parity "$WORK/splash-bf16.bin")
  fi
  if [[ -n "$peer_ok" ]] && within 200 "peer 1B"; then
    timeout "$T" "$PYTHON" "${PEER[@]}" encode "$WORK/llama-1b" "$WORK/corpus/texts.jsonl" --gemm "${parity[@]}" | tee "$WORK/peer-1b.log"
    rc=${PIPESTATUS[0]}
    echo "== peer 1B: exit status $rc"
    ((rc == 0)) || fail "peer 1B" "failed (exit $rc)"
    local pdps ptflops ceiling
    pdps="$(jfield "$WORK/peer-1b.log" 'peer encode ' docs_per_s)"
    ceiling="$(jfield "$WORK/peer-1b.log" 'peer gemm ' ceiling_tflops)"
    local ptok pdocs ptps
    read -r ptok pdocs ptps < <(jfield "$WORK/peer-1b.log" 'peer encode ' tokens docs tokens_per_s)
    ptflops="$(calc "$ptps * $("$PYTHON" "${PEER[@]}" flops "$WORK/llama-1b/config.json" "$(calc "$ptok / $pdocs")" 2>/dev/null) / 1e12")"
    record "peer 1B torch bf16 SDPA docs/s, model TFLOP/s, peak GPU MiB" "$pdps, $ptflops, $(jfield "$WORK/peer-1b.log" 'peer encode ' peak_gpu_mem_mib)"
    record "torch bf16 GEMM ceiling TFLOP/s" "$ceiling"
    record "parity 1B splash bf16 vs torch bf16 (32 docs)" \
      "$(jfield "$WORK/peer-1b.log" 'peer parity ' top20_overlap_mean top20_overlap_min max_rel_diff_top20) (top-20 overlap mean, min; largest rel. diff)"
    record "goal: splash/torch docs/s >= 1.5" "$(calc "${ENC_bf16_DPS:-0} / $pdps")"
    record "goal: splash bf16 TFLOP/s / ceiling >= 0.40" "$(calc "${ENC_bf16_TFLOPS:-0} / $ceiling")"
  else
    echo "skipped"
  fi

  step "splash encode --device $DEVICE (end to end), fp8"
  splash_encode fp8 fp8
  if [[ -n "${ENC_fp8_DPS:-}" ]]; then
    record "goal: fp8/bf16 docs/s >= 1.6 (1B)" "$(calc "$ENC_fp8_DPS / ${ENC_bf16_DPS:-0}")"
    if within 30 "export fp8" && timeout "$T" "$BIN/splash" export --format seismic --input "$WORK/out-fp8" --output "$WORK/splash-fp8.bin"; then
      record "top-20 overlap fp8 vs bf16, splash (goal >= 0.95)" \
        "$("$PYTHON" "${PEER[@]}" overlap "$WORK/splash-fp8.bin" "$WORK/splash-bf16.bin" --docs 32 2>&1 | tail -n 1)"
    fi
  fi

  step "8B-shaped model (${SHAPE_8B[*]}, 128,256 ids): one batch of $BATCH_DOCS documents of 512 tokens"
  if ! within 240 "8B batch"; then return 0; fi
  if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
    echo "skipped: $PYTHON cannot import torch (gen-weights needs it)"
    record "8B batch" "skipped: no torch"
    return 0
  fi
  timeout "$T" "$PYTHON" "${PEER[@]}" gen-weights "$WORK/llama-1b" "$WORK/llama-8b" "${SHAPE_8B[@]}" --vocab 128256
  rc=$?
  echo "== gen-weights 8B: exit status $rc"
  ((rc == 0)) || { fail "gen-weights 8B" "failed (exit $rc)"; return 1; }
  "$PYTHON" "${PEER[@]}" long-docs "$WORK/corpus/texts.jsonl" "$WORK/long.jsonl" "$BATCH_DOCS" || return 1
  record "8B shape (untied head)" "${SHAPE_8B[*]}$([[ -z "$DRY_RUN" && "$LAYERS_8B" != 32 ]] && echo ' (shortened by LAYERS_8B)')"
  step "splash model bench --device $DEVICE ($BENCH_MODEL), bf16"
  if [[ -n "$DRY_RUN" ]]; then splash_bench bf16 ""; else splash_bench bf16 bf16; fi
  step "splash model bench --device $DEVICE ($BENCH_MODEL), fp8"
  splash_bench fp8 fp8 && record "goal: fp8/bf16 docs/s >= 1.6 (8B batch)" "$(calc "${BENCH_fp8_DPS:-0} / ${BENCH_bf16_DPS:-0}")"
  step "PyTorch peer, 8B shape, the same batch"
  if [[ -n "$peer_ok" ]] && within 180 "peer 8B"; then
    timeout "$T" "$PYTHON" "${PEER[@]}" batch "$WORK/llama-8b" "$WORK/long.jsonl" --docs "$BATCH_DOCS" --length 512 | tee "$WORK/peer-8b.log"
    rc=${PIPESTATUS[0]}
    echo "== peer 8B: exit status $rc"
    ((rc == 0)) || fail "peer 8B" "failed (exit $rc)"
    local p8
    p8="$(jfield "$WORK/peer-8b.log" 'peer batch ' docs_per_s)"
    local p8tps p8tok p8docs
    read -r p8tok p8docs p8tps < <(jfield "$WORK/peer-8b.log" 'peer batch ' tokens docs tokens_per_s)
    record "peer 8B batch torch bf16 docs/s, model TFLOP/s, peak GPU MiB" \
      "$p8, $(calc "$p8tps * $("$PYTHON" "${PEER[@]}" flops "$WORK/llama-8b/config.json" "$(calc "$p8tok / $p8docs")" 2>/dev/null) / 1e12"), $(jfield "$WORK/peer-8b.log" 'peer batch ' peak_gpu_mem_mib)"
    [[ -n "${BENCH_bf16_DPS:-}" ]] && record "goal: splash/torch docs/s >= 1.5 (8B batch)" "$(calc "$BENCH_bf16_DPS / $p8")"
  else
    echo "skipped"
  fi

  step "CSPLADE's variants end to end: --echo and --attention bidirectional, $VARIANT_DOCS documents"
  if within 90 "echo + bidirectional"; then
    "$BIN/repeatcorpus" -in testdata/cranfield/docs-00000.parquet -n "$VARIANT_DOCS" -shards 1 -out "$WORK/small" >/dev/null || return 1
    local extra=(--echo)
    [[ -n "$DRY_RUN" ]] || extra+=(--attention bidirectional)
    timeout "$T" "$BIN/splash" encode --model "$WORK/llama-1b" --input "$WORK/small/docs-00000.parquet" --output "$WORK/out-echo" \
      --device "$DEVICE" "${extra[@]}" --log-format json >"$WORK/encode-echo.json" 2>"$WORK/encode-echo.err"
    rc=$?
    cat "$WORK/encode-echo.json"
    echo "== encode ${extra[*]}: exit status $rc"
    if ((rc == 0)); then
      record "encode 1B ${extra[*]} ($VARIANT_DOCS docs) docs/s, nonzeros" \
        "$(jfield "$WORK/encode-echo.json" '{"summary":"encode"' docs_per_second nonzeros_mean)"
    else
      tail -n 5 "$WORK/encode-echo.err"
      fail "encode 1B ${extra[*]}" "failed (exit $rc)"
    fi
  fi
  return 0
}

# summary prints the table; its status is 1 when run_all stopped early
# (status $1) or a step failed.
summary() {
  local note=""
  (($1 != 0)) && note=", stopped early (status $1)"
  step "summary ($(($(date +%s) - START)) s; $FAILED failed, $SKIPPED skipped for time$note)"
  column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
  (($1 == 0 && FAILED == 0))
}

if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  { run_all; summary $?; } 2>&1 | tee "$OUT/gpu-check-llama.log"
  exit "${PIPESTATUS[0]}"
fi
run_all
summary $?
