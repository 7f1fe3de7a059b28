package encode

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/splash-encode/splash/encode/tokenizer"
)

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

// ModelOptions configures LoadModel.
type ModelOptions struct {
	// MaxLength truncates documents to this many tokens, specials included;
	// 0 means the model's max_position_embeddings, at most 512.
	MaxLength int
	Pooling   Pooling
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

// ModelShape is what a device memory estimate needs of a model, read from
// config.json under the names of the BERT, DistilBERT and GPT-2 families
// (0 where the file does not say).
type ModelShape struct {
	Vocab, Hidden, Heads, Intermediate, MaxLength int
	// WeightBytes is the size of the model file.
	WeightBytes uint64
}

// Model is a SPLADE model directory as splash reads it: the tokenizer, the
// max length and pooling, the identity of its files and, once Attach gave
// them, the backends that run it (one per device). A bag-of-tokens model
// holds its Bag backend from the start.
type Model struct {
	Dir       string
	Tokenizer *tokenizer.Tokenizer
	// Backend is Backends[0]; it answers VocabSize and single-session uses.
	Backend Backend
	// Backends holds one backend per device in use, or the one CPU session.
	Backends []Backend
	// Shape is what the device memory estimate needs of the model.
	Shape           ModelShape
	MaxLength       int
	Pooling         Pooling
	ModelFile       string // "" for bags
	ModelSHA256     string // of the model file (of a sharded checkpoint: of its index and every shard); of the IDF file for IDF bags; "" for plain bags
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

// LoadModel reads the description of the model directory dir:
// tokenizer.json, config.json and tokenizer_config.json (both optional),
// and the model file (model.onnx or onnx/model.onnx), whose sha256 it
// records. The model's backends are opened by the caller (package gpu's
// registry) and handed to Attach; a bag-of-tokens model (opts.Bag) needs
// no model file and gets its Bag backend here.
func LoadModel(dir string, opts ModelOptions) (*Model, error) {
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
	cfg, err := ReadOptionalJSON[modelConfig](filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	tokCfg, err := ReadOptionalJSON[tokenizerConfig](filepath.Join(dir, "tokenizer_config.json"))
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
	tokSum, err := fileSHA256(tokPath)
	if err != nil {
		return nil, err
	}
	if opts.Bag != nil {
		return loadBag(tok, tokSum, dir, maxLength, opts)
	}
	modelFile, err := ModelFile(dir)
	sharded := false
	if errors.Is(err, fs.ErrNotExist) {
		// A Hugging Face checkpoint without an ONNX export: splash's CUDA
		// engine reads model.safetensors, or the shards that
		// model.safetensors.index.json lists (the CPU engine needs the
		// export and says so when it opens).
		if p := filepath.Join(dir, SafeTensorsFile); fileExists(p) {
			modelFile, err = p, nil
		} else if p := filepath.Join(dir, SafeTensorsIndexFile); fileExists(p) {
			modelFile, err, sharded = p, nil, true
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	var modelSum string
	var weights uint64
	if sharded {
		sum, size, err := shardedCheckpoint(modelFile)
		if err != nil {
			return nil, err
		}
		modelSum, weights = sum, uint64(size)
	} else {
		if modelSum, err = fileSHA256(modelFile); err != nil {
			return nil, err
		}
		if st, err := os.Stat(modelFile); err == nil {
			weights = uint64(st.Size())
		}
	}
	hidden, heads, inter := cfg.shape()
	return &Model{
		Dir: dir, Tokenizer: tok, MaxLength: maxLength, Pooling: opts.Pooling,
		Shape:     ModelShape{Vocab: tok.VocabSize(), Hidden: hidden, Heads: heads, Intermediate: inter, MaxLength: maxLength, WeightBytes: weights},
		ModelFile: modelFile, ModelSHA256: modelSum, TokenizerSHA256: tokSum,
		Role: roleOrDefault(opts.Role), Echo: opts.Echo,
	}, nil
}

// Attach hands the model the backends that run it (one per device, or the
// one CPU session) after checking that their logits cover the tokenizer's
// vocabulary. On error the backends are closed.
func (m *Model) Attach(backends []Backend) error {
	if len(backends) == 0 {
		return fmt.Errorf("attach %s: no backend", m.Dir)
	}
	if v := backends[0].VocabSize(); v != m.Tokenizer.VocabSize() {
		for _, b := range backends {
			_ = b.Close()
		}
		return fmt.Errorf("%w: vocabulary size disagrees: %s has %d ids but %s outputs logits over %d",
			ErrBadInput, filepath.Join(m.Dir, "tokenizer.json"), m.Tokenizer.VocabSize(), m.ModelFile, v)
	}
	m.Backends, m.Backend = backends, backends[0]
	m.Shape.Vocab = m.Backend.VocabSize()
	return nil
}

func roleOrDefault(role string) string {
	if role == "" {
		return RoleDocument
	}
	return role
}

// ReadOptionalJSON reads the JSON file at path into a T; a missing file
// gives T's zero value (config.json and tokenizer_config.json are optional).
func ReadOptionalJSON[T any](path string) (T, error) {
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

// fileSHA256 returns the hex sha256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// EncoderKind names how texts become vectors: "model", "model+echo", "bag"
// or "bag+idf".
func (m *Model) EncoderKind() string {
	switch {
	case m.Bag && m.BagIDF != "":
		return "bag+idf"
	case m.Bag:
		return "bag"
	case m.Echo:
		return "model+echo"
	default:
		return "model"
	}
}
