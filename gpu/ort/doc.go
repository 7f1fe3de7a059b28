// Package ort runs SPLADE models with ONNX Runtime. It is the only package of
// splash that imports github.com/yalue/onnxruntime_go (and so the only one
// with cgo besides gpu/cuda). It registers itself with package gpu as the
// engine "ort" (Engine), through which the CLI opens it.
//
// At load time the model's graph is rewritten (AppendPooling) so that the
// SPLADE pooling runs inside ONNX Runtime on whatever execution provider
// holds the model: the [batch, sequence, vocab] logits never reach the host,
// only the pooled [batch, vocab] activations do.
//
// The ONNX Runtime shared library is located by ResolveLibrary:
// $ONNXRUNTIME_SHARED_LIBRARY_PATH, else third_party/onnxruntime installed by
// scripts/setup.sh (searched beside the executable and upwards from the
// working directory), else the system's libonnxruntime.so.1.
//
// ONNX Runtime's environment is process-wide; this package reference-counts
// it so that several backends can coexist and the last Close tears it down.
package ort
