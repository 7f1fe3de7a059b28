//go:build cgo

package ort

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// cgoEnabled: this build calls ONNX Runtime.
const cgoEnabled = true

// Options configures a Backend.
type Options struct {
	// Library is the ONNX Runtime shared library; "" resolves it with ResolveLibrary.
	Library string
	// Pooling is the SPLADE pooling appended to the graph.
	Pooling encode.Pooling
	// LogitsOutput names the model output holding [batch, sequence, vocab]
	// logits; "" means "logits", as optimum's fill-mask export names it.
	LogitsOutput string
	// IntraOpThreads bounds ONNX Runtime's threads for one run; 0 lets ONNX
	// Runtime use every core.
	IntraOpThreads int
	// Provider is the execution provider: "cpu" (also ""), "cuda" or
	// "tensorrt" (TensorRT, with the CUDA provider for the nodes TensorRT
	// does not take). See Providers.
	Provider string
	// GPU configures the cuda and tensorrt providers.
	GPU GPUOptions
	// ProfilePrefix, when set, makes ONNX Runtime write a JSON profile of
	// every node run (PREFIX_DATE.json) when the backend is closed.
	ProfilePrefix string
	// DisableMemArena turns off ONNX Runtime's CPU memory arena, which
	// otherwise keeps the largest batch's tensors (and more) allocated.
	DisableMemArena bool
	// DisableMemPattern turns off ONNX Runtime's memory pattern planning,
	// which caches an allocation plan per input shape.
	DisableMemPattern bool
	// DisableSpinning stops ONNX Runtime's intra-op threads from busy-waiting
	// for work between and after runs, which otherwise takes CPU time from
	// the goroutines that read, tokenize and write around the session.
	DisableSpinning bool
	// OptLevel is ONNX Runtime's graph optimization level: "all" (default,
	// also ""), "extended", "basic" or "disabled".
	OptLevel string
	// PoolMask makes the pooling read encode.Batch.PoolMask (a new graph
	// input, PoolMaskInput) instead of the attention mask; every batch must
	// then carry one (see encode.Batch.SetPoolFrom).
	PoolMask bool
}

// GPUOptions configure the CUDA and TensorRT execution providers (see
// gpu.GPUOptions).
type GPUOptions = gpu.GPUOptions

// Backend is an ONNX Runtime session whose graph ends in SPLADE pooling.
// It implements encode.Backend. Encode may be called from several goroutines.
type Backend struct {
	session    *ortgo.DynamicAdvancedSession
	info       *GraphInfo
	modelPath  string
	vocab      int
	inputNames []string
	closeOnce  sync.Once
	closeErr   error
}

var _ encode.Backend = (*Backend)(nil)

// environment reference-counts ONNX Runtime's process-wide environment,
// which onnxruntime_go keeps in package state: it is initialized by the
// first Open and destroyed by the last Close.
var environment struct {
	sync.Mutex
	refs    int
	library string
}

func acquireEnvironment(library string) error {
	environment.Lock()
	defer environment.Unlock()
	if environment.refs > 0 {
		if library != environment.library {
			return fmt.Errorf("ONNX Runtime is already loaded from %s; cannot also load %s in one process", environment.library, library)
		}
		environment.refs++
		return nil
	}
	ortgo.SetSharedLibraryPath(library)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("load ONNX Runtime from %s: %w", library, err)
	}
	environment.refs, environment.library = 1, library
	return nil
}

func releaseEnvironment() error {
	environment.Lock()
	defer environment.Unlock()
	environment.refs--
	if environment.refs > 0 {
		return nil
	}
	environment.refs = 0
	if err := ortgo.DestroyEnvironment(); err != nil {
		return fmt.Errorf("destroy ONNX Runtime environment: %w", err)
	}
	return nil
}

// Version returns the version of the loaded ONNX Runtime library.
func Version() string { return ortgo.GetVersion() }

// Open loads the model at modelPath (a model directory or .onnx file),
// appends SPLADE pooling to its graph and creates an ONNX Runtime session.
// It runs one tiny probe batch to learn the vocabulary width.
func Open(ctx context.Context, modelPath string, opts Options) (*Backend, error) {
	if err := checkProvider(opts.Provider); err != nil {
		return nil, err
	}
	if opts.LogitsOutput == "" {
		opts.LogitsOutput = "logits"
	}
	file, err := encode.ModelFile(modelPath)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", file, err)
	}
	// The rewritten model refers to the weights in the model file instead of
	// copying them, and the file's bytes are handed back to the OS before
	// ONNX Runtime reads the weights: loading then peaks at about one copy
	// of the weights (ONNX Runtime's) plus the file size, not four copies.
	appendPooling := AppendPoolingExternal
	if opts.PoolMask {
		appendPooling = AppendPoolingExternalMasked
	}
	rewritten, info, err := appendPooling(raw, filepath.Base(file), opts.LogitsOutput, opts.Pooling)
	raw = nil
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", file, err)
	}
	debug.FreeOSMemory()
	library, err := ResolveLibrary(opts.Library)
	if err != nil {
		return nil, err
	}
	if err := acquireEnvironment(library); err != nil {
		return nil, err
	}
	// The inputs are the ones the graph declares, in the order of
	// batchInputs (checkSpladeIO accepts no others).
	b := &Backend{info: info, modelPath: file}
	for _, name := range batchInputNames() {
		if _, ok := info.Input(name); ok {
			b.inputNames = append(b.inputNames, name)
		}
	}
	if err := b.createSession(rewritten, filepath.Dir(file), opts); err != nil {
		_ = releaseEnvironment()
		return nil, fmt.Errorf("model %s: %w", file, err)
	}
	if err := b.probe(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("model %s: %w", file, err)
	}
	return b, nil
}

func (b *Backend) createSession(model []byte, dir string, opts Options) error {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("session options: %w", err)
	}
	defer so.Destroy()
	level, err := optimizationLevel(opts.OptLevel)
	if err != nil {
		return err
	}
	if err := so.SetGraphOptimizationLevel(level); err != nil {
		return fmt.Errorf("set graph optimization level: %w", err)
	}
	if opts.DisableMemArena {
		if err := so.SetCpuMemArena(false); err != nil {
			return fmt.Errorf("disable the CPU memory arena: %w", err)
		}
	}
	if opts.DisableMemPattern {
		if err := so.SetMemPattern(false); err != nil {
			return fmt.Errorf("disable memory patterns: %w", err)
		}
	}
	if opts.DisableSpinning {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return fmt.Errorf("disable intra-op spinning: %w", err)
		}
	}
	if opts.ProfilePrefix != "" {
		if err := so.EnableProfiling(opts.ProfilePrefix); err != nil {
			return fmt.Errorf("enable profiling to %s: %w", opts.ProfilePrefix, err)
		}
	}
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return fmt.Errorf("set intra-op threads: %w", err)
		}
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return fmt.Errorf("set inter-op threads: %w", err)
	}
	if err := appendProvider(so, opts.Provider, opts.GPU, b.inputNames); err != nil {
		return err
	}
	// The session is created from bytes, so tell ONNX Runtime where external
	// weight files (models over 2 GB) resolve: beside model.onnx.
	if err := so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", dir); err != nil {
		return fmt.Errorf("set external data folder: %w", err)
	}
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, b.inputNames, []string{PooledOutput}, so)
	if err != nil {
		if isGPU(opts.Provider) && providerLoadFailure(err) {
			return providerError(opts.Provider, err)
		}
		return fmt.Errorf("create ONNX Runtime session: %w", err)
	}
	b.session = s
	return nil
}

// optimizationLevel maps Options.OptLevel to ONNX Runtime's level.
func optimizationLevel(name string) (ortgo.GraphOptimizationLevel, error) {
	switch name {
	case "", "all":
		return ortgo.GraphOptimizationLevelEnableAll, nil
	case "extended":
		return ortgo.GraphOptimizationLevelEnableExtended, nil
	case "basic":
		return ortgo.GraphOptimizationLevelEnableBasic, nil
	case "disabled":
		return ortgo.GraphOptimizationLevelDisableAll, nil
	}
	return 0, fmt.Errorf("graph optimization level %q: want all, extended, basic or disabled", name)
}

// probe runs a batch of one two-token sequence and records the width of the
// pooled output.
func (b *Backend) probe(ctx context.Context) error {
	batch := encode.NewBatch([][]int32{{0, 0}}, 0)
	if _, ok := b.info.Input(PoolMaskInput); ok {
		batch.SetPoolFrom([]int{0})
	}
	inputs, err := b.inputTensors(batch)
	if err != nil {
		return err
	}
	defer destroyAll(inputs)
	outputs := []ortgo.Value{nil}
	if err := b.run(ctx, inputs, outputs); err != nil {
		return fmt.Errorf("probe run: %w", err)
	}
	defer destroyAll(outputs)
	shape := outputs[0].GetShape()
	if len(shape) != 2 || shape[0] != 1 || shape[1] <= 0 {
		return fmt.Errorf("%w: pooled output has shape %v, want [1, vocab]", ErrBadModel, shape)
	}
	b.vocab = int(shape[1])
	return nil
}

// VocabSize is the width of the model's logits.
func (b *Backend) VocabSize() int { return b.vocab }

// Info describes the model's graph after the rewrite.
func (b *Backend) Info() *GraphInfo { return b.info }

// Encode implements encode.Backend.
func (b *Backend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	if batch.Size == 0 {
		return nil
	}
	need := batch.Size * b.vocab
	if len(out) < need {
		return fmt.Errorf("output buffer holds %d floats, batch needs %d", len(out), need)
	}
	inputs, err := b.inputTensors(batch)
	if err != nil {
		return err
	}
	defer destroyAll(inputs)
	pooled, err := ortgo.NewTensor(ortgo.NewShape(int64(batch.Size), int64(b.vocab)), out[:need])
	if err != nil {
		return fmt.Errorf("output tensor: %w", err)
	}
	outputs := []ortgo.Value{pooled}
	defer destroyAll(outputs)
	if err := b.run(ctx, inputs, outputs); err != nil {
		if ctx.Err() == nil && outOfMemory(err) {
			return fmt.Errorf("%w: %w", encode.ErrOutOfMemory, err)
		}
		return err
	}
	return nil
}

// batchInputNames are the model inputs a Backend can feed, in the order it
// feeds them; batchInputs gives their data.
func batchInputNames() []string {
	return []string{"input_ids", "attention_mask", "token_type_ids", "position_ids", PoolMaskInput}
}

// batchInputs returns the data of the input name from batch.
func batchInputs(batch *encode.Batch, name string) []int64 {
	switch name {
	case "input_ids":
		return batch.InputIDs
	case "attention_mask":
		return batch.AttentionMask
	case "token_type_ids":
		return batch.TokenTypeIDs
	case "position_ids":
		return batch.PositionIDs
	case PoolMaskInput:
		return batch.PoolMask
	}
	return nil
}

func (b *Backend) inputTensors(batch *encode.Batch) ([]ortgo.Value, error) {
	shape := ortgo.NewShape(int64(batch.Size), int64(batch.SeqLen))
	values := make([]ortgo.Value, 0, len(b.inputNames))
	for i, name := range b.inputNames {
		d := batchInputs(batch, name)
		if n := batch.Size * batch.SeqLen; len(d) < n {
			destroyAll(values)
			return nil, fmt.Errorf("input %s: the batch holds %d values, want %d (%d rows × %d positions)", name, len(d), n, batch.Size, batch.SeqLen)
		}
		t, err := ortgo.NewTensor(shape, d[:batch.Size*batch.SeqLen])
		if err != nil {
			destroyAll(values)
			return nil, fmt.Errorf("input tensor %s: %w", b.inputNames[i], err)
		}
		values = append(values, t)
	}
	return values, nil
}

// run executes the session, terminating it cooperatively when ctx is
// cancelled; it always waits for the native call to return.
func (b *Backend) run(ctx context.Context, inputs, outputs []ortgo.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ro, err := ortgo.NewRunOptions()
	if err != nil {
		return fmt.Errorf("run options: %w", err)
	}
	defer ro.Destroy()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			_ = ro.Terminate()
		case <-done:
		}
	}()
	err = b.session.RunWithOptions(inputs, outputs, ro)
	close(done)
	<-stopped
	if ctx.Err() != nil {
		return fmt.Errorf("onnx runtime run: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("onnx runtime run: %w", err)
	}
	return nil
}

// Close destroys the session and releases the environment.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		if b.session != nil {
			b.closeErr = b.session.Destroy()
		}
		b.closeErr = errors.Join(b.closeErr, releaseEnvironment())
	})
	return b.closeErr
}

func destroyAll(vs []ortgo.Value) {
	for _, v := range vs {
		if v != nil {
			_ = v.Destroy()
		}
	}
}
