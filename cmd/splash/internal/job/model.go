// Package job wires splash's packages into the encoding job that the CLI
// runs: it loads a model directory (tokenizer + ONNX Runtime backend), streams
// input shards through tokenization, length-bucketed batching, the backend and
// sparsification, and writes impact shards with their manifests.
package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/ort"
	"github.com/splash-encode/splash/shards"
)

// ErrBadInput marks failures caused by the input data or the model files
// (retrying will not help); the CLI maps it to its own exit code.
var ErrBadInput = errors.New("bad input")

// DefaultMaxLength is used when the model's config.json does not say.
const DefaultMaxLength = 512

// DefaultQueryMaxLength is the max length of --role query when none is
// asked for: queries are short, and SPLADE's query encoders are trained at 64.
const DefaultQueryMaxLength = 64

// Roles of an encoding run.
const (
	RoleDocument = "document"
	RoleQuery    = "query"
)

// ModelOptions configures OpenModel.
type ModelOptions struct {
	// MaxLength truncates documents to this many tokens, specials included;
	// 0 means the model's max_position_embeddings, at most 512.
	MaxLength int
	Pooling   encode.Pooling
	// Threads bounds ONNX Runtime's intra-op threads (0: all cores).
	Threads int
	// Library overrides the ONNX Runtime shared library path.
	Library string
	// Session holds ONNX Runtime session settings for experiments
	// (profiling, memory arena, optimization level); zero is the default.
	Session SessionTuning
	// Hardware says where the model runs; zero is the CPU.
	Hardware Hardware
	// Log receives the warning of an auto fallback to the CPU; nil
	// discards it.
	Log *slog.Logger
	// Role is RoleDocument ("" too) or RoleQuery, which only changes the
	// default max length (DefaultQueryMaxLength).
	Role string
	// Echo feeds every text twice and pools only the second copy's
	// positions (the echo variant of causal LLM encoders): each copy gets
	// half of the max length.
	Echo bool
	// Bag, when set, encodes without a model: each text's vector is its
	// bag of distinct token ids (queries of SPLADE-doc and inference-free
	// SPLADE). The directory then needs only the tokenizer files.
	Bag *BagOptions
}

// BagOptions configure model-free bag-of-tokens encoding.
type BagOptions struct {
	// IDFPath, when set, gives each token its weight from a file (see
	// ReadIDF); tokens missing from it are left out of bags. Empty: every
	// token weighs 1.
	IDFPath string
}

// Hardware is where a model runs.
type Hardware struct {
	// Device selects the CPU, GPUs, or either (auto); the zero value is
	// the CPU.
	Device gpu.Selection
	// Provider is the GPU execution provider: "cuda" (also "") or
	// "tensorrt".
	Provider string
	// GPU holds the GPU provider settings; DeviceID is set per device.
	GPU ort.GPUOptions
	// Discover finds the GPUs; nil means gpu.Discover. Tests replace it.
	Discover func(context.Context) gpu.Discovery
	// Open opens one session; nil means gpu/ort's Open. Tests replace it
	// to stand in for GPUs.
	Open func(ctx context.Context, dir string, opts ort.Options) (encode.Backend, error)
}

// SessionTuning are ONNX Runtime session settings that `splash model bench`
// exposes for measuring their effect (see gpu/ort.Options).
type SessionTuning struct {
	ProfilePrefix     string
	DisableMemArena   bool
	DisableSpinning   bool
	DisableMemPattern bool
	OptLevel          string
}

// Model is a loaded SPLADE model: tokenizer, backends and the identity of
// the files they came from.
type Model struct {
	Dir       string
	Tokenizer *tokenizer.Tokenizer
	// Backend is Backends[0]; it answers VocabSize and single-session uses.
	Backend encode.Backend
	// Backends holds one session per GPU in use (each splits a batch that
	// runs out of device memory), or the one CPU session.
	Backends []encode.Backend
	// Devices are the GPUs in use, in the order of Backends; nil on the CPU.
	Devices []gpu.Device
	// Fallback says why --device auto runs on the CPU ("" otherwise).
	Fallback string
	// Shape is what the device memory estimate needs of the model.
	Shape           gpu.ModelShape
	MaxLength       int
	Pooling         encode.Pooling
	ModelFile       string // "" for bags
	ModelSHA256     string // of the model file; of the IDF file for IDF bags; "" for plain bags
	TokenizerSHA256 string
	// Role, Echo and Bag are the ModelOptions the model was opened with;
	// BagIDF is the IDF file of an IDF bag.
	Role   string
	Echo   bool
	Bag    bool
	BagIDF string
}

// Close releases the backends.
func (m *Model) Close() error {
	var errs []error
	for _, b := range m.Backends {
		errs = append(errs, b.Close())
	}
	return errors.Join(errs...)
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

// modelConfig is the part of a Hugging Face config.json splash reads,
// under the names of the BERT, DistilBERT and GPT-2 families (Llama and
// Mistral use BERT's names).
type modelConfig struct {
	MaxPositionEmbeddings int    `json:"max_position_embeddings"`
	NPositions            int    `json:"n_positions"` // GPT-2
	ModelType             string `json:"model_type"`
	VocabSize             int    `json:"vocab_size"`
	PadTokenID            *int   `json:"pad_token_id"`
	HiddenSize            int    `json:"hidden_size"`
	NEmbd                 int    `json:"n_embd"` // GPT-2
	Dim                   int    `json:"dim"`    // DistilBERT
	NumAttentionHeads     int    `json:"num_attention_heads"`
	NHead                 int    `json:"n_head"`  // GPT-2
	NHeads                int    `json:"n_heads"` // DistilBERT
	IntermediateSize      int    `json:"intermediate_size"`
	NInner                int    `json:"n_inner"`    // GPT-2 (null: 4 × n_embd)
	HiddenDim             int    `json:"hidden_dim"` // DistilBERT
}

// firstPositive returns the first of vs above 0, or 0.
func firstPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// shape returns the sizes the device memory estimate needs.
func (c modelConfig) shape() (hidden, heads, intermediate int) {
	hidden = firstPositive(c.HiddenSize, c.NEmbd, c.Dim)
	heads = firstPositive(c.NumAttentionHeads, c.NHead, c.NHeads)
	intermediate = firstPositive(c.IntermediateSize, c.NInner, c.HiddenDim, 4*hidden)
	return hidden, heads, intermediate
}

// positionsAfterPadding reports the model types whose position ids start
// after the padding id (HF create_position_ids_from_input_ids): of their
// max_position_embeddings, pad_token_id + 1 are not usable.
func positionsAfterPadding(modelType string) bool {
	switch modelType {
	case "roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text":
		return true
	}
	return false
}

// positionLimit is how many tokens the model's position embeddings cover
// (0: the config does not say).
func (c modelConfig) positionLimit() int {
	limit := firstPositive(c.MaxPositionEmbeddings, c.NPositions)
	if limit > 0 && positionsAfterPadding(c.ModelType) {
		pad := 1
		if c.PadTokenID != nil {
			pad = *c.PadTokenID
		}
		limit -= pad + 1
	}
	return limit
}

// tokenizerConfig is the part of tokenizer_config.json splash reads.
type tokenizerConfig struct {
	// ModelMaxLength is HF's model_max_length; files without a limit hold
	// a huge number (int(1e30)), which is ignored.
	ModelMaxLength float64 `json:"model_max_length"`
}

// maxLengthLimits gathers what the model directory says about lengths.
type maxLengthLimits struct {
	positions int    // usable position embeddings (config.json); 0: unknown
	tokenizer int    // tokenizer_config.json model_max_length; 0: none
	role      string // RoleQuery defaults to DefaultQueryMaxLength
}

// OpenModel loads the model directory dir: tokenizer.json, config.json (if
// present) and model.onnx (or onnx/model.onnx), and checks that they agree.
func OpenModel(ctx context.Context, dir string, opts ModelOptions) (*Model, error) {
	switch opts.Role {
	case "", RoleDocument, RoleQuery:
	default:
		return nil, fmt.Errorf("%w: role %q: want %s or %s", ErrSettings, opts.Role, RoleDocument, RoleQuery)
	}
	if opts.Bag != nil && opts.Echo {
		return nil, fmt.Errorf("%w: bag-of-tokens encoding runs no model: echo does not apply", ErrSettings)
	}
	tokPath := filepath.Join(dir, "tokenizer.json")
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	cfg, err := readOptionalJSON[modelConfig](filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	tokCfg, err := readOptionalJSON[tokenizerConfig](filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	limits := maxLengthLimits{positions: cfg.positionLimit(), role: opts.Role}
	if tokCfg.ModelMaxLength > 0 && tokCfg.ModelMaxLength < 1<<30 {
		limits.tokenizer = int(tokCfg.ModelMaxLength)
	}
	if opts.Bag != nil {
		limits.positions = 0 // no model: no position embeddings to respect
	}
	maxLength, err := chooseMaxLength(opts.MaxLength, limits)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if err := tok.ValidateMaxLength(maxLength); err != nil {
		return nil, fmt.Errorf("%w: max length: %w", ErrBadInput, err)
	}
	if opts.Echo && (maxLength-tok.NumSpecialTokens())/2 < 1 {
		return nil, fmt.Errorf("%w: max length %d leaves no room for two copies of a text besides %d special tokens", ErrSettings, maxLength, tok.NumSpecialTokens())
	}
	tokSum, _, err := shards.FileSHA256(tokPath)
	if err != nil {
		return nil, err
	}
	if opts.Bag != nil {
		return openBag(tok, tokSum, dir, maxLength, opts)
	}
	modelFile, err := ort.ModelFile(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	modelSum, _, err := shards.FileSHA256(modelFile)
	if err != nil {
		return nil, err
	}
	base := ort.Options{
		Library: opts.Library, Pooling: opts.Pooling, IntraOpThreads: opts.Threads, PoolMask: opts.Echo,
		ProfilePrefix: opts.Session.ProfilePrefix, DisableMemArena: opts.Session.DisableMemArena, DisableSpinning: opts.Session.DisableSpinning,
		DisableMemPattern: opts.Session.DisableMemPattern, OptLevel: opts.Session.OptLevel,
	}
	if opts.Hardware.GPU.MaxSeqLen == 0 {
		opts.Hardware.GPU.MaxSeqLen = maxLength
	}
	backends, devices, fallback, err := openBackends(ctx, dir, base, opts)
	if err != nil {
		if errors.Is(err, ort.ErrBadModel) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		return nil, err
	}
	backend := backends[0]
	if backend.VocabSize() != tok.VocabSize() {
		for _, b := range backends {
			_ = b.Close()
		}
		return nil, fmt.Errorf("%w: vocabulary size disagrees: %s has %d ids but %s outputs logits over %d",
			ErrBadInput, tokPath, tok.VocabSize(), modelFile, backend.VocabSize())
	}
	var weights uint64
	if st, err := os.Stat(modelFile); err == nil {
		weights = uint64(st.Size())
	}
	hidden, heads, inter := cfg.shape()
	return &Model{
		Dir: dir, Tokenizer: tok, Backend: backend, Backends: backends, Devices: devices, Fallback: fallback, MaxLength: maxLength, Pooling: opts.Pooling,
		Shape: gpu.ModelShape{
			Vocab: backend.VocabSize(), Hidden: hidden, Heads: heads, Intermediate: inter,
			MaxLength: maxLength, WeightBytes: weights,
		},
		ModelFile: modelFile, ModelSHA256: modelSum, TokenizerSHA256: tokSum,
		Role: roleOrDefault(opts.Role), Echo: opts.Echo,
	}, nil
}

func roleOrDefault(role string) string {
	if role == "" {
		return RoleDocument
	}
	return role
}

// readOptionalJSON reads the JSON file at path into a T; a missing file
// gives T's zero value (config.json and tokenizer_config.json are optional).
func readOptionalJSON[T any](path string) (T, error) {
	var cfg T
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("parse %s: %w", path, err)
	}
	return cfg, nil
}

// chooseMaxLength resolves --max-length: a request stands unless it
// exceeds the model's position embeddings; 0 takes the role's default
// (DefaultMaxLength, or DefaultQueryMaxLength for queries), lowered to the
// position limit and to the tokenizer's model_max_length.
func chooseMaxLength(requested int, l maxLengthLimits) (int, error) {
	limit := l.positions
	switch {
	case requested < 0:
		return 0, fmt.Errorf("--max-length %d must be positive", requested)
	case requested == 0:
		n := DefaultMaxLength
		if l.role == RoleQuery {
			n = DefaultQueryMaxLength
		}
		if limit > 0 {
			n = min(n, limit)
		}
		if l.tokenizer > 0 {
			n = min(n, l.tokenizer)
		}
		return n, nil
	case limit > 0 && requested > limit:
		return 0, fmt.Errorf("--max-length %d exceeds the model's %d positions (config.json max_position_embeddings or n_positions)", requested, limit)
	default:
		return requested, nil
	}
}

// openBackends opens the model on the devices opts selects: one CPU session,
// or one session per GPU, each wrapped to split batches that run out of
// device memory. --device auto falls back to the CPU, with one warning,
// when no GPU is found or ONNX Runtime cannot load its GPU provider, and
// returns why; --device cuda fails instead.
func openBackends(ctx context.Context, dir string, base ort.Options, opts ModelOptions) (backends []encode.Backend, devices []gpu.Device, fallback string, err error) {
	hw := opts.Hardware
	open := hw.Open
	if open == nil {
		open = func(ctx context.Context, dir string, opts ort.Options) (encode.Backend, error) {
			b, err := ort.Open(ctx, dir, opts)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return b, nil
		}
	}
	// openCPU opens the CPU session; for an auto fallback it logs the
	// warning with the whole reason and returns its short form.
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	openCPU := func(short, why string) ([]encode.Backend, []gpu.Device, string, error) {
		if why != "" {
			log.Warn("--device auto: encoding on the CPU", slog.String("reason", why))
		}
		b, err := open(ctx, dir, base)
		if err != nil {
			return nil, nil, "", err
		}
		return []encode.Backend{b}, nil, short, nil
	}
	sel := hw.Device
	if sel.Kind == gpu.CPU {
		return openCPU("", "")
	}
	found := discover(ctx, hw)
	devices, err = sel.Pick(found.Devices)
	if err != nil {
		if found.Note != "" {
			err = fmt.Errorf("%w (%s)", err, found.Note)
		}
		if sel.Kind == gpu.Auto {
			why := strings.TrimPrefix(err.Error(), "--device auto: ")
			return openCPU(why, why)
		}
		return nil, nil, "", err
	}
	provider := hw.Provider
	if provider == "" {
		provider = "cuda"
	}
	closeAll := func() {
		for _, b := range backends {
			_ = b.Close()
		}
	}
	for _, d := range devices {
		o := base
		o.Provider = provider
		o.GPU = hw.GPU
		o.GPU.DeviceID = d.Index
		b, err := open(ctx, dir, o)
		if err != nil {
			closeAll()
			if sel.Kind == gpu.Auto && errors.Is(err, ort.ErrProviderUnavailable) {
				short := "found " + d.String() + " but ONNX Runtime cannot load its " + provider + " execution provider"
				return openCPU(short, short+": "+err.Error())
			}
			return nil, nil, "", fmt.Errorf("open the model on %s: %w", d, err)
		}
		name := d.String()
		backends = append(backends, encode.NewSplitOnOOM(b, func(docs, seqLen int) {
			log.Warn("a batch ran out of GPU memory: splitting it in two and retrying (later batches this large are split first)",
				slog.String("device", name), slog.Int("documents", docs), slog.Int("seq_len", seqLen))
		}))
	}
	return backends, devices, "", nil
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
// least free memory holds by gpu.BatchTokens (its minimum when the free
// memory is unknown).
func (m *Model) BatchTokens(requested int) int {
	if requested > 0 {
		return requested
	}
	if len(m.Devices) == 0 {
		return max(CPUBatchTokens, m.MaxLength)
	}
	free := m.Devices[0].FreeMemory
	for _, d := range m.Devices[1:] {
		free = min(free, d.FreeMemory)
	}
	return gpu.BatchTokens(free, m.Shape)
}
