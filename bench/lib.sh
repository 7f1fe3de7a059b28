# lib.sh: what bench/run.sh, tune.sh and overhead.sh share. Source it after
# setting BENCH (this folder).

# model_dir NAME: the directory of the generated test model NAME (tiny: the
# tests' 2 layers × hidden 64 × 4 heads; base: BERT-base sized, 12 × 768 × 12).
model_dir() {
  case "$1" in
    tiny) echo "$BENCH/peers/out/models/l2-h64-a4" ;;
    base) echo "$BENCH/peers/out/models/l12-h768-a12" ;;
    *) echo "bench: unknown model $1 (want tiny or base)" >&2; return 2 ;;
  esac
}

# case_shard CORPUS NDOCS: the Parquet shard bench/run.sh wrote for a case;
# fails when it is missing.
case_shard() {
  local shard="$BENCH/out/data/$1-$2/docs.parquet"
  [[ -f "$shard" ]] || { echo "bench: missing $shard: run bench/run.sh first" >&2; return 2; }
  echo "$shard"
}
