package gpu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	good := map[string]Selection{
		"cpu": {CPU, AllDevices}, "CPU": {CPU, AllDevices}, "auto": {Auto, AllDevices}, "": {Auto, AllDevices},
		"cuda": {CUDA, AllDevices}, "gpu": {CUDA, AllDevices}, "cuda:0": {CUDA, 0}, " cuda:3 ": {CUDA, 3},
	}
	for in, want := range good {
		got, err := ParseDevice(in)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"tpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2", "rocm"} {
		if _, err := ParseDevice(in); err == nil || !strings.Contains(err.Error(), "--device") {
			t.Errorf("ParseDevice(%q): error %v, want one naming --device", in, err)
		}
	}
	for _, s := range []string{"cpu", "auto", "cuda", "cuda:2"} {
		sel, _ := ParseDevice(s)
		if sel.String() != s {
			t.Errorf("ParseDevice(%q).String() = %q", s, sel.String())
		}
	}
}

func TestPick(t *testing.T) {
	devs := []Device{{Index: 0, Name: "A"}, {Index: 1, Name: "B"}}
	all, err := Selection{CUDA, AllDevices}.Pick(devs)
	if err != nil || len(all) != 2 {
		t.Fatalf("cuda: %v, %v", all, err)
	}
	one, err := Selection{CUDA, 1}.Pick(devs)
	if err != nil || len(one) != 1 || one[0].Name != "B" {
		t.Fatalf("cuda:1: %v, %v", one, err)
	}
	if _, err := (Selection{CUDA, 2}).Pick(devs); err == nil || !strings.Contains(err.Error(), "no GPU 2") || !strings.Contains(err.Error(), "found 2") {
		t.Errorf("cuda:2 of 2 GPUs: %v", err)
	}
	if _, err := (Selection{CUDA, AllDevices}).Pick(nil); err == nil || !strings.Contains(err.Error(), "no NVIDIA GPU") {
		t.Errorf("cuda without GPUs: %v", err)
	}
	if d, err := (Selection{CPU, AllDevices}).Pick(devs); d != nil || err != nil {
		t.Errorf("cpu picks %v, %v", d, err)
	}
}

func TestDeviceString(t *testing.T) {
	d := Device{Index: 1, Name: "NVIDIA H200", TotalMemory: 140 << 30, FreeMemory: 139 << 30}
	if got, want := d.String(), "cuda:1 (NVIDIA H200, 139.0 GiB free of 140.0 GiB)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Device{Index: 0}).String(); got != "cuda:0" {
		t.Errorf("bare device: %q", got)
	}
}

// fakeSMI writes an nvidia-smi stand-in that prints out (and exits with
// code) whatever arguments it gets, and records them.
func fakeSMI(t *testing.T, out string, code int) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nvidia-smi")
	script := "#!/bin/sh\necho \"$@\" > " + filepath.Join(dir, "args") + "\ncat <<'EOF'\n" + out + "EOF\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// noCUDA is a driver that cannot be used, as gpu/cuda's errors match
// ErrNoDriver when libcuda.so.1 does not load.
func noCUDA() ([]Device, error) {
	return nil, fmt.Errorf("%w: libcuda.so.1: cannot open shared object file", ErrNoDriver)
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const twoGPUs = "0, GPU-aaaa1111-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559, 81000\n" +
	"1, GPU-bbbb2222-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, [N/A]\n"

func TestDiscoverNvidiaSMI(t *testing.T) {
	smi := fakeSMI(t, twoGPUs, 0)
	cases := []struct {
		visible map[string]string
		names   []string
		note    string
	}{
		{nil, []string{"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"}, ""},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "1"}, []string{"NVIDIA A100-SXM4-40GB"}, ""},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "1,0"}, []string{"NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"}, ""},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}, []string{"NVIDIA A100-SXM4-40GB"}, ""},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "0,7,1"}, []string{"NVIDIA H100 80GB HBM3"}, ""}, // CUDA stops at 7
		{map[string]string{"CUDA_VISIBLE_DEVICES": ""}, nil, "hides every GPU"},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "-1"}, nil, "hides every GPU"},
	}
	for _, c := range cases {
		got := Discoverer{Driver: noCUDA, SMI: smi, LookupEnv: env(c.visible)}.Discover(context.Background())
		var names []string
		for i, d := range got.Devices {
			names = append(names, d.Name)
			if d.Index != i {
				t.Errorf("%v: device %d numbered %d, want CUDA's order", c.visible, i, d.Index)
			}
		}
		if strings.Join(names, "|") != strings.Join(c.names, "|") || !strings.Contains(got.Note, c.note) {
			t.Errorf("%v: got %q (note %q), want %q (note %q)", c.visible, names, got.Note, c.names, c.note)
		}
		if len(names) > 0 && got.Source != "nvidia-smi" {
			t.Errorf("%v: source %q", c.visible, got.Source)
		}
	}
	got := Discoverer{Driver: noCUDA, SMI: smi, LookupEnv: env(nil)}.Discover(context.Background())
	if h := got.Devices[0]; h.TotalMemory != 81559<<20 || h.FreeMemory != 81000<<20 {
		t.Errorf("H100 memory %d/%d", h.FreeMemory, h.TotalMemory)
	}
	if a := got.Devices[1]; a.TotalMemory != 40960<<20 || a.FreeMemory != 0 {
		t.Errorf("[N/A] free memory should read as unknown (0): %d/%d", a.FreeMemory, a.TotalMemory)
	}
	args, err := os.ReadFile(filepath.Join(filepath.Dir(smi), "args"))
	if err != nil || !strings.Contains(string(args), "--query-gpu=index,uuid,name,memory.total,memory.free") {
		t.Errorf("nvidia-smi called with %q (%v)", args, err)
	}
}

func TestDiscoverFailures(t *testing.T) {
	ctx := context.Background()
	missing := Discoverer{Driver: noCUDA, SMI: filepath.Join(t.TempDir(), "nvidia-smi"), LookupEnv: env(nil)}.Discover(ctx)
	if len(missing.Devices) != 0 || !strings.Contains(missing.Note, "nvidia-smi is not on PATH") ||
		!strings.HasPrefix(missing.Note, "no usable CUDA driver: libcuda.so.1: cannot open shared object file; ") {
		t.Errorf("no driver, no nvidia-smi: %+v (the note must say why each found nothing)", missing)
	}
	failing := Discoverer{Driver: noCUDA, SMI: fakeSMI(t, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9), LookupEnv: env(nil)}.Discover(ctx)
	if len(failing.Devices) != 0 || !strings.Contains(failing.Note, "couldn't communicate") {
		t.Errorf("failing nvidia-smi: %+v", failing)
	}
	garbled := Discoverer{Driver: noCUDA, SMI: fakeSMI(t, "0, only two\n", 0), LookupEnv: env(nil)}.Discover(ctx)
	if len(garbled.Devices) != 0 || !strings.Contains(garbled.Note, "want 5") {
		t.Errorf("garbled nvidia-smi: %+v", garbled)
	}
	driverErr := Discoverer{Driver: func() ([]Device, error) { return nil, errors.New("cuda: count devices: boom") }}.Discover(ctx)
	if len(driverErr.Devices) != 0 || !strings.Contains(driverErr.Note, "boom") {
		t.Errorf("driver error: %+v", driverErr)
	}
	byDriver := Discoverer{Driver: func() ([]Device, error) {
		return []Device{{Index: 0, Name: "NVIDIA H200", TotalMemory: 150 << 30, FreeMemory: 149 << 30}}, nil
	}, SMI: fakeSMI(t, twoGPUs, 0)}.Discover(ctx)
	if len(byDriver.Devices) != 1 || byDriver.Source != "CUDA driver" || byDriver.Devices[0].FreeMemory != 149<<30 {
		t.Errorf("the driver's list must win over nvidia-smi: %+v", byDriver)
	}
}
