package ort

import (
	"errors"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// TestEngineIsRegistered checks that importing the package registers ONNX
// Runtime with package gpu's default registry as its default engine, in
// builds with and without cgo.
func TestEngineIsRegistered(t *testing.T) {
	e, err := gpu.Default().Engine("")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.(Engine); !ok || e.Name() != EngineName || EngineName != gpu.DefaultEngine {
		t.Errorf("default engine %T named %q, want ort.Engine named %q", e, e.Name(), gpu.DefaultEngine)
	}
}

// TestSentinelsMatchTheirGPUAndEncodeTwins checks that callers outside the
// package can classify this package's errors: an unavailable provider as
// gpu.ErrUnavailable, a bad model as encode.ErrBadModel; the texts stay.
func TestSentinelsMatchTheirGPUAndEncodeTwins(t *testing.T) {
	if !errors.Is(ErrProviderUnavailable, gpu.ErrUnavailable) || ErrProviderUnavailable.Error() != "execution provider unavailable" {
		t.Errorf("ErrProviderUnavailable %q does not match gpu.ErrUnavailable", ErrProviderUnavailable)
	}
	if err := providerError("cuda", errors.New("no library")); !errors.Is(err, ErrProviderUnavailable) || !errors.Is(err, gpu.ErrUnavailable) {
		t.Errorf("providerError %v matches neither ErrProviderUnavailable nor gpu.ErrUnavailable", err)
	}
	if !errors.Is(ErrBadModel, encode.ErrBadModel) || ErrBadModel.Error() != "unsupported model" {
		t.Errorf("ErrBadModel %q does not match encode.ErrBadModel", ErrBadModel)
	}
	if _, _, err := AppendPooling([]byte{0xff}, "logits", encode.PoolMax); !errors.Is(err, encode.ErrBadModel) {
		t.Errorf("a bad model's error %v does not match encode.ErrBadModel", err)
	}
}
