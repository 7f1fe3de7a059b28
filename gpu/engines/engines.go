// Package engines links every engine into the binary: importing it for its
// side effects registers ONNX Runtime (gpu/ort, the engine "ort") and the
// CUDA driver binding (gpu/cuda) with package gpu, as
//
//	import _ "github.com/splash-encode/splash/gpu/engines"
//
// in cmd/splash's main.go does. Code that opens models goes through
// package gpu (gpu.Open), never through an engine's package.
package engines

import (
	_ "github.com/splash-encode/splash/gpu/cuda" // the Driver: device discovery and the kernel check
	_ "github.com/splash-encode/splash/gpu/ort"  // the engine "ort": ONNX Runtime
)
