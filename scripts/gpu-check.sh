#!/usr/bin/env bash
# gpu-check.sh is the whole GPU check of splash's CUDA engine, for one call
# on a GPU machine without Go or network (about five minutes on an H100).
# Build its binaries first with scripts/gpu/prepare.sh and carry bin/*.xz
# with the working tree. It needs, on the machine: the NVIDIA driver, a
# cuBLAS 13/12/11 library (it searches the disk, e.g. NVIDIA's cuBLAS
# wheel inside a Python venv, unless $SPLASH_CUBLAS is set), and for the
# peer, python3 with torch and transformers.
#
# Steps, each logged with its exit status:
#   1. the card and driver (nvidia-smi), the cuBLAS found;
#   2. gpu/cuda's device tests: fp32 forward pass vs the float64 oracle
#      (<= 1e-4) on BERT, DistilBERT and RoBERTa; bf16/fp16 top-20 overlap
#      (>= 0.95); the kernels against their Go twins; then the benchmarks
#      (BERT-base forward in bf16, the cuBLAS GEMM ceiling);
#   3. splash selftest --device cuda;
#   4. a BERT-base-sized model (12 x 768, bert-base-uncased's vocabulary,
#      random weights, bf16 safetensors) and 100,000 Cranfield documents
#      repeated with new ids (8 Parquet shards);
#   5. splash encode --device cuda end to end (Parquet in, shards out), with
#      peak GPU memory (nvidia-smi every 100 ms) and host RSS (GNU time);
#   6. splash model bench --device cuda (the engine alone, pre-tokenized);
#   7. the PyTorch peer (scripts/gpu/torch_peer.py): transformers
#      BertForMaskedLM from the same safetensors in bf16 with SDPA,
#      naver/splade pooling, batches of 128 in corpus order and
#      length-sorted, and torch's bf16 GEMM ceiling.
#
# Everything goes to stdout and, when $OUT is set, to $OUT/gpu-check.log.
# $DOCS overrides the corpus size (default 100000).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DOCS="${DOCS:-100000}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# step, gpu_unpack, gpu_find_cublas, gpu_mem_start/stop; the loader's path.
source scripts/gpu/lib.sh

run_all() {
  step "gpu-check on $(uname -n)"
  nvidia-smi || echo "nvidia-smi failed (exit $?)"
  gpu_unpack || return 1
  gpu_find_cublas

  step "device tests (gpu/cuda)"
  (cd gpu/cuda && timeout 240 ../../bin/cuda.test -test.v -test.run 'Device|Kernel|SelfCheck' -test.timeout 230s)
  echo "== device tests: exit status $?"

  step "device benchmarks (gpu/cuda)"
  (cd gpu/cuda && timeout 120 ../../bin/cuda.test -test.run '^$' -test.bench 'Device' -test.benchtime 20x -test.timeout 110s)
  echo "== device benchmarks: exit status $?"

  step "splash selftest --device cuda"
  timeout 180 bin/splash selftest --device cuda
  echo "== selftest: exit status $?"

  step "BERT-base-sized model and $DOCS documents"
  bin/splash model gen-test --output "$WORK/bert-base" --tokenizer testdata/tokenizers/bert-base-uncased/tokenizer.json \
    --layers 12 --hidden 768 --heads 12 --seed 1 --safetensors --safetensors-dtype BF16 --no-onnx || return 1
  bin/repeatcorpus -in testdata/cranfield/docs-00000.parquet -n "$DOCS" -shards 8 -out "$WORK/corpus" || return 1
  mkdir -p "$WORK/input" && mv "$WORK"/corpus/*.parquet "$WORK/input/"

  step "splash encode --device cuda (end to end)"
  gpu_mem_start "$WORK/mem.csv"
  /usr/bin/time -v bin/splash encode --model "$WORK/bert-base" --input "$WORK/input" --output "$WORK/out" \
    --device cuda 2>&1 | grep -v '^time=.*msg="shard done"'
  echo "== encode: exit status ${PIPESTATUS[0]}"
  gpu_mem_stop
  echo "peak GPU memory used: $GPU_MEM_PEAK MiB (before the run: $GPU_MEM_BASE MiB)"

  step "splash model bench --device cuda (the engine alone)"
  timeout 180 bin/splash model bench --model "$WORK/bert-base" --input "$WORK/input" --device cuda --repeats 2
  echo "== bench: exit status $?"

  step "PyTorch peer (naver/splade style)"
  timeout 400 python3 scripts/gpu/torch_peer.py "$WORK/bert-base" "$WORK/corpus/texts.jsonl"
  echo "== peer: exit status $?"
}

if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  run_all 2>&1 | tee "$OUT/gpu-check.log"
  exit "${PIPESTATUS[0]}"
fi
run_all
