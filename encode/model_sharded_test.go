package encode_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
)

// TestLoadModelShardedCheckpoint loads a Llama-shaped checkpoint saved as
// three safetensors shards with model.safetensors.index.json and no ONNX
// export: the index is the model file, the weights are the shards' bytes,
// and the model's sha256 changes when one shard changes.
func TestLoadModelShardedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	tok := "../testdata/tokenizers/mistral-7b/tokenizer.json"
	if err := testmodel.GenerateLlama(dir, testmodel.LlamaConfig{Layers: 2, Hidden: 48, Heads: 4, KVHeads: 2, Shards: 3, SkipONNX: true}, tok); err != nil {
		t.Fatal(err)
	}
	m, err := encode.LoadModel(dir, encode.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(m.ModelFile) != encode.SafeTensorsIndexFile {
		t.Fatalf("model file %s", m.ModelFile)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "model-*-of-*.safetensors"))
	if len(shards) != 3 {
		t.Fatalf("shards %v", shards)
	}
	var total uint64
	for _, s := range shards {
		st, err := os.Stat(s)
		if err != nil {
			t.Fatal(err)
		}
		total += uint64(st.Size())
	}
	if m.Shape.WeightBytes != total {
		t.Fatalf("weight bytes %d, the shards hold %d", m.Shape.WeightBytes, total)
	}
	// Flip one byte of the last shard's data: the identity must change.
	data, err := os.ReadFile(shards[2])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(shards[2], data, 0o644); err != nil {
		t.Fatal(err)
	}
	m2, err := encode.LoadModel(dir, encode.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m2.ModelSHA256 == m.ModelSHA256 {
		t.Fatal("changing a shard left the model's sha256 unchanged")
	}
	// A shard missing from the directory is an error naming it.
	if err := os.Remove(shards[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := encode.LoadModel(dir, encode.ModelOptions{}); err == nil {
		t.Fatal("a missing shard was accepted")
	}
}
