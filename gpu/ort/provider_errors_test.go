package ort

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorClassification(t *testing.T) {
	oom := []string{
		"[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running MatMul node. Name:'/bert/encoder/layer.0/attention/self/MatMul' Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:376 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) Failed to allocate memory for requested buffer of size 12884901888",
		"CUDA failure 2: out of memory ; GPU=0 ; hostname=x ; file=cuda_allocator.cc ; line=47 ; expr=cudaMalloc((void**)&p, size);",
		"CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0",
		"Available memory of 1048576 is smaller than requested bytes of 12884901888",
	}
	for _, m := range oom {
		if !outOfMemory(errors.New(m)) {
			t.Errorf("not classified as out of memory: %s", m)
		}
	}
	for _, m := range []string{"Invalid input name: foo", "Got invalid dimensions for input: input_ids", "CUDA failure 700: an illegal memory access was encountered"} {
		if outOfMemory(errors.New(m)) {
			t.Errorf("classified as out of memory: %s", m)
		}
	}
	load := []string{
		"Failed to load library /opt/ort/libonnxruntime_providers_shared.so with error: cannot open shared object file: No such file or directory",
		"libcublasLt.so.12: cannot open shared object file: No such file or directory",
		"CUDA failure 100: no CUDA-capable device is detected ; GPU=0",
		"CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version",
	}
	for _, m := range load {
		if !providerLoadFailure(errors.New(m)) {
			t.Errorf("not classified as a provider load failure: %s", m)
		}
	}
	if providerLoadFailure(errors.New("Load model from x failed: Protobuf parsing failed")) {
		t.Error("a bad model classified as a provider load failure")
	}
	err := providerError("cuda", errors.New("line one\nline two"))
	if !errors.Is(err, ErrProviderUnavailable) || strings.Contains(err.Error(), "line two") {
		t.Errorf("providerError: %v", err)
	}
}
