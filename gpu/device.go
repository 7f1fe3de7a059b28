package gpu

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the family of device that --device selects.
type Kind int

const (
	// CPU runs ONNX Runtime's CPU execution provider.
	CPU Kind = iota
	// CUDA runs ONNX Runtime's CUDA (or TensorRT) execution provider on
	// NVIDIA GPUs.
	CUDA
	// Auto uses every visible GPU when ONNX Runtime's CUDA provider can be
	// loaded and falls back to the CPU otherwise.
	Auto
)

// AllDevices is Selection.Index for "every visible GPU".
const AllDevices = -1

// Selection is a parsed --device value: cpu, cuda (every visible GPU),
// cuda:N (GPU N only) or auto.
type Selection struct {
	Kind Kind
	// Index is the CUDA device ordinal of cuda:N, or AllDevices.
	Index int
}

// ParseDevice parses a --device value.
func ParseDevice(s string) (Selection, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); {
	case v == "cpu":
		return Selection{Kind: CPU, Index: AllDevices}, nil
	case v == "auto" || v == "":
		return Selection{Kind: Auto, Index: AllDevices}, nil
	case v == "cuda" || v == "gpu":
		return Selection{Kind: CUDA, Index: AllDevices}, nil
	case strings.HasPrefix(v, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(v, "cuda:"))
		if err != nil || n < 0 {
			return Selection{}, fmt.Errorf("--device %q: the GPU index after cuda: must be a number >= 0", s)
		}
		return Selection{Kind: CUDA, Index: n}, nil
	}
	return Selection{}, fmt.Errorf("--device %q: want cpu, cuda, cuda:N or auto", s)
}

// String renders the selection as the --device flag spells it.
func (s Selection) String() string {
	switch s.Kind {
	case CPU:
		return "cpu"
	case Auto:
		return "auto"
	}
	if s.Index == AllDevices {
		return "cuda"
	}
	return "cuda:" + strconv.Itoa(s.Index)
}

// Device describes one NVIDIA GPU as CUDA numbers it.
type Device struct {
	// Index is the CUDA device ordinal (after CUDA_VISIBLE_DEVICES), the
	// device_id ONNX Runtime's CUDA provider takes.
	Index int
	Name  string
	// TotalMemory and FreeMemory are in bytes; 0 when the source cannot tell.
	TotalMemory uint64
	FreeMemory  uint64
}

// ID is the device as --device spells it: "cuda:0".
func (d Device) ID() string { return "cuda:" + strconv.Itoa(d.Index) }

// String names the device for logs: "cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB free of 79.6 GiB)".
func (d Device) String() string {
	s := d.ID()
	var details []string
	if d.Name != "" {
		details = append(details, d.Name)
	}
	if d.TotalMemory > 0 {
		details = append(details, fmt.Sprintf("%.1f GiB free of %.1f GiB", gib(d.FreeMemory), gib(d.TotalMemory)))
	}
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}

func gib(b uint64) float64 { return float64(b) / (1 << 30) }

// Pick returns the devices a selection of kind CUDA or Auto uses among the
// discovered ones: all of them, or the one of cuda:N.
func (s Selection) Pick(devices []Device) ([]Device, error) {
	if s.Kind == CPU {
		return nil, nil
	}
	if len(devices) == 0 {
		return nil, fmt.Errorf("--device %s: no NVIDIA GPU found", s)
	}
	if s.Index == AllDevices {
		return devices, nil
	}
	for _, d := range devices {
		if d.Index == s.Index {
			return []Device{d}, nil
		}
	}
	return nil, fmt.Errorf("--device %s: there is no GPU %d (found %d: %s)", s, s.Index, len(devices), describe(devices))
}

func describe(devices []Device) string {
	names := make([]string, len(devices))
	for i, d := range devices {
		names[i] = d.String()
	}
	return strings.Join(names, "; ")
}
