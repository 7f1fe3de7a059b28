package job

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/shards"
)

// tokenizerOnlyDir is a "model" directory holding nothing but tokenizer.json,
// as a bag-of-tokens query run needs.
func tokenizerOnlyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tokenizer-only")
	data, err := os.ReadFile(bertTokenizer)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// distinctContent is the reference bag of a query: the distinct ids of its
// text, without the template's special tokens, ascending.
func distinctContent(tok *tokenizer.Tokenizer, text string, maxLength int) []uint32 {
	var ids []uint32
	for _, id := range tok.Content(tok.Encode(text, maxLength)) {
		ids = append(ids, uint32(id))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// TestBagQueriesAreTheirDistinctTokens encodes the Cranfield queries with
// --role query --query-mode bag: every row holds exactly the query's
// distinct token ids (at the query max length, 64 by default), each of
// weight 1 (impact 100); with an IDF file, the listed tokens carry their
// weights and the others are left out.
func TestBagQueriesAreTheirDistinctTokens(t *testing.T) {
	inputs := requireEnvironment(t)
	queries := filepath.Join(filepath.Dir(inputs[0]), "queries.parquet")
	dir := tokenizerOnlyDir(t)
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	docs := readInputs(t, []string{queries}, shards.Columns{ID: "id", Text: "text"})

	idf := filepath.Join(t.TempDir(), "idf.tsv")
	weights := map[string]float32{"flow": 2.5, "boundary": 4.25, "layer": 1.5, "the": 0, "##s": 0.75}
	var sb strings.Builder
	for k, v := range weights {
		sb.WriteString(k + "\t" + strconv.FormatFloat(float64(v), 'g', -1, 32) + "\n")
	}
	if err := os.WriteFile(idf, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, withIDF := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "out")
		cfg := baseConfig(dir, out, queries)
		cfg.Columns = shards.Columns{}
		cfg.Role = encode.RoleQuery
		cfg.Bag = &encode.BagOptions{}
		if withIDF {
			cfg.Bag.IDFPath = idf
		}
		if _, err := Run(context.Background(), cfg, quietLog()); err != nil {
			t.Fatal(err)
		}
		shard := filepath.Join(out, "queries.parquet")
		rows := shardRows(t, shard)
		if len(rows) != len(docs) {
			t.Fatalf("%d rows for %d queries", len(rows), len(docs))
		}
		md, err := shards.ShardMetadata(shard)
		if err != nil {
			t.Fatal(err)
		}
		if md[shards.MetaMaxLength] != "64" || md["splash.role"] != "query" || !strings.HasPrefix(md["splash.encoder"], "bag") {
			t.Errorf("metadata: max length %s, role %q, encoder %q", md[shards.MetaMaxLength], md["splash.role"], md["splash.encoder"])
		}
		nonEmpty := 0
		for i, row := range rows {
			want := distinctContent(tok, docs[i].text, 64)
			var wantW []float32
			if withIDF {
				var kept []uint32
				for _, id := range want {
					if w := weights[tok.Vocab()[id]]; w > 0 {
						kept = append(kept, id)
						wantW = append(wantW, w)
					}
				}
				want = kept
			} else {
				for range want {
					wantW = append(wantW, 1)
				}
			}
			if !slices.Equal(row.Vec.Terms, want) || !slices.Equal(row.Vec.Weights, wantW) {
				t.Fatalf("query %s (%q): terms %v weights %v, want %v %v", row.DocID, docs[i].text, row.Vec.Terms, row.Vec.Weights, want, wantW)
			}
			for k, w := range row.Vec.Weights {
				if row.Vec.Impacts[k] != uint16(w*100) {
					t.Fatalf("query %s: impact %d for weight %v", row.DocID, row.Vec.Impacts[k], w)
				}
			}
			if len(want) > 0 {
				nonEmpty++
			}
		}
		t.Logf("idf %v: %d queries, %d with terms", withIDF, len(rows), nonEmpty)
		if nonEmpty < len(rows)/10 {
			t.Fatalf("only %d of %d queries have terms: the test checks little", nonEmpty, len(rows))
		}
	}
}

// TestBadIDFFilesAreRefused: unknown tokens, negative weights and lines
// without a tab are errors that name the file and the line.
func TestBadIDFFilesAreRefused(t *testing.T) {
	tok, err := tokenizer.Load(bertTokenizer)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	for name, tc := range map[string]struct{ file, content, want string }{
		"unknown token":  {"idf.tsv", "flow\t1\nzzzqqqxx\t2\n", "line 2: token \"zzzqqqxx\" is not in the tokenizer's vocabulary"},
		"negative":       {"idf.tsv", "flow\t-1\n", "line 1: token \"flow\" has weight -1"},
		"no tab":         {"idf.tsv", "flow 1\n", "line 1: want token<TAB>weight"},
		"not a number":   {"idf.tsv", "flow\tmany\n", "line 1: weight \"many\""},
		"json not a map": {"idf.json", "[1, 2]", "want a JSON object of token weights"},
		"json unknown":   {"idf.json", `{"flow": 1, "zzzqqqxx": 2}`, "key: token \"zzzqqqxx\" is not in the tokenizer's vocabulary"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := encode.ReadIDF(path, tok)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, path, tc.want)
			}
		})
	}
	json := filepath.Join(t.TempDir(), "idf.json")
	if err := os.WriteFile(json, []byte(`{"flow": 2.5, "layer": 0.5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := encode.ReadIDF(json, tok)
	if err != nil {
		t.Fatal(err)
	}
	flow, _ := tok.TokenID("flow")
	layer, _ := tok.TokenID("layer")
	nonZero := 0
	for _, x := range w {
		if x != 0 {
			nonZero++
		}
	}
	if w[flow] != 2.5 || w[layer] != 0.5 || nonZero != 2 {
		t.Fatalf("flow %v layer %v, %d non-zero weights", w[flow], w[layer], nonZero)
	}
	if _, err := OpenModel(context.Background(), filepath.Dir(json), ModelOptions{Bag: &encode.BagOptions{}, Echo: true}); !errors.Is(err, ErrSettings) {
		t.Fatalf("bag with echo: %v, want ErrSettings", err)
	}
}
