#!/usr/bin/env bash
# demo.sh installs what splash needs, builds it, generates a small test model
# (random weights: its vectors are not meaningful) and encodes the bundled
# sample documents (demo/corpus.jsonl) into an impact shard under demo/out/.
# It needs nothing beside the checkout: the model's vocabulary is the
# bert-base-uncased tokenizer of the repository's test data
# (testdata/tokenizers/bert-base-uncased/, Apache-2.0; see testdata/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
# The version (splash --version, shard metadata): git describe of the checkout.
go build -ldflags "-X main.version=$(bash scripts/version.sh)" -o bin/splash ./cmd/splash

OUT="demo/out"
rm -rf "$OUT/output"
mkdir -p "$OUT"
if [[ ! -f "$OUT/model/model.onnx" ]]; then
  bin/splash model gen-test --output "$OUT/model" --tokenizer testdata/tokenizers/bert-base-uncased/tokenizer.json --layers 2 --hidden 64 --heads 4 --seed 1
fi
go run ./scripts/democorpus demo/corpus.jsonl "$OUT/input/corpus.parquet"

echo "== tokenizing one sentence"
echo '"Learned sparse retrieval with SPLADE."' | bin/splash tokenize --model "$OUT/model"

echo "== encoding demo/corpus.jsonl (24 documents) with a RANDOM-WEIGHT test model"
bin/splash encode --model "$OUT/model" --input "$OUT/input/corpus.parquet" --output "$OUT/output" \
  --title-column title

echo "== output"
ls -l "$OUT/output"
echo "== first rows, top terms (token:impact)"
bin/splash inspect "$OUT/output/corpus.parquet" --rows 2 --terms 8
bin/splash verify "$OUT/output"
