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

# OpenBLAS core type for the torch peer. Debian's PyTorch does its float32
# GEMMs through libblas.so.3 = OpenBLAS 0.3.21, a DYNAMIC_ARCH build that
# picks its kernels (the "core") from the CPU's family and model at load.
# A CPU model that this OpenBLAS does not know can land on a weaker core
# than its instructions allow (Prescott, the generic SSE3 one, is 3-4x
# slower at SGEMM than the AVX-512 one), and the peer would then run slower
# than its users, on a newer OpenBLAS or a known CPU, would see. So:
#
# openblas_coretype PY: asks PY's torch which OpenBLAS core it loads, and
# compares that with the best core the CPU's flags (/proc/cpuinfo) support:
# Cooperlake (AVX-512 with BF16), SkylakeX (AVX-512 F/BW/VL/DQ), Haswell (AVX2
# and FMA), Sandybridge (AVX). Only when OpenBLAS's own choice is of a lower
# class (e.g. Haswell on an AVX-512 CPU, or Prescott) does it set
# OPENBLAS_CORETYPE to the best one. (For float32, Cooperlake and SkylakeX
# share the SGEMM kernels; Cooperlake adds BF16 ones, so OpenBLAS choosing
# either on an AVX-512 CPU is left alone.) An OPENBLAS_CORETYPE already in
# the environment is kept as it is. (OpenBLAS 0.3.21 does not take the name
# Cooperlake: it answers "Core not found" under OPENBLAS_VERBOSE=1 and then
# picks by the CPU's flags itself, which gives Cooperlake on a BF16 CPU, so
# the setting works all the same; the core it actually loads is what is
# reported.) Sets, and logs:
#   OPENBLAS_CORETYPE_SET  what to give the peer as OPENBLAS_CORETYPE ("" for
#                          nothing beyond the environment);
#   TORCH_ENV              env(1) words that run a command that way;
#   OPENBLAS_CORE_INFO     one line for machine.txt: the core it loads, and why.
# Never fails: when torch or OpenBLAS cannot be asked, it leaves things as they are.
openblas_coretype() {
  local py="$1" own core best flags
  OPENBLAS_CORETYPE_SET=""
  TORCH_ENV=(env)
  best="$(openblas_cpu_best)"
  flags="$(openblas_cpu_flags)"
  own="$(env -u OPENBLAS_CORETYPE "$py" -c "$OPENBLAS_CORENAME_PY" 2>/dev/null || true)"
  if [[ -n "${OPENBLAS_CORETYPE:-}" ]]; then
    core="$("$py" -c "$OPENBLAS_CORENAME_PY" 2>/dev/null || true)"
    OPENBLAS_CORE_INFO="core ${core:-unknown}, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE from the environment (OpenBLAS's own choice: ${own:-unknown}; CPU: ${flags:-no AVX})"
  elif [[ -z "$own" ]]; then
    OPENBLAS_CORE_INFO="unknown: $py's torch does not load a DYNAMIC_ARCH OpenBLAS as libblas.so.3 (OPENBLAS_CORETYPE left unset)"
  elif [[ -n "$best" ]] && (($(openblas_core_class "$own") < $(openblas_core_class "$best"))); then
    OPENBLAS_CORETYPE_SET="$best"
    TORCH_ENV=(env "OPENBLAS_CORETYPE=$best")
    core="$(OPENBLAS_CORETYPE="$best" "$py" -c "$OPENBLAS_CORENAME_PY" 2>/dev/null || true)"
    OPENBLAS_CORE_INFO="core ${core:-unknown}, OPENBLAS_CORETYPE=$best set by bench: OpenBLAS's own choice was $own (CPU: $flags)"
  else
    OPENBLAS_CORE_INFO="core $own, OpenBLAS's own choice (CPU: ${flags:-no AVX}; OPENBLAS_CORETYPE left unset)"
  fi
  printf 'bench: torch peer OpenBLAS: %s\n' "$OPENBLAS_CORE_INFO" >&2
}

# The core name that libblas.so.3 (loaded by torch) runs with; prints nothing
# when it is not OpenBLAS.
OPENBLAS_CORENAME_PY='
import ctypes, torch  # torch loads libblas.so.3; CDLL then returns that same library
try:
    f = ctypes.CDLL("libblas.so.3").openblas_get_corename
except (OSError, AttributeError):
    raise SystemExit(0)
f.restype = ctypes.c_char_p
print(f().decode())'

# openblas_cpu_flags: the CPU flags that decide the core, as /proc/cpuinfo has
# them (the kernel drops those the OS does not enable).
openblas_cpu_flags() {
  local f out=()
  local have=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  for f in avx512_bf16 avx512f avx512bw avx512vl avx512dq avx2 fma avx; do
    [[ "$have" == *" $f "* ]] && out+=("$f")
  done
  echo "${out[*]}"
}

# openblas_cpu_best: the best OpenBLAS 0.3.21 core those flags allow ("" when
# none is better than the generic ones).
openblas_cpu_best() {
  local f=" $(openblas_cpu_flags) "
  if [[ "$f" == *" avx512f "* && "$f" == *" avx512bw "* && "$f" == *" avx512vl "* && "$f" == *" avx512dq "* ]]; then
    if [[ "$f" == *" avx512_bf16 "* ]]; then echo Cooperlake; else echo SkylakeX; fi
  elif [[ "$f" == *" avx2 "* && "$f" == *" fma "* ]]; then echo Haswell
  elif [[ "$f" == *" avx "* ]]; then echo Sandybridge
  fi
}

# openblas_core_class NAME: the instruction class of an OpenBLAS core, 1
# (SSE: Prescott, Nehalem, Core2, Barcelona, ...) to 4 (AVX-512).
openblas_core_class() {
  case "${1,,}" in
    skylakex | cooperlake | sapphirerapids) echo 4 ;;
    haswell | zen) echo 3 ;;
    sandybridge | bulldozer | piledriver | steamroller | excavator) echo 2 ;;
    *) echo 1 ;;
  esac
}
