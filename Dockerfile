# splash container image (CPU build with ONNX Runtime from the npm package
# onnxruntime-node, as scripts/setup.sh installs it). The CUDA image with
# ONNX Runtime GPU comes with the GPU issue.
#
#   docker build -t splash .
#   docker run --rm -v $PWD/models:/models -v $PWD/data:/data splash \
#     encode --model /models/splade --input /data/in --output /data/out
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN bash scripts/setup.sh && CGO_ENABLED=1 go build -trimpath -o /out/splash ./cmd/splash

FROM debian:bookworm-slim
RUN useradd --uid 65532 --create-home splash
COPY --from=build /out/splash /usr/local/bin/splash
COPY --from=build /src/third_party/onnxruntime/libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
ENV ONNXRUNTIME_SHARED_LIBRARY_PATH=/usr/local/lib/libonnxruntime.so.1
USER 65532
ENTRYPOINT ["/usr/local/bin/splash"]
