# lib.sh holds what scripts/gpu-check.sh and scripts/gpu-check-llama.sh
# share on the GPU machine (no Go, no network): timestamped step headers,
# unpacking the binaries that scripts/gpu/prepare.sh built, finding cuBLAS,
# and sampling the GPU's memory while a step runs. Source it from the
# repository root; it sets no shell options of its own.

# libcuda.so.1 comes from the driver; these are where containers and Debian put it.
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# step prints a step header with the UTC time.
step() { echo; echo "== $(date -u +%H:%M:%S) $*"; }

# gpu_unpack unpacks bin/*.xz (splash, cuda.test, repeatcorpus, ONNX
# Runtime) and puts ONNX Runtime where splash looks for it.
gpu_unpack() {
  local f
  for f in bin/*.xz; do
    xz -dkf "$f" || { echo "cannot unpack $f: run scripts/gpu/prepare.sh first"; return 1; }
  done
  chmod +x bin/splash bin/cuda.test bin/repeatcorpus
  mkdir -p third_party/onnxruntime
  cp -f bin/onnxruntime third_party/onnxruntime/libonnxruntime.so.1
}

# gpu_find_cublas sets SPLASH_CUBLAS (and the loader's path) to the first
# libcublas.so.13, .12 or .11 on the disk, e.g. NVIDIA's cuBLAS wheel inside
# a Python venv, unless SPLASH_CUBLAS is set already, and SPLASH_CUBLASLT to
# the libcublasLt of the same version beside it; it prints what it uses.
gpu_find_cublas() {
  if [[ -z "${SPLASH_CUBLAS:-}" ]]; then
    local lib v
    for v in 13 12 11; do
      lib="$(find / -xdev -name "libcublas.so.$v" -not -path '/proc/*' 2>/dev/null | head -n 1)"
      [[ -n "$lib" ]] && break
    done
    if [[ -n "$lib" ]]; then
      export SPLASH_CUBLAS="$lib"
      export LD_LIBRARY_PATH="$(dirname "$lib"):$LD_LIBRARY_PATH"
      # cuBLASLt (the fp8 GEMMs) ships beside cuBLAS, in the wheel too.
      if [[ -z "${SPLASH_CUBLASLT:-}" && -e "$(dirname "$lib")/libcublasLt.so.$v" ]]; then
        export SPLASH_CUBLASLT="$(dirname "$lib")/libcublasLt.so.$v"
      fi
    fi
  fi
  echo "cuBLAS: ${SPLASH_CUBLAS:-not found on disk: the dynamic loader searches its path}"
  echo "cuBLASLt: ${SPLASH_CUBLASLT:-not set: the dynamic loader searches its path}"
}

# gpu_mem_start FILE samples the GPU's used memory (MiB) every 100 ms into
# FILE until gpu_mem_stop; GPU_MEM_BASE is the figure before the step.
gpu_mem_start() {
  GPU_MEM_FILE="$1"
  GPU_MEM_BASE="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -n 1)"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$GPU_MEM_FILE" 2>/dev/null &
  GPU_MEM_POLLER=$!
}

# gpu_mem_stop stops the sampler and sets GPU_MEM_PEAK (MiB, "?" when
# nothing was sampled).
gpu_mem_stop() {
  kill "$GPU_MEM_POLLER" 2>/dev/null
  wait "$GPU_MEM_POLLER" 2>/dev/null
  GPU_MEM_PEAK="$(sort -n "$GPU_MEM_FILE" 2>/dev/null | tail -n 1)"
  GPU_MEM_PEAK="${GPU_MEM_PEAK:-?}"
}
