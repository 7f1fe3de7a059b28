package job

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/shards"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// expectBadInput checks that err is classified as bad input and names every
// fragment in want.
func expectBadInput(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("got no error")
	}
	if !errors.Is(err, ErrBadInput) {
		t.Errorf("error %q is not ErrBadInput", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestOpenModelRejectsBadModelDirectories(t *testing.T) {
	requireEnvironment(t)
	good := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 3})
	copyDir := func(t *testing.T) string {
		t.Helper()
		dir := t.TempDir()
		for _, name := range []string{"model.onnx", "tokenizer.json", "config.json"} {
			data, err := os.ReadFile(filepath.Join(good, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}

	t.Run("missing model file", func(t *testing.T) {
		dir := copyDir(t)
		os.Remove(filepath.Join(dir, "model.onnx"))
		_, err := OpenModel(context.Background(), dir, ModelOptions{})
		expectBadInput(t, err, dir, "neither model.onnx nor onnx/model.onnx")
	})
	t.Run("model under onnx/ is found", func(t *testing.T) {
		dir := copyDir(t)
		os.Mkdir(filepath.Join(dir, "onnx"), 0o755)
		if err := os.Rename(filepath.Join(dir, "model.onnx"), filepath.Join(dir, "onnx", "model.onnx")); err != nil {
			t.Fatal(err)
		}
		m, err := OpenModel(context.Background(), dir, ModelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
	})
	t.Run("missing tokenizer.json", func(t *testing.T) {
		dir := copyDir(t)
		os.Remove(filepath.Join(dir, "tokenizer.json"))
		_, err := OpenModel(context.Background(), dir, ModelOptions{})
		expectBadInput(t, err, "tokenizer.json")
	})
	t.Run("unsupported tokenizer type", func(t *testing.T) {
		dir := copyDir(t)
		// A Unigram model (T5, XLM-R): a type splash does not implement.
		unigram := `{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,` +
			`"pre_tokenizer":null,"post_processor":null,"decoder":null,` +
			`"model":{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0.0],["a",-1.0]]}}`
		os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(unigram), 0o644)
		_, err := OpenModel(context.Background(), dir, ModelOptions{})
		expectBadInput(t, err, "Unigram")
	})
	t.Run("vocabulary size disagrees", func(t *testing.T) {
		dir := copyDir(t)
		path := filepath.Join(dir, "tokenizer.json")
		var tok map[string]any
		data, _ := os.ReadFile(path)
		if err := json.Unmarshal(data, &tok); err != nil {
			t.Fatal(err)
		}
		tok["added_tokens"] = append(tok["added_tokens"].([]any), map[string]any{
			"id": 30522, "content": "[EXTRA]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true,
		})
		data, _ = json.Marshal(tok)
		os.WriteFile(path, data, 0o644)
		_, err := OpenModel(context.Background(), dir, ModelOptions{})
		expectBadInput(t, err, "vocabulary size disagrees", "30523", "30522")
	})
	t.Run("corrupt model.onnx", func(t *testing.T) {
		dir := copyDir(t)
		os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("\x08\x07garbage\xff\xff"), 0o644)
		_, err := OpenModel(context.Background(), dir, ModelOptions{})
		expectBadInput(t, err, "model.onnx")
	})
	t.Run("max length beyond the model's positions", func(t *testing.T) {
		_, err := OpenModel(context.Background(), good, ModelOptions{MaxLength: 4096})
		expectBadInput(t, err, "4096", "max_position_embeddings")
	})
}

func TestRunRejectsUnreadableInputs(t *testing.T) {
	requireEnvironment(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 3})
	dir := t.TempDir()
	notParquet := filepath.Join(dir, "notes.parquet")
	os.WriteFile(notParquet, []byte("id,text\n1,hello\n"), 0o644)
	missingColumn := filepath.Join(dir, "nocol.parquet")
	writeParquet(t, missingColumn)
	cases := []struct {
		name, input string
		cols        shards.Columns
		want        []string
	}{
		{"missing file", filepath.Join(dir, "absent.parquet"), shards.Columns{}, []string{"absent.parquet", "no such file"}},
		{"not parquet", notParquet, shards.Columns{}, []string{notParquet}},
		{"missing text column", missingColumn, shards.Columns{Text: "body"}, []string{missingColumn, "body"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := Run(context.Background(), Config{
				ModelDir: model, Inputs: []string{c.input}, OutputDir: out, Columns: c.cols,
				Encode: encode.EncodeOptions{BatchTokens: 4096, Sparsify: encode.DefaultSparsifyOptions()},
			}, quietLog())
			expectBadInput(t, err, c.want...)
			shardsLeft, _ := filepath.Glob(filepath.Join(out, "[^_]*.parquet")) // not _vocabulary.parquet
			if len(shardsLeft) != 0 {
				t.Errorf("a failed run left %v", shardsLeft)
			}
		})
	}
}

// writeParquet writes a two-document shard with columns id and text.
func writeParquet(t *testing.T, path string) {
	t.Helper()
	type doc struct {
		ID   string `parquet:"id"`
		Text string `parquet:"text"`
	}
	if err := parquet.WriteFile(path, []doc{{"a", "first document"}, {"b", "second document"}}); err != nil {
		t.Fatal(err)
	}
}

func TestRunNeverOverwritesItsInputs(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "docs.parquet")
	writeParquet(t, in)
	os.MkdirAll(filepath.Join(dir, "b"), 0o755)
	twin := filepath.Join(dir, "b", "docs.parquet")
	writeParquet(t, twin)
	cfg := Config{ModelDir: "unused", OutputDir: dir, Encode: encode.EncodeOptions{BatchTokens: 4096, Sparsify: encode.DefaultSparsifyOptions()}}

	cfg.Inputs = []string{in}
	_, err := Run(context.Background(), cfg, quietLog())
	if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "overwrite the input") {
		t.Errorf("output dir = input dir: got %v", err)
	}
	cfg.OutputDir = filepath.Join(dir, "out")
	cfg.Inputs = []string{in, twin}
	_, err = Run(context.Background(), cfg, quietLog())
	if !errors.Is(err, shards.ErrBaseCollision) || !strings.Contains(err.Error(), twin) {
		t.Errorf("two inputs with one base name: got %v", err)
	}
	data, _ := os.ReadFile(in)
	if len(data) == 0 {
		t.Fatal("input was damaged")
	}
}

func TestRunRejectsABatchBudgetBelowTheMaxLength(t *testing.T) {
	inputs := requireEnvironment(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 3})
	cfg := Config{ModelDir: model, Inputs: inputs[:1], OutputDir: filepath.Join(t.TempDir(), "out"),
		Encode: encode.EncodeOptions{BatchTokens: 256, Sparsify: encode.DefaultSparsifyOptions()}}
	_, err := Run(context.Background(), cfg, quietLog())
	if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "--batch-tokens 256") {
		t.Fatalf("got %v, want a settings error naming --batch-tokens 256", err)
	}
}
