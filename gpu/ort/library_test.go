package ort

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveLibraryNeverLooksInTheModelDirectory plants ONNX Runtime
// libraries in a model directory (beside model.onnx, and in the layout
// setup.sh installs): ResolveLibrary never returns one of them, whether the
// working directory is elsewhere or the model directory itself.
func TestResolveLibraryNeverLooksInTheModelDirectory(t *testing.T) {
	t.Setenv(LibraryEnv, "")
	model := t.TempDir()
	for _, name := range []string{"model.onnx", "libonnxruntime.so", "libonnxruntime.so.1", "lib/libonnxruntime.so.1"} {
		p := filepath.Join(model, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not a library"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	check := func(where string) {
		t.Helper()
		lib, err := ResolveLibrary("")
		if err == nil && strings.HasPrefix(lib, model+string(filepath.Separator)) {
			t.Errorf("working directory %s: ResolveLibrary picked %s from the model directory", where, lib)
		}
		t.Logf("working directory %s: %q, %v", where, lib, err)
	}
	t.Chdir(t.TempDir())
	check("elsewhere")
	t.Chdir(model)
	check("the model directory")
}

// TestResolveLibraryExplicitPathIsAbsolute: a bare file name given as the
// library is the file in the working directory, made absolute so that the
// dynamic loader does not search its library path for that name instead.
func TestResolveLibraryExplicitPathIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "libonnxruntime.so.1"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	lib, err := ResolveLibrary("libonnxruntime.so.1")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(lib) || filepath.Base(lib) != "libonnxruntime.so.1" {
		t.Errorf("ResolveLibrary(bare name) = %q, want an absolute path", lib)
	}
	if _, err := ResolveLibrary("absent.so"); err == nil {
		t.Error("a missing explicit library was accepted")
	}
}
