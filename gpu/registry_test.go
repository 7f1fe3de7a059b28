package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
)

// fakeBackend has a vocabulary of 3 and fails with encode.ErrOutOfMemory on
// batches of more than one document.
type fakeBackend struct {
	dev    *Device
	closed *int
}

func (b *fakeBackend) VocabSize() int { return 3 }

func (b *fakeBackend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	if b.dev != nil && batch.Size > 1 {
		return fmt.Errorf("fake: %w", encode.ErrOutOfMemory)
	}
	return nil
}

func (b *fakeBackend) Close() error { *b.closed++; return nil }

// fakeEngine opens fakeBackends; on the GPUs of failOn it fails with fail.
type fakeEngine struct {
	name      string
	fail      error
	failOn    map[int]bool
	opened    []string // "cpu" or the device ID, in order
	providers []string
	closed    int
}

func (e *fakeEngine) Name() string { return e.name }

func (e *fakeEngine) Open(ctx context.Context, dir string, dev *Device, opts Options) (encode.Backend, error) {
	if dev == nil {
		e.opened = append(e.opened, "cpu")
		return &fakeBackend{closed: &e.closed}, nil
	}
	e.opened = append(e.opened, dev.ID())
	e.providers = append(e.providers, opts.Provider)
	if e.failOn[dev.Index] {
		return nil, e.fail
	}
	return &fakeBackend{dev: dev, closed: &e.closed}, nil
}

func found(devs ...Device) func(context.Context) Discovery {
	return func(context.Context) Discovery {
		if len(devs) == 0 {
			return Discovery{Note: "no NVIDIA driver found (nvidia-smi is not on PATH)"}
		}
		return Discovery{Devices: devs, Source: "test"}
	}
}

var twoH100 = []Device{
	{Index: 0, Name: "NVIDIA H100 80GB HBM3", TotalMemory: 80 << 30, FreeMemory: 79 << 30},
	{Index: 1, Name: "NVIDIA H100 80GB HBM3", TotalMemory: 80 << 30, FreeMemory: 60 << 30},
}

func registryWith(e Engine) *Registry {
	r := &Registry{}
	r.Register(e)
	return r
}

func sel(t *testing.T, s string) Selection {
	t.Helper()
	v, err := ParseDevice(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenCPU(t *testing.T) {
	e := &fakeEngine{name: DefaultEngine}
	b, err := registryWith(e).Open(context.Background(), "m", sel(t, "cpu"), Options{Discover: func(context.Context) Discovery {
		t.Error("--device cpu must not discover GPUs")
		return Discovery{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.List) != 1 || b.Devices != nil || b.Fallback != "" || fmt.Sprint(e.opened) != "[cpu]" {
		t.Errorf("backends %+v, opened %v; want one CPU backend", b, e.opened)
	}
	if err := b.Close(); err != nil || e.closed != 1 {
		t.Errorf("Close: %v, %d closed", err, e.closed)
	}
}

// TestOpenAutoFallsBackWithOneWarning covers --device auto without a GPU
// and with GPUs the engine cannot use: the CPU, one line with the whole
// reason (a warning when a GPU was found, an info line when there is none,
// so CPU-only nightly jobs stay quiet), and the short reason in Fallback.
func TestOpenAutoFallsBackWithOneWarning(t *testing.T) {
	unavailable := &UnavailableError{Reason: "the fake library cannot load", Err: errors.New("fake: libfake.so: cannot open shared object file")}
	for _, c := range []struct {
		name     string
		devices  []Device
		fail     error
		fallback string
		warning  string
		level    string
	}{
		{"no GPU", nil, nil, "no NVIDIA GPU found (no NVIDIA driver found (nvidia-smi is not on PATH))",
			`reason="no NVIDIA GPU found (no NVIDIA driver found (nvidia-smi is not on PATH))"`, "INFO"},
		{"unavailable with a reason", twoH100, fmt.Errorf("model m: %w", unavailable),
			"found cuda:0 (NVIDIA H100 80GB HBM3, 79.0 GiB free of 80.0 GiB) but the fake library cannot load",
			`reason="found cuda:0 (NVIDIA H100 80GB HBM3, 79.0 GiB free of 80.0 GiB) but the fake library cannot load: model m: fake: libfake.so: cannot open shared object file"`, "WARN"},
		{"unavailable without a reason", twoH100, fmt.Errorf("%w: no luck", ErrUnavailable),
			"found cuda:0 (NVIDIA H100 80GB HBM3, 79.0 GiB free of 80.0 GiB) but the fake engine cannot use it", "but the fake engine cannot use it: the engine cannot run on this GPU here: no luck", "WARN"},
	} {
		e := &fakeEngine{name: "fake", fail: c.fail, failOn: map[int]bool{0: true}}
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		b, err := registryWith(e).Open(context.Background(), "m", sel(t, "auto"), Options{Engine: "fake", Log: log, Discover: found(c.devices...)})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(b.List) != 1 || b.Devices != nil || b.Fallback != c.fallback {
			t.Errorf("%s: %d backends on %v, fallback %q; want the CPU and %q", c.name, len(b.List), b.Devices, b.Fallback, c.fallback)
		}
		lines := strings.Count(logs.String(), "\n")
		if n := strings.Count(logs.String(), "level="+c.level); n != 1 || lines != 1 || !strings.Contains(logs.String(), `msg="--device auto: encoding on the CPU"`) || !strings.Contains(logs.String(), c.warning) {
			t.Errorf("%s: %d lines at %s of %d, want one saying %s:\n%s", c.name, n, c.level, lines, c.warning, logs.String())
		}
	}
}

// TestOpenCUDA opens every GPU found, with the default provider, each
// wrapped to split batches that run out of memory (with a warning), and
// fails, closing what it opened, when a GPU cannot be used.
func TestOpenCUDA(t *testing.T) {
	ctx := context.Background()
	e := &fakeEngine{name: DefaultEngine}
	var logs bytes.Buffer
	b, err := registryWith(e).Open(ctx, "m", sel(t, "cuda"), Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Discover: found(twoH100...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.List) != 2 || len(b.Devices) != 2 || b.Fallback != "" || fmt.Sprint(e.opened) != "[cuda:0 cuda:1]" || fmt.Sprint(e.providers) != "[cuda cuda]" {
		t.Fatalf("backends %+v, opened %v with providers %v", b, e.opened, e.providers)
	}
	if _, ok := b.List[1].(*encode.SplitOnOOM); !ok {
		t.Fatalf("GPU backend %T is not wrapped in encode.SplitOnOOM", b.List[1])
	}
	batch := encode.NewBatch([][]int32{{1, 2}, {3}}, 0)
	if err := b.List[1].Encode(ctx, batch, make([]float32, 2*3)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "a batch ran out of GPU memory: splitting it in two and retrying") || !strings.Contains(logs.String(), "device=\"cuda:1 (NVIDIA H100") {
		t.Errorf("the split was not logged with its device:\n%s", logs.String())
	}
	b.Close()

	_, err = registryWith(&fakeEngine{name: DefaultEngine}).Open(ctx, "m", sel(t, "cuda"), Options{Discover: found()})
	if err == nil || err.Error() != "--device cuda: no NVIDIA GPU found (no NVIDIA driver found (nvidia-smi is not on PATH))" {
		t.Errorf("cuda without GPUs: %v", err)
	}
	_, err = registryWith(&fakeEngine{name: DefaultEngine}).Open(ctx, "m", sel(t, "cuda:3"), Options{Discover: found(twoH100...)})
	if err == nil || !strings.Contains(err.Error(), "--device cuda:3: there is no GPU 3 (found 2") {
		t.Errorf("cuda:3 of two GPUs: %v", err)
	}
	failing := &fakeEngine{name: DefaultEngine, fail: &UnavailableError{Reason: "r", Err: errors.New("no provider")}, failOn: map[int]bool{1: true}}
	_, err = registryWith(failing).Open(ctx, "m", sel(t, "cuda"), Options{Provider: "tensorrt", Discover: found(twoH100...)})
	if !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "open the model on cuda:1 (NVIDIA H100") || !strings.HasSuffix(err.Error(), ": no provider") {
		t.Errorf("cuda with a GPU the engine cannot use: %v", err)
	}
	if failing.closed != 1 || fmt.Sprint(failing.providers) != "[tensorrt tensorrt]" {
		t.Errorf("%d backends closed after the failure (want cuda:0's), providers %v", failing.closed, failing.providers)
	}
}

func TestEngineLookup(t *testing.T) {
	r := registryWith(&fakeEngine{name: "b"})
	r.Register(&fakeEngine{name: "a"})
	if got := fmt.Sprint(r.Engines()); got != "[a b]" {
		t.Errorf("Engines() = %s", got)
	}
	if e, err := r.Engine("a"); err != nil || e.Name() != "a" {
		t.Errorf("Engine(a) = %v, %v", e, err)
	}
	_, err := r.Open(context.Background(), "m", Selection{}, Options{})
	if err == nil || !strings.Contains(err.Error(), `engine "ort" is not linked into this binary (linked: a, b;`) {
		t.Errorf("Open with the default engine missing: %v", err)
	}
	if _, err := (&Registry{}).Engine("x"); err == nil || !strings.Contains(err.Error(), "linked: none") {
		t.Errorf("empty registry: %v", err)
	}
	for name, f := range map[string]func(){
		"twice":        func() { r.Register(&fakeEngine{name: "a"}) },
		"nil engine":   func() { r.Register(nil) },
		"nil driver":   func() { r.SetDriver(nil) },
		"driver twice": func() { r.SetDriver(fakeDriver{}); r.SetDriver(fakeDriver{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// fakeDriver lists devs, or fails with err.
type fakeDriver struct {
	devs []Device
	err  error
}

func (d fakeDriver) Devices() ([]Device, error) { return d.devs, d.err }

func (d fakeDriver) SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (KernelCheck, error) {
	return KernelCheck{Device: deviceIndex, B: b, T: t, V: v, OK: d.err == nil}, d.err
}

func TestDriver(t *testing.T) {
	ctx := context.Background()
	if _, err := (&Registry{}).Driver().Devices(); !errors.Is(err, ErrNoDriver) {
		t.Errorf("no driver: Devices() error %v, want ErrNoDriver", err)
	}
	if _, err := (&Registry{}).Driver().SelfCheck(ctx, 0, 1, 1, 1, 1); !errors.Is(err, ErrNoDriver) {
		t.Errorf("no driver: SelfCheck() error %v, want ErrNoDriver", err)
	}
	r := &Registry{}
	r.SetDriver(fakeDriver{devs: twoH100[:1]})
	if got := r.Discover(ctx); got.Source != "CUDA driver" || len(got.Devices) != 1 || got.Devices[0] != twoH100[0] {
		t.Errorf("Discover with a driver: %+v", got)
	}
	if k, err := r.Driver().SelfCheck(ctx, 2, 8, 128, 30522, 1); err != nil || !k.OK || k.Device != 2 {
		t.Errorf("SelfCheck through the registry: %+v, %v", k, err)
	}
	broken := &Registry{}
	broken.SetDriver(fakeDriver{err: errors.New("cuda: count devices: boom")})
	if got := broken.Discover(ctx); len(got.Devices) != 0 || got.Note != "cuda: count devices: boom" {
		t.Errorf("Discover with a failing driver: %+v", got)
	}
}

func TestUnavailableErrorMatches(t *testing.T) {
	inner := errors.New("inner")
	err := fmt.Errorf("model m: %w", &UnavailableError{Reason: "r", Err: fmt.Errorf("x: %w", inner)})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, inner) || err.Error() != "model m: x: inner" {
		t.Errorf("%v: want a match for ErrUnavailable and for the wrapped error, and the wrapped text", err)
	}
}

// gpuOnlyEngine is a fake engine that runs on GPUs only, as gpu/cuda's.
type gpuOnlyEngine struct{ fakeEngine }

func (*gpuOnlyEngine) GPUOnly() bool { return true }

// TestOpenEngineChoice covers the engine per device: by default the CUDA
// engine on GPUs and ONNX Runtime on the CPU (also for an auto fallback);
// --engine ort everywhere; a GPU-only engine refuses the CPU.
func TestOpenEngineChoice(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		device, engine string
		devices        []Device
		wantORT        string // what the ort engine opened
		wantCUDA       string // what the cuda engine opened
		wantErr        string
	}{
		{"auto", "", twoH100, "[]", "[cuda:0 cuda:1]", ""},
		{"auto", "", nil, "[cpu]", "[]", ""},
		{"cpu", "", twoH100, "[cpu]", "[]", ""},
		{"cuda:1", "ort", twoH100, "[cuda:1]", "[]", ""},
		{"auto", "cuda", twoH100, "[]", "[cuda:0 cuda:1]", ""},
		{"cpu", "cuda", nil, "[]", "[]", "the cuda engine runs on GPUs only"},
		{"auto", "onnx", nil, "[]", "[]", `engine "onnx" is not linked into this binary`},
	} {
		ort := &fakeEngine{name: EngineORT}
		cuda := &gpuOnlyEngine{fakeEngine{name: EngineCUDA}}
		r := &Registry{}
		r.Register(ort)
		r.Register(cuda)
		b, err := r.Open(ctx, "m", sel(t, c.device), Options{Engine: c.engine, Discover: found(c.devices...)})
		name := c.device + "/" + c.engine
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want %q", name, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b.Close()
		if got := fmt.Sprint(ort.opened); got != c.wantORT && !(got == "[]" && c.wantORT == "[]") {
			t.Errorf("%s: ort opened %s, want %s", name, got, c.wantORT)
		}
		if got := fmt.Sprint(cuda.opened); got != c.wantCUDA {
			t.Errorf("%s: cuda opened %s, want %s", name, got, c.wantCUDA)
		}
	}
}
