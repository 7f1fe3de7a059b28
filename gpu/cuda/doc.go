// Package cuda discovers NVIDIA GPUs and runs splash's own kernels through
// gorgonia.org/cu. That module needs the CUDA headers to build and exits the
// process at start-up when no GPU is present, so it is imported only by files
// with the `cuda` build tag; builds without the tag get the twin in
// cuda_disabled.go, whose error says how to enable it.
package cuda
