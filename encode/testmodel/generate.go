package testmodel

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/safetensors"
)

// File names inside a model directory.
const (
	ModelFile     = "model.onnx"
	TokenizerFile = "tokenizer.json"
	ConfigFile    = "config.json"
	// SafeTensorsFile is written with Config.SafeTensors.
	SafeTensorsFile = "model.safetensors"
)

// Producer is written as the ONNX producer name.
const Producer = "splash-testmodel"

// maxProtoBytes is the protobuf size limit of a single ONNX file.
const maxProtoBytes = 1<<31 - 1

// Generate writes a model directory like an optimum fill-mask export: model.onnx
// (the masked-LM of cfg.Arch, BERT by default, with deterministic random
// weights), tokenizer.json (a byte-for-byte copy of tokenizerJSON, which
// also fixes the vocabulary size) and a Hugging Face style config.json;
// with cfg.SafeTensors also model.safetensors (and with cfg.SkipONNX no
// model.onnx). A model.safetensors or model.onnx left in dir by an earlier
// Generate that this cfg does not write is removed, so that the directory
// never holds weights of two models. Each
// file is written to a temporary name and renamed into place. The same cfg
// and tokenizer always give byte-identical files on a given architecture.
// A RoBERTa model needs a tokenizer whose <pad> is id 1 (the padding id its
// graph computes positions with), such as RobertaTokenizerJSON's.
func Generate(dir string, cfg Config, tokenizerJSON string) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	tok, vocab, err := readTokenizer(tokenizerJSON)
	if err != nil {
		return err
	}
	if cfg.Arch == ArchRoBERTa {
		if id, ok := vocabID(tok, "<pad>"); !ok || id != robertaPadID {
			return fmt.Errorf("%w: a RoBERTa model needs a tokenizer whose <pad> is id %d (%s: found %v, id %d)",
				ErrConfig, robertaPadID, tokenizerJSON, ok, id)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testmodel: create model directory: %w", err)
	}
	if cfg.SkipONNX {
		if err := removeStale(dir, ModelFile); err != nil {
			return err
		}
	} else if err := writeAtomic(dir, ModelFile, func(w io.Writer) error { return writeModel(w, cfg, vocab) }); err != nil {
		return err
	}
	if cfg.SafeTensors {
		if err := writeAtomic(dir, SafeTensorsFile, func(w io.Writer) error { return writeSafeTensors(w, cfg, vocab) }); err != nil {
			return err
		}
	} else if err := removeStale(dir, SafeTensorsFile); err != nil {
		return err
	}
	if err := writeAtomic(dir, TokenizerFile, func(w io.Writer) error {
		_, err := w.Write(tok)
		return err
	}); err != nil {
		return err
	}
	conf, err := configJSON(cfg, vocab)
	if err != nil {
		return err
	}
	if err := writeAtomic(dir, ConfigFile, func(w io.Writer) error {
		_, err := w.Write(conf)
		return err
	}); err != nil {
		return err
	}
	return syncDir(dir)
}

// readTokenizer reads a tokenizer.json and its vocabulary size.
func readTokenizer(path string) ([]byte, int, error) {
	tok, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("testmodel: read tokenizer: %w", err)
	}
	vocab, err := VocabSize(tok)
	if err != nil {
		return nil, 0, fmt.Errorf("testmodel: %s: %w", path, err)
	}
	return tok, vocab, nil
}

// VocabSize returns max id + 1 over the vocabulary ("model.vocab", either a
// token->id object or a Unigram [token, score] list) and "added_tokens" of a
// tokenizer.json.
func VocabSize(tokenizerJSON []byte) (int, error) {
	var tj struct {
		Model struct {
			Vocab json.RawMessage `json:"vocab"`
		} `json:"model"`
		AddedTokens []struct {
			ID int `json:"id"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(tokenizerJSON, &tj); err != nil {
		return 0, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	n := 0
	var byToken map[string]int
	if err := json.Unmarshal(tj.Model.Vocab, &byToken); err == nil {
		for _, id := range byToken {
			if id < 0 {
				return 0, fmt.Errorf("tokenizer.json: negative id %d in model.vocab", id)
			}
			n = max(n, id+1)
		}
	} else {
		var list []json.RawMessage
		if err := json.Unmarshal(tj.Model.Vocab, &list); err != nil {
			return 0, fmt.Errorf("tokenizer.json: model.vocab is neither an object nor a list")
		}
		n = len(list)
	}
	for _, t := range tj.AddedTokens {
		if t.ID < 0 {
			return 0, fmt.Errorf("tokenizer.json: negative id %d in added_tokens", t.ID)
		}
		n = max(n, t.ID+1)
	}
	if n == 0 {
		return 0, fmt.Errorf("tokenizer.json: empty vocabulary")
	}
	return n, nil
}

// vocabID returns the id of token in a tokenizer.json's added_tokens or
// model.vocab (a token -> id object).
func vocabID(tokenizerJSON []byte, token string) (int, bool) {
	var tj struct {
		Model struct {
			Vocab json.RawMessage `json:"vocab"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if json.Unmarshal(tokenizerJSON, &tj) != nil {
		return 0, false
	}
	for _, t := range tj.AddedTokens {
		if t.Content == token {
			return t.ID, true
		}
	}
	var byToken map[string]int
	if json.Unmarshal(tj.Model.Vocab, &byToken) == nil {
		id, ok := byToken[token]
		return id, ok
	}
	return 0, false
}

// testInfo is the "splash_test_model" block of config.json.
type testInfo struct {
	Seed  uint64 `json:"seed"`
	Opset int    `json:"opset"`
	// LogitsDType is "float16" for a Config.FP16 model.
	LogitsDType string `json:"logits_dtype,omitempty"`
	// SafeTensorsDType is the dtype of model.safetensors (Config.SafeTensors).
	SafeTensorsDType string `json:"safetensors_dtype,omitempty"`
	// OptimumNames marks a model.onnx whose dense weights are named as
	// optimum exports name them (Config.OptimumNames).
	OptimumNames bool `json:"optimum_names,omitempty"`
	// NoONNX marks a directory without model.onnx (Config.SkipONNX).
	NoONNX bool   `json:"no_onnx,omitempty"`
	Note   string `json:"note"`
}

func newTestInfo(cfg Config) testInfo {
	info := testInfo{Seed: cfg.Seed, Opset: cfg.Opset, Note: "random weights, not a trained model",
		OptimumNames: cfg.OptimumNames, NoONNX: cfg.SkipONNX}
	if cfg.FP16 {
		info.LogitsDType = "float16"
	}
	if cfg.SafeTensors {
		info.SafeTensorsDType = string(cfg.SafeTensorsDType)
	}
	return info
}

// torchDType is config.json's torch_dtype: the dtype of model.safetensors
// as PyTorch names it, written only with Config.SafeTensors (as
// save_pretrained does; "" omits it).
func torchDType(cfg Config) string {
	if !cfg.SafeTensors {
		return ""
	}
	switch cfg.SafeTensorsDType {
	case safetensors.F16:
		return "float16"
	case safetensors.BF16:
		return "bfloat16"
	}
	return "float32"
}

// configJSON returns config.json for cfg: a BertConfig, DistilBertConfig or
// RobertaConfig as Hugging Face writes it, plus the test-info block.
func configJSON(cfg Config, vocab int) ([]byte, error) {
	var c any
	switch cfg.Arch {
	case ArchDistilBERT:
		c = distilbertConfig(cfg, vocab)
	case ArchRoBERTa:
		c = robertaConfig(cfg, vocab)
	default:
		c = bertConfig(cfg, vocab)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testmodel: encode config.json: %w", err)
	}
	return append(b, '\n'), nil
}

// bertJSON is a Hugging Face BertConfig.
type bertJSON struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	IntermediateSize      int      `json:"intermediate_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	TypeVocabSize         int      `json:"type_vocab_size"`
	LayerNormEps          float64  `json:"layer_norm_eps"`
	HiddenAct             string   `json:"hidden_act"`
	PadTokenID            int      `json:"pad_token_id"`
	PositionEmbeddingType string   `json:"position_embedding_type"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	TorchDType            string   `json:"torch_dtype,omitempty"`
	SplashTestModel       testInfo `json:"splash_test_model"`
}

func bertConfig(cfg Config, vocab int) bertJSON {
	return bertJSON{
		Architectures:         []string{"BertForMaskedLM"},
		ModelType:             "bert",
		VocabSize:             vocab,
		HiddenSize:            cfg.Hidden,
		NumHiddenLayers:       cfg.Layers,
		NumAttentionHeads:     cfg.Heads,
		IntermediateSize:      cfg.Intermediate,
		MaxPositionEmbeddings: cfg.MaxPositions,
		TypeVocabSize:         cfg.TypeVocab,
		LayerNormEps:          layerNormEps,
		HiddenAct:             "gelu",
		PadTokenID:            padTokenID,
		PositionEmbeddingType: "absolute",
		TieWordEmbeddings:     true,
		TorchDType:            torchDType(cfg),
		SplashTestModel:       newTestInfo(cfg),
	}
}

// removeStale removes dir/name if it exists.
func removeStale(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("testmodel: remove stale %s: %w", name, err)
	}
	return nil
}

// writeAtomic writes dir/name through a temporary file in dir, fsyncs it and
// renames it into place; on failure the temporary file is removed.
func writeAtomic(dir, name string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("testmodel: create temporary file for %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return fmt.Errorf("testmodel: write %s: %w", name, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("testmodel: write %s: %w", name, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("testmodel: chmod %s: %w", name, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("testmodel: sync %s: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("testmodel: close %s: %w", name, err)
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("testmodel: rename %s into place: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("testmodel: open %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("testmodel: sync %s: %w", dir, err)
	}
	return nil
}

func tensorType(elem onnxpb.TensorProto_DataType, dims ...any) *onnxpb.TypeProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case string:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		case int:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		}
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}
}

// writeModel streams the ModelProto to w. The model without its weight
// initializers is marshalled with the protobuf library; each weight is then
// appended as a further GraphProto.initializer field (a TensorProto whose
// raw_data holds little-endian float32), so that no second in-memory copy of
// the weights is made. Protobuf parsers merge repeated fields in order, so
// the result is an ordinary ModelProto.
func writeModel(w io.Writer, cfg Config, vocab int) error {
	nodes, consts := buildGraph(cfg)
	logitsElem, logitsNote := onnxpb.TensorProto_FLOAT, ""
	if cfg.FP16 {
		logitsElem, logitsNote = onnxpb.TensorProto_FLOAT16, " logits=float16"
	}
	class := hfClass(cfg.Arch)
	model, graph := modelProto(class, cfg.Opset, nodes, consts, GraphInputs(cfg.Arch), logitsElem, vocab,
		fmt.Sprintf("splash test model: %s with random weights (not a trained model); "+
			"layers=%d hidden=%d heads=%d intermediate=%d seed=%d%s", class, cfg.Layers, cfg.Hidden, cfg.Heads, cfg.Intermediate, cfg.Seed, logitsNote))
	var renamed map[string]string
	if cfg.OptimumNames {
		renamed = optimumMatMulNames(cfg)
	}
	return streamModelProtoAs(w, model, graph, cfg.Seed, weightSpecs(cfg, vocab), renamed)
}

// writeSafeTensors streams model.safetensors: the weights of weightSpecs
// under their Hugging Face names in cfg.SafeTensorsDType, generated one
// tensor at a time.
func writeSafeTensors(w io.Writer, cfg Config, vocab int) error {
	specs := weightSpecs(cfg, vocab)
	infos := make([]safetensors.Info, len(specs))
	byName := make(map[string]tensorSpec, len(specs))
	for i, s := range specs {
		shape := make([]int, len(s.dims))
		for k, d := range s.dims {
			shape[k] = int(d)
		}
		infos[i] = safetensors.Info{Name: s.name, DType: cfg.SafeTensorsDType, Shape: shape}
		byName[s.name] = s
	}
	sw, err := safetensors.NewWriter(w, infos, map[string]string{"format": "pt"})
	if err != nil {
		return err
	}
	for _, info := range sw.Tensors() {
		raw := generateRaw(cfg.Seed, byName[info.Name])
		if info.DType == safetensors.F32 {
			err = sw.WriteTensor(info.Name, raw)
		} else {
			vals := make([]float32, len(raw)/4)
			for i := range vals {
				vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			err = sw.WriteFloat32(info.Name, vals)
		}
		if err != nil {
			return err
		}
	}
	return sw.Close()
}

// modelProto returns the ModelProto (without its graph) and the GraphProto
// (without its weights) of a generated model: graph name class, int64
// [batch, sequence] inputs, one logits output [batch, sequence, vocab] of
// logitsElem, the default domain at opset.
func modelProto(class string, opset int, nodes []*onnxpb.NodeProto, consts []*onnxpb.TensorProto, inputNames []string,
	logitsElem onnxpb.TensorProto_DataType, vocab int, doc string) (*onnxpb.ModelProto, *onnxpb.GraphProto) {
	inputs := make([]*onnxpb.ValueInfoProto, 0, len(inputNames))
	for _, name := range inputNames {
		inputs = append(inputs, &onnxpb.ValueInfoProto{Name: name, Type: tensorType(onnxpb.TensorProto_INT64, DimBatch, DimSequence)})
	}
	graph := &onnxpb.GraphProto{
		Name:        class,
		Node:        nodes,
		Initializer: consts,
		Input:       inputs,
		Output: []*onnxpb.ValueInfoProto{{
			Name: OutputLogits, Type: tensorType(logitsElem, DimBatch, DimSequence, vocab),
		}},
	}
	model := &onnxpb.ModelProto{
		IrVersion:       irVersion(opset),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: "", Version: int64(opset)}},
		ProducerName:    Producer,
		ProducerVersion: "1",
		DocString:       doc,
	}
	return model, graph
}

// streamModelProto writes model with graph as its graph and the float32
// initializers specs appended to the graph, for writeModel and writeCausalModel: the model
// and graph without the weights are marshalled with the protobuf library,
// and each weight follows as a further GraphProto.initializer field whose
// raw_data is generated row by row, so that no second in-memory copy of the
// weights is made. model.Graph must be nil.
func streamModelProto(w io.Writer, model *onnxpb.ModelProto, graph *onnxpb.GraphProto, seed uint64, specs []tensorSpec) error {
	return streamModelProtoAs(w, model, graph, seed, specs, nil)
}

// streamModelProtoAs is streamModelProto where the 2-D weights named in
// transposedAs are stored transposed ([in, out]) under the name they map
// to (Config.OptimumNames); their values are still generated from their
// own names, in the [out, in] layout.
func streamModelProtoAs(w io.Writer, model *onnxpb.ModelProto, graph *onnxpb.GraphProto, seed uint64, specs []tensorSpec,
	transposedAs map[string]string) error {
	opts := proto.MarshalOptions{Deterministic: true}
	modelHead, err := opts.Marshal(model)
	if err != nil {
		return fmt.Errorf("marshal model: %w", err)
	}
	graphHead, err := opts.Marshal(graph)
	if err != nil {
		return fmt.Errorf("marshal graph: %w", err)
	}
	heads := make([][]byte, len(specs))
	graphLen := len(graphHead)
	for i, s := range specs {
		name, dims := s.name, s.dims
		if as, ok := transposedAs[s.name]; ok {
			name, dims = as, []int64{s.dims[1], s.dims[0]}
		}
		th, err := opts.Marshal(&onnxpb.TensorProto{Name: name, Dims: dims, DataType: int32(onnxpb.TensorProto_FLOAT)})
		if err != nil {
			return fmt.Errorf("marshal initializer %s: %w", s.name, err)
		}
		heads[i] = th
		graphLen += protowire.SizeTag(5) + protowire.SizeBytes(tensorLen(th, s))
	}
	total := len(modelHead) + protowire.SizeTag(7) + protowire.SizeBytes(graphLen)
	if total > maxProtoBytes {
		return fmt.Errorf("model would be %d bytes, over the 2 GiB protobuf limit (external data is not supported)", total)
	}
	if _, err := w.Write(modelHead); err != nil {
		return err
	}
	var pre []byte
	pre = protowire.AppendTag(pre, 7, protowire.BytesType) // ModelProto.graph
	pre = protowire.AppendVarint(pre, uint64(graphLen))
	if _, err := w.Write(pre); err != nil {
		return err
	}
	if _, err := w.Write(graphHead); err != nil {
		return err
	}
	for i, s := range specs {
		pre = pre[:0]
		pre = protowire.AppendTag(pre, 5, protowire.BytesType) // GraphProto.initializer
		pre = protowire.AppendVarint(pre, uint64(tensorLen(heads[i], s)))
		pre = append(pre, heads[i]...)
		pre = protowire.AppendTag(pre, 9, protowire.BytesType) // TensorProto.raw_data
		pre = protowire.AppendVarint(pre, uint64(4*s.numel()))
		if _, err := w.Write(pre); err != nil {
			return err
		}
		raw := generateRaw(seed, s)
		if _, ok := transposedAs[s.name]; ok {
			raw = transposeRaw(raw, s.numRows(), s.rowLen())
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
	}
	return nil
}

// transposeRaw returns the [cols, rows] transpose of the little-endian
// float32 matrix raw, [rows, cols].
func transposeRaw(raw []byte, rows, cols int) []byte {
	out := make([]byte, len(raw))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			copy(out[4*(j*rows+i):4*(j*rows+i)+4], raw[4*(i*cols+j):])
		}
	}
	return out
}

// tensorLen is the encoded size of a TensorProto with header th and the raw
// data of s.
func tensorLen(th []byte, s tensorSpec) int {
	return len(th) + protowire.SizeTag(9) + protowire.SizeBytes(4*s.numel())
}

// generateRaw returns the little-endian float32 bytes of s. Rows are filled
// in parallel; each row has its own generator, so the bytes do not depend on
// the number of goroutines.
func generateRaw(seed uint64, s tensorSpec) []byte {
	rows, n := s.numRows(), s.rowLen()
	out := make([]byte, 4*rows*n)
	tseed := tensorSeed(seed, s.name)
	workers := min(runtime.GOMAXPROCS(0), max(1, rows*n/(1<<16)), rows)
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := make([]float32, n)
			for row := wk; row < rows; row += workers {
				s.fill(rowRNG(tseed, row), row, vals)
				b := out[4*row*n : 4*(row+1)*n]
				for k, v := range vals {
					binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(v))
				}
			}
		}()
	}
	wg.Wait()
	return out
}
