package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"gonum.org/v1/plot"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/stats"
)

// fixtureRow is a row of a hand-built shard.
type fixtureRow struct {
	terms     []uint32
	weights   []float32
	tokens    int32
	truncated bool
}

// fixtureShard is a hand-built shard; stats nil writes a manifest without
// run statistics, noManifest writes none.
type fixtureShard struct {
	base       string
	rows       []fixtureRow
	stats      *shards.ManifestStats
	noManifest bool
}

// fixtureVocab has a token with HTML specials (id 7, the most frequent term)
// to check escaping.
func fixtureVocab() []string {
	v := make([]string, 30)
	for i := range v {
		v[i] = fmt.Sprintf("tok%d", i)
	}
	v[7] = `<b>&amp"x`
	return v
}

// handShards is the fixture whose counts the tests know by hand:
//
//	nnz per row: a 3 0 2 5, b 1 0 8, c 2 3 -> sorted 0 0 1 2 2 3 3 5 8
//	documents 9, empty 2, truncated 3 (a2, b0, c0), non-zeros 24
//	p50: rank floor(0.5*9) = 4 -> 2; p99: rank min(8, floor(8.91)) = 8 -> 8
//	df: term 7 in 6 rows (a2 a3 b0 b2 c0 c1), term 1 in 5, term 2 in 4, term 3 in 2, others 1
func handShards() []fixtureShard {
	ones := func(n int, w float32) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = w
		}
		return out
	}
	return []fixtureShard{
		{base: "part-a", rows: []fixtureRow{
			{terms: []uint32{1, 2, 3}, weights: []float32{0.5, 1, 2}, tokens: 10},
			{tokens: 2},
			{terms: []uint32{1, 7}, weights: []float32{0.25, 3}, tokens: 512, truncated: true},
			{terms: []uint32{1, 2, 7, 9, 11}, weights: ones(5, 1), tokens: 40},
		}, stats: &shards.ManifestStats{Documents: 4, Tokens: 564, PaddedTokens: 800, Batches: 2, Truncated: 1, Empty: 1, Seconds: 2}},
		{base: "part-b", rows: []fixtureRow{
			{terms: []uint32{7}, weights: []float32{0.75}, tokens: 512, truncated: true},
			{tokens: 2},
			{terms: []uint32{1, 2, 3, 4, 5, 6, 7, 8}, weights: ones(8, 0.5), tokens: 30},
		}, stats: &shards.ManifestStats{Documents: 3, Tokens: 544, PaddedTokens: 1088, Batches: 1, Truncated: 1, Empty: 1, Seconds: 0.5}},
		{base: "part-c", rows: []fixtureRow{
			{terms: []uint32{2, 7}, weights: []float32{1.5, 1.5}, tokens: 512, truncated: true},
			{terms: []uint32{1, 7, 20}, weights: []float32{2.5, 0.5, 1}, tokens: 64},
		}, noManifest: true},
	}
}

func testMetadata() shards.Metadata {
	return shards.Metadata{
		SplashVersion: "0.0.0-test", ModelSHA256: strings.Repeat("ab", 32), TokenizerSHA256: strings.Repeat("cd", 32),
		VocabSize: 30, MaxLength: 512, Pooling: "max", Scale: 100,
		SourcePath: "in/x.parquet", SourceSize: 1, SourceSHA256: strings.Repeat("ef", 32),
	}
}

// writeFixture writes the shards, their manifests and the vocabulary into a
// new directory.
func writeFixture(t testing.TB, fixture []fixtureShard, vocab []string) string {
	t.Helper()
	dir := t.TempDir()
	if vocab != nil {
		if err := shards.WriteVocabulary(dir, vocab); err != nil {
			t.Fatal(err)
		}
	}
	for _, fs := range fixture {
		w, err := shards.NewWriter(dir, fs.base, shards.FormatParquet, testMetadata(), shards.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range fs.rows {
			imp := make([]uint16, len(r.weights))
			for k, x := range r.weights {
				imp[k] = uint16(math.Round(float64(x) * 100))
			}
			row := shards.Row{DocID: fmt.Sprintf("%s-%d", fs.base, i), NumTokens: r.tokens, Truncated: r.truncated,
				Vec: encode.SparseVec{Terms: r.terms, Weights: r.weights, Impacts: imp}}
			if err := w.Write(row); err != nil {
				t.Fatal(err)
			}
		}
		out, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if fs.noManifest {
			continue
		}
		m := shards.Manifest{
			Input:  shards.ManifestInput{Path: "in/" + fs.base + ".parquet", Size: 1, Rows: int64(len(fs.rows)), MTime: time.Unix(0, 0).UTC()},
			Output: shards.NewManifestOutput(out, shards.FormatParquet),
			Stats:  fs.stats,
		}
		if err := shards.WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCollectHandBuilt(t *testing.T) {
	dir := writeFixture(t, handShards(), fixtureVocab())
	r, err := Collect(context.Background(), dir, Options{TopTerms: 4})
	if err != nil {
		t.Fatal(err)
	}
	tot := r.Total
	if tot.Rows != 9 || tot.Empty != 2 || tot.Truncated != 3 || tot.NNZTotal() != 24 {
		t.Errorf("totals: rows %d empty %d truncated %d nnz %d; want 9 2 3 24", tot.Rows, tot.Empty, tot.Truncated, tot.NNZTotal())
	}
	if tot.Tokens != 10+2+512+40+512+2+30+512+64 {
		t.Errorf("tokens %d", tot.Tokens)
	}
	if p50, p99, mx := tot.NNZPercentile(0.5), tot.NNZPercentile(0.99), tot.NNZMax(); p50 != 2 || p99 != 8 || mx != 8 {
		t.Errorf("nnz p50 %d p99 %d max %d; want 2 8 8", p50, p99, mx)
	}
	wantTop := []struct {
		id    uint32
		token string
		df    int64
	}{{7, `<b>&amp"x`, 6}, {1, "tok1", 5}, {2, "tok2", 4}, {3, "tok3", 2}}
	if len(r.TopTerms) != len(wantTop) {
		t.Fatalf("top terms %v", r.TopTerms)
	}
	for i, w := range wantTop {
		if g := r.TopTerms[i]; g.ID != w.id || g.Token != w.token || g.DF != w.df {
			t.Errorf("top term %d: %+v, want %+v", i, g, w)
		}
	}
	wantShards := []struct {
		base                   string
		rows, empty, truncated int64
		manifest, stats        bool
	}{{"part-a", 4, 1, 1, true, true}, {"part-b", 3, 1, 1, true, true}, {"part-c", 2, 0, 1, false, false}}
	for i, w := range wantShards {
		s := r.Shards[i]
		if s.Base != w.base || s.Rows != w.rows || s.Empty != w.empty || s.Truncated != w.truncated ||
			(s.Manifest != nil) != w.manifest || (s.RunStats() != nil) != w.stats {
			t.Errorf("shard %d: %+v (manifest %v), want %+v", i, s, s.Manifest != nil, w)
		}
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "part-c.parquet has no manifest") {
		t.Errorf("notes %q: want one about part-c's missing manifest", r.Notes)
	}
	// Settings come from the metadata.
	settings := map[string]string{}
	for _, s := range r.Settings {
		settings[s.Name] = strings.Join(s.Values, "|")
	}
	for k, v := range map[string]string{"model sha256": strings.Repeat("ab", 32), "max length": "512", "pooling": "max", "scale": "100", "vocabulary size": "30"} {
		if settings[k] != v {
			t.Errorf("setting %s = %q, want %q", k, settings[k], v)
		}
	}
}

// TestThroughputAndPadding checks the per-shard formulas and the overall
// figures on hand-computed values: part-a 4 docs in 2 s, 564 of 800
// positions real; part-b 3 docs in 0.5 s, 544 of 1088.
func TestThroughputAndPadding(t *testing.T) {
	fx := handShards()
	a, b := *fx[0].stats, *fx[1].stats
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{Throughput(a), 2, "throughput a"}, {Throughput(b), 6, "throughput b"},
		{PaddingWaste(a), 236.0 / 800, "padding a"}, {PaddingWaste(b), 0.5, "padding b"},
		{Throughput(shards.ManifestStats{Documents: 5}), 0, "throughput without seconds"},
		{PaddingWaste(shards.ManifestStats{}), 0, "padding without positions"},
	} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %g, want %g", c.what, c.got, c.want)
		}
	}
	dir := writeFixture(t, fx, fixtureVocab())
	r, err := Collect(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, row := range r.SummaryRows() {
		rows[row.ID] = row.Value
	}
	// 7 documents in 2.5 s; (1888 - 1108) / 1888 = 41.31%.
	for id, want := range map[string]string{
		"summary-throughput": "2.8 documents/s", "summary-padding": "41.31%", "summary-seconds": "2.5 s",
		"summary-run": "recorded for 2 of 3 shards", "summary-documents": "9", "summary-nnz-p50": "2", "summary-nnz-p99": "8",
	} {
		if rows[id] != want {
			t.Errorf("%s = %q, want %q", id, rows[id], want)
		}
	}
}

// parseReport renders r and parses the page.
func parseReport(t *testing.T, r *Report) (*html.Node, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return doc, buf.String()
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// figures returns the page's <figure> elements by id.
func figures(doc *html.Node) map[string]*html.Node {
	out := map[string]*html.Node{}
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "figure" {
			out[attr(n, "id")] = n
		}
	})
	return out
}

func child(n *html.Node, tag string) *html.Node {
	var found *html.Node
	walk(n, func(c *html.Node) {
		if found == nil && c != n && c.Type == html.ElementNode && c.Data == tag {
			found = c
		}
	})
	return found
}

// TestHTMLPage checks the page's structure: every figure with a caption,
// an SVG where there is data and a note where there is none, the summary
// values, the HTML specials of a token escaped, and nothing fetched from
// outside the page.
func TestHTMLPage(t *testing.T) {
	dir := writeFixture(t, handShards(), fixtureVocab())
	r, err := Collect(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc, raw := parseReport(t, r)
	figs := figures(doc)
	if len(figs) != len(FigureIDs()) {
		t.Errorf("%d figures, want %d", len(figs), len(FigureIDs()))
	}
	for _, id := range FigureIDs() {
		f, ok := figs[id]
		if !ok {
			t.Errorf("no figure %s", id)
			continue
		}
		if c := child(f, "figcaption"); c == nil || len(strings.TrimSpace(textOf(c))) < 20 {
			t.Errorf("figure %s: no caption worth the name", id)
		}
		svg := child(f, "svg")
		if svg == nil {
			t.Errorf("figure %s has no <svg>", id)
			continue
		}
		// Something drawn: bars or histogram bins are paths.
		paths := 0
		walk(svg, func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "path" {
				paths++
			}
		})
		if paths < 5 {
			t.Errorf("figure %s: %d paths in its svg", id, paths)
		}
	}
	// The top-terms chart names the tokens; the one with HTML specials is
	// text, not markup.
	top := textOf(figs[FigTopTerms])
	for _, tok := range []string{`<b>&amp"x`, "tok1", "tok2"} {
		if !strings.Contains(top, tok) {
			t.Errorf("top-terms figure lacks the token %q", tok)
		}
	}
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "b" && n.Parent != nil && n.Parent.Data == "text" {
			t.Error("a token's markup became an element")
		}
	})
	// Throughput only for the two shards with run statistics.
	thr := textOf(figs[FigThrough])
	if !strings.Contains(thr, "part-a") || !strings.Contains(thr, "part-b") || strings.Contains(thr, "part-c") {
		t.Errorf("throughput figure labels: %q", thr)
	}
	if !strings.Contains(thr, "1 of 3 shards are left out") {
		t.Errorf("throughput caption does not say part-c is left out: %q", thr)
	}
	// Summary table, by row id.
	cells := map[string]string{}
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" && attr(n, "id") != "" {
			if td := child(n, "td"); td != nil {
				cells[attr(n, "id")] = textOf(td)
			}
		}
	})
	for id, want := range map[string]string{
		"summary-shards": "3", "summary-documents": "9", "summary-empty": "2", "summary-truncated": "3",
		"summary-nnz-mean": "2.7", "summary-nnz-p50": "2", "summary-nnz-p99": "8", "summary-nnz-max": "8",
		"summary-tokens":  strconv.Itoa(10 + 2 + 512 + 40 + 512 + 2 + 30 + 512 + 64),
		"setting-pooling": "max", "setting-scale": "100", "setting-max-length": "512", "setting-model-sha256": strings.Repeat("ab", 32),
	} {
		if cells[id] != want {
			t.Errorf("summary %s = %q, want %q", id, cells[id], want)
		}
	}
	// Self-contained: no script, no stylesheet link, no src, no href but
	// in-page ones.
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "script" || n.Data == "link" || n.Data == "img" || n.Data == "iframe" {
			t.Errorf("page has a <%s>", n.Data)
		}
		for _, a := range n.Attr {
			if (a.Key == "src" || a.Key == "href" || strings.HasSuffix(a.Key, "href")) && !strings.HasPrefix(a.Val, "#") {
				t.Errorf("<%s %s=%q> points outside the page", n.Data, a.Key, a.Val)
			}
		}
	})
	if strings.Contains(raw, "url(") || strings.Contains(raw, "@import") {
		t.Error("the CSS fetches something")
	}
}

// TestNoRunStats: manifests without stats (older splash versions) still
// render, the throughput and padding plots replaced by a note.
func TestNoRunStats(t *testing.T) {
	fx := handShards()
	for i := range fx {
		fx[i].stats = nil
	}
	dir := writeFixture(t, fx, nil) // and no vocabulary: tokens by id
	r, err := Collect(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := parseReport(t, r)
	figs := figures(doc)
	for _, id := range []string{FigThrough, FigPadding} {
		f := figs[id]
		if f == nil || child(f, "svg") != nil || !strings.Contains(textOf(f), "run statistics") {
			t.Errorf("figure %s: want a note about missing run statistics and no svg", id)
		}
	}
	for _, id := range []string{FigNNZ, FigWeights, FigTopTerms, FigTruncated} {
		if f := figs[id]; f == nil || child(f, "svg") == nil {
			t.Errorf("figure %s has no svg", id)
		}
	}
	if top := textOf(figs[FigTopTerms]); !strings.Contains(top, "#7") || !strings.Contains(top, "#1") {
		t.Errorf("without a vocabulary, terms should read #id: %q", top)
	}
}

// TestAllEmpty: a directory whose documents are all empty renders, with
// notes in place of the plots that have nothing to show.
func TestAllEmpty(t *testing.T) {
	dir := writeFixture(t, []fixtureShard{{base: "empty", rows: []fixtureRow{{tokens: 2}, {tokens: 2}}}}, fixtureVocab())
	r, err := Collect(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := parseReport(t, r)
	figs := figures(doc)
	for _, id := range []string{FigWeights, FigTopTerms} {
		if f := figs[id]; f == nil || child(f, "svg") != nil {
			t.Errorf("figure %s: want a note, not a plot", id)
		}
	}
	if f := figs[FigTruncated]; f == nil || child(f, "svg") == nil {
		t.Error("the truncated/empty figure should still plot")
	}
}

func TestWriteAtomicAndErrors(t *testing.T) {
	dir := writeFixture(t, handShards(), fixtureVocab())
	outDir := t.TempDir()
	out := filepath.Join(outDir, "report.html")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), dir, out, Options{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(data, []byte("<!DOCTYPE html>")) {
		t.Fatalf("report not written over the old file: %v %.40q", err, data)
	}
	entries, _ := os.ReadDir(outDir)
	if len(entries) != 1 {
		t.Errorf("output directory holds %d entries, want only report.html", len(entries))
	}

	// Failures leave the old file alone.
	for _, c := range []struct {
		name, dir, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"no shards", t.TempDir(), "holds no impact shard"},
	} {
		_, err := Write(context.Background(), c.dir, out, Options{})
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrInput mentioning %q", c.name, err, c.want)
		}
	}
	bad := writeFixture(t, handShards()[:1], fixtureVocab())
	if err := os.WriteFile(filepath.Join(bad, "part-z.parquet"), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Write(context.Background(), bad, out, Options{})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "part-z.parquet") {
		t.Errorf("corrupt shard: %v; want ErrInput naming part-z.parquet", err)
	}
	if data2, _ := os.ReadFile(out); !bytes.Equal(data, data2) {
		t.Error("a failed report changed the existing file")
	}
	// A write into a missing directory fails without leaving anything.
	if _, err := Write(context.Background(), dir, filepath.Join(outDir, "no", "r.html"), Options{}); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	// Cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Collect(ctx, dir, Options{}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrInput) {
		t.Errorf("cancelled: %v; want context.Canceled, not ErrInput", err)
	}
}

// TestManyShards: past maxNamedShards the per-shard plots count shards by
// position instead of naming them, and still draw every shard.
func TestManyShards(t *testing.T) {
	r := &Report{Dir: "many", Options: Options{}.withDefaults(), Total: stats.New()}
	for i := range 3 * maxNamedShards {
		r.Total.Add(shards.Row{NumTokens: 5, Vec: encode.SparseVec{Terms: []uint32{uint32(i % 7)}, Weights: []float32{1}, Impacts: []uint16{100}}})
		m := &shards.Manifest{Stats: &shards.ManifestStats{Documents: 10, Tokens: 90, PaddedTokens: 100, Seconds: float64(1 + i%5)}}
		r.Shards = append(r.Shards, Shard{Base: fmt.Sprintf("shard-%03d", i), Rows: 1, Truncated: int64(i % 3), Manifest: m})
	}
	r.TopTerms = r.Total.TopTerms(5, nil)
	figs, err := r.Figures()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range figs {
		if f.SVG == "" {
			t.Errorf("figure %s: no svg (%s)", f.ID, f.Note)
		}
		if (f.ID == FigThrough || f.ID == FigTruncated) && (strings.Contains(string(f.SVG), "shard-001") || !strings.Contains(string(f.SVG), "position in name order")) {
			t.Errorf("figure %s should count shards by position", f.ID)
		}
	}
}

// TestPlotPanicBecomesError: gonum/plot panics on a log axis without a
// positive value; renderSVG turns that into an error.
func TestPlotPanicBecomesError(t *testing.T) {
	p := newPlot("broken", "x", "y")
	p.Add(histogram([]stats.Bin{{Lo: 0, Hi: 1, Count: 0}}, colorBlue, true))
	p.Y.Scale = plot.LogScale{}
	if _, err := renderSVG(p, plotWidth, plotHeight); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("renderSVG = %v, want an error naming the plot", err)
	}
}
