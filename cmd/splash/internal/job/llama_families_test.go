package job

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/shards"
)

// TestLlamaFamiliesMatchTheirOracle encodes a Cranfield shard through the
// whole `splash encode` CPU path (ONNX Runtime) with generated Llama- and
// Mistral-shaped models (grouped-query attention, llama3 rope scaling,
// untied and tied heads, the bidirectional graph), with and without
// --echo, and compares a sample of the vectors with testmodel.LlamaOracle.
// As in TestModelFamiliesMatchTheirOracles, each document's input is built
// here from the tokenizer: prefix, text truncated to the room, suffix; with
// echo the text cut to half the room, written twice, pooled from the
// second copy on.
func TestLlamaFamiliesMatchTheirOracle(t *testing.T) {
	inputs := requireEnvironment(t)
	scaling := testmodel.LlamaRopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 32}
	for _, tc := range []struct {
		name string
		cfg  testmodel.LlamaConfig
		echo bool
	}{
		{"llama-gqa-rope-scaling", testmodel.LlamaConfig{Layers: 2, Hidden: 32, Heads: 4, KVHeads: 2, RopeScaling: &scaling, Seed: 51}, false},
		{"llama-gqa-rope-scaling-echo", testmodel.LlamaConfig{Layers: 2, Hidden: 32, Heads: 4, KVHeads: 2, RopeScaling: &scaling, Seed: 51}, true},
		{"mistral-kv1-tied", testmodel.LlamaConfig{Family: testmodel.FamilyMistral, Layers: 1, Hidden: 32, Heads: 4, KVHeads: 1,
			RopeTheta: 1e6, Tied: true, Seed: 52}, false},
		{"llama-bidirectional-echo", testmodel.LlamaConfig{Layers: 1, Hidden: 32, Heads: 2, Bidirectional: true, Seed: 53}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			if err := testmodel.GenerateLlama(dir, tc.cfg, mistralTokenizer); err != nil {
				t.Fatal(err)
			}
			oracle, err := testmodel.LoadLlamaOracle(dir)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			const maxLength = 80
			out := filepath.Join(t.TempDir(), "out")
			cfg := baseConfig(dir, out, inputs[0])
			cfg.MaxLength, cfg.Echo = maxLength, tc.echo
			cfg.Encode.BatchTokens = 2048
			if _, err := Run(context.Background(), cfg, quietLog()); err != nil {
				t.Fatal(err)
			}
			shard := filepath.Join(out, strings.TrimSuffix(filepath.Base(inputs[0]), ".parquet")+".parquet")
			rows := shardRows(t, shard)
			docs := readInputs(t, inputs[:1], shards.Columns{ID: "id", Text: "text", Title: "title"})
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
			prefix, suffix := tok.Prefix(), tok.Suffix()
			var maxDiff float64
			var problems []string
			checked := 0
			for i, d := range docs {
				if i%40 != 0 {
					continue
				}
				row := rows[i]
				if row.DocID != d.id {
					t.Fatalf("row %d is %q, want %q", i, row.DocID, d.id)
				}
				content := tok.Content(tok.Encode(d.text, 0))
				room := maxLength - len(prefix) - len(suffix)
				if tc.echo {
					room /= 2
				}
				text := content[:min(len(content), room)]
				if len(text) == 0 {
					continue
				}
				ids, from := slices.Concat(prefix, text, suffix), 0
				if tc.echo {
					ids, from = slices.Concat(prefix, text, text, suffix), len(prefix)+len(text)
				}
				want := oracle.PooledFrom(ids, from, "max", tc.cfg.Bidirectional)
				if want == nil {
					t.Fatalf("%s: the oracle rejects %d ids: %v", d.id, len(ids), oracle.Validate(ids))
				}
				checked++
				diff, p := weightsDiff(want, row)
				maxDiff = math.Max(maxDiff, diff)
				problems = append(problems, p...)
				if int(row.NumTokens) != len(ids) {
					problems = append(problems, fmt.Sprintf("%s: num_tokens %d, want %d", d.id, row.NumTokens, len(ids)))
				}
			}
			t.Logf("%s: %d documents encoded, %d checked, max |splash - oracle| = %.3g", tc.name, len(rows), checked, maxDiff)
			if checked == 0 || maxDiff > 1e-4 || len(problems) > 0 {
				t.Fatalf("%d checked, max diff %.3g; %d problems, first: %v", checked, maxDiff, len(problems), problems[:min(len(problems), 8)])
			}
		})
	}
}

// TestLlamaLargeVocabularyEncodes encodes documents that hold words of ids
// above 65,535 (testmodel.HighIDToken in a 128,256-id vocabulary, as Llama
// 3's) through the whole `splash encode` CPU path and compares every
// vector with testmodel.LlamaOracle: the ids stay exact from the
// tokenizer through the model to the shard's uint32 term ids.
func TestLlamaLargeVocabularyEncodes(t *testing.T) {
	requireEnvironment(t)
	const vocab = 128256
	dir := filepath.Join(t.TempDir(), "model")
	if err := testmodel.GenerateLlama(dir, testmodel.LlamaConfig{Layers: 1, Hidden: 48, Heads: 4, KVHeads: 2, Vocab: vocab, Seed: 54}, mistralTokenizer); err != nil {
		t.Fatal(err)
	}
	oracle, err := testmodel.LoadLlamaOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != vocab {
		t.Fatalf("the written tokenizer has %d ids, want %d", tok.VocabSize(), vocab)
	}
	high := testmodel.HighIDs(32000, vocab)
	if len(high) < 3 || high[len(high)-1] != vocab-1 {
		t.Fatalf("reachable high ids %v", high)
	}
	var ids, texts []string
	for i, id := range high {
		ids = append(ids, fmt.Sprintf("d%d", i))
		texts = append(texts, fmt.Sprintf("lift %s and drag%s", testmodel.HighIDToken(id), testmodel.HighIDToken(high[(i+1)%len(high)])))
		if !strings.ContainsRune(texts[i], rune(0xF0000+id%0xFFFE)) {
			t.Fatalf("HighIDToken(%d) = %q", id, testmodel.HighIDToken(id))
		}
	}
	ids = append(ids, "plain")
	texts = append(texts, "supersonic flow over a flat plate")
	input := filepath.Join(t.TempDir(), "high.parquet")
	writeDocs(t, input, ids, texts)
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dir, out, input)
	cfg.Columns, cfg.MaxLength = shards.Columns{}, 64
	if _, err := Run(context.Background(), cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	rows := shardRows(t, filepath.Join(out, "high.parquet"))
	if len(rows) != len(texts) {
		t.Fatalf("%d rows for %d documents", len(rows), len(texts))
	}
	prefix, suffix := tok.Prefix(), tok.Suffix()
	above, maxDiff := 0, 0.0
	for i, text := range texts {
		content := tok.Content(tok.Encode(text, 0))
		in := slices.Concat(prefix, content, suffix)
		if i < len(high) && !slices.Contains(in, int32(high[i])) {
			t.Fatalf("%q: the tokenizer gives %v, without id %d", text, in, high[i])
		}
		want := oracle.Pooled(in, "max", false)
		if want == nil {
			t.Fatalf("%s: the oracle rejects %v: %v", ids[i], in, oracle.Validate(in))
		}
		diff, problems := weightsDiff(want, rows[i])
		if len(problems) > 0 {
			t.Fatalf("%s: %v", ids[i], problems)
		}
		maxDiff = math.Max(maxDiff, diff)
		for _, term := range rows[i].Vec.Terms {
			if term > 65535 {
				above++
			}
		}
	}
	t.Logf("%d documents, max |splash - oracle| = %.3g, %d terms above 65,535", len(texts), maxDiff, above)
	if maxDiff > 1e-4 || above == 0 {
		t.Fatalf("max diff %.3g, %d terms above 65,535", maxDiff, above)
	}
}
