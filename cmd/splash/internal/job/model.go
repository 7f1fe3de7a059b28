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
	"os"
	"path/filepath"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/gpu/ort"
	"github.com/splash-encode/splash/shards"
)

// ErrBadInput marks failures caused by the input data or the model files
// (retrying will not help); the CLI maps it to its own exit code.
var ErrBadInput = errors.New("bad input")

// DefaultMaxLength is used when the model's config.json does not say.
const DefaultMaxLength = 512

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

// Model is a loaded SPLADE model: tokenizer, backend and the identity of the
// files they came from.
type Model struct {
	Dir             string
	Tokenizer       *tokenizer.Tokenizer
	Backend         encode.Backend
	MaxLength       int
	Pooling         encode.Pooling
	ModelFile       string
	ModelSHA256     string
	TokenizerSHA256 string
}

// Close releases the backend.
func (m *Model) Close() error { return m.Backend.Close() }

// modelConfig is the part of a Hugging Face config.json splash reads.
type modelConfig struct {
	MaxPositionEmbeddings int    `json:"max_position_embeddings"`
	ModelType             string `json:"model_type"`
	VocabSize             int    `json:"vocab_size"`
}

// OpenModel loads the model directory dir: tokenizer.json, config.json (if
// present) and model.onnx (or onnx/model.onnx), and checks that they agree.
func OpenModel(ctx context.Context, dir string, opts ModelOptions) (*Model, error) {
	modelFile, err := ort.ModelFile(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	tokPath := filepath.Join(dir, "tokenizer.json")
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	cfg, err := readModelConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	maxLength, err := chooseMaxLength(opts.MaxLength, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if err := tok.ValidateMaxLength(maxLength); err != nil {
		return nil, fmt.Errorf("%w: max length: %w", ErrBadInput, err)
	}
	modelSum, _, err := shards.FileSHA256(modelFile)
	if err != nil {
		return nil, err
	}
	tokSum, _, err := shards.FileSHA256(tokPath)
	if err != nil {
		return nil, err
	}
	backend, err := ort.Open(ctx, dir, ort.Options{
		Library: opts.Library, Pooling: opts.Pooling, IntraOpThreads: opts.Threads,
		ProfilePrefix: opts.Session.ProfilePrefix, DisableMemArena: opts.Session.DisableMemArena, DisableSpinning: opts.Session.DisableSpinning,
		DisableMemPattern: opts.Session.DisableMemPattern, OptLevel: opts.Session.OptLevel,
	})
	if err != nil {
		if errors.Is(err, ort.ErrBadModel) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		return nil, err
	}
	if backend.VocabSize() != tok.VocabSize() {
		_ = backend.Close()
		return nil, fmt.Errorf("%w: vocabulary size disagrees: %s has %d ids but %s outputs logits over %d",
			ErrBadInput, tokPath, tok.VocabSize(), modelFile, backend.VocabSize())
	}
	return &Model{
		Dir: dir, Tokenizer: tok, Backend: backend, MaxLength: maxLength, Pooling: opts.Pooling,
		ModelFile: modelFile, ModelSHA256: modelSum, TokenizerSHA256: tokSum,
	}, nil
}

func readModelConfig(path string) (modelConfig, error) {
	var cfg modelConfig
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

func chooseMaxLength(requested int, cfg modelConfig) (int, error) {
	limit := cfg.MaxPositionEmbeddings
	switch {
	case requested < 0:
		return 0, fmt.Errorf("--max-length %d must be positive", requested)
	case requested == 0 && limit > 0:
		return min(limit, DefaultMaxLength), nil
	case requested == 0:
		return DefaultMaxLength, nil
	case limit > 0 && requested > limit:
		return 0, fmt.Errorf("--max-length %d exceeds the model's max_position_embeddings %d", requested, limit)
	default:
		return requested, nil
	}
}
