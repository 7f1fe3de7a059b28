package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu/ort"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/report"
)

// encodeCranfieldForReport encodes the four Cranfield document shards
// with a small generated model (max length 64, so that many documents are
// truncated) and returns the output directory; it skips without ONNX
// Runtime.
func encodeCranfieldForReport(t *testing.T) string {
	t.Helper()
	if err := ort.Usable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if m, _ := filepath.Glob(cranfieldDocs); len(m) != 4 {
		t.Fatalf("want the 4 Cranfield shards at %s, found %d", cranfieldDocs, len(m))
	}
	model := filepath.Join(t.TempDir(), "model")
	if err := testmodel.Generate(model, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 11}, sharedBert); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	cfg := job.Config{
		ModelDir: model, Inputs: []string{cranfieldDocs}, OutputDir: out, Format: shards.FormatParquet, MaxLength: 64,
		Columns: shards.Columns{Title: "title"},
		Encode:  encode.EncodeOptions{BatchTokens: 2048, MaxBatch: 32, Sparsify: encode.DefaultSparsifyOptions()},
	}
	if _, err := job.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCranfieldReport makes the report of a real encoded directory and
// checks its numbers against a plain reading of every row (all non-zero
// counts sorted in memory, document frequencies counted in a map). It
// tests package report (shards/report) but lives here: encoding the
// collection needs the encoder job, internal to the CLI.
func TestCranfieldReport(t *testing.T) {
	dir := encodeCranfieldForReport(t)
	r, err := report.Collect(context.Background(), dir, report.Options{TopTerms: 10})
	if err != nil {
		t.Fatal(err)
	}
	var nnz []int
	var empty, truncated, tokens int64
	df := map[uint32]int64{}
	files, _ := filepath.Glob(filepath.Join(dir, "docs-*.parquet"))
	for _, f := range files {
		err := shards.ReadShard(f, func(row shards.Row) error {
			nnz = append(nnz, len(row.Vec.Terms))
			if len(row.Vec.Terms) == 0 {
				empty++
			}
			if row.Truncated {
				truncated++
			}
			tokens += int64(row.NumTokens)
			for _, t := range row.Vec.Terms {
				df[t]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Ints(nnz)
	n := len(nnz)
	if n != 1400 || len(r.Shards) != 4 {
		t.Fatalf("%d rows read, %d shards in the report; want 1400 and 4", n, len(r.Shards))
	}
	tot := r.Total
	if tot.Rows != 1400 || tot.Empty != empty || tot.Truncated != truncated || tot.Tokens != tokens {
		t.Errorf("report: rows %d empty %d truncated %d tokens %d; read: 1400 %d %d %d", tot.Rows, tot.Empty, tot.Truncated, tot.Tokens, empty, truncated, tokens)
	}
	if truncated < 100 {
		t.Errorf("only %d documents truncated at 64 tokens", truncated)
	}
	p50, p99 := nnz[n/2], nnz[min(n-1, int(0.99*float64(n)))]
	if tot.NNZPercentile(0.5) != p50 || tot.NNZPercentile(0.99) != p99 || tot.NNZMax() != nnz[n-1] {
		t.Errorf("nnz p50 %d p99 %d max %d; want %d %d %d", tot.NNZPercentile(0.5), tot.NNZPercentile(0.99), tot.NNZMax(), p50, p99, nnz[n-1])
	}
	var ids []uint32
	for id := range df {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b uint32) int {
		if df[a] != df[b] {
			return int(df[b] - df[a])
		}
		return int(a) - int(b)
	})
	vocab, err := shards.ReadVocabulary(filepath.Join(dir, shards.VocabularyFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, term := range r.TopTerms {
		if term.ID != ids[i] || term.DF != df[ids[i]] || term.Token != vocab[ids[i]] {
			t.Errorf("top term %d: %+v, want id %d %q df %d", i, term, ids[i], vocab[ids[i]], df[ids[i]])
		}
	}
	if r.TopTerms[0].Token != "[CLS]" && r.TopTerms[0].Token != "[SEP]" {
		t.Errorf("the term in most documents is %q; every document holds [CLS] and [SEP]", r.TopTerms[0].Token)
	}
	// The page: every figure there; the per-shard run plots drawn exactly
	// when the manifests hold run statistics (the encoder records them
	// from some version on).
	figs := reportFigures(t, r)
	withStats := r.Shards[0].RunStats() != nil
	for _, id := range report.FigureIDs() {
		f := figs[id]
		if f == nil {
			t.Errorf("no figure %s", id)
			continue
		}
		wantSVG := withStats || (id != report.FigThrough && id != report.FigPadding)
		if got := hasDescendant(f, "svg"); got != wantSVG {
			t.Errorf("figure %s: svg %v, want %v (manifests with run statistics: %v)", id, got, wantSVG, withStats)
		}
	}
	if len(r.Notes) != 0 {
		t.Errorf("notes on a clean run: %q", r.Notes)
	}
	for _, s := range r.Settings {
		if s.Name == "max length" && strings.Join(s.Values, ",") != "64" {
			t.Errorf("setting max length %q, want 64", s.Values)
		}
	}
}

// reportFigures renders r and returns the page's <figure> elements by id.
func reportFigures(t *testing.T, r *report.Report) map[string]*html.Node {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	figs := map[string]*html.Node{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "figure" {
			for _, a := range n.Attr {
				if a.Key == "id" {
					figs[a.Val] = n
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return figs
}

// hasDescendant reports whether some element below n is a <tag>.
func hasDescendant(n *html.Node, tag string) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if (c.Type == html.ElementNode && c.Data == tag) || hasDescendant(c, tag) {
			return true
		}
	}
	return false
}
