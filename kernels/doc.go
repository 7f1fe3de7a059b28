// Package kernels will hold splash's CUDA kernels (.cu sources beside their
// generated PTX, embedded with go:embed) for pooling and sparsification on
// the GPU. It imports nothing of the project. Until those kernels exist,
// pooling runs inside the ONNX graph (see gpu/ort), on every execution
// provider.
package kernels
