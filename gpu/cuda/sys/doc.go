// Package sys is splash's run-time binding to the CUDA driver API
// (libcuda.so.1) and cuBLAS, and nothing more: it loads both with dlopen
// when asked, so a binary built without any CUDA header or library carries
// its CUDA support and decides at run time whether it can use it.
//
// The entry points are declared by hand (typedef'd function pointers whose
// prototypes are stable from CUDA 11 to 13), looked up with dlsym (the
// versioned names: cuMemAlloc_v2, cuStreamDestroy_v2, ...) and called
// through small C trampolines. Only the C library's dlopen is linked at
// build time (-ldl); a build without cgo compiles a stand-in whose
// LoadDriver and LoadCUBLAS fail saying so.
//
//   - LoadDriver: libcuda.so.1 and cuInit(0). It fails with an error that
//     wraps ErrNotFound when the library cannot be loaded (naming it and
//     where the loader looked), and with one naming the CUDA error when
//     cuInit fails (no device, driver too old, ...).
//   - Driver: the version, the devices (DeviceInfo), and Retain, which
//     retains a device's primary context (the one the CUDA runtime, and so
//     cuBLAS and ONNX Runtime, use too).
//   - Context: device and pinned host memory, streams, events, and PTX
//     modules JIT-compiled by the driver (LoadModule; a PTX error comes
//     with the JIT compiler's log). Every call makes its context current on
//     the OS thread it runs on, in the same C call, so a Context, and what
//     it made, can be used from any goroutine without runtime.LockOSThread;
//     Bind is there for code that calls other CUDA libraries itself.
//   - Stream: asynchronous copies, memsets and kernel launches
//     (Stream.Launch takes the kernel's arguments as Go values: int32,
//     uint32, float32, int64, uint64, uintptr and DevicePtr).
//   - LoadCUBLAS: $SPLASH_CUBLAS when set (then only that file), else
//     libcublas.so.13, .12 and .11 in that order. CUBLASLib.NewHandle makes
//     a BLAS handle on a stream: GemmEx and GemmStridedBatchedEx with
//     float32 host scalars, the math mode and an optional workspace.
//
// Errors of the driver and of cuBLAS are *Error values carrying the call,
// its arguments and the error's name and description
// ("cuMemAlloc_v2(1073741824 bytes): CUDA_ERROR_OUT_OF_MEMORY: out of
// memory"); those of running out of device memory match ErrOutOfMemory.
//
// The package keeps no state of its own: each LoadDriver and LoadCUBLAS
// call opens the library again (dlopen counts references and returns the
// same handle) and builds its own table of entry points, so callers cache
// the result they hold (gpu/cuda keeps one Driver per process). Libraries
// are never closed: a driver or cuBLAS unloaded under live contexts and
// handles would take the process down with it.
package sys
