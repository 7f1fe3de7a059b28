package ort

import (
	"context"
	"errors"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// TestEngineRefusesAttention checks that ONNX Runtime, which runs the
// attention its graph was exported with, refuses an --attention setting
// (an auto run that falls back to the CPU must not encode causally when
// bidirectional attention was asked for).
func TestEngineRefusesAttention(t *testing.T) {
	_, err := Engine{}.Open(context.Background(), t.TempDir(), nil, gpu.Options{Attention: "bidirectional"})
	if !errors.Is(err, encode.ErrSettings) {
		t.Fatalf("Open with attention bidirectional: %v, want ErrSettings", err)
	}
}
