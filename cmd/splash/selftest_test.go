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
	"github.com/splash-encode/splash/gpu"
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
		{"--device", "cuda", "--trt-cache-dir", "/tmp/x"}, {"--docs", "0"}, {"--min-top-overlap", "0"}, {"--min-top-overlap", "1.5"},
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

// TestPrintSelftestCUDAEngine: the text report shows the CUDA engine's
// fp32 run, its reduced-precision run with the top-20 overlap, the kernel
// and GEMM checks per storage type (naming each that failed) and the
// forward pass against the oracle per architecture; the JSON report
// carries them.
func TestPrintSelftestCUDAEngine(t *testing.T) {
	dev := gpu.Device{Index: 0, Name: "NVIDIA H100 80GB HBM3"}
	rep := job.SelftestReport{
		Generated: true, Docs: 256, Tokens: 70000, Tolerance: 1e-4, OracleDocs: 16, OracleMaxDiff: 2e-6,
		CPU:           job.Throughput{DocsPerS: 50, TokensPerS: 14000},
		Devices:       []job.DeviceResult{{Device: dev, Precision: "fp32", Throughput: job.Throughput{DocsPerS: 500}, MaxDiff: 3e-6}},
		Reduced:       []job.ReducedResult{{Device: dev, Precision: "bf16", Throughput: job.Throughput{DocsPerS: 1500}, MaxRel: 0.05, WorstDoc: 7, TopOverlap: 0.991, OK: true}},
		MinTopOverlap: job.DefaultMinTopOverlap,
		Kernels: []gpu.KernelCheck{{
			Device: 0, B: 8, T: 128, V: 4000, SparsifyExact: true,
			Transformer: []gpu.KernelParity{
				{Name: "embed-ln", DType: "f32", MaxRel: 1e-7, Tolerance: 1e-5, OK: true},
				{Name: "scores", DType: "bf16", MaxRel: 0.003, Tolerance: 0x1p-7, OK: true},
				{Name: "masked-softmax", DType: "bf16", MaxRel: 0.2, Tolerance: 0x1p-7},
			},
			Engine: []gpu.EngineParity{
				{Arch: "bert", Precision: "fp32", Docs: 24, MaxAbs: 2e-6, TopOverlap: 1, OK: true},
				{Arch: "bert", Precision: "bf16", Docs: 24, MaxRel: 0.09, TopOverlap: 0.98, OK: true},
				{Arch: "roberta", Precision: "fp16", Docs: 24, MaxRel: 0.01, TopOverlap: 0.9, OK: false},
			},
		}},
	}
	var out strings.Builder
	printSelftest(&out, rep)
	for _, want := range []string{
		"cuda:0 (NVIDIA H100 80GB HBM3) [CUDA engine, fp32]:    500.0 docs/s",
		"[CUDA engine, bf16]:   1500.0 docs/s", "(30.0× the CPU); top-20 terms shared with the CPU 0.991 (>= 0.90)",
		"engine kernels and GEMMs vs their twins, f32: 1 of 1 within tolerance",
		"engine kernels and GEMMs vs their twins, bf16: 1 of 2 within tolerance",
		"FAIL masked-softmax: relative 0.2 > 0.0078",
		"engine vs float64 oracle, generated bert (24 documents): fp32 largest difference 2e-06; bf16 top-20 overlap 0.980",
		"generated roberta (24 documents): fp16 top-20 overlap 0.900, relative error 0.01 FAIL",
		"FAIL (tolerance 0.0001)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back job.SelftestReport
	if err := json.Unmarshal(b, &back); err != nil || len(back.Reduced) != 1 || len(back.Kernels[0].Engine) != 3 || back.Devices[0].Precision != "fp32" {
		t.Errorf("JSON round trip: %v\n%s", err, b)
	}
}
