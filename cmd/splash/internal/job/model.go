// Package job wires splash's packages into the runs that the CLI starts:
// Run (splash encode), Finalize, Bench (splash model bench) and Selftest.
// shards owns the inputs and the output with its commit protocol, gpu's
// registry opens a model's backends, encode describes the model and runs
// the one encoding stream (package pipeline's stages); job only puts them
// together.
package job

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// ErrBadInput marks failures caused by the input data or the model files
// (retrying will not help); the CLI maps it to its own exit code.
var ErrBadInput = encode.ErrBadInput

// ErrSettings marks settings that cannot work together (for example a batch
// token budget smaller than the max length); the CLI reports bad usage.
var ErrSettings = encode.ErrSettings

// ModelOptions configures OpenModel.
type ModelOptions struct {
	// MaxLength truncates documents to this many tokens, specials included;
	// 0 means the model's max_position_embeddings, at most 512.
	MaxLength int
	// Device selects the CPU, GPUs, or either (auto); the zero value is
	// the CPU.
	Device gpu.Selection
	// Backend configures the engine: pooling, threads, library, session
	// settings, the GPU provider and its settings. OpenModel sets its
	// PoolMask from Echo, GPU.MaxSeqLen (when 0) to the max length and its
	// Log (when nil) to Log.
	Backend gpu.Options
	// Registry opens the backends; nil means gpu.Default(), which the
	// engines linked into the binary (gpu/engines) register into.
	Registry *gpu.Registry
	// Log receives the warnings of the backends (an auto fallback to the
	// CPU, batches split after running out of GPU memory); nil discards
	// them.
	Log *slog.Logger
	// Role, Echo and Bag: see encode.ModelOptions.
	Role string
	Echo bool
	Bag  *encode.BagOptions
}

// Model is a loaded SPLADE model (encode.Model: tokenizer, backends, the
// identity of its files) and the devices its backends run on.
type Model struct {
	*encode.Model
	// Devices are the GPUs in use, in the order of Backends; nil on the CPU.
	Devices []gpu.Device
	// Fallback says why --device auto runs on the CPU ("" otherwise).
	Fallback string
	// engineTokens is the batch token budget the GPU engine chose (0: none).
	engineTokens int
	// lanes is how many batches each GPU backend runs at once.
	lanes []int
}

// OpenModel reads the model directory dir (encode.LoadModel) and opens its
// backends on the selected devices with gpu's registry (a bag-of-tokens
// model runs no backend).
func OpenModel(ctx context.Context, dir string, opts ModelOptions) (*Model, error) {
	em, err := encode.LoadModel(dir, encode.ModelOptions{
		MaxLength: opts.MaxLength, Pooling: opts.Backend.Pooling, Role: opts.Role, Echo: opts.Echo, Bag: opts.Bag,
	})
	if err != nil {
		return nil, err
	}
	if em.Bag {
		return &Model{Model: em}, nil
	}
	bopts := opts.Backend
	bopts.PoolMask = opts.Echo
	if bopts.GPU.MaxSeqLen == 0 {
		bopts.GPU.MaxSeqLen = em.MaxLength
	}
	if bopts.Log == nil {
		bopts.Log = opts.Log
	}
	registry := opts.Registry
	if registry == nil {
		registry = gpu.Default()
	}
	opened, err := registry.Open(ctx, dir, opts.Device, bopts)
	if err != nil {
		if errors.Is(err, encode.ErrBadModel) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		return nil, err
	}
	if err := em.Attach(opened.List); err != nil {
		return nil, err
	}
	return &Model{Model: em, Devices: opened.Devices, Fallback: opened.Fallback, engineTokens: opened.BatchTokens, lanes: opened.Lanes}, nil
}

// DeviceName names where the model runs: "cpu", or the GPUs' names
// ("cuda:0,cuda:1").
func (m *Model) DeviceName() string {
	if len(m.Devices) == 0 {
		return "cpu"
	}
	names := make([]string, len(m.Devices))
	for i, d := range m.Devices {
		names[i] = d.ID()
	}
	return strings.Join(names, ",")
}

// Workers lists the encoder goroutines' backends: on GPUs, one per batch
// that the GPU's backend runs at once (an ONNX Runtime session runs one;
// splash's CUDA engine two, on two streams, so that one worker prepares
// its batch while the other's runs), or sessions goroutines sharing the
// CPU session.
func (m *Model) Workers(sessions int) []encode.Worker {
	if len(m.Devices) == 0 {
		return encode.CPUWorkers(m.Backend, sessions)
	}
	var workers []encode.Worker
	for i, d := range m.Devices {
		lanes := 1
		if i < len(m.lanes) {
			lanes = max(m.lanes[i], 1)
		}
		for range lanes {
			workers = append(workers, encode.Worker{Backend: m.Backends[i], Device: d.ID()})
		}
	}
	return workers
}

// DefaultLogitsBudget bounds one batch's float32 logits on the CPU unless
// Config.LogitsBudget says otherwise.
const DefaultLogitsBudget = 1 << 30

// logitsBound returns the largest batch token budget, at most batchTokens
// and at least the max length (one document must fit), whose float32
// logits ([tokens, vocab]) fit in budget bytes, and whether that is below
// batchTokens. budget 0 means DefaultLogitsBudget on the CPU and no bound
// on GPUs (their budget from free memory counts the logits already). Bags
// run no model: no logits.
func (m *Model) logitsBound(batchTokens int, budget int64) (int, bool) {
	if m.Bag {
		return batchTokens, false
	}
	if budget == 0 {
		if len(m.Devices) > 0 {
			return batchTokens, false
		}
		budget = DefaultLogitsBudget
	}
	perToken := int64(4 * m.Backend.VocabSize())
	fit := max(int(budget/perToken), m.MaxLength)
	if fit >= batchTokens {
		return batchTokens, false
	}
	return fit, true
}

// CPUBatchTokens is the batch token budget on the CPU when none is asked
// for: larger batches only add memory there (docs/BENCHMARKS.md).
const CPUBatchTokens = 2048

// BatchTokens resolves a requested batch token budget: a positive request
// stands; 0 means 2048 on the CPU and, on GPUs, what the device with the
// least free memory holds: what the engine measured after loading the
// weights when it knows its own peak (splash's CUDA engine), else the
// estimate of gpu.BatchTokens (its minimum when the free memory is
// unknown).
func (m *Model) BatchTokens(requested int) int {
	if requested > 0 {
		return requested
	}
	if len(m.Devices) == 0 {
		return max(CPUBatchTokens, m.MaxLength)
	}
	if m.engineTokens > 0 {
		return max(m.engineTokens, m.MaxLength)
	}
	free := m.Devices[0].FreeMemory
	for _, d := range m.Devices[1:] {
		free = min(free, d.FreeMemory)
	}
	s := m.Shape
	return gpu.BatchTokens(free, gpu.ModelShape{Vocab: s.Vocab, Hidden: s.Hidden, Heads: s.Heads, Intermediate: s.Intermediate,
		MaxLength: s.MaxLength, WeightBytes: s.WeightBytes})
}
