// Package cuda discovers NVIDIA GPUs and runs splash's own kernels (package
// kernels: masked SPLADE pooling and sparsification into CSR) through
// gorgonia.org/cu. It registers itself with package gpu as the Driver
// (Devices lists gpu.Devices; SelfCheck checks the kernels for `splash
// selftest`); package gpu does not import it.
//
// An Engine holds one device's primary context, the loaded PTX modules and
// device buffers that are reused (and grown) across calls. PoolMax and
// PoolSum return pooled [B][V] rows; Sparsify turns pooled rows into CSR
// (offsets, ascending term ids, weights); PoolSparsify does both, for an
// encode.Pooling, with the pooled rows kept on the device, so only the
// non-zeros cross PCIe. Results
// equal the pure-Go twins in package kernels: sparsification exactly,
// pooling up to CUDA's log1pf (at most 1 ulp).
//
// gorgonia.org/cu needs the CUDA headers and libcuda to build
// (scripts/install-cuda-toolkit.sh installs Debian's toolkit) and its init
// exits the process when no GPU is present, so it is imported only by files
// with the `cuda` build tag; builds without the tag get the twin in
// cuda_disabled.go, whose error (ErrDisabled, which wraps gpu.ErrNoDriver:
// discovery then asks nvidia-smi) says how to enable it. The cuda-tagged
// tests therefore run only on a GPU machine: build them with
// `go test -c -tags cuda -o bin/cuda.test ./gpu/cuda` and run
// scripts/gpu-check.sh there.
package cuda
