//go:build cgo

package ort

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
)

// TestGPUProvidersReportTheirLoadError opens a model with the CUDA and
// TensorRT providers. The ONNX Runtime library of these machines (the npm
// package's CPU build) has neither, and no machine here has CUDA: the open
// must fail with ErrProviderUnavailable, name the provider and say what it
// needs and how to use the CPU instead. Where the GPU build of ONNX Runtime
// and a GPU are present, the session must open and pool as on the CPU.
func TestGPUProvidersReportTheirLoadError(t *testing.T) {
	requireLibrary(t)
	table := [][]float32{{0.5, -1, 2}, {1.5, 0.25, -3}, {-0.5, 4, 1}}
	dir := writeModel(t, lookupModel(t, 14, table, false))
	ctx := context.Background()
	cpu, err := Open(ctx, dir, Options{Pooling: encode.PoolMax})
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	batch := encode.NewBatch([][]int32{{0, 2, 1}, {1, 1}}, 0)
	want := make([]float32, batch.Size*3)
	if err := cpu.Encode(ctx, batch, want); err != nil {
		t.Fatal(err)
	}
	for _, provider := range []string{"cuda", "tensorrt"} {
		gpu := GPUOptions{DeviceID: 0, MemLimit: 1 << 30, TensorRTFP16: true, TensorRTCacheDir: t.TempDir(), MaxBatch: 8, MaxSeqLen: 16}
		b, err := Open(ctx, dir, Options{Pooling: encode.PoolMax, Provider: provider, GPU: gpu})
		if err == nil {
			got := make([]float32, len(want))
			if err := b.Encode(ctx, batch, got); err != nil {
				t.Fatalf("%s: %v", provider, err)
			}
			for i := range got {
				if d := got[i] - want[i]; d > 1e-6 || d < -1e-6 {
					t.Errorf("%s: pooled[%d] = %v, CPU %v", provider, i, got[i], want[i])
				}
			}
			b.Close()
			t.Logf("%s provider loaded and agrees with the CPU", provider)
			continue
		}
		if !errors.Is(err, ErrProviderUnavailable) {
			t.Fatalf("%s: error %v does not wrap ErrProviderUnavailable", provider, err)
		}
		for _, want := range []string{provider + " execution provider", "onnxruntime-linux-x64-gpu", "--device cpu", "libonnxruntime_providers_"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not mention %q:\n%v", provider, want, err)
			}
		}
		t.Logf("%s: %v", provider, err)
	}
}

func TestUnknownProvider(t *testing.T) {
	_, err := Open(context.Background(), t.TempDir(), Options{Provider: "rocm"})
	if err == nil || !strings.Contains(err.Error(), `"rocm"`) || !strings.Contains(err.Error(), "cpu, cuda, tensorrt") {
		t.Fatalf("error %v, want one naming the provider and the choices", err)
	}
}

func TestProviderOptionMaps(t *testing.T) {
	c := cudaOptions(GPUOptions{DeviceID: 3, MemLimit: 8 << 30})
	if c["device_id"] != "3" || c["gpu_mem_limit"] != "8589934592" || c["arena_extend_strategy"] != "kSameAsRequested" {
		t.Errorf("cuda options %v", c)
	}
	if c["use_tf32"] != "0" || cudaOptions(GPUOptions{AllowTF32: true})["use_tf32"] != "1" {
		t.Errorf("TF32 must be off unless asked: %v", c)
	}
	if _, ok := cudaOptions(GPUOptions{})["gpu_mem_limit"]; ok {
		t.Error("no memory limit asked, but gpu_mem_limit set")
	}
	inputs := []string{"input_ids", "attention_mask", "token_type_ids"}
	r := tensorRTOptions(GPUOptions{DeviceID: 1, TensorRTFP16: true, TensorRTCacheDir: "/cache", MaxBatch: 64, MaxSeqLen: 512}, inputs)
	want := map[string]string{
		"device_id": "1", "trt_fp16_enable": "1", "trt_engine_cache_enable": "1", "trt_engine_cache_path": "/cache",
		"trt_timing_cache_enable": "1", "trt_timing_cache_path": "/cache",
		"trt_profile_min_shapes": "input_ids:1x1,attention_mask:1x1,token_type_ids:1x1",
		"trt_profile_opt_shapes": "input_ids:16x512,attention_mask:16x512,token_type_ids:16x512",
		"trt_profile_max_shapes": "input_ids:64x512,attention_mask:64x512,token_type_ids:64x512",
	}
	if len(r) != len(want) {
		t.Errorf("tensorrt options %v, want %v", r, want)
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("tensorrt %s = %q, want %q", k, r[k], v)
		}
	}
	if bare := tensorRTOptions(GPUOptions{}, inputs); len(bare) != 1 {
		t.Errorf("default tensorrt options %v, want only device_id", bare)
	}
}
