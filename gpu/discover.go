package gpu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Discovery is what Discover found.
type Discovery struct {
	Devices []Device
	// Source says where the list came from: "CUDA driver", "nvidia-smi", or
	// "" when nothing was found.
	Source string
	// Note explains an empty list (no driver, nvidia-smi missing or failing,
	// CUDA_VISIBLE_DEVICES hiding every GPU).
	Note string
}

// Discoverer finds NVIDIA GPUs. Registry.Discover uses one with its
// driver's Devices; tests replace the sources.
type Discoverer struct {
	// Driver lists devices through the CUDA driver (a Driver's Devices); nil,
	// or an error that matches ErrNoDriver (gpu/cuda's when libcuda.so.1 does
	// not load or finds no device), means asking nvidia-smi.
	Driver func() ([]Device, error)
	// SMI is the nvidia-smi executable; "" means "nvidia-smi" on PATH.
	SMI string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Discover lists the GPUs CUDA would number, in its order. It asks the CUDA
// driver (names, total and free memory; it honours CUDA_VISIBLE_DEVICES
// itself). Where the driver cannot be used it asks nvidia-smi, which the
// NVIDIA driver installs and the container toolkit mounts (the `utility`
// driver capability), and applies CUDA_VISIBLE_DEVICES to its list: numbers
// select nvidia-smi's indexes (PCI bus order, which is CUDA's order unless
// a machine mixes GPU models and CUDA_DEVICE_ORDER is not PCI_BUS_ID) and
// GPU-... entries select by UUID prefix; as in CUDA, the list ends at the
// first entry that matches nothing.
func (d Discoverer) Discover(ctx context.Context) Discovery {
	if d.Driver == nil {
		return d.fromSMI(ctx)
	}
	devs, err := d.Driver()
	switch {
	case err == nil:
		out := Discovery{Source: "CUDA driver", Devices: devs}
		if len(out.Devices) == 0 {
			out.Note = "the CUDA driver reports no device"
		}
		return out
	case !errors.Is(err, ErrNoDriver):
		return Discovery{Note: err.Error()}
	}
	found := d.fromSMI(ctx)
	if len(found.Devices) == 0 && err != ErrNoDriver {
		// Why the driver could not be used (what was looked for and
		// where), then why nvidia-smi found nothing either.
		found.Note = err.Error() + "; " + found.Note
	}
	return found
}

// smiRow is one GPU as nvidia-smi lists it.
type smiRow struct {
	index int
	uuid  string
	dev   Device
}

func (d Discoverer) fromSMI(ctx context.Context) Discovery {
	smi := d.SMI
	if smi == "" {
		smi = "nvidia-smi"
	}
	path, err := exec.LookPath(smi)
	if err != nil {
		return Discovery{Note: "no NVIDIA driver found (nvidia-smi is not on PATH)"}
	}
	out, err := exec.CommandContext(ctx, path, "--query-gpu=index,uuid,name,memory.total,memory.free",
		"--format=csv,noheader,nounits").Output()
	if err != nil {
		var detail string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			detail = strings.TrimSpace(string(ee.Stderr))
		}
		if detail == "" {
			detail = strings.TrimSpace(string(out))
		}
		return Discovery{Note: fmt.Sprintf("%s failed: %v %s", path, err, firstLine(detail))}
	}
	rows, err := parseSMI(string(out))
	if err != nil {
		return Discovery{Note: fmt.Sprintf("%s: %v", path, err)}
	}
	lookup := d.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	visible, set := lookup("CUDA_VISIBLE_DEVICES")
	devs, note := applyVisible(rows, visible, set)
	res := Discovery{Devices: devs, Note: note}
	if len(devs) > 0 {
		res.Source = "nvidia-smi"
	} else if res.Note == "" {
		res.Note = "nvidia-smi lists no GPU"
	}
	return res
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// parseSMI reads nvidia-smi's "index, uuid, name, memory.total [MiB],
// memory.free [MiB]" CSV rows.
func parseSMI(out string) ([]smiRow, error) {
	var rows []smiRow
	for n, line := range strings.Split(strings.TrimSpace(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 5 {
			return nil, fmt.Errorf("line %d %q: want 5 comma-separated fields (index, uuid, name, memory.total, memory.free)", n+1, line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d %q: index %q is not a number", n+1, line, f[0])
		}
		total, _ := strconv.ParseUint(f[3], 10, 64) // "[N/A]" on some boards: unknown
		free, _ := strconv.ParseUint(f[4], 10, 64)
		rows = append(rows, smiRow{index: idx, uuid: f[1], dev: Device{Name: f[2], TotalMemory: total << 20, FreeMemory: free << 20}})
	}
	return rows, nil
}

// applyVisible applies CUDA_VISIBLE_DEVICES (set: whether it is set at
// all) to nvidia-smi's rows and numbers the result as CUDA does (0, 1, ...).
func applyVisible(rows []smiRow, visible string, set bool) ([]Device, string) {
	picked := rows
	if set {
		picked = nil
	entries:
		for _, e := range strings.Split(visible, ",") {
			e = strings.TrimSpace(e)
			for _, r := range rows {
				n, err := strconv.Atoi(e)
				byIndex := err == nil && n == r.index
				byUUID := len(e) > 4 && strings.EqualFold(e[:4], "GPU-") && strings.HasPrefix(strings.ToLower(r.uuid), strings.ToLower(e))
				if byIndex || byUUID {
					picked = append(picked, r)
					continue entries
				}
			}
			break // CUDA ignores the entries after one that matches nothing
		}
		if len(picked) == 0 {
			return nil, fmt.Sprintf("CUDA_VISIBLE_DEVICES=%q hides every GPU", visible)
		}
	}
	devs := make([]Device, len(picked))
	for i, r := range picked {
		devs[i] = r.dev
		devs[i].Index = i
	}
	return devs, ""
}
