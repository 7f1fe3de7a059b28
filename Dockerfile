# splash container images. Two targets:
#
#   cuda (the default, last stage): NVIDIA CUDA 12.8 runtime with cuDNN 9 and
#        ONNX Runtime's GPU build (CUDA execution provider).
#   cpu: Debian slim with the CPU ONNX Runtime library that scripts/setup.sh
#        takes from the npm package onnxruntime-node.
#
# Both carry the same splash binary, built once in the build stage. Its CUDA
# support needs no CUDA header or library to build: it loads the driver
# (libcuda.so.1, from the host) and cuBLAS (from the cuda image's base) at
# run time, and the cpu image, which has neither, encodes on the CPU.
#
# Build (BuildKit, the default builder of Docker 23 and later):
#
#   docker build --target cpu -t splash:cpu \
#     --build-arg SPLASH_VERSION=$(git describe --tags --always --dirty) .
#
#   docker build -t splash:cuda \
#     --build-arg SPLASH_VERSION=$(git describe --tags --always --dirty) \
#     --build-arg ORT_GPU_SHA256=<sha256 of onnxruntime-linux-x64-gpu-1.30.0.tgz> .
#
# Without SPLASH_VERSION the binary reports 0.1.0-dev.
#
# The cuda target needs ONNX Runtime's GPU release archive,
# onnxruntime-linux-x64-gpu-1.30.0.tgz from the GitHub releases of
# microsoft/onnxruntime (no package registry that the project's build machines
# reach provides it: the npm package ships no CUDA provider, and its install
# script fetches one from NuGet). Either the build downloads it from
# ORT_GPU_URL, or, where that host cannot be reached, download it elsewhere
# and hand the folder holding it to the build as a named context, which
# replaces the download stage (no network needed then):
#
#   docker build -t splash:cuda \
#     --build-context ort-gpu-archive=/path/to/folder-with-the-tgz \
#     --build-arg ORT_GPU_SHA256=<sha256> .
#
# Either way the archive is checked against ORT_GPU_SHA256, which has no
# default: take it from the release page (GitHub lists each asset's sha256
# digest) and check it once yourself. docs/GPU.md has the whole GPU set-up.
#
# Run (models and data mounted; the images run as uid 65532). The cuda image
# needs a GPU (--gpus, NVIDIA container toolkit); use the cpu image elsewhere.
#
#   docker run --rm -v $PWD/models:/models -v $PWD/data:/data splash:cpu \
#     encode --model /models/splade --input /data/in --output /data/out
#   docker run --rm --gpus all -v $PWD/models:/models -v $PWD/data:/data splash:cuda \
#     encode --model /models/splade --input /data/in --output /data/out
#
# tests: deploy/dockerfile_test.go parses this file and checks the stage
# names, the pinned base images, the non-root users, the entrypoints, the
# environment of both targets, and that the build sets splash's version
# (-ldflags "-X main.version=${SPLASH_VERSION}", a build ARG).

ARG ORT_GPU_VERSION=1.30.0

# ---------------------------------------------------------------------------
# build: the splash binary of both targets. nodejs/npm for scripts/setup.sh,
# which installs the ONNX Runtime library from npm (sha256-checked) into
# third_party/onnxruntime/. The CUDA kernels are embedded as PTX that the
# driver compiles at run time, so no CUDA toolkit is needed here.
# The Go image matches go.mod's go line exactly (the image sets
# GOTOOLCHAIN=local, so an older Go would refuse the module).
FROM golang:1.26.8-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version splash reports (splash --version, shard metadata): the build
# context has no .git, so pass it:
#   --build-arg SPLASH_VERSION=$(git describe --tags --always --dirty)
ARG SPLASH_VERSION=0.1.0-dev
RUN bash scripts/setup.sh \
 && CGO_ENABLED=1 go build -trimpath -ldflags "-X main.version=${SPLASH_VERSION}" -o /out/splash ./cmd/splash

# ---------------------------------------------------------------------------
# ort-gpu-archive: downloads the ONNX Runtime GPU release archive. Replaced
# wholesale by `--build-context ort-gpu-archive=DIR` (DIR holding
# onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}.tgz at its top).
FROM debian:bookworm-slim AS ort-gpu-archive
ARG ORT_GPU_VERSION
ARG ORT_GPU_URL=https://github.com/microsoft/onnxruntime/releases/download/v${ORT_GPU_VERSION}/onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}.tgz
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && curl -fsSL --retry 3 -o "/onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}.tgz" "${ORT_GPU_URL}"

# ort-gpu: checks the archive's sha256 and keeps its lib/ folder:
# libonnxruntime.so.1 (and its versioned name), libonnxruntime_providers_shared.so,
# libonnxruntime_providers_cuda.so and libonnxruntime_providers_tensorrt.so.
# ONNX Runtime loads the provider libraries from the folder of
# libonnxruntime.so.1, so they stay together.
FROM debian:bookworm-slim AS ort-gpu
ARG ORT_GPU_VERSION
ARG ORT_GPU_SHA256
COPY --from=ort-gpu-archive /onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}.tgz /tmp/ort-gpu.tgz
RUN if [ -z "${ORT_GPU_SHA256}" ]; then \
      echo "ORT_GPU_SHA256 is not set: pass --build-arg ORT_GPU_SHA256=<sha256 of onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}.tgz> (see docs/GPU.md)" >&2; \
      exit 1; \
    fi \
 && echo "${ORT_GPU_SHA256}  /tmp/ort-gpu.tgz" | sha256sum -c - \
 && mkdir -p /tmp/ort /opt/onnxruntime/lib \
 && tar -xzf /tmp/ort-gpu.tgz -C /tmp/ort --strip-components=1 \
 && cp -a /tmp/ort/lib/libonnxruntime*.so* /opt/onnxruntime/lib/ \
 && { cp -a /tmp/ort/LICENSE /tmp/ort/ThirdPartyNotices.txt /opt/onnxruntime/ 2>/dev/null || true; } \
 && { test -e /opt/onnxruntime/lib/libonnxruntime.so.1 \
      || ln -s "libonnxruntime.so.${ORT_GPU_VERSION}" /opt/onnxruntime/lib/libonnxruntime.so.1; } \
 && test -e /opt/onnxruntime/lib/libonnxruntime.so.1 \
 && test -e /opt/onnxruntime/lib/libonnxruntime_providers_shared.so \
 && test -e /opt/onnxruntime/lib/libonnxruntime_providers_cuda.so \
 && rm -rf /tmp/ort /tmp/ort-gpu.tgz

# ---------------------------------------------------------------------------
# cpu target.
FROM debian:bookworm-slim AS cpu
RUN groupadd --gid 65532 splash \
 && useradd --uid 65532 --gid 65532 --create-home splash
COPY --from=build /out/splash /usr/local/bin/splash
COPY --from=build /src/third_party/onnxruntime/libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
# Licences: ONNX Runtime's (MIT; scripts/setup.sh puts it beside the
# library) next to the library, splash's own (Apache-2.0) and its NOTICE.
COPY --from=build /src/third_party/onnxruntime/LICENSE /usr/local/lib/libonnxruntime.LICENSE
COPY --from=build /src/LICENSE /src/NOTICE /usr/local/share/doc/splash/
ENV ONNXRUNTIME_SHARED_LIBRARY_PATH=/usr/local/lib/libonnxruntime.so.1
USER 65532:65532
WORKDIR /home/splash
ENTRYPOINT ["/usr/local/bin/splash"]

# ---------------------------------------------------------------------------
# cuda target (default). Base image pinned to an exact CUDA release:
# 12.8.1 with cuDNN 9, the "runtime" flavour (cudart, cuBLAS/cuBLASLt, cuFFT,
# cuRAND and cuDNN: what ONNX Runtime's CUDA provider links against; no
# compiler), Ubuntu 24.04. ONNX Runtime 1.30's GPU build targets CUDA 12.x and
# cuDNN 9 (its npm package names the provider flavour "cuda12"). Host driver:
# R570 or newer runs CUDA 12.8 as is; the base image's NVIDIA_REQUIRE_CUDA
# says which older data-centre drivers the container toolkit also accepts
# (the H200 of docs/GPU.md ran 580.159.04). The TensorRT provider library is in
# the image, but TensorRT itself (libnvinfer) is not: --provider tensorrt
# needs an image that adds it. libcuda.so.1 comes from the host driver
# (the NVIDIA container toolkit mounts it when run with --gpus); splash's
# CUDA engine loads it and the base image's cuBLAS (libcublas.so.12) at run
# time.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS cuda
RUN groupadd --gid 65532 splash \
 && useradd --uid 65532 --gid 65532 --create-home splash
COPY --from=ort-gpu /opt/onnxruntime/ /opt/onnxruntime/
COPY --from=build /out/splash /usr/local/bin/splash
COPY --from=build /src/LICENSE /src/NOTICE /usr/local/share/doc/splash/
ENV ONNXRUNTIME_SHARED_LIBRARY_PATH=/opt/onnxruntime/lib/libonnxruntime.so.1 \
    LD_LIBRARY_PATH=/opt/onnxruntime/lib${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 65532:65532
WORKDIR /home/splash
ENTRYPOINT ["/usr/local/bin/splash"]
