//go:build !cuda

package cuda

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestDisabledBuildSaysHowToEnable(t *testing.T) {
	_, err := Devices()
	if !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "-tags cuda") {
		t.Fatalf("Devices() error = %v, want ErrDisabled naming -tags cuda", err)
	}
	if _, err := Open(context.Background(), 0); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Open() error = %v, want ErrDisabled", err)
	}
	var e *Engine
	if _, err := e.PoolMax(nil, nil, 1, 1, 1); !errors.Is(err, ErrDisabled) {
		t.Fatalf("PoolMax() error = %v, want ErrDisabled", err)
	}
	if _, _, _, err := e.PoolSparsify(MaxPooling, nil, nil, 1, 1, 1, 0, 0); !errors.Is(err, ErrDisabled) {
		t.Fatalf("PoolSparsify() error = %v, want ErrDisabled", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
}
