package sys

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCUBLASLtFromEnv(t *testing.T) {
	if !haveCgo {
		t.Setenv(CUBLASLtEnv, "")
		if _, err := LoadCUBLASLt(); !errors.Is(err, ErrNoCgo) {
			t.Fatalf("without cgo: %v, want ErrNoCgo", err)
		}
		return
	}
	missing := filepath.Join(t.TempDir(), "libcublasLt.so.99")
	t.Setenv(CUBLASLtEnv, missing)
	_, err := LoadCUBLASLt()
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "$SPLASH_CUBLASLT") {
		t.Fatalf("missing file: %v, want ErrNotFound naming %s and $SPLASH_CUBLASLT", err, missing)
	}
	if strings.Contains(err.Error(), "libcublasLt.so.12") {
		t.Errorf("with $SPLASH_CUBLASLT set, only that file is tried: %v", err)
	}
	// A shared library that is not cuBLASLt: found, lacking the entry points.
	t.Setenv(CUBLASLtEnv, "libdl.so.2")
	_, err = LoadCUBLASLt()
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "cublasLtCreate") {
		t.Fatalf("libdl as cuBLASLt: %v, want an error naming the missing cublasLtCreate", err)
	}
}

// TestLoadCUBLASLt loads this machine's cuBLASLt, if any: every entry point
// of the FP8 GEMM must resolve (the names are checked against a real
// library wherever one is installed, GPU or not).
func TestLoadCUBLASLt(t *testing.T) {
	t.Setenv(CUBLASLtEnv, "")
	l, err := LoadCUBLASLt()
	if err != nil {
		t.Logf("LoadCUBLASLt: %v", err)
		if !haveCgo {
			return
		}
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%v, want ErrNotFound", err)
		}
		for _, name := range cublasLtLibraries {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%q does not list %s", err, name)
			}
		}
		return
	}
	t.Logf("cuBLASLt %d at %s", l.Version(), l.Path())
	if l.Version() < 110800 || l.Path() == "" {
		t.Errorf("version %d, path %q: FP8 needs cuBLASLt 11.8 or later", l.Version(), l.Path())
	}
}
