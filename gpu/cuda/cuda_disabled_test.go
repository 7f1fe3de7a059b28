//go:build !cuda

package cuda

import (
	"errors"
	"strings"
	"testing"
)

func TestDisabledBuildSaysHowToEnable(t *testing.T) {
	_, err := Devices()
	if !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "-tags cuda") {
		t.Fatalf("Devices() error = %v, want ErrDisabled naming -tags cuda", err)
	}
}
