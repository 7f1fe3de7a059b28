package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/export/exporttest"
)

// testVocab holds tokens that need escaping in some format: white space of
// several kinds, quotes, backslashes, non-ASCII, dots, percent signs, bytes
// that are not UTF-8, and a control character.
var testVocab = []string{
	"[PAD]", "the", "hello world", `say "hi"`, `back\slash`, "naïve", "日本語", "a.b",
	"%", "%20", "%2", "\xff\xfeend", "tab\there", "ideo\u3000space", "\x1cfs", "nb\u00a0sp",
	"line\nbreak", "50%", "...", "##s", "ctl\x01x",
}

// row builds a row of the given terms and weights, impacts at scale 100.
func row(id string, terms []uint32, weights []float32) shards.Row {
	r := shards.Row{DocID: id, Vec: encode.SparseVec{Terms: terms, Weights: weights, Impacts: make([]uint16, len(weights))}, NumTokens: 9}
	for i, w := range weights {
		r.Vec.Impacts[i] = encode.Quantize(w, 100)
	}
	return r
}

// allTerms is a row holding every term of testVocab but [PAD].
func allTerms(id string) shards.Row {
	var terms []uint32
	var weights []float32
	for i := 1; i < len(testVocab); i++ {
		terms = append(terms, uint32(i))
		weights = append(weights, 0.01+float32(i)*0.37)
	}
	return row(id, terms, weights)
}

// testShards are two shards of a corpus: every token, an empty vector, a
// vector whose impacts all round to 0 and with a subnormal weight, ids
// numeric and not, with quotes, tabs and non-ASCII.
var testShards = map[string][]shards.Row{
	"docs-00000": {
		allTerms("d1"),
		row("42", nil, nil),
		row(`doc "q" ü`, []uint32{1, 5}, []float32{0.004, 1e-40}), // impacts 0; 1e-40 is subnormal
		row("7", []uint32{2, 7, 19}, []float32{0.125, 2.5, 0.375}),
	},
	"docs-00001": {
		row("007", []uint32{3, 4, 20}, []float32{1, 0.005, 3.25}),
		row("18446744073709551616", []uint32{6}, []float32{0.015}),
		row("x\ty", []uint32{13, 14, 15, 16}, []float32{0.5, 0.6, 0.7, 0.8}),
	},
}

// writeTestShard commits a shard with its manifest, as splash encode does.
func writeTestShard(t *testing.T, dir, base string, format shards.Format, rows []shards.Row, scale float32, vocabSize int) string {
	t.Helper()
	meta := shards.Metadata{SplashVersion: "test", VocabSize: vocabSize, MaxLength: 512, Pooling: "max", Scale: scale, SourcePath: base + ".parquet"}
	w, err := shards.NewWriter(dir, base, format, meta, shards.WriterOptions{BatchRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	settings, err := meta.Map()
	if err != nil {
		t.Fatal(err)
	}
	m := shards.Manifest{SplashVersion: "test", Settings: settings, Output: shards.NewManifestOutput(out, format),
		Input: shards.ManifestInput{Path: "in/" + base + ".parquet", Size: 1, MTime: time.Unix(0, 0).UTC(), Rows: int64(len(rows))}}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return out.Path
}

// testCorpus writes testShards (the second as Arrow IPC) and the vocabulary
// into a new directory.
func testCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTestShard(t, dir, "docs-00000", shards.FormatParquet, testShards["docs-00000"], 100, len(testVocab))
	writeTestShard(t, dir, "docs-00001", shards.FormatArrow, testShards["docs-00001"], 100, len(testVocab))
	if err := shards.WriteVocabulary(dir, testVocab); err != nil {
		t.Fatal(err)
	}
	return dir
}

// read reads an export back with the reader of its format.
func read(t *testing.T, format Format, path string, opts Options) []exporttest.Doc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []exporttest.Doc
	switch format {
	case FormatAnserini:
		docs, err = exporttest.ReadAnserini(f)
	case FormatAnseriniTopics:
		docs, err = exporttest.ReadAnseriniTopics(f)
	case FormatSeismic:
		ids, ierr := os.Open(path + ".ids")
		if ierr != nil {
			t.Fatal(ierr)
		}
		defer ids.Close()
		docs, err = exporttest.ReadSeismic(f, ids)
	case FormatSeismicJSONL:
		docs, err = exporttest.ReadSeismicJSONL(f)
	case FormatESBulk:
		docs, err = exporttest.ReadESBulk(f, opts.Index, opts.Field)
	case FormatQdrant:
		docs, err = exporttest.ReadQdrant(f, opts.Field)
	}
	if err != nil {
		t.Fatalf("read back %s: %v", format, err)
	}
	return docs
}

// wantStats counts, from the rows and the documented rules, what an export
// should report.
func wantStats(rows []shards.Row, format Format, scale float64) Stats {
	var s Stats
	for _, r := range rows {
		n := 0
		for _, w := range r.Vec.Weights {
			switch {
			case format == FormatAnserini && math.Round(float64(w)*scale) == 0,
				format == FormatESBulk && w < 0x1p-126:
				s.Dropped++
			default:
				n++
			}
		}
		s.Documents++
		s.Postings += int64(n)
		if n == 0 {
			s.Empty++
		}
	}
	return s
}

// TestRoundTrip exports the test corpus in every format, reads each export
// back with a reader written from the format's description and compares it
// document by document with the shards.
func TestRoundTrip(t *testing.T) {
	dir := testCorpus(t)
	in, err := ResolveInput(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	wantShards := []string{filepath.Join(dir, "docs-00000.parquet"), filepath.Join(dir, "docs-00001.arrow")}
	if !slices.Equal(in.Shards, wantShards) || !in.Verified || !slices.Equal(in.Vocabulary, testVocab) {
		t.Fatalf("ResolveInput: %v (verified %v), vocabulary of %d", in.Shards, in.Verified, len(in.Vocabulary))
	}
	rows, err := exporttest.ReadRows(in.Shards)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{
		{Format: FormatAnserini},
		{Format: FormatAnserini, Scale: 7.5},
		{Format: FormatSeismic},
		{Format: FormatSeismicJSONL},
		{Format: FormatESBulk},
		{Format: FormatESBulk, Index: "my-index", Field: "sparse"},
		{Format: FormatQdrant},
		{Format: FormatQdrant, Field: "text"},
	} {
		t.Run(string(opts.Format), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "export.out")
			stats, err := WriteFile(context.Background(), out, in.Shards, in.Vocabulary, opts)
			if err != nil {
				t.Fatal(err)
			}
			full, _ := opts.validate()
			scale := 100.0
			if opts.Scale != 0 {
				scale = float64(opts.Scale)
			}
			docs := read(t, opts.Format, out, full)
			if err := exporttest.Compare(docs, rows, exporttest.Expect{Format: string(opts.Format), Vocab: testVocab, Scale: scale}); err != nil {
				t.Fatal(err)
			}
			if want := wantStats(rows, opts.Format, scale); stats != want {
				t.Errorf("stats %+v, want %+v", stats, want)
			}
			names, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*"))
			hidden, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*"))
			want := []string{out}
			if opts.Format == FormatSeismic {
				want = append(want, out+".ids")
			}
			if !slices.Equal(names, want) || len(hidden) != 0 {
				t.Errorf("output directory holds %v and %v, want %v", names, hidden, want)
			}
		})
	}
}

// TestAnseriniByHand checks impacts computed by hand: round half away from
// zero at scale 2, zero impacts left out, tokens escaped.
func TestAnseriniByHand(t *testing.T) {
	dir := t.TempDir()
	vocab := []string{"zero", "one", "two", "three", "a b", "%41"}
	writeTestShard(t, dir, "s", shards.FormatParquet, []shards.Row{
		row("h", []uint32{0, 1, 2, 3, 4, 5}, []float32{0.2, 0.25, 0.75, 1.25, 0.5, 3}),
		row("e", []uint32{0}, []float32{0.24}),
	}, 100, len(vocab))
	var buf bytes.Buffer
	stats, err := Write(context.Background(), &buf, nil, []string{filepath.Join(dir, "s.parquet")}, vocab, Options{Format: FormatAnserini, Scale: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"h","contents":"","vector":{"one":1,"two":2,"three":3,"a%20b":1,"%2541":6}}` + "\n" +
		`{"id":"e","contents":"","vector":{}}` + "\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	if want := (Stats{Documents: 2, Empty: 1, Postings: 5, Dropped: 2}); stats != want {
		t.Errorf("stats %+v, want %+v", stats, want)
	}
}

func TestEscapeToken(t *testing.T) {
	for _, c := range []struct {
		format  Format
		in, out string
	}{
		{FormatAnserini, "hello", "hello"},
		{FormatAnserini, "a b", "a%20b"},
		{FormatAnserini, "%", "%"},
		{FormatAnserini, "50%", "50%"},
		{FormatAnserini, "%20", "%2520"},
		{FormatAnserini, "%2", "%2"},
		{FormatAnserini, "%zz", "%zz"},
		{FormatAnserini, "%%20", "%%2520"},
		{FormatAnserini, "% ", "%%20"},
		{FormatAnserini, "%a ", "%a%20"},
		{FormatAnserini, "ideo\u3000x", "ideo%E3%80%80x"},
		{FormatAnserini, "nb\u00a0sp", "nb%C2%A0sp"},
		{FormatAnserini, "\xffa", "%FFa"},
		{FormatAnserini, "\x1cfs", "%1Cfs"},
		{FormatAnserini, "tab\there\n", "tab%09here%0A"},
		{FormatAnserini, `say "hi"`, `say%20"hi"`},
		{FormatAnserini, "a.b", "a.b"},
		{FormatAnserini, "naïve", "naïve"},
		{FormatAnserini, "\ufffd", "\ufffd"},
		{FormatESBulk, "a.b", "a%2Eb"},
		{FormatESBulk, "...", "%2E%2E%2E"},
		{FormatESBulk, "a b", "a b"},
		{FormatESBulk, "%2E", "%252E"},
		{FormatSeismicJSONL, "a b.c", "a b.c"},
		{FormatSeismicJSONL, "\xff", "%FF"},
		{FormatSeismicJSONL, "%41", "%2541"},
		{FormatSeismic, "x y\xff", "x y\xff"},
		{FormatQdrant, "%41", "%41"},
	} {
		if got := c.format.EscapeToken(c.in); got != c.out {
			t.Errorf("%s.EscapeToken(%q) = %q, want %q", c.format, c.in, got, c.out)
		}
	}
}

// FuzzEscapeToken checks that escaping is undone by the documented decoding
// (so it is injective), gives valid UTF-8 and removes what each format
// cannot carry.
func FuzzEscapeToken(f *testing.F) {
	for _, tok := range testVocab {
		f.Add(tok)
	}
	f.Add("%%2%20%zz%")
	f.Fuzz(func(t *testing.T, tok string) {
		for _, format := range []Format{FormatAnserini, FormatSeismicJSONL, FormatESBulk} {
			esc := format.EscapeToken(tok)
			if back := exporttest.UnescapeToken(esc); back != tok {
				t.Fatalf("%s: %q escapes to %q, which decodes to %q", format, tok, esc, back)
			}
			if !utf8.ValidString(esc) {
				t.Fatalf("%s: %q escapes to %q, not UTF-8", format, tok, esc)
			}
			if format == FormatAnserini && strings.IndexFunc(esc, unicode.IsSpace) >= 0 {
				t.Fatalf("anserini: %q escapes to %q, with white space", tok, esc)
			}
			if format == FormatESBulk && strings.Contains(esc, ".") {
				t.Fatalf("esbulk: %q escapes to %q, with a dot", tok, esc)
			}
		}
	})
}

// TestRealVocabularyUnchanged: no token of bert-base-uncased changes in the
// anserini and seismic-jsonl formats; in esbulk only those with a dot do.
func TestRealVocabularyUnchanged(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/tokenizers/bert-base-uncased/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var tj struct {
		Model struct {
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		t.Fatal(err)
	}
	if len(tj.Model.Vocab) < 30000 {
		t.Fatalf("vocabulary of %d tokens", len(tj.Model.Vocab))
	}
	for tok := range tj.Model.Vocab {
		for _, f := range []Format{FormatAnserini, FormatAnseriniTopics, FormatSeismicJSONL} {
			if got := f.EscapeToken(tok); got != tok {
				t.Errorf("%s escapes %q to %q", f, tok, got)
			}
		}
		if got := FormatESBulk.EscapeToken(tok); (got != tok) != strings.Contains(tok, ".") {
			t.Errorf("esbulk escapes %q to %q", tok, got)
		}
	}
}

// TestQdrantPointID checks ids against Python's uuid.uuid5(uuid.NAMESPACE_URL,
// doc_id) and the integer rule.
func TestQdrantPointID(t *testing.T) {
	for id, want := range map[string]string{
		"42":                   "42",
		"0":                    "0",
		"18446744073709551615": "18446744073709551615",
		"doc-1":                `"3f622591-baa6-5888-8a4f-6b3813e16a44"`,
		"MED-10":               `"8809c25c-823f-5c80-b4f2-ca0a71a37797"`,
		"é x":                  `"bc8684bd-38bc-595e-b876-33b949c4ed71"`,
		"007":                  `"2f8a47ca-fdcc-5c8c-8615-5e2b9cc66fe0"`,
		"18446744073709551616": `"981a9ebc-9821-524a-8398-f465f75b9ea0"`,
		"-1":                   `"1a2ff7f4-642a-5f07-9d75-400caa746f71"`,
		"+1":                   `"1592e3c0-1f23-5b4c-8994-5af2f5dd4a23"`,
		"x\ty":                 `"060d7975-0989-5877-b3d2-0c1d148d3413"`,
	} {
		if got := QdrantPointID(id); got != want {
			t.Errorf("QdrantPointID(%q) = %s, want %s", id, got, want)
		}
	}
	// RFC 9562's name space for DNS names: Python's documented example.
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if u := formatUUID(uuid5(dns, "python.org")); u != "886313e1-3b8a-5372-9b90-0c9aee199e5d" {
		t.Errorf("uuid5(DNS, python.org) = %s", u)
	}
}

func formatUUID(u [16]byte) string {
	var h []byte
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			h = append(h, '-')
		}
		h = append(h, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
	}
	return string(h)
}

func TestResolveInput(t *testing.T) {
	ctx := context.Background()
	dir := testCorpus(t)

	// A single shard: verified by its manifest.
	in, err := ResolveInput(ctx, filepath.Join(dir, "docs-00001.arrow"))
	if err != nil || !in.Verified || len(in.Shards) != 1 || len(in.Vocabulary) != len(testVocab) {
		t.Fatalf("file: %+v, %v", in, err)
	}
	// A copy elsewhere, without manifest or vocabulary: taken as it is.
	other := t.TempDir()
	data, _ := os.ReadFile(filepath.Join(dir, "docs-00000.parquet"))
	copyPath := filepath.Join(other, "copy.parquet")
	os.WriteFile(copyPath, data, 0o644)
	if in, err := ResolveInput(ctx, copyPath); err != nil || in.Verified || in.Vocabulary != nil {
		t.Fatalf("copy: %+v, %v", in, err)
	}
	// Missing.
	if _, err := ResolveInput(ctx, filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing input: %v", err)
	}
	// A directory without manifests.
	if _, err := ResolveInput(ctx, other); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "holds no manifest") {
		t.Errorf("directory without manifests: %v", err)
	}
	// A shard without manifest beside manifested ones: an unfinished run.
	os.WriteFile(filepath.Join(dir, "docs-00002.parquet"), data, 0o644)
	if _, err := ResolveInput(ctx, dir); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "docs-00002.parquet") {
		t.Errorf("shard without manifest: %v", err)
	}
	os.Remove(filepath.Join(dir, "docs-00002.parquet"))
	// A shard that no longer matches its manifest.
	path := filepath.Join(dir, "docs-00000.parquet")
	os.WriteFile(path, append(data, 0), 0o644)
	if _, err := ResolveInput(ctx, dir); !errors.Is(err, ErrInput) || !errors.Is(err, shards.ErrMismatch) {
		t.Errorf("corrupt shard in a directory: %v", err)
	}
	if _, err := ResolveInput(ctx, path); !errors.Is(err, ErrInput) {
		t.Errorf("corrupt shard file: %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	ctx := context.Background()
	dir := testCorpus(t)
	paths := []string{filepath.Join(dir, "docs-00000.parquet"), filepath.Join(dir, "docs-00001.arrow")}
	var buf bytes.Buffer
	for name, c := range map[string]struct {
		vocab []string
		opts  Options
		want  string
		input bool // wraps ErrInput
	}{
		"bad format":          {testVocab, Options{Format: "lucene"}, "anserini, anserini-topics, seismic, seismic-jsonl, esbulk, qdrant", false},
		"scale not anserini":  {testVocab, Options{Format: FormatQdrant, Scale: 3}, "anserini and anserini-topics formats only", false},
		"negative scale":      {testVocab, Options{Format: FormatAnserini, Scale: -1}, "must be a finite number > 0", false},
		"index not esbulk":    {testVocab, Options{Format: FormatAnserini, Index: "x"}, "esbulk format only", false},
		"field not esbulk":    {testVocab, Options{Format: FormatSeismic, Field: "x"}, "esbulk and qdrant", false},
		"bad index name":      {testVocab, Options{Format: FormatESBulk, Index: "Upper"}, "lower case", false},
		"no vocabulary":       {nil, Options{Format: FormatAnserini}, "needs the vocabulary", true},
		"another vocabulary":  {testVocab[:5], Options{Format: FormatQdrant}, "the shard's vocabulary has 21 entries", true},
		"seismic without ids": {testVocab, Options{Format: FormatSeismic}, "writer for the doc ids", false},
	} {
		_, err := Write(ctx, &buf, nil, paths, c.vocab, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrInput) != c.input {
			t.Errorf("%s: %v, want an error with %q (ErrInput %v)", name, err, c.want, c.input)
		}
	}

	// Shards of different scales: refused unless a scale is given.
	mixed := t.TempDir()
	a := writeTestShard(t, mixed, "a", shards.FormatParquet, testShards["docs-00000"], 100, len(testVocab))
	b := writeTestShard(t, mixed, "b", shards.FormatParquet, testShards["docs-00001"], 50, len(testVocab))
	if _, err := Write(ctx, &buf, nil, []string{a, b}, testVocab, Options{Format: FormatAnserini}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "give one scale") {
		t.Errorf("mixed scales: %v", err)
	}
	if _, err := Write(ctx, &buf, nil, []string{a, b}, testVocab, Options{Format: FormatAnserini, Scale: 100}); err != nil {
		t.Errorf("mixed scales with --scale: %v", err)
	}
	// Mixed scales do not matter to the formats that write weights.
	if _, err := Write(ctx, &buf, nil, []string{a, b}, testVocab, Options{Format: FormatSeismicJSONL}); err != nil {
		t.Errorf("mixed scales, seismic-jsonl: %v", err)
	}

	// A vocabulary that repeats a token: fine until one document holds both.
	dup := slices.Clone(testVocab)
	dup[20] = "hello world" // as term 2
	buf.Reset()
	if _, err := Write(ctx, &buf, nil, paths[:1], dup, Options{Format: FormatSeismicJSONL}); !errors.Is(err, ErrInput) ||
		!strings.Contains(err.Error(), "terms 2 and 20 both export as token") || !strings.Contains(err.Error(), `doc "d1"`) {
		t.Errorf("repeated token: %v", err)
	}
	if _, err := Write(ctx, &buf, nil, paths[1:], dup, Options{Format: FormatSeismicJSONL}); err != nil {
		t.Errorf("repeated token in no document: %v", err)
	}
	// Escaping can make two tokens equal only if the vocabulary repeats one:
	// "a.b" and "a%2Eb" stay apart in esbulk.
	esc := slices.Clone(testVocab)
	esc[19] = "a%2Eb"
	if _, err := Write(ctx, &buf, nil, paths[:1], esc, Options{Format: FormatESBulk}); err != nil {
		t.Errorf("distinct tokens: %v", err)
	}

	// Term ids beyond the vocabulary named in the metadata.
	small := t.TempDir()
	p := writeTestShard(t, small, "s", shards.FormatParquet, []shards.Row{row("a", []uint32{1, 9}, []float32{1, 1})}, 100, 5)
	if _, err := Write(ctx, &buf, nil, []string{p}, nil, Options{Format: FormatQdrant}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "term id 9 outside the vocabulary (5 entries)") {
		t.Errorf("term beyond the vocabulary: %v", err)
	}

	// Doc ids a format cannot carry.
	ids := t.TempDir()
	nl := writeTestShard(t, ids, "nl", shards.FormatParquet, []shards.Row{row("a\nb", nil, nil)}, 100, 5)
	if _, err := Write(ctx, &buf, &buf, []string{nl}, nil, Options{Format: FormatSeismic}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "line break") {
		t.Errorf("line break in a seismic doc id: %v", err)
	}
	long := writeTestShard(t, ids, "long", shards.FormatParquet, []shards.Row{row(strings.Repeat("x", 513), nil, nil)}, 100, 5)
	if _, err := Write(ctx, &buf, nil, []string{long}, []string{"a", "b", "c", "d", "e"}, Options{Format: FormatESBulk}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "at most 512") {
		t.Errorf("long _id: %v", err)
	}
}

// countdown is a context that reports cancellation once Err has been asked
// n times: a cancellation in the middle of an export, deterministically.
type countdown struct {
	context.Context
	n int
}

func (c *countdown) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestCancel: a cancelled export returns context.Canceled and leaves neither
// the output nor a temp file; an existing output stays as it was.
func TestCancel(t *testing.T) {
	dir := testCorpus(t)
	paths := []string{filepath.Join(dir, "docs-00000.parquet"), filepath.Join(dir, "docs-00001.arrow")}
	for _, format := range []Format{FormatAnserini, FormatSeismic} {
		for _, after := range []int{0, 4, 6} { // before anything; in the first shard; in the second
			outDir := t.TempDir()
			out := filepath.Join(outDir, "x")
			os.WriteFile(out, []byte("old"), 0o644)
			ctx := &countdown{Context: context.Background(), n: after}
			_, err := WriteFile(ctx, out, paths, testVocab, Options{Format: format})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s cancelled after %d checks: %v", format, after, err)
			}
			entries, _ := os.ReadDir(outDir)
			if len(entries) != 1 || entries[0].Name() != "x" {
				t.Errorf("%s cancelled after %d checks left %v", format, after, entries)
			}
			if b, _ := os.ReadFile(out); string(b) != "old" {
				t.Errorf("%s cancelled after %d checks replaced the existing output", format, after)
			}
		}
	}
}
