// Package gpu is splash's backend registry: it turns a --device selection
// and the engine settings into encode.Backends, and is all that cmd/ knows of
// the engines.
//
//   - Registry: engines register themselves by name from their init
//     functions (gpu/ort registers "ort", ONNX Runtime), and gpu/cuda
//     registers the Driver (device listing through the CUDA driver, the
//     check of splash's own kernels). gpu/engines links every engine into
//     a binary; cmd/splash imports it and never an engine directly. Tests
//     build their own Registry with stand-in engines.
//   - Open: one CPU backend, or one backend per selected GPU, each wrapped
//     to split batches that run out of device memory. --device auto falls
//     back to the CPU with exactly one warning when no GPU is found or the
//     engine cannot run on it (ErrUnavailable); --device cuda fails instead.
//   - Discover: the visible NVIDIA GPUs, from the CUDA driver (loaded at
//     run time), else from nvidia-smi and CUDA_VISIBLE_DEVICES.
//     ParseDevice and Selection read --device.
//   - BatchTokens: the batch token budget a device's free memory holds for
//     a model (ModelShape).
//
// gpu imports encode and nothing else of the project; gpu/ort and gpu/cuda
// import gpu, not the other way round.
package gpu
