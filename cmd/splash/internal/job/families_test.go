package job

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/shards"
)

const (
	gpt2Tokenizer    = testdataDir + "/tokenizers/gpt2/tokenizer.json"
	mistralTokenizer = testdataDir + "/tokenizers/mistral-7b/tokenizer.json"
)

// pooledOracle is what the float64 oracles of every test model family offer.
type pooledOracle interface {
	Pooled(ids []int32, pooling string) []float64
	VocabSize() int
}

// family is one model family of the README's table, as a generated test model.
type family struct {
	name string
	gen  func(t *testing.T, dir string) // writes the model directory
	echo bool
}

func robertaTokenizerFile(t *testing.T) string {
	t.Helper()
	gpt2, err := os.ReadFile(gpt2Tokenizer)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	data, err := testmodel.RobertaTokenizerJSON(gpt2)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadFamilyOracle(t *testing.T, dir string, causal bool) pooledOracle {
	t.Helper()
	if causal {
		o, err := testmodel.LoadCausalOracle(dir)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o, err := testmodel.LoadOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestModelFamiliesMatchTheirOracles encodes a Cranfield shard through the
// whole `splash encode` path with a DistilBERT-shaped, a RoBERTa-shaped and
// causal (GPT-2 vocabulary with a position_ids input; Mistral vocabulary
// without) test model, the causal ones with and without --echo, and compares
// a sample of the vectors with each family's float64 oracle. The expected
// input of each document is built here from the tokenizer, independently of
// the pipeline: [CLS]-style template around the text truncated to the max
// length, or (echo) around the text, cut to half the room, written twice,
// pooled from the second copy on.
func TestModelFamiliesMatchTheirOracles(t *testing.T) {
	inputs := requireEnvironment(t)
	causal := func(tokenizerPath string, positionIDs bool, seed uint64) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			cfg := testmodel.CausalConfig{Layers: 1, Hidden: 32, Heads: 2, Seed: seed, PositionIDs: positionIDs}
			if err := testmodel.GenerateCausal(dir, cfg, tokenizerPath); err != nil {
				t.Fatal(err)
			}
		}
	}
	families := []family{
		{name: "distilbert", gen: func(t *testing.T, dir string) {
			cfg := testmodel.Config{Arch: testmodel.ArchDistilBERT, Layers: 1, Hidden: 32, Heads: 2, Seed: 41}
			if err := testmodel.Generate(dir, cfg, bertTokenizer); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "roberta", gen: func(t *testing.T, dir string) {
			cfg := testmodel.Config{Arch: testmodel.ArchRoBERTa, Layers: 1, Hidden: 32, Heads: 2, Seed: 42}
			if err := testmodel.Generate(dir, cfg, robertaTokenizerFile(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "causal-gpt2-position-ids", gen: causal(gpt2Tokenizer, true, 43)},
		{name: "causal-gpt2-position-ids-echo", gen: causal(gpt2Tokenizer, true, 43), echo: true},
		{name: "causal-mistral", gen: causal(mistralTokenizer, false, 44)},
		{name: "causal-mistral-echo", gen: causal(mistralTokenizer, false, 44), echo: true},
	}
	cols := shards.Columns{ID: "id", Text: "text", Title: "title"}
	docs := readInputs(t, inputs[:1], cols)
	const maxLength = 96
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			f.gen(t, dir)
			isCausal := strings.HasPrefix(f.name, "causal")
			oracle := loadFamilyOracle(t, dir, isCausal)
			tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			cfg := baseConfig(dir, out, inputs[0])
			cfg.MaxLength, cfg.Echo = maxLength, f.echo
			cfg.Encode.BatchTokens = 2048
			if _, err := Run(context.Background(), cfg, quietLog()); err != nil {
				t.Fatal(err)
			}
			shard := filepath.Join(out, strings.TrimSuffix(filepath.Base(inputs[0]), ".parquet")+".parquet")
			rows := shardRows(t, shard)
			if len(rows) != len(docs) {
				t.Fatalf("%d rows for %d documents", len(rows), len(docs))
			}
			md, err := shards.ShardMetadata(shard)
			if err != nil {
				t.Fatal(err)
			}
			if md[shards.MetaVocabSize] != fmt.Sprint(oracle.VocabSize()) {
				t.Errorf("vocab size %s in the metadata, the model has %d", md[shards.MetaVocabSize], oracle.VocabSize())
			}
			if f.echo != (md["splash.encoder"] == "model+echo") {
				t.Errorf("metadata splash.encoder = %q with echo %v", md["splash.encoder"], f.echo)
			}
			prefix, suffix := tok.Prefix(), tok.Suffix()
			var maxDiff float64
			var problems []string
			checked := 0
			for i, d := range docs {
				if i%25 != 0 {
					continue
				}
				row := rows[i]
				if row.DocID != d.id {
					t.Fatalf("row %d is %q, want %q", i, row.DocID, d.id)
				}
				content := tok.Content(tok.Encode(d.text, 0))
				room := maxLength - len(prefix) - len(suffix)
				if f.echo {
					room /= 2
				}
				text := content[:min(len(content), room)]
				if len(text) == 0 {
					if row.Vec.Len() != 0 {
						problems = append(problems, d.id+": empty document with terms")
					}
					continue
				}
				ids := slices.Concat(prefix, text, suffix)
				var want []float64
				if f.echo {
					ids = slices.Concat(prefix, text, text, suffix)
					want = oracle.(*testmodel.CausalOracle).PooledFrom(ids, len(prefix)+len(text), "max")
				} else {
					want = oracle.Pooled(ids, "max")
				}
				checked++
				diff, p := weightsDiff(want, row)
				maxDiff = math.Max(maxDiff, diff)
				problems = append(problems, p...)
				if int(row.NumTokens) != len(ids) || row.Truncated != (len(text) < len(content)) {
					problems = append(problems, fmt.Sprintf("%s: num_tokens %d truncated %v, want %d %v", d.id, row.NumTokens, row.Truncated, len(ids), len(text) < len(content)))
				}
			}
			t.Logf("%s: %d documents encoded, %d checked, vocab %d, max |splash - oracle| = %.3g", f.name, len(rows), checked, oracle.VocabSize(), maxDiff)
			if maxDiff > 1e-4 || len(problems) > 0 {
				t.Fatalf("max diff %.3g; %d problems, first: %v", maxDiff, len(problems), problems[:min(len(problems), 8)])
			}
		})
	}
}

// TestTermIDsBeyond16Bits encodes with a vocabulary of over 100,000 ids
// whose words all sit above 65,535 (the ids of an LLM's 128k vocabulary
// do): term ids must come through as uint32, equal to the oracle's, with
// a logits budget small enough to shrink the batches.
func TestTermIDsBeyond16Bits(t *testing.T) {
	inputs := requireEnvironment(t)
	const shift = 70000
	raw, err := os.ReadFile(bertTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	var tj map[string]any
	if err := json.Unmarshal(raw, &tj); err != nil {
		t.Fatal(err)
	}
	model := tj["model"].(map[string]any)
	vocab := model["vocab"].(map[string]any)
	specials := map[string]bool{"[PAD]": true, "[UNK]": true, "[CLS]": true, "[SEP]": true, "[MASK]": true}
	maxID := 0
	for tok, id := range vocab {
		if !specials[tok] {
			vocab[tok] = id.(float64) + shift
		}
		maxID = max(maxID, int(vocab[tok].(float64)))
	}
	used := map[int]bool{}
	for _, id := range vocab {
		used[int(id.(float64))] = true
	}
	for id := 0; id < maxID; id++ {
		if !used[id] {
			vocab[fmt.Sprintf("[gap%d]", id)] = float64(id)
		}
	}
	data, err := json.Marshal(tj)
	if err != nil {
		t.Fatal(err)
	}
	tokPath := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(tokPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := testmodel.Generate(dir, testmodel.Config{Layers: 1, Hidden: 16, Heads: 2, Seed: 45}, tokPath); err != nil {
		t.Fatal(err)
	}
	oracle, err := testmodel.LoadOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if oracle.VocabSize() <= 100000 {
		t.Fatalf("vocabulary of %d ids", oracle.VocabSize())
	}
	docs := readInputs(t, inputs[:1], shards.Columns{ID: "id", Text: "text"})[:24]
	in := filepath.Join(t.TempDir(), "docs.parquet")
	ids, texts := make([]string, len(docs)), make([]string, len(docs))
	for i, d := range docs {
		ids[i], texts[i] = d.id, d.text
	}
	writeDocs(t, in, ids, texts)
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dir, out, in)
	cfg.Columns = shards.Columns{}
	cfg.MaxLength = 64
	cfg.Encode.BatchTokens = 0
	cfg.LogitsBudget = 64 << 20 // 64 MiB: at most 166 tokens of 100k-id logits per batch
	sum, err := Run(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if perBatch := float64(sum.Counts.PaddedTokens) / float64(sum.Counts.Batches); perBatch*4*float64(oracle.VocabSize()) > 64<<20 {
		t.Errorf("batches average %.0f padded tokens: their logits exceed the 64 MiB budget", perBatch)
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	rows := shardRows(t, filepath.Join(out, "docs.parquet"))
	high := 0
	var maxDiff float64
	for i, row := range rows {
		enc := tok.Encode(docs[i].text, 64)
		if len(enc.IDs) <= 2 {
			continue
		}
		diff, problems := weightsDiff(oracle.Pooled(enc.IDs, "max"), row)
		if len(problems) > 0 {
			t.Fatalf("%s: %v", row.DocID, problems)
		}
		maxDiff = math.Max(maxDiff, diff)
		for _, term := range row.Vec.Terms {
			if term > 65535 {
				high++
			}
		}
	}
	t.Logf("%d terms above 65535 in %d rows, %d batches, max |splash - oracle| = %.3g", high, len(rows), sum.Counts.Batches, maxDiff)
	if high == 0 || maxDiff > 1e-4 {
		t.Fatalf("%d terms above 65535, max diff %.3g", high, maxDiff)
	}
}
