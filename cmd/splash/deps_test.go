package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// removedDeps are import path prefixes that splash dropped and that must
// not come back: the ONNX types are generated in encode/onnxpb from ONNX's
// .proto, so the gonnx graph library and what it pulled in (gorgonia's
// tensors, a 2021 Apache Arrow, gogo/protobuf) have no place in the build.
var removedDeps = []string{
	"github.com/advancedclimatesystems/gonnx",
	"gorgonia.org/",
	"github.com/apache/arrow/go/arrow",
	"github.com/gogo/protobuf",
}

// removedDep returns the entry of removedDeps that the import path pkg falls
// under, or "".
func removedDep(pkg string) string {
	for _, d := range removedDeps {
		if pkg == d || strings.HasPrefix(pkg, strings.TrimSuffix(d, "/")+"/") {
			return d
		}
	}
	return ""
}

// TestDepsNoONNXGraphLibrary fails when the splash binary, or any package of
// the module with its tests, depends on one of removedDeps again (the new
// Arrow module, github.com/apache/arrow-go/v18, is a different path and
// fine).
func TestDepsNoONNXGraphLibrary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: go is not on PATH")
	}
	for _, c := range []struct {
		what string
		dir  string
		args []string
	}{
		{"the splash binary", ".", []string{"list", "-deps", "."}},
		// -e: a package of the module that does not build (yet) must not
		// hide the others' imports.
		{"the module's packages and tests", filepath.Join("..", ".."), []string{"list", "-e", "-deps", "-test", "./..."}},
	} {
		cmd := exec.Command("go", c.args...)
		cmd.Dir = c.dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if d := removedDep(pkg); d != "" {
				t.Errorf("%s depends on %s (%s must stay out: ONNX types come from encode/onnxpb)", c.what, pkg, d)
			}
		}
	}
}

func TestDepsRemovedPrefix(t *testing.T) {
	for pkg, want := range map[string]string{
		"github.com/advancedclimatesystems/gonnx/onnx":  "github.com/advancedclimatesystems/gonnx",
		"gorgonia.org/tensor":                           "gorgonia.org/",
		"github.com/apache/arrow/go/arrow/array":        "github.com/apache/arrow/go/arrow",
		"github.com/gogo/protobuf/proto":                "github.com/gogo/protobuf",
		"github.com/apache/arrow-go/v18/arrow":          "",
		"github.com/apache/arrow/go/arrowfoo":           "",
		"google.golang.org/protobuf/proto":              "",
		"github.com/splash-encode/splash/encode/onnxpb": "",
	} {
		if got := removedDep(pkg); got != want {
			t.Errorf("removedDep(%q) = %q, want %q", pkg, got, want)
		}
	}
}
