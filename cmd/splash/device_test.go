package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu/cuda"
)

// TestDeviceWithoutGPU runs `splash encode` on a machine whose CUDA driver
// cannot be used (CI's: no GPU; the test skips where one works): the default --device auto encodes on the
// CPU and says why in one info line (no warning: CPU-only nightly jobs stay
// quiet), and --device cuda exits with the usage code 2, naming the driver
// library that was looked for and why it cannot be used.
func TestDeviceWithoutGPU(t *testing.T) {
	if _, err := cuda.LoadDriver(); err == nil {
		t.Skip("skipping: this machine has a working CUDA driver")
	}
	bin := buildSplash(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := testmodel.Generate(model, testmodel.Config{Layers: 1, Hidden: 16, Heads: 2, Seed: 1}, "../../testdata/tokenizers/bert-base-uncased/tokenizer.json"); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "in")
	if err := os.MkdirAll(input, 0o755); err != nil {
		t.Fatal(err)
	}
	writeParquetFile(t, filepath.Join(input, "docs.parquet"), []badDoc{{ID: sp("a"), Text: sp("wind tunnel")}, {ID: sp("b"), Text: sp("boundary layer")}})

	r := runSplash(t, bin, nil, nil, "encode", "--model", model, "--input", input, "--output", filepath.Join(dir, "auto"))
	if r.code != 0 {
		t.Fatalf("--device auto: %s", r)
	}
	if n := strings.Count(r.stderr, `msg="--device auto: encoding on the CPU"`); n != 1 || strings.Contains(r.stderr, "level=WARN") {
		t.Errorf("--device auto without a GPU: want one info line and no warning:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "libcuda.so.1") {
		t.Errorf("--device auto: the reason does not name libcuda.so.1:\n%s", r.stderr)
	}

	r = runSplash(t, bin, nil, nil, "encode", "--model", model, "--input", input, "--output", filepath.Join(dir, "cuda"), "--device", "cuda")
	if r.code != 2 || !strings.Contains(r.errText, "--device cuda") || !strings.Contains(r.errText, "libcuda.so.1") {
		t.Errorf("--device cuda without a GPU: want exit 2 naming libcuda.so.1:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "cuda", "docs.parquet")); err == nil {
		t.Error("--device cuda without a GPU wrote a shard")
	}
}

// TestNoCUDALibraryAtBuildTime checks that the binary links no CUDA library
// binding at build time: gorgonia.org/cu (whose init exits the process
// without a GPU and which links libcuda) is not among its dependencies,
// and the run-time binding gpu/cuda/sys is.
func TestNoCUDALibraryAtBuildTime(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "gorgonia.org/cu" || strings.HasPrefix(dep, "gorgonia.org/cu/") {
			t.Errorf("cmd/splash depends on %s", dep)
		}
	}
	if !strings.Contains(string(out), "github.com/splash-encode/splash/gpu/cuda/sys") {
		t.Error("cmd/splash does not link gpu/cuda/sys: the CUDA engine is not in the binary")
	}
}
