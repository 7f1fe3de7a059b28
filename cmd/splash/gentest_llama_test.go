package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
)

const sharedMistral = "../../testdata/tokenizers/mistral-7b/tokenizer.json"

// TestGenTestLlama runs `splash model gen-test --arch llama|mistral` with
// the Llama flags and checks what it wrote: config.json's fields, the
// shards and their index, no model.onnx with --no-onnx, and that the
// float64 oracle loads the directory.
func TestGenTestLlama(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "llama")
	if out, code, err := runCLI(t, "", "model", "gen-test", "--output", dir, "--arch", "llama", "--layers", "1", "--hidden", "32",
		"--heads", "4", "--kv-heads", "2", "--rope-theta", "500000", "--rope-scaling", "llama3", "--vocab", "70000",
		"--safetensors-dtype", "BF16", "--shards", "2", "--no-onnx", "--tokenizer", sharedMistral); code != exitOK {
		t.Fatalf("gen-test: exit %d (%v)\n%s", code, err, out)
	}
	var c map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	scaling, _ := c["rope_scaling"].(map[string]any)
	if c["model_type"] != "llama" || c["num_key_value_heads"] != 2.0 || c["rope_theta"] != 500000.0 || c["vocab_size"] != 70000.0 ||
		c["torch_dtype"] != "bfloat16" || scaling["rope_type"] != "llama3" || scaling["factor"] != 8.0 ||
		scaling["original_max_position_embeddings"] != 8192.0 {
		t.Errorf("config.json: %s", raw)
	}
	for _, name := range []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
		t.Errorf("--no-onnx wrote model.onnx")
	}
	o, err := testmodel.LoadLlamaOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.VocabSize() != 70000 || o.Family() != "llama" {
		t.Errorf("oracle: vocab %d, family %s", o.VocabSize(), o.Family())
	}

	// Mistral with the default tokenizer of the checkout, tied, bidirectional.
	dir = filepath.Join(t.TempDir(), "mistral")
	if out, code, err := runCLI(t, "", "model", "gen-test", "--output", dir, "--arch", "mistral", "--layers", "1", "--hidden", "32",
		"--heads", "2", "--kv-heads", "1", "--tied", "--bidirectional"); code != exitOK {
		t.Fatalf("gen-test mistral: exit %d (%v)\n%s", code, err, out)
	}
	raw, err = os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"MistralForCausalLM"`) || !strings.Contains(string(raw), `"tie_word_embeddings": true`) ||
		!strings.Contains(string(raw), `"attention": "bidirectional"`) {
		t.Errorf("mistral config.json: %s", raw)
	}
	for _, name := range []string{"model.onnx", "model.safetensors", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}

	// Bad combinations are usage errors.
	for _, args := range [][]string{
		{"--arch", "bert", "--kv-heads", "2"},
		{"--arch", "causal", "--tied"},
		{"--arch", "llama", "--rope-scaling", "yarn"},
		{"--arch", "llama", "--rope-original", "4096"},
		{"--arch", "llama", "--optimum-names"},
		{"--arch", "llama", "--kv-heads", "3"},
	} {
		full := append([]string{"model", "gen-test", "--output", filepath.Join(t.TempDir(), "m"), "--layers", "1", "--hidden", "32",
			"--heads", "4", "--tokenizer", sharedMistral}, args...)
		if _, code, _ := runCLI(t, "", full...); code == exitOK {
			t.Errorf("gen-test %v succeeded", args)
		}
	}
}
