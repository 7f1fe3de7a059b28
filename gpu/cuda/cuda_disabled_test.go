//go:build !cuda

package cuda

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

func TestDisabledBuildSaysHowToEnable(t *testing.T) {
	_, err := Devices()
	if !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "-tags cuda") {
		t.Fatalf("Devices() error = %v, want ErrDisabled naming -tags cuda", err)
	}
	if !errors.Is(err, gpu.ErrNoDriver) {
		t.Fatalf("Devices() error = %v, want one wrapping gpu.ErrNoDriver (discovery then asks nvidia-smi)", err)
	}
	if _, err := Open(context.Background(), 0); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Open() error = %v, want ErrDisabled", err)
	}
	var e *Engine
	if _, err := e.PoolMax(nil, nil, 1, 1, 1); !errors.Is(err, ErrDisabled) {
		t.Fatalf("PoolMax() error = %v, want ErrDisabled", err)
	}
	if _, _, _, err := e.PoolSparsify(encode.PoolMax, nil, nil, 1, 1, 1, 0, 0); !errors.Is(err, ErrDisabled) {
		t.Fatalf("PoolSparsify() error = %v, want ErrDisabled", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
}
