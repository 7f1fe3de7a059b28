// Package gpu is the home of splash's execution engines: gpu/ort runs models
// with ONNX Runtime (CPU now; CUDA and TensorRT execution providers are
// chosen by configuration), and gpu/cuda discovers NVIDIA devices through
// gorgonia.org/cu under the `cuda` build tag. Each implements or feeds
// encode.Backend; only cmd/splash wires them to the rest.
package gpu
