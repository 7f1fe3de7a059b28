package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/gpu/ort"
)

func requireORT(t *testing.T) {
	t.Helper()
	if err := ort.Usable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// hasNvidiaDriver tells whether this machine may have a GPU; the strict
// no-GPU assertions below hold only where it has none.
func hasNvidiaDriver() bool {
	_, err := exec.LookPath("nvidia-smi")
	return err == nil
}

var tinySelftest = []string{"selftest", "--docs", "24", "--layers", "1", "--hidden", "32", "--heads", "2"}

// TestSelftestAutoWithoutGPU: on a machine without a GPU, --device auto runs
// the CPU path (checked against the float64 oracle), says that no GPU was
// found, and exits 0.
func TestSelftestAutoWithoutGPU(t *testing.T) {
	requireORT(t)
	out, code, err := runCLI(t, "", append(tinySelftest, "--device", "auto")...)
	if code != exitOK {
		t.Fatalf("exit %d (%v)\n%s", code, err, out)
	}
	for _, want := range []string{"cpu:", "cpu vs float64 oracle (16 documents)", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !hasNvidiaDriver() && !strings.Contains(out, "no NVIDIA GPU found") {
		t.Errorf("report does not say that no GPU was found:\n%s", out)
	}

	out, code, err = runCLI(t, "", append(tinySelftest, "--device", "cpu", "--json")...)
	if code != exitOK {
		t.Fatalf("--json: exit %d (%v)", code, err)
	}
	var rep job.SelftestReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if !rep.Pass || !rep.Generated || rep.Docs != 24 || rep.OracleDocs != 16 || rep.OracleMaxDiff > 1e-4 || rep.CPU.DocsPerS <= 0 || len(rep.Devices) != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestSelftestFailures(t *testing.T) {
	requireORT(t)
	if !hasNvidiaDriver() {
		out, code, err := runCLI(t, "", append(tinySelftest, "--device", "cuda")...)
		// The machine lacks what --device cuda asks for: the usage code.
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), "--device cuda: no NVIDIA GPU found") {
			t.Errorf("--device cuda without a GPU: exit %d, error %v\n%s", code, err, out)
		}
	}
	// A tolerance no float32 computation meets: the oracle comparison fails.
	out, code, err := runCLI(t, "", append(tinySelftest, "--device", "cpu", "--tolerance", "1e-12")...)
	if code != exitFailure || !errors.Is(err, errSelftestFailed) || !strings.Contains(out, "FAIL (tolerance 1e-12)") {
		t.Errorf("tolerance 1e-12: exit %d, error %v\n%s", code, err, out)
	}
	for _, args := range [][]string{
		{"--device", "tpu"}, {"--device", "cpu", "--trt-fp16"}, {"--device", "cpu", "--gpu-tf32"}, {"--device", "cuda", "--provider", "rocm"},
		{"--device", "cuda", "--trt-cache-dir", "/tmp/x"}, {"--docs", "0"},
	} {
		if _, code, err := runCLI(t, "", append([]string{"selftest"}, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d (%v), want %d", args, code, err, exitUsage)
		}
	}
}

// TestSelftestModelOnTheCPUComparesSomething: `selftest --model DIR
// --device cpu` has no oracle and no GPU, so it compares the CPU's batched
// vectors with those of documents encoded one per batch, and says so
// before its verdict.
func TestSelftestModelOnTheCPUComparesSomething(t *testing.T) {
	requireORT(t)
	model := t.TempDir()
	if out, code, err := runCLI(t, "", "selftest", "--keep", "--docs", "4", "--layers", "1", "--hidden", "32", "--heads", "2", "--device", "cpu", "--json"); code != exitOK {
		t.Fatalf("generate: exit %d (%v)\n%s", code, err, out)
	} else {
		var rep job.SelftestReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		model = rep.Model
		t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(model)) })
	}
	out, code, err := runCLI(t, "", "selftest", "--model", model, "--docs", "24", "--device", "cpu")
	if code != exitOK {
		t.Fatalf("exit %d (%v)\n%s", code, err, out)
	}
	for _, want := range []string{"cpu batched vs one document per batch (16 documents)", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "oracle") {
		t.Errorf("a model given with --model has no oracle:\n%s", out)
	}
}
