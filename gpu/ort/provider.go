package ort

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/splash-encode/splash/gpu"
)

// Providers are the execution providers Options.Provider accepts.
var Providers = []string{"cpu", "cuda", "tensorrt"}

// ErrProviderUnavailable marks an execution provider that this ONNX Runtime
// library, or this machine, cannot load: the CPU build of ONNX Runtime (as
// the npm package ships it) has no CUDA provider, and ONNX Runtime's GPU
// build needs the CUDA and cuDNN runtime libraries and an NVIDIA driver. It
// wraps gpu.ErrUnavailable, on which --device auto falls back to the CPU.
var ErrProviderUnavailable error = providerUnavailable{}

// providerUnavailable is ErrProviderUnavailable: its own text, wrapping
// gpu.ErrUnavailable.
type providerUnavailable struct{}

func (providerUnavailable) Error() string { return "execution provider unavailable" }

func (providerUnavailable) Unwrap() error { return gpu.ErrUnavailable }

// gpuProviderHelp says what the CUDA and TensorRT providers need.
const gpuProviderHelp = "it needs ONNX Runtime's GPU build (onnxruntime-linux-x64-gpu-1.30.0: " +
	"libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so beside the library --ort-library names), " +
	"the CUDA 12 and cuDNN 9 libraries on the loader's path and an NVIDIA driver (TensorRT: also " +
	"libonnxruntime_providers_tensorrt.so and TensorRT 10), as the Dockerfile's cuda image has them (docs/GPU.md); " +
	"or encode on the CPU with --device cpu"

func checkProvider(name string) error {
	for _, p := range Providers {
		if name == p || name == "" {
			return nil
		}
	}
	return fmt.Errorf("execution provider %q: want one of %s", name, strings.Join(Providers, ", "))
}

func isGPU(provider string) bool { return provider == "cuda" || provider == "tensorrt" }

// providerError wraps a failure to load a GPU provider with what it needs.
func providerError(provider string, err error) error {
	return fmt.Errorf("%w: ONNX Runtime cannot load its %s execution provider: %v; %s",
		ErrProviderUnavailable, provider, ortMessage(err), gpuProviderHelp)
}

// ortStatusPrefix is the source location and status code ONNX Runtime puts
// before its messages ("/onnxruntime_src/...cc:1988 ... [ONNXRuntimeError] : 1 : FAIL : ").
var ortStatusPrefix = regexp.MustCompile(`^.*\[ONNXRuntimeError\] : \d+ : \w+ : `)

// ortMessage is the first line of an ONNX Runtime error without the source
// location of the C++ code that raised it.
func ortMessage(err error) string {
	return ortStatusPrefix.ReplaceAllString(firstLine(err.Error()), "")
}

// providerLoadFailure tells a session error caused by a provider's shared
// libraries (the provider itself, CUDA, cuDNN, TensorRT, the driver) from
// one caused by the model.
func providerLoadFailure(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		"failed to load library", "failed to load shared library", "cannot open shared object",
		"providers_cuda", "providers_tensorrt", "providers_shared", "cuda driver", "no cuda-capable device",
		"cudaerrornodevice", "cudaerrorinsufficientdriver", "cuda failure 100", "cuda failure 35",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// outOfMemory tells whether a run failed because the device (or host) could
// not allocate, as ONNX Runtime's CUDA provider, its arena, cuBLAS, cuDNN
// and the CPU provider word it.
func outOfMemory(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		"out of memory", "failed to allocate memory", "cudaerrormemoryallocation", "cuda failure 2:",
		"cublas_status_alloc_failed", "cudnn_status_alloc_failed", "available memory of", "std::bad_alloc",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
