package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/shards"
)

// textFixtureDocs is how many Cranfield documents the text-input tests
// encode (the first shard's worth: each test encodes them several times).
const textFixtureDocs = 350

// textFixture is the binary, a tiny model and Cranfield written in the
// formats users have.
type textFixture struct {
	bin, model, dir string
	docs            []crashDoc
}

func newTextFixture(t *testing.T) *textFixture {
	t.Helper()
	f := &textFixture{bin: buildSplash(t), dir: t.TempDir()}
	f.model = filepath.Join(t.TempDir(), "model")
	if out, err := splashCmd(f.bin, "model", "gen-test", "--output", f.model, "--layers", "1", "--hidden", "32", "--heads", "2",
		"--tokenizer", sharedBert).CombinedOutput(); err != nil {
		t.Fatalf("gen-test: %v\n%s", err, out)
	}
	paths, _ := filepath.Glob(cranfieldDocs)
	sort.Strings(paths)
	for _, p := range paths {
		rows, err := parquet.ReadFile[crashDoc](p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		f.docs = append(f.docs, rows...)
	}
	f.docs = f.docs[:textFixtureDocs]
	return f
}

func (f *textFixture) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// encode runs splash encode on input into a new directory and returns it.
func (f *textFixture) encode(t *testing.T, input string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	args := append([]string{"encode", "--model", f.model, "--input", input, "--output", out,
		"--max-length", "64", "--batch-tokens", "512", "--log-format", "json"}, extra...)
	if res, err := splashCmd(f.bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("splash %s: %v\n%s", strings.Join(args, " "), err, tail(string(res), 4000))
	}
	return out
}

// shardRows reads every impact shard of dir in base-name order.
func shardRows(t *testing.T, dir string) []shards.Row {
	t.Helper()
	bases, err := shards.ListManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(bases)
	var rows []shards.Row
	for _, b := range bases {
		if _, err := shards.VerifyShard(dir, b); err != nil {
			t.Fatal(err)
		}
		if err := shards.ReadShard(filepath.Join(dir, b+".parquet"), func(r shards.Row) error {
			rows = append(rows, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

func sameRows(t *testing.T, what string, got, want []shards.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.DocID != w.DocID || g.NumTokens != w.NumTokens || g.Truncated != w.Truncated ||
			!slices.Equal(g.Vec.Terms, w.Vec.Terms) || !slices.Equal(g.Vec.Weights, w.Vec.Weights) {
			t.Fatalf("%s: row %d (%s) differs from the Parquet input's (%s)", what, i, g.DocID, w.DocID)
		}
	}
}

// TestTextInputsEncodeLikeParquet encodes Cranfield as BEIR JSON Lines,
// gzipped JSON Lines, JSON Lines cut into parts, and MS MARCO-style TSV,
// and checks that each gives exactly the impact rows (ids, terms,
// impacts, token counts) of the same documents as Parquet.
func TestTextInputsEncodeLikeParquet(t *testing.T) {
	f := newTextFixture(t)

	// Reference: the documents as one Parquet file, with titles.
	var pq bytes.Buffer
	if err := parquet.Write(&pq, f.docs); err != nil {
		t.Fatal(err)
	}
	want := shardRows(t, f.encode(t, f.write(t, "cran.parquet", pq.Bytes()), "--title-column", "title"))
	if len(want) != textFixtureDocs {
		t.Fatalf("reference: %d rows", len(want))
	}

	var beir bytes.Buffer
	for _, d := range f.docs {
		b, _ := json.Marshal(map[string]string{"_id": d.ID, "title": d.Title, "text": d.Text})
		beir.Write(append(b, '\n'))
	}
	sameRows(t, "BEIR JSON Lines", shardRows(t, f.encode(t, f.write(t, "beir.jsonl", beir.Bytes()))), want)

	// model bench reads the same inputs.
	res, err := splashCmd(f.bin, "model", "bench", "--model", f.model, "--input", filepath.Join(f.dir, "beir.jsonl"),
		"--max-length", "64", "--repeats", "1", "--log-level", "warn").Output()
	var run struct {
		Docs int64 `json:"docs"`
	}
	if err != nil || json.Unmarshal(bytes.TrimSpace(res), &run) != nil || run.Docs != textFixtureDocs {
		t.Fatalf("model bench on JSON Lines: %v, %d documents\n%s", err, run.Docs, res)
	}
	sameRows(t, "gzipped JSON Lines", shardRows(t, f.encode(t, f.write(t, "beirgz.jsonl.gz", gzipped(t, beir.Bytes())))), want)
	parts := f.encode(t, filepath.Join(f.dir, "beir.jsonl"), "--part-size", "64KiB")
	if bases, _ := shards.ListManifests(parts); len(bases) != int((int64(beir.Len())+64<<10-1)/(64<<10)) || bases[0] != "beir.part00000" {
		t.Fatalf("parts: %v", bases)
	}
	sameRows(t, "JSON Lines in 64 KiB parts", shardRows(t, parts), want)
	if out, err := splashCmd(f.bin, "finalize", "--output", parts, "--input", filepath.Join(f.dir, "beir.jsonl"), "--part-size", "64KiB").CombinedOutput(); err != nil {
		t.Fatalf("finalize of the parts: %v\n%s", err, out)
	}

	// MS MARCO's collection.tsv is id<TAB>text with no header; Cranfield's
	// texts hold line breaks, which TSV cannot, so both sides get them as
	// spaces.
	flat := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")
	type flatDoc struct {
		ID   string `parquet:"id"`
		Text string `parquet:"text"`
	}
	var flatDocs []flatDoc
	var tsv bytes.Buffer
	for _, d := range f.docs {
		text := flat.Replace(d.Title + " " + d.Text)
		flatDocs = append(flatDocs, flatDoc{d.ID, text})
		fmt.Fprintf(&tsv, "%s\t%s\n", d.ID, text)
	}
	pq.Reset()
	if err := parquet.Write(&pq, flatDocs); err != nil {
		t.Fatal(err)
	}
	wantFlat := shardRows(t, f.encode(t, f.write(t, "flat.parquet", pq.Bytes())))
	sameRows(t, "MS MARCO-style TSV", shardRows(t, f.encode(t, f.write(t, "collection.tsv", tsv.Bytes()))), wantFlat)
}

// TestTextInputDeadLetters encodes a JSON Lines file with bad lines: the
// good documents are encoded, each bad line is in the dead-letter file
// with its line number and reason, and the run says so.
func TestTextInputDeadLetters(t *testing.T) {
	f := newTextFixture(t)
	lines := []string{
		`{"_id": "1", "title": "t", "text": "lift and drag"}`,
		`{"_id": "2", "text": "truncated`,
		`{"_id": "3", "text": "boundary layer"}`,
		`{"_id": "1", "text": "again"}`,
		`{"text": "no id"}`,
		`[1, 2]`,
		`{"_id": "4", "text": "supersonic flow"}`,
	}
	in := f.write(t, "bad.jsonl", []byte(strings.Join(lines, "\n")+"\n"))
	out := f.encode(t, in, "--max-bad-fraction", "1")
	var ids []string
	for _, r := range shardRows(t, out) {
		ids = append(ids, r.DocID)
	}
	if want := []string{"1", "3", "4"}; !slices.Equal(ids, want) {
		t.Fatalf("encoded %v, want %v", ids, want)
	}
	data, err := os.ReadFile(filepath.Join(out, shards.RejectedName("bad")))
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Input  string `json:"input"`
		Row    int64  `json:"row"`
		Line   int64  `json:"line"`
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	}
	var got []rec
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r rec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Input != in || r.Row != r.Line-1 || r.Detail == "" {
			t.Errorf("record %+v", r)
		}
		got = append(got, r)
	}
	want := []struct { // in input order
		line   int64
		reason string
	}{{2, "invalid_line"}, {4, "duplicate_id"}, {5, "null_id"}, {6, "invalid_line"}}
	if len(got) != len(want) {
		t.Fatalf("dead letters %+v", got)
	}
	for i, w := range want {
		if got[i].Line != w.line || got[i].Reason != w.reason {
			t.Errorf("dead letter %d: line %d %s, want line %d %s", i, got[i].Line, got[i].Reason, w.line, w.reason)
		}
	}
	if !strings.Contains(got[1].Detail, "line 1") {
		t.Errorf("duplicate's detail %q does not name the first line", got[1].Detail)
	}
}

// TestTextPartsResumeAfterSIGKILL encodes one JSON Lines file cut into
// parts, killing the run with SIGKILL at random moments and restarting
// it: every part ends byte-identical to an uninterrupted run's, every
// document is there once, and parts done before a kill are not redone.
func TestTextPartsResumeAfterSIGKILL(t *testing.T) {
	f := newTextFixture(t)
	var beir bytes.Buffer
	ids := map[string]bool{}
	for _, d := range f.docs {
		b, _ := json.Marshal(map[string]string{"_id": d.ID, "title": d.Title, "text": d.Text})
		beir.Write(append(b, '\n'))
		ids[d.ID] = true
	}
	in := f.write(t, "corpus.jsonl", beir.Bytes())
	args := func(out string) []string {
		return []string{"encode", "--model", f.model, "--input", in, "--output", out, "--part-size", "64KiB",
			"--max-length", "64", "--batch-tokens", "512", "--log-format", "json"}
	}
	cf := &crashFixture{bin: f.bin}
	ref := filepath.Join(t.TempDir(), "ref")
	start := time.Now()
	if err := cf.startWith(t, args(ref), nil).wait(t); err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	wall := time.Since(start)
	refSHA := map[string]string{}
	refBases, _ := shards.ListManifests(ref)
	for _, b := range refBases {
		m, err := shards.VerifyShard(ref, b)
		if err != nil {
			t.Fatal(err)
		}
		refSHA[b] = m.Output.SHA256
		if m.Input.Part == nil || m.Input.Path != in {
			t.Fatalf("%s: manifest input %+v", b, m.Input)
		}
	}

	rng := rand.New(rand.NewSource(crashSeed(t)))
	dir := filepath.Join(t.TempDir(), "killed")
	kills := 0
	for attempt := 1; ; attempt++ {
		p := cf.startWith(t, args(dir), nil)
		if attempt <= 3 {
			delay := time.Duration(rng.Int63n(int64(wall)) + 1)
			if p.killAfter(t, delay) {
				kills++
				done, _ := shards.ListManifests(dir)
				t.Logf("attempt %d: killed after %s with %d of %d parts done", attempt, delay.Round(time.Millisecond), len(done), len(refBases))
				for _, b := range done {
					if m, err := shards.VerifyShard(dir, b); err != nil || m.Output.SHA256 != refSHA[b] {
						t.Fatalf("after a kill: part %s done but not the reference's (%v)", b, err)
					}
				}
				continue
			}
		}
		if err := p.wait(t); err != nil {
			t.Fatalf("attempt %d: %v\n%s", attempt, err, tail(p.stderr.String(), 4000))
		}
		break
	}
	t.Logf("%d kills", kills)
	bases, _ := shards.ListManifests(dir)
	if !slices.Equal(bases, refBases) {
		t.Fatalf("parts %v, want %v", bases, refBases)
	}
	for _, b := range bases {
		if m, err := shards.VerifyShard(dir, b); err != nil || m.Output.SHA256 != refSHA[b] {
			t.Fatalf("part %s differs from the uninterrupted run's (%v)", b, err)
		}
	}
	seen := map[string]int{}
	for _, r := range shardRows(t, dir) {
		seen[r.DocID]++
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("document %s: %d times", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("%d ids in the output, %d in the input", len(seen), len(ids))
	}
	if _, err := os.Stat(filepath.Join(dir, shards.SuccessFile)); err != nil {
		t.Errorf("no _SUCCESS: %v", err)
	}
}
