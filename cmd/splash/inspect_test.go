package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// inspectFixtureRow is a row of a hand-built shard: terms with weights.
type inspectFixtureRow struct {
	terms     []uint32
	weights   []float32
	tokens    int32
	truncated bool
}

// writeInspectFixture writes two small shards (and their manifests when
// withManifests) with a vocabulary into a new directory:
//
//	one: [1 2 3] w .5 1 2 (10 tokens) | empty (2) | [1 4] w 3 .25 truncated (64)
//	two: [2 4 5 6] w 1 1.5 .5 1 (20) | [4] w .75 truncated (64)
//
// nnz one: 3 0 2 (total 5, sorted 0 2 3: p50 2, p99 3, max 3)
// nnz two: 4 1 (total 5, sorted 1 4: p50 4, p99 4)
// all: sorted 0 1 2 3 4: p50 2, p99 4, mean 2, total 10
// df: 4 in 3 rows, 1 in 2, 2 in 2, then 3, 5, 6 in 1.
func writeInspectFixture(t *testing.T, withManifests bool) string {
	t.Helper()
	dir := t.TempDir()
	vocab := []string{"[PAD]", "alpha", "beta", "gamma", "delta", "eps", "zeta"}
	if err := shards.WriteVocabulary(dir, vocab); err != nil {
		t.Fatal(err)
	}
	fixture := map[string][]inspectFixtureRow{
		"one": {
			{terms: []uint32{1, 2, 3}, weights: []float32{0.5, 1, 2}, tokens: 10},
			{tokens: 2},
			{terms: []uint32{1, 4}, weights: []float32{3, 0.25}, tokens: 64, truncated: true},
		},
		"two": {
			{terms: []uint32{2, 4, 5, 6}, weights: []float32{1, 1.5, 0.5, 1}, tokens: 20},
			{terms: []uint32{4}, weights: []float32{0.75}, tokens: 64, truncated: true},
		},
	}
	meta := shards.Metadata{SplashVersion: "0.0.0-test", ModelSHA256: strings.Repeat("ab", 32), TokenizerSHA256: strings.Repeat("cd", 32),
		VocabSize: len(vocab), MaxLength: 64, Pooling: "max", Scale: 100, SourcePath: "in/x.parquet", SourceSHA256: strings.Repeat("ef", 32)}
	for _, base := range []string{"one", "two"} {
		w, err := shards.NewWriter(dir, base, shards.FormatParquet, meta, shards.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range fixture[base] {
			imp := make([]uint16, len(r.weights))
			for k, x := range r.weights {
				imp[k] = uint16(math.Round(float64(x) * 100))
			}
			if err := w.Write(shards.Row{DocID: fmt.Sprintf("%s-%d", base, i), NumTokens: r.tokens, Truncated: r.truncated,
				Vec: encode.SparseVec{Terms: r.terms, Weights: r.weights, Impacts: imp}}); err != nil {
				t.Fatal(err)
			}
		}
		out, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if withManifests {
			m := shards.Manifest{Input: shards.ManifestInput{Path: "in/" + base, Size: 1, Rows: int64(len(fixture[base])), MTime: time.Unix(0, 0).UTC()},
				Output: shards.NewManifestOutput(out, shards.FormatParquet),
				Stats:  &shards.ManifestStats{Documents: int64(len(fixture[base])), Tokens: 100, PaddedTokens: 128, Batches: 1, Seconds: 0.5}}
			if err := shards.WriteManifest(dir, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// inspectJSONShard mirrors the documented JSON of one shard.
type inspectJSONShard struct {
	Path      string            `json:"path"`
	Schema    []string          `json:"schema"`
	Metadata  map[string]string `json:"metadata"`
	Rows      int64             `json:"rows"`
	Tokens    int64             `json:"tokens"`
	Empty     int64             `json:"empty"`
	Truncated int64             `json:"truncated"`
	NNZ       struct {
		Mean          float64
		P50, P99, Max int
		Total         int64
	} `json:"nnz"`
	TopTerms []struct {
		ID    uint32 `json:"id"`
		Token string `json:"token"`
		DF    int64  `json:"df"`
	} `json:"top_terms"`
	FirstRows []struct {
		Row       int64  `json:"row"`
		DocID     string `json:"doc_id"`
		NumTokens int32  `json:"num_tokens"`
		Truncated bool   `json:"truncated"`
		Terms     int    `json:"terms"`
		Heaviest  []struct {
			ID     uint32  `json:"id"`
			Token  string  `json:"token"`
			Weight float32 `json:"weight"`
			Impact uint16  `json:"impact"`
		} `json:"heaviest_terms"`
	} `json:"first_rows"`
}

func topTermsString(s inspectJSONShard) string {
	var parts []string
	for _, t := range s.TopTerms {
		parts = append(parts, fmt.Sprintf("%s(%d)", t.Token, t.DF))
	}
	return strings.Join(parts, " ")
}

func TestInspectJSONDirectory(t *testing.T) {
	dir := writeInspectFixture(t, false)
	out, code, err := runCLI(t, "", "inspect", "--format", "json", "--rows", "2", "--terms", "3", dir)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	var got struct {
		Path   string             `json:"path"`
		Shards []inspectJSONShard `json:"shards"`
		Totals struct {
			Shards int `json:"shards"`
			inspectJSONShard
		} `json:"totals"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Path != dir || len(got.Shards) != 2 || got.Totals.Shards != 2 {
		t.Fatalf("path %q, %d shards, totals.shards %d", got.Path, len(got.Shards), got.Totals.Shards)
	}
	one, two, tot := got.Shards[0], got.Shards[1], got.Totals.inspectJSONShard
	if one.Path != filepath.Join(dir, "one.parquet") || two.Path != filepath.Join(dir, "two.parquet") {
		t.Errorf("shard paths %q %q", one.Path, two.Path)
	}
	if !strings.Contains(strings.Join(one.Schema, "|"), "doc_id: utf8 not null") || one.Metadata[shards.MetaPooling] != "max" ||
		one.Metadata[shards.MetaMaxLength] != "64" {
		t.Errorf("schema %q, metadata %v", one.Schema, one.Metadata)
	}
	type counts struct {
		rows, tokens, empty, truncated int64
		mean                           float64
		p50, p99, max                  int
		total                          int64
		top                            string
	}
	for _, c := range []struct {
		name string
		s    inspectJSONShard
		want counts
	}{
		{"one", one, counts{3, 76, 1, 1, 5.0 / 3, 2, 3, 3, 5, "alpha(2) beta(1) gamma(1)"}},
		{"two", two, counts{2, 84, 0, 1, 2.5, 4, 4, 4, 5, "delta(2) beta(1) eps(1)"}},
		{"totals", tot, counts{5, 160, 1, 2, 2, 2, 4, 4, 10, "delta(3) alpha(2) beta(2)"}},
	} {
		s := c.s
		g := counts{s.Rows, s.Tokens, s.Empty, s.Truncated, s.NNZ.Mean, s.NNZ.P50, s.NNZ.P99, s.NNZ.Max, s.NNZ.Total, topTermsString(s)}
		if math.Abs(g.mean-c.want.mean) < 1e-9 {
			g.mean = c.want.mean
		}
		if g != c.want {
			t.Errorf("%s: %+v\nwant %+v", c.name, g, c.want)
		}
	}
	// First rows: two per shard, heaviest terms first.
	if len(one.FirstRows) != 2 || len(two.FirstRows) != 2 {
		t.Fatalf("first rows: %d and %d, want 2 each", len(one.FirstRows), len(two.FirstRows))
	}
	r0 := one.FirstRows[0]
	if r0.Row != 0 || r0.DocID != "one-0" || r0.NumTokens != 10 || r0.Truncated || r0.Terms != 3 || len(r0.Heaviest) != 3 ||
		r0.Heaviest[0].Token != "gamma" || r0.Heaviest[0].Impact != 200 || r0.Heaviest[0].Weight != 2 ||
		r0.Heaviest[1].Token != "beta" || r0.Heaviest[2].Token != "alpha" || r0.Heaviest[2].ID != 1 {
		t.Errorf("first row of one: %+v", r0)
	}
	if r1 := one.FirstRows[1]; r1.DocID != "one-1" || r1.Terms != 0 || r1.Heaviest == nil || len(r1.Heaviest) != 0 {
		t.Errorf("empty row: %+v (heaviest_terms must be [], not null)", r1)
	}
	if h := two.FirstRows[0].Heaviest; len(h) != 3 || h[0].Token != "delta" || h[1].Token != "beta" || h[2].Token != "zeta" {
		t.Errorf("heaviest of two-0: %+v (ties keep term order)", h)
	}

	// The text output states the same facts.
	text, code, err := runCLI(t, "", "inspect", "--rows", "2", "--terms", "3", dir)
	if code != 0 {
		t.Fatalf("text: exit %d: %v", code, err)
	}
	for _, line := range []string{
		"== " + filepath.Join(dir, "one.parquet"),
		"  splash.pooling = max",
		`row 0: doc_id="one-0" num_tokens=10 truncated=false terms=3`,
		"  gamma:200 beta:100 alpha:50",
		"rows 3, tokens 76, empty 1, truncated 1",
		"non-zeros per row: mean 1.7, p50 2, p99 3, max 3 (total 5)",
		"terms in most rows: alpha(2) beta(1) gamma(1)",
		"== " + dir + ": 2 shards",
		"rows 5, tokens 160, empty 1, truncated 2",
		"non-zeros per row: mean 2.0, p50 2, p99 4, max 4 (total 10)",
		"terms in most rows: delta(3) alpha(2) beta(2)",
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("text output lacks %q:\n%s", line, text)
		}
	}
}

func TestInspectJSONShardAndErrors(t *testing.T) {
	dir := writeInspectFixture(t, false)
	path := filepath.Join(dir, "two.parquet")
	out, code, err := runCLI(t, "", "inspect", "--format", "json", "--rows", "0", path)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	var got inspectJSONShard
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Path != path || got.Rows != 2 || got.FirstRows == nil || len(got.FirstRows) != 0 || got.NNZ.Total != 5 ||
		topTermsString(got) != "delta(2) beta(1) eps(1) zeta(1)" {
		t.Errorf("shard object: %+v", got)
	}
	if _, code, _ := runCLI(t, "", "inspect", "--format", "xml", dir); code != exitUsage {
		t.Errorf("--format xml: exit %d, want %d", code, exitUsage)
	}
	if _, code, _ := runCLI(t, "", "inspect", "--format", "json", filepath.Join(dir, "missing")); code != exitBadData {
		t.Errorf("missing path: exit %d, want %d", code, exitBadData)
	}
	if _, code, _ := runCLI(t, "", "inspect", "--format", "json", t.TempDir()); code != exitBadData {
		t.Errorf("directory without shards: exit %d, want %d", code, exitBadData)
	}
}
