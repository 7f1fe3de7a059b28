package weights_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/safetensors"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/weights"
)

// The repository's test data (testdata/README.md), as encode/testmodel's
// tests find it.
var (
	testdataDir   = filepath.Join("..", "..", "testdata")
	bertTokenizer = filepath.Join(testdataDir, "tokenizers", "bert-base-uncased", "tokenizer.json")
	gpt2Tokenizer = filepath.Join(testdataDir, "tokenizers", "gpt2", "tokenizer.json")
)

// tokenizerFor returns a tokenizer.json for a generated model of arch.
func tokenizerFor(t *testing.T, arch testmodel.Arch) string {
	t.Helper()
	src := bertTokenizer
	if arch == testmodel.ArchRoBERTa {
		src = gpt2Tokenizer
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("test data missing (see testdata/README.md): %v", err)
	}
	if arch != testmodel.ArchRoBERTa {
		return src
	}
	rb, err := testmodel.RobertaTokenizerJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "roberta-tokenizer.json")
	if err := os.WriteFile(path, rb, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func generate(t *testing.T, cfg testmodel.Config) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := testmodel.Generate(dir, cfg, tokenizerFor(t, cfg.Arch)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func open(t *testing.T, path string, opts ...weights.Option) *weights.Checkpoint {
	t.Helper()
	c, err := weights.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tiedDecoder is the name of the decoder weight that checkpoints omit.
func tiedDecoder(arch testmodel.Arch) string {
	switch arch {
	case testmodel.ArchDistilBERT:
		return "vocab_projector.weight"
	case testmodel.ArchRoBERTa:
		return "lm_head.decoder.weight"
	}
	return "cls.predictions.decoder.weight"
}

// TestRoutesAgree: on generated models (HF-named weights through Transpose
// nodes, and optimum's pre-transposed onnx::MatMul_N), the ONNX route and
// the safetensors route give the same names, shapes and values.
func TestRoutesAgree(t *testing.T) {
	for _, arch := range []testmodel.Arch{testmodel.ArchBERT, testmodel.ArchDistilBERT, testmodel.ArchRoBERTa} {
		for _, optimum := range []bool{false, true} {
			name := string(arch)
			if optimum {
				name += "/optimum"
			}
			t.Run(name, func(t *testing.T) {
				dir := generate(t, testmodel.Config{Arch: arch, Layers: 2, Hidden: 32, Heads: 4, Seed: 5,
					SafeTensors: true, OptimumNames: optimum})
				st := open(t, dir)
				ox := open(t, filepath.Join(dir, "model.onnx"))
				if st.Format() != weights.FormatSafeTensors || st.Source() != filepath.Join(dir, weights.SafeTensorsFile) {
					t.Errorf("directory opened as %s %s", st.Format(), st.Source())
				}
				if ox.Format() != weights.FormatONNX || ox.Source() != filepath.Join(dir, "model.onnx") {
					t.Errorf("model.onnx opened as %s %s", ox.Format(), ox.Source())
				}
				if !slices.Equal(st.Names(), ox.Names()) {
					t.Fatalf("names differ:\nsafetensors %v\nonnx        %v", st.Names(), ox.Names())
				}
				if n := len(st.Names()); n < 30 {
					t.Fatalf("only %d names", n)
				}
				for _, name := range st.Names() {
					a, as, err := st.Float32(name)
					if err != nil {
						t.Fatal(err)
					}
					b, bs, err := ox.Float32(name)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(as, bs) || !slices.Equal(a, b) {
						t.Errorf("%s: safetensors %v and ONNX %v differ", name, as, bs)
					}
					if s, ok := ox.Shape(name); !ok || !slices.Equal(s, bs) {
						t.Errorf("%s: ONNX Shape %v, Float32 shape %v", name, s, bs)
					}
					if !st.Has(name) || !ox.Has(name) {
						t.Errorf("%s: Has false", name)
					}
				}
				// A dense weight is [out, in] whichever way the file stores it.
				q := "bert.encoder.layer.1.intermediate.dense.weight"
				switch arch {
				case testmodel.ArchDistilBERT:
					q = "distilbert.transformer.layer.1.ffn.lin1.weight"
				case testmodel.ArchRoBERTa:
					q = "roberta.encoder.layer.1.intermediate.dense.weight"
				}
				if s, _ := ox.Shape(q); !slices.Equal(s, []int{128, 32}) {
					t.Errorf("%s has shape %v, want [128 32]", q, s)
				}
				for _, c := range []*weights.Checkpoint{st, ox} {
					dec := tiedDecoder(arch)
					if c.Has(dec) {
						t.Errorf("%s: Has(%s)", c.Format(), dec)
					}
					_, _, err := c.Float32(dec)
					if !errors.Is(err, weights.ErrMissing) || !strings.Contains(err.Error(), c.Source()+": tensor "+dec+" is missing") {
						t.Errorf("%s: missing decoder error %v", c.Format(), err)
					}
				}
			})
		}
	}
}

// TestHalfCheckpoints: F16 and BF16 checkpoints convert exactly: their
// values are the ONNX float32 weights rounded, nothing else.
func TestHalfCheckpoints(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			dir := generate(t, testmodel.Config{Layers: 2, Hidden: 32, Heads: 4, Seed: 6, SafeTensors: true, SafeTensorsDType: dt})
			st, ox := open(t, dir), open(t, filepath.Join(dir, "model.onnx"))
			for _, name := range st.Names() {
				a, _, err := st.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				b, _, err := ox.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range b {
					want := safetensors.Float16ToFloat32(safetensors.Float32ToFloat16(v))
					if dt == safetensors.BF16 {
						want = safetensors.BFloat16ToFloat32(safetensors.Float32ToBFloat16(v))
					}
					if a[i] != want {
						t.Fatalf("%s[%d] = %v, want %v rounded to %s = %v", name, i, a[i], v, dt, want)
					}
				}
			}
		})
	}
}

func TestOpenChoosesFile(t *testing.T) {
	dir := generate(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 1})
	// No model.safetensors: the ONNX file.
	if c := open(t, dir); c.Format() != weights.FormatONNX {
		t.Errorf("format %s", c.Format())
	}
	// onnx/model.onnx, as encode.ModelFile finds it.
	sub := filepath.Join(t.TempDir(), "export")
	if err := os.MkdirAll(filepath.Join(sub, "onnx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "model.onnx"), filepath.Join(sub, "onnx", "model.onnx")); err != nil {
		t.Fatal(err)
	}
	if c := open(t, sub); c.Source() != filepath.Join(sub, "onnx", "model.onnx") {
		t.Errorf("source %s", c.Source())
	}
	// WithONNXFile names the file.
	if c := open(t, dir, weights.WithONNXFile(filepath.Join(sub, "onnx", "model.onnx"))); c.Format() != weights.FormatONNX {
		t.Errorf("format %s", c.Format())
	}
	// Nothing to read.
	_, err := weights.Open(dir)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(directory without weights) = %v", err)
	}
	if _, err := weights.Open(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing path) = %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"model.safetensors": "\x02\x00\x00\x00\x00\x00\x00\x00[]",
		"model.onnx":        "\x3a\xff\xff\xff\x0f", // graph field of 4 GiB in a 5-byte file
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := weights.Open(path)
		if !errors.Is(err, encode.ErrBadModel) || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%s) = %v, want ErrBadModel naming the file", name, err)
		}
	}
	empty := filepath.Join(dir, "empty.onnx")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := weights.Open(empty); !errors.Is(err, encode.ErrBadModel) || !strings.Contains(err.Error(), "no graph") {
		t.Errorf("Open(empty.onnx) = %v", err)
	}
}
