//go:build cgo

package ort

import (
	"fmt"
	"strconv"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"
)

// appendProvider adds the GPU execution provider of opts to so; the CPU
// provider needs nothing (ONNX Runtime always has it, and it runs whatever
// the GPU providers do not take).
func appendProvider(so *ortgo.SessionOptions, provider string, gpu GPUOptions, inputs []string) error {
	switch provider {
	case "", "cpu":
		return nil
	case "tensorrt":
		if err := appendTensorRT(so, gpu, inputs); err != nil {
			return err
		}
		// Nodes TensorRT does not take run on CUDA rather than the CPU.
		return appendCUDA(so, gpu, "tensorrt")
	case "cuda":
		return appendCUDA(so, gpu, "cuda")
	}
	return checkProvider(provider)
}

// cudaOptions maps GPUOptions to the CUDA provider's option names.
func cudaOptions(gpu GPUOptions) map[string]string {
	m := map[string]string{
		"device_id": strconv.Itoa(gpu.DeviceID),
		// Grow the arena by what a batch asks for rather than doubling it,
		// so that a batch that does not fit fails without having reserved
		// the rest of the device (the encoder then splits it).
		"arena_extend_strategy":     "kSameAsRequested",
		"cudnn_conv_algo_search":    "DEFAULT",
		"do_copy_in_default_stream": "1",
		// TF32 rounds MatMul inputs to 10 fraction bits: vectors would
		// differ from the CPU's by about 1e-3. splash computes in fp32
		// unless asked.
		"use_tf32": "0",
	}
	if gpu.AllowTF32 {
		m["use_tf32"] = "1"
	}
	if gpu.MemLimit > 0 {
		m["gpu_mem_limit"] = strconv.FormatUint(gpu.MemLimit, 10)
	}
	return m
}

// tensorRTOptions maps GPUOptions to the TensorRT provider's option names.
func tensorRTOptions(gpu GPUOptions, inputs []string) map[string]string {
	m := map[string]string{"device_id": strconv.Itoa(gpu.DeviceID)}
	if gpu.TensorRTFP16 {
		m["trt_fp16_enable"] = "1"
	}
	if gpu.TensorRTCacheDir != "" {
		m["trt_engine_cache_enable"] = "1"
		m["trt_engine_cache_path"] = gpu.TensorRTCacheDir
		m["trt_timing_cache_enable"] = "1"
		m["trt_timing_cache_path"] = gpu.TensorRTCacheDir
	}
	if gpu.MemLimit > 0 {
		m["trt_max_workspace_size"] = strconv.FormatUint(gpu.MemLimit, 10)
	}
	if gpu.MaxBatch > 0 && gpu.MaxSeqLen > 0 {
		// One profile covering every shape the batcher forms: without it
		// TensorRT rebuilds its engine whenever a batch exceeds the shapes
		// seen so far.
		shapes := func(b, t int) string {
			parts := make([]string, len(inputs))
			for i, name := range inputs {
				parts[i] = fmt.Sprintf("%s:%dx%d", name, b, t)
			}
			return strings.Join(parts, ",")
		}
		m["trt_profile_min_shapes"] = shapes(1, 1)
		m["trt_profile_opt_shapes"] = shapes(max(1, gpu.MaxBatch/4), gpu.MaxSeqLen)
		m["trt_profile_max_shapes"] = shapes(gpu.MaxBatch, gpu.MaxSeqLen)
	}
	return m
}

func appendCUDA(so *ortgo.SessionOptions, gpu GPUOptions, provider string) error {
	o, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return providerError(provider, err)
	}
	defer o.Destroy()
	if err := o.Update(cudaOptions(gpu)); err != nil {
		return providerError(provider, err)
	}
	if err := so.AppendExecutionProviderCUDA(o); err != nil {
		return providerError(provider, err)
	}
	return nil
}

func appendTensorRT(so *ortgo.SessionOptions, gpu GPUOptions, inputs []string) error {
	o, err := ortgo.NewTensorRTProviderOptions()
	if err != nil {
		return providerError("tensorrt", err)
	}
	defer o.Destroy()
	if err := o.Update(tensorRTOptions(gpu, inputs)); err != nil {
		return providerError("tensorrt", err)
	}
	if err := so.AppendExecutionProviderTensorRT(o); err != nil {
		return providerError("tensorrt", err)
	}
	return nil
}
