// Package cuda discovers NVIDIA GPUs and runs splash's own kernels (package
// kernels: masked SPLADE pooling and sparsification into CSR) through the
// CUDA driver. It registers itself with package gpu as the Driver (Devices
// lists gpu.Devices; SelfCheck checks the kernels for `splash selftest`);
// package gpu does not import it.
//
// Every build contains it: the driver (libcuda.so.1) and cuBLAS are loaded
// at run time by package gpu/cuda/sys, so building needs no CUDA header or
// library. LoadDriver loads the driver once per process; where it cannot be
// used (no libcuda.so.1, no device, a build without cgo) Devices, Open and
// SelfCheck fail with an error that says why and matches gpu.ErrNoDriver:
// discovery then asks nvidia-smi, and --device auto falls back to the CPU.
//
// An Engine holds one device's primary context, a stream, the loaded PTX
// modules (JIT-compiled by the driver) and device buffers that are reused
// (and grown) across calls. PoolMax and PoolSum return pooled [B][V] rows;
// Sparsify turns pooled rows into CSR (offsets, ascending term ids,
// weights); PoolSparsify does both, for an encode.Pooling, with the pooled
// rows kept on the device, so only the non-zeros cross PCIe. Results equal
// the pure-Go twins in package kernels: sparsification exactly, pooling up
// to CUDA's log1pf (at most 1 ulp).
//
// The model engine ("cuda", backend.go) runs whole models: BERT,
// DistilBERT and RoBERTa masked LMs, and Llama and Mistral causal LMs
// (arch_llama.go: RMSNorm, rotary embeddings with llama3 scaling,
// grouped-query attention, SwiGLU, tied or untied heads) pooled
// SPLADE-style, with causal or bidirectional attention (Attention) and
// echo inputs pooled over their second copy (Input.PoolFrom). Weights come
// from model.safetensors, a sharded checkpoint
// (model.safetensors.index.json) or the ONNX file's initializers;
// MemoryPlan refuses, with the figures, a model and batch that do not fit
// the GPU before anything is uploaded. The forward pass is written once
// against Ops (forward.go, forward_llama.go): TwinOps runs it on the CPU
// with the kernels' Go twins, which the tests hold to the float64 oracles
// of encode/testmodel; DeviceOps runs it with cuBLAS and the PTX kernels.
//
// The kernel tests skip without a usable driver; on a GPU machine build
// them with `go test -c -o bin/cuda.test ./gpu/cuda` and run
// scripts/gpu-check.sh there.
package cuda
