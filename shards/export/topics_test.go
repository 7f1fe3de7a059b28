package export

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/export/exporttest"
)

// testQueries are encoded queries: every token of testVocab (white space,
// quotes, percent signs, "##s" and bytes that are not UTF-8 among them), a
// query whose impacts all round to 0, an empty one, and ids with non-ASCII
// and inner spaces.
var testQueries = []shards.Row{
	allTerms("q1"),
	row("2", []uint32{1, 19}, []float32{0.034, 0.005}),
	row("q 3 ü", []uint32{2, 12, 13}, []float32{0.5, 0.014, 0.026}),
	row("zero", []uint32{1, 5}, []float32{0.004, 1e-40}),
	row("empty", nil, nil),
	row("1048576", []uint32{20}, []float32{0.01}),
}

// TestAnseriniTopicsRoundTrip exports encoded queries as Anserini topics,
// reads them back as Anserini's TsvString reader and pretokenized analyzer
// would, and compares them with the shard: each token's count is its
// impact, queries left without a token are skipped and counted.
func TestAnseriniTopicsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeTestShard(t, dir, "queries", shards.FormatParquet, testQueries, 100, len(testVocab))
	if err := shards.WriteVocabulary(dir, testVocab); err != nil {
		t.Fatal(err)
	}
	in, err := ResolveInput(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []float32{0, 7.5} {
		out := filepath.Join(t.TempDir(), "topics.tsv")
		opts := Options{Format: FormatAnseriniTopics, Scale: scale}
		stats, err := WriteFile(context.Background(), out, in.Shards, in.Vocabulary, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := float64(scale)
		if scale == 0 {
			want = 100
		}
		docs := read(t, FormatAnseriniTopics, out, opts)
		if err := exporttest.Compare(docs, testQueries, exporttest.Expect{Format: string(FormatAnseriniTopics), Vocab: testVocab, Scale: want}); err != nil {
			t.Fatalf("scale %v: %v", scale, err)
		}
		ws := wantStats(testQueries, FormatAnserini, want)
		ws.Skipped, ws.Documents, ws.Empty = ws.Empty, ws.Documents-ws.Empty, 0
		if stats != ws {
			t.Errorf("scale %v: stats %+v, want %+v", scale, stats, ws)
		}
		if scale == 0 && (stats.Documents != 4 || stats.Skipped != 2) {
			t.Errorf("stats %+v: want 4 queries written and 2 (zero, empty) skipped", stats)
		}
	}
}

// TestAnseriniTopicsByHand checks a topic file written by hand: tokens
// repeated by their impact at scale 2 (round half away from zero), in term
// id order, escaped as the anserini documents escape them, zero impacts
// left out, a query without a token left out.
func TestAnseriniTopicsByHand(t *testing.T) {
	dir := t.TempDir()
	vocab := []string{"zero", "one", "two", "three", "a b", "%41", "##ing", `"`}
	writeTestShard(t, dir, "q", shards.FormatParquet, []shards.Row{
		row("h", []uint32{0, 1, 2, 3, 4, 5}, []float32{0.2, 0.25, 0.75, 1.25, 0.5, 3}),
		row("e", []uint32{0}, []float32{0.24}),
		row("1000", []uint32{6, 7}, []float32{1, 0.5}),
	}, 100, len(vocab))
	paths := []string{filepath.Join(dir, "q.parquet")}
	var buf bytes.Buffer
	stats, err := Write(context.Background(), &buf, nil, paths, vocab, Options{Format: FormatAnseriniTopics, Scale: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := "h\tone two two three three three a%20b %2541 %2541 %2541 %2541 %2541 %2541\n" +
		"1000\t##ing ##ing \"\n"
	if buf.String() != want {
		t.Errorf("got\n%q\nwant\n%q", buf.String(), want)
	}
	if want := (Stats{Documents: 2, Postings: 7, Dropped: 2, Skipped: 1}); stats != want {
		t.Errorf("stats %+v, want %+v", stats, want)
	}
	if !strings.Contains(stats.String(), "1 skipped") {
		t.Errorf("summary %q does not count the skipped query", stats.String())
	}
	// The documents' export writes the same strings for the same tokens.
	buf.Reset()
	if _, err := Write(context.Background(), &buf, nil, paths, vocab, Options{Format: FormatAnserini, Scale: 2}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{`"a%20b":1`, `"%2541":6`, `"##ing":2`, `"\"":1`} {
		if !strings.Contains(buf.String(), tok) {
			t.Errorf("the anserini export lacks %s:\n%s", tok, buf.String())
		}
	}
}

// TestAnseriniTopicsErrors refuses query ids that a TsvString topic file
// cannot carry, a repeated query id and an impact too large to repeat.
func TestAnseriniTopicsErrors(t *testing.T) {
	vocab := []string{"a", "b"}
	for name, c := range map[string]struct {
		rows  []shards.Row
		scale float32
		want  string
	}{
		"tab":           {[]shards.Row{row("x\ty", []uint32{1}, []float32{1})}, 0, "tab or a line break"},
		"newline":       {[]shards.Row{row("x\ny", []uint32{1}, []float32{1})}, 0, "tab or a line break"},
		"carriage":      {[]shards.Row{row("x\ry", []uint32{1}, []float32{1})}, 0, "tab or a line break"},
		"leading space": {[]shards.Row{row(" x", []uint32{1}, []float32{1})}, 0, "trims"},
		"trailing ctl":  {[]shards.Row{row("x\x01", []uint32{1}, []float32{1})}, 0, "trims"},
		"empty id":      {[]shards.Row{row("", []uint32{1}, []float32{1})}, 0, "empty query id"},
		"repeated id":   {[]shards.Row{row("x", []uint32{1}, []float32{1}), row("y", []uint32{0}, []float32{1}), row("x", []uint32{0}, []float32{2})}, 0, "same id"},
		"huge impact":   {[]shards.Row{row("x", []uint32{0}, []float32{700})}, 100, "at most 65536 times"},
	} {
		dir := t.TempDir()
		p := writeTestShard(t, dir, "q", shards.FormatParquet, c.rows, 100, len(vocab))
		_, err := Write(context.Background(), &bytes.Buffer{}, nil, []string{p}, vocab, Options{Format: FormatAnseriniTopics, Scale: c.scale})
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInput with %q", name, err, c.want)
		}
	}
	if _, err := Write(context.Background(), &bytes.Buffer{}, nil, nil, nil, Options{Format: FormatAnseriniTopics}); err == nil || !strings.Contains(err.Error(), "needs the vocabulary") {
		t.Errorf("no vocabulary: %v", err)
	}
}

// TestResolveInputLegacyVocabulary reads the _vocabulary.tsv of an output
// written before _vocabulary.parquet, so that old outputs still export.
func TestResolveInputLegacyVocabulary(t *testing.T) {
	dir := t.TempDir()
	vocab := []string{"[PAD]", "a", `"`, "##b"}
	writeTestShard(t, dir, "q", shards.FormatParquet, []shards.Row{row("1", []uint32{2, 3}, []float32{0.02, 0.01})}, 100, len(vocab))
	tsv := "0\t[PAD]\n1\ta\n2\t\"\n3\t##b\n"
	if err := os.WriteFile(filepath.Join(dir, shards.LegacyVocabularyFile), []byte(tsv), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := ResolveInput(context.Background(), dir)
	if err != nil || !slices.Equal(in.Vocabulary, vocab) {
		t.Fatalf("ResolveInput: vocabulary %q, %v", in.Vocabulary, err)
	}
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, nil, in.Shards, in.Vocabulary, Options{Format: FormatAnseriniTopics}); err != nil || buf.String() != "1\t\" \" ##b\n" {
		t.Errorf("topics %q, %v", buf.String(), err)
	}
}
