package ciff_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/ciff"
	"github.com/splash-encode/splash/shards/ciff/ciffpb"
)

// ---- an independent CIFF reader, written from the .proto ----

// ciffFile is a whole CIFF stream, parsed.
type ciffFile struct {
	header *ciffpb.Header
	lists  []*ciffpb.PostingsList
	docs   []*ciffpb.DocRecord
}

// parseCIFF parses data with protowire's varint framing and the generated
// types: a header, exactly num_postings_lists postings lists, exactly
// num_docs doc records, nothing after.
func parseCIFF(t *testing.T, data []byte) ciffFile {
	t.Helper()
	msgs := 0
	next := func(m proto.Message) {
		t.Helper()
		n, k := protowire.ConsumeVarint(data)
		if k < 0 {
			t.Fatalf("message %d: bad length prefix: %v", msgs, protowire.ParseError(k))
		}
		data = data[k:]
		if uint64(len(data)) < n {
			t.Fatalf("message %d: length %d, only %d bytes left", msgs, n, len(data))
		}
		if err := proto.Unmarshal(data[:n], m); err != nil {
			t.Fatalf("message %d: %v", msgs, err)
		}
		data = data[n:]
		msgs++
	}
	var f ciffFile
	f.header = new(ciffpb.Header)
	next(f.header)
	if f.header.NumPostingsLists < 0 || f.header.NumDocs < 0 {
		t.Fatalf("header has negative counts: %v", f.header)
	}
	for range f.header.NumPostingsLists {
		pl := new(ciffpb.PostingsList)
		next(pl)
		f.lists = append(f.lists, pl)
	}
	for range f.header.NumDocs {
		d := new(ciffpb.DocRecord)
		next(d)
		f.docs = append(f.docs, d)
	}
	if len(data) != 0 {
		t.Fatalf("%d bytes after the %d messages the header announces", len(data), msgs)
	}
	return f
}

// fwdDoc is a document rebuilt from the postings lists.
type fwdDoc struct {
	id    string
	terms map[string]int32 // term -> tf
}

// checkCIFF checks what the messages say and rebuilds the documents:
// version 1, counts, terms strictly ascending by bytes, positive gaps,
// docids below num_docs, df = number of postings, cf = sum of tf, doc
// records in docid order with doclength = sum of the document's tfs, and
// the collection totals.
func checkCIFF(t *testing.T, f ciffFile) []fwdDoc {
	t.Helper()
	h := f.header
	if h.Version != 1 {
		t.Errorf("header version %d, want 1", h.Version)
	}
	if h.TotalPostingsLists != h.NumPostingsLists || h.TotalDocs != h.NumDocs {
		t.Errorf("header: total_postings_lists %d (num %d), total_docs %d (num %d): a complete export has them equal",
			h.TotalPostingsLists, h.NumPostingsLists, h.TotalDocs, h.NumDocs)
	}
	docs := make([]fwdDoc, h.NumDocs)
	for i := range docs {
		docs[i].terms = map[string]int32{}
	}
	var sumCF int64
	for i, pl := range f.lists {
		if pl.Term == "" {
			t.Fatalf("postings list %d has an empty term", i)
		}
		if i > 0 && f.lists[i-1].Term >= pl.Term {
			t.Fatalf("postings list %d: term %q after %q: want strictly ascending bytes", i, pl.Term, f.lists[i-1].Term)
		}
		if pl.Df != int64(len(pl.Postings)) {
			t.Fatalf("term %q: df %d, %d postings", pl.Term, pl.Df, len(pl.Postings))
		}
		var doc, cf int64
		for j, p := range pl.Postings {
			if j == 0 && p.Docid < 0 || j > 0 && p.Docid <= 0 {
				t.Fatalf("term %q posting %d: docid gap %d", pl.Term, j, p.Docid)
			}
			doc += int64(p.Docid)
			if doc >= int64(h.NumDocs) {
				t.Fatalf("term %q posting %d: docid %d, num_docs %d", pl.Term, j, doc, h.NumDocs)
			}
			if p.Tf <= 0 {
				t.Fatalf("term %q posting %d: tf %d", pl.Term, j, p.Tf)
			}
			cf += int64(p.Tf)
			docs[doc].terms[pl.Term] = p.Tf
		}
		if cf != pl.Cf {
			t.Fatalf("term %q: cf %d, sum of tf %d", pl.Term, pl.Cf, cf)
		}
		sumCF += cf
	}
	var sumLen int64
	for i, d := range f.docs {
		if d.Docid != int32(i) {
			t.Fatalf("doc record %d has docid %d", i, d.Docid)
		}
		var length int64
		for _, tf := range docs[i].terms {
			length += int64(tf)
		}
		if int64(d.Doclength) != length {
			t.Fatalf("doc %d (%s): doclength %d, sum of its tfs %d", i, d.CollectionDocid, d.Doclength, length)
		}
		sumLen += length
		docs[i].id = d.CollectionDocid
	}
	if h.TotalTermsInCollection != sumCF || sumCF != sumLen {
		t.Errorf("total_terms_in_collection %d, sum of cf %d, sum of doclength %d", h.TotalTermsInCollection, sumCF, sumLen)
	}
	if h.NumDocs > 0 && h.AverageDoclength != float64(sumLen)/float64(h.NumDocs) {
		t.Errorf("average_doclength %v, want %v", h.AverageDoclength, float64(sumLen)/float64(h.NumDocs))
	}
	return docs
}

// ---- corpora ----

// writeShard writes rows as an impact shard dir/base.parquet.
func writeShard(t *testing.T, dir, base string, vocabSize int, rows []shards.Row) string {
	t.Helper()
	w, err := shards.NewWriter(dir, base, shards.FormatParquet, shards.Metadata{VocabSize: vocabSize, Scale: 100}, shards.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			w.Abort()
			t.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return out.Path
}

func row(id string, terms []uint32, weights []float32, impacts []uint16) shards.Row {
	return shards.Row{DocID: id, Vec: encode.SparseVec{Terms: terms, Weights: weights, Impacts: impacts}, NumTokens: 7}
}

// handVocab's byte order: "Banana" < "[PAD]" < "app" < "apple" < "unused" < "zebra" < "äpfel".
var handVocab = []string{"[PAD]", "zebra", "apple", "Banana", "äpfel", "app", "unused"}

// handCorpus is two shards of two documents: an impact of 0 (Banana in
// d0), an empty document (d1), a non-ASCII term, a weight whose scaled
// value is a half (0.25).
func handCorpus(t *testing.T) []string {
	dir := t.TempDir()
	return []string{
		writeShard(t, dir, "a", len(handVocab), []shards.Row{
			row("d0", []uint32{1, 2, 3}, []float32{1.0, 0.5, 0.004}, []uint16{100, 50, 0}),
			row("d1", nil, nil, nil),
		}),
		writeShard(t, dir, "b", len(handVocab), []shards.Row{
			row("d2", []uint32{2, 4, 5}, []float32{0.2, 3.0, 0.25}, []uint16{20, 300, 25}),
			row("d3", []uint32{1, 2}, []float32{0.01, 2.5}, []uint16{1, 250}),
		}),
	}
}

// postings builds a PostingsList from (gap, tf) pairs.
func postings(term string, pairs ...int32) *ciffpb.PostingsList {
	pl := &ciffpb.PostingsList{Term: term}
	for i := 0; i < len(pairs); i += 2 {
		pl.Postings = append(pl.Postings, &ciffpb.Posting{Docid: pairs[i], Tf: pairs[i+1]})
		pl.Df++
		pl.Cf += int64(pairs[i+1])
	}
	return pl
}

// delimited frames msgs as protodelim does (protobuf's writeDelimitedTo).
func delimited(t *testing.T, msgs ...proto.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range msgs {
		if _, err := (protodelim.MarshalOptions{MarshalOptions: proto.MarshalOptions{Deterministic: true}}).MarshalTo(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestHandBuiltCorpus checks the export of the hand-built corpus against
// postings computed by hand, message by message and byte for byte (the
// expected bytes are the messages marshalled by the protobuf library), with
// the stored impacts and with Scale 10.
func TestHandBuiltCorpus(t *testing.T) {
	paths := handCorpus(t)
	docs := func(l0, l2, l3 int32) []proto.Message {
		return []proto.Message{
			&ciffpb.DocRecord{Docid: 0, CollectionDocid: "d0", Doclength: l0},
			&ciffpb.DocRecord{Docid: 1, CollectionDocid: "d1", Doclength: 0},
			&ciffpb.DocRecord{Docid: 2, CollectionDocid: "d2", Doclength: l2},
			&ciffpb.DocRecord{Docid: 3, CollectionDocid: "d3", Doclength: l3},
		}
	}
	cases := []struct {
		name     string
		scale    float32
		postings int64
		want     []proto.Message
	}{
		{"impacts", 0, 7, slices.Concat([]proto.Message{
			&ciffpb.Header{Version: 1, NumPostingsLists: 4, NumDocs: 4, TotalPostingsLists: 4, TotalDocs: 4,
				TotalTermsInCollection: 746, AverageDoclength: 186.5, Description: "hand"},
			postings("app", 2, 25),
			postings("apple", 0, 50, 2, 20, 1, 250),
			postings("zebra", 0, 100, 3, 1),
			postings("äpfel", 2, 300),
		}, docs(150, 345, 251))},
		// Scale 10: Banana 0.04 and d3's zebra 0.1 round to 0 and go;
		// app 0.25*10 = 2.5 rounds half away from zero to 3.
		{"scale10", 10, 6, slices.Concat([]proto.Message{
			&ciffpb.Header{Version: 1, NumPostingsLists: 4, NumDocs: 4, TotalPostingsLists: 4, TotalDocs: 4,
				TotalTermsInCollection: 75, AverageDoclength: 18.75, Description: "hand"},
			postings("app", 2, 3),
			postings("apple", 0, 5, 2, 2, 1, 25),
			postings("zebra", 0, 10),
			postings("äpfel", 2, 30),
		}, docs(15, 35, 25))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			st, err := ciff.Write(context.Background(), &buf, paths, handVocab, ciff.Options{Description: "hand", Scale: tc.scale, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if want := (ciff.Stats{Docs: 4, Terms: 4, Postings: tc.postings}); st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
			f := parseCIFF(t, buf.Bytes())
			checkCIFF(t, f)
			got := []proto.Message{f.header}
			for _, pl := range f.lists {
				got = append(got, pl)
			}
			for _, d := range f.docs {
				got = append(got, d)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d messages, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !proto.Equal(got[i], tc.want[i]) {
					t.Errorf("message %d:\n got %v\nwant %v", i, got[i], tc.want[i])
				}
			}
			if want := delimited(t, tc.want...); !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("stream differs from the protobuf library's encoding of the same messages (%d vs %d bytes)", buf.Len(), len(want))
			}
		})
	}
}

// randomCorpus writes nShards shards of random documents over a random
// vocabulary (ASCII, "##" pieces, capitals, multi-byte UTF-8, so that id
// order and byte order differ), a few empty, and some impacts of 0.
func randomCorpus(t *testing.T, seed uint64, nShards, docsPerShard int) (paths []string, vocab []string, rows []shards.Row) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	alphabets := [][]rune{[]rune("abcdefghijklmnopqrstuvwxyz"), []rune("ABCXYZ"), []rune("éüßø日本語ñ"), []rune("0123456789")}
	seen := map[string]bool{}
	for len(vocab) < 3000 {
		var sb strings.Builder
		if rng.IntN(4) == 0 {
			sb.WriteString("##")
		}
		for range 1 + rng.IntN(6) {
			a := alphabets[rng.IntN(len(alphabets))]
			sb.WriteRune(a[rng.IntN(len(a))])
		}
		if s := sb.String(); !seen[s] {
			seen[s] = true
			vocab = append(vocab, s)
		}
	}
	dir := t.TempDir()
	for s := range nShards {
		var shardRows []shards.Row
		for d := range docsPerShard {
			n := rng.IntN(60)
			if d%37 == 5 {
				n = 0
			}
			set := map[uint32]bool{}
			for len(set) < n {
				// Skewed: low ids are frequent, like real term distributions.
				set[uint32(rng.IntN(1+rng.IntN(len(vocab))))] = true
			}
			terms := slices.Sorted(func(yield func(uint32) bool) {
				for k := range set {
					if !yield(k) {
						return
					}
				}
			})
			var weights []float32
			var impacts []uint16
			for range terms {
				w := float32(0.001 + 3*rng.Float64()*rng.Float64())
				weights = append(weights, w)
				impacts = append(impacts, encode.Quantize(w, 100))
			}
			shardRows = append(shardRows, row(fmt.Sprintf("s%d-d%d", s, d), terms, weights, impacts))
		}
		paths = append(paths, writeShard(t, dir, fmt.Sprintf("part-%d", s), len(vocab), shardRows))
		rows = append(rows, shardRows...)
	}
	return paths, vocab, rows
}

// readRows reads the shards back with shards.ReadShard: the reference for
// what the export must hold.
func readRows(t *testing.T, paths []string) []shards.Row {
	t.Helper()
	var rows []shards.Row
	for _, p := range paths {
		if err := shards.ReadShard(p, func(r shards.Row) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

// compareForward checks that document i of the export is row i: same id,
// and the same (term string, impact) pairs, impacts of 0 left out.
func compareForward(t *testing.T, docs []fwdDoc, rows []shards.Row, vocab []string) {
	t.Helper()
	if len(docs) != len(rows) {
		t.Fatalf("%d documents in the export, %d rows", len(docs), len(rows))
	}
	for i, r := range rows {
		want := map[string]int32{}
		for j, id := range r.Vec.Terms {
			if r.Vec.Impacts[j] > 0 {
				want[vocab[id]] = int32(r.Vec.Impacts[j])
			}
		}
		d := docs[i]
		if d.id != r.DocID || len(d.terms) != len(want) {
			t.Fatalf("doc %d: id %q with %d terms, want %q with %d", i, d.id, len(d.terms), r.DocID, len(want))
		}
		for term, tf := range want {
			if d.terms[term] != tf {
				t.Fatalf("doc %d (%s): term %q has tf %d, want %d", i, r.DocID, term, d.terms[term], tf)
			}
		}
	}
}

// invertedIndex is the brute-force inverted index of rows: term string ->
// postings (docid, tf) in docid order.
func invertedIndex(rows []shards.Row, vocab []string) map[string][][2]int32 {
	idx := map[string][][2]int32{}
	for doc, r := range rows {
		for j, id := range r.Vec.Terms {
			if tf := r.Vec.Impacts[j]; tf > 0 {
				idx[vocab[id]] = append(idx[vocab[id]], [2]int32{int32(doc), int32(tf)})
			}
		}
	}
	return idx
}

// TestSmallMemoryManyRuns: a memory bound far below the postings' size
// spills many runs (with 1 KiB more than one merge pass's worth) and gives a
// stream byte-identical to one that sorts everything in memory; both hold
// the brute-force inverted index of the shards' rows.
func TestSmallMemoryManyRuns(t *testing.T) {
	paths, vocab, written := randomCorpus(t, 1, 3, 200)
	rows := readRows(t, paths)
	if len(rows) != len(written) {
		t.Fatalf("read %d rows, wrote %d", len(rows), len(written))
	}
	var whole bytes.Buffer
	st, err := ciff.Write(context.Background(), &whole, paths, vocab, ciff.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if st.Runs != 0 {
		t.Errorf("the default memory bound spilled %d runs", st.Runs)
	}
	f := parseCIFF(t, whole.Bytes())
	compareForward(t, checkCIFF(t, f), rows, vocab)
	idx := invertedIndex(rows, vocab)
	var postingsTotal int64
	if len(f.lists) != len(idx) {
		t.Fatalf("%d postings lists, the rows have %d terms with impacts", len(f.lists), len(idx))
	}
	for _, pl := range f.lists {
		want := idx[pl.Term]
		doc := int32(0)
		for j, p := range pl.Postings {
			doc += p.Docid
			if j >= len(want) || want[j] != [2]int32{doc, p.Tf} {
				t.Fatalf("term %q posting %d: (%d, %d), want %v", pl.Term, j, doc, p.Tf, want)
			}
		}
		postingsTotal += int64(len(want))
	}
	if st.Docs != int64(len(rows)) || st.Terms != int64(len(idx)) || st.Postings != postingsTotal {
		t.Errorf("stats %+v, want %d docs, %d terms, %d postings", st, len(rows), len(idx), postingsTotal)
	}
	if postingsTotal*12 < 100<<10 {
		t.Fatalf("corpus too small for the test: %d postings", postingsTotal)
	}

	for _, mem := range []int64{4 << 10, 1 << 10} {
		t.Run(fmt.Sprintf("mem%d", mem), func(t *testing.T) {
			tmp := t.TempDir()
			var small bytes.Buffer
			st2, err := ciff.Write(context.Background(), &small, paths, vocab, ciff.Options{MemoryBytes: mem, TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if minRuns := int(postingsTotal * 12 / mem); st2.Runs < minRuns || st2.Runs <= 1 {
				t.Errorf("%d runs with %d bytes of memory for %d postings, want at least %d", st2.Runs, mem, postingsTotal, minRuns)
			}
			st2.Runs = 0
			if st2 != st {
				t.Errorf("stats %+v, unbounded %+v", st2, st)
			}
			if !bytes.Equal(small.Bytes(), whole.Bytes()) {
				t.Errorf("stream with %d bytes of memory differs from the unbounded one (%d vs %d bytes)", mem, small.Len(), whole.Len())
			}
			assertEmptyDir(t, tmp)
		})
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in the temp directory: %s", e.Name())
	}
}

// TestReaderMatchesIndependentParse reads a stream with ciff.Reader and
// compares every message with parseCIFF's.
func TestReaderMatchesIndependentParse(t *testing.T) {
	paths, vocab, _ := randomCorpus(t, 2, 2, 60)
	var buf bytes.Buffer
	if _, err := ciff.Write(context.Background(), &buf, paths, vocab, ciff.Options{TempDir: t.TempDir(), Description: "r"}); err != nil {
		t.Fatal(err)
	}
	want := parseCIFF(t, buf.Bytes())
	got := readAll(t, buf.Bytes())
	if !proto.Equal(got.header, want.header) || len(got.lists) != len(want.lists) || len(got.docs) != len(want.docs) {
		t.Fatalf("reader: header %v, %d lists, %d docs; parse: %v, %d, %d", got.header, len(got.lists), len(got.docs), want.header, len(want.lists), len(want.docs))
	}
	for i := range got.lists {
		if !proto.Equal(got.lists[i], want.lists[i]) {
			t.Fatalf("postings list %d differs", i)
		}
	}
	for i := range got.docs {
		if !proto.Equal(got.docs[i], want.docs[i]) {
			t.Fatalf("doc record %d differs", i)
		}
	}
}

func readAll(t *testing.T, data []byte) ciffFile {
	t.Helper()
	f, err := readAllErr(data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAllErr(data []byte) (ciffFile, error) {
	var f ciffFile
	r, err := ciff.NewReader(bytes.NewReader(data))
	if err != nil {
		return f, err
	}
	f.header = r.Header()
	for {
		pl, err := r.NextPostingsList()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, err
		}
		f.lists = append(f.lists, pl)
	}
	for {
		d, err := r.NextDocRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, err
		}
		f.docs = append(f.docs, d)
	}
	return f, nil
}

// TestReaderRejectsDamage: every truncation of a valid stream, bytes after
// its end, a header with negative counts and a corrupt length are errors
// wrapping ErrInvalidCIFF, never a panic or a silent success.
func TestReaderRejectsDamage(t *testing.T) {
	var buf bytes.Buffer
	if _, err := ciff.Write(context.Background(), &buf, handCorpus(t), handVocab, ciff.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	for n := 0; n < len(data); n++ {
		if _, err := readAllErr(data[:n]); !errors.Is(err, ciff.ErrInvalidCIFF) {
			t.Fatalf("stream cut to %d of %d bytes: error %v, want ErrInvalidCIFF", n, len(data), err)
		}
	}
	if _, err := readAllErr(append(slices.Clone(data), 0)); !errors.Is(err, ciff.ErrInvalidCIFF) {
		t.Errorf("trailing byte: error %v", err)
	}
	neg := delimited(t, &ciffpb.Header{Version: 1, NumPostingsLists: -1})
	if _, err := readAllErr(neg); !errors.Is(err, ciff.ErrInvalidCIFF) {
		t.Errorf("negative count: error %v", err)
	}
	huge := protowire.AppendVarint(nil, 1<<40)
	if _, err := readAllErr(huge); !errors.Is(err, ciff.ErrInvalidCIFF) {
		t.Errorf("huge length: error %v", err)
	}
	big := protowire.AppendVarint(nil, 1<<30) // within the limit, but the stream ends
	if _, err := readAllErr(big); !errors.Is(err, ciff.ErrInvalidCIFF) {
		t.Errorf("length past the end: error %v", err)
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls:
// cancellation at a chosen point of Write (reading, spilling, merging).
type cancelAfter struct {
	context.Context
	n atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestCancellation cancels Write at points spread over its work and checks
// that it returns context.Canceled and removes its temp files.
func TestCancellation(t *testing.T) {
	paths, vocab, _ := randomCorpus(t, 3, 2, 150)
	tmp := t.TempDir()
	// Count the checks of a whole run, then cancel at spread points of it.
	count := &cancelAfter{Context: context.Background()}
	count.n.Store(1 << 40)
	if _, err := ciff.Write(count, &bytes.Buffer{}, paths, vocab, ciff.Options{MemoryBytes: 2 << 10, TempDir: tmp}); err != nil {
		t.Fatal(err)
	}
	checks := 1<<40 - count.n.Load()
	if checks < 100 {
		t.Fatalf("Write checked its context %d times", checks)
	}
	for _, n := range []int64{0, 1, checks / 8, checks / 3, checks / 2, checks * 3 / 4, checks * 9 / 10, checks - 2, checks - 1} {
		ctx := &cancelAfter{Context: context.Background()}
		ctx.n.Store(n)
		_, err := ciff.Write(ctx, &bytes.Buffer{}, paths, vocab, ciff.Options{MemoryBytes: 2 << 10, TempDir: tmp})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d checks: error %v, want context.Canceled", n, err)
		}
		assertEmptyDir(t, tmp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ciff.Write(ctx, &bytes.Buffer{}, paths, vocab, ciff.Options{TempDir: tmp}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
	assertEmptyDir(t, tmp)
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestErrors: bad rows name the shard and row; bad options, an unusable
// vocabulary and a failing output are errors; temp files go on every path.
func TestErrors(t *testing.T) {
	paths := handCorpus(t)
	tmp := t.TempDir()
	write := func(vocab []string, opts ciff.Options, w ...io.Writer) error {
		opts.TempDir = tmp
		var out io.Writer = &bytes.Buffer{}
		if len(w) > 0 {
			out = w[0]
		}
		_, err := ciff.Write(context.Background(), out, paths, vocab, opts)
		assertEmptyDir(t, tmp)
		return err
	}
	// A vocabulary of another size than the shards' metadata says.
	if err := write(handVocab[:5], ciff.Options{}); !errors.Is(err, shards.ErrVocabularyMismatch) || !strings.Contains(err.Error(), paths[0]) {
		t.Errorf("vocabulary of another size: %v", err)
	}
	// Term 5 (d2, row 1 of c.parquet, whose metadata has no vocabulary
	// size) is outside a vocabulary of 5.
	dir := t.TempDir()
	noSize := writeShard(t, dir, "c", 0, []shards.Row{
		row("d0", []uint32{1, 2}, []float32{1, 1}, []uint16{100, 100}),
		row("d2", []uint32{2, 4, 5}, []float32{0.2, 3.0, 0.25}, []uint16{20, 300, 25}),
	})
	_, err := ciff.Write(context.Background(), &bytes.Buffer{}, []string{noSize}, handVocab[:5], ciff.Options{TempDir: tmp})
	if err == nil || !errors.Is(err, shards.ErrInvalidShard) || !strings.Contains(err.Error(), noSize) || !strings.Contains(err.Error(), "row 1") ||
		!strings.Contains(err.Error(), "term id 5") {
		t.Errorf("term outside the vocabulary: %v", err)
	}
	assertEmptyDir(t, tmp)
	// Also after runs were spilled (memory for one posting).
	if _, err := ciff.Write(context.Background(), &bytes.Buffer{}, []string{noSize}, handVocab[:5], ciff.Options{TempDir: tmp, MemoryBytes: 1}); err == nil {
		t.Error("term outside the vocabulary with spilled runs: no error")
	}
	assertEmptyDir(t, tmp)
	// A used term that is not UTF-8.
	bad := slices.Clone(handVocab)
	bad[2] = "app\xff"
	if err := write(bad, ciff.Options{}); err == nil || !strings.Contains(err.Error(), "term id 2") {
		t.Errorf("term not UTF-8: %v", err)
	}
	// apple and zebra (both used) spelled the same.
	dup := slices.Clone(handVocab)
	dup[1] = "apple"
	if err := write(dup, ciff.Options{}); err == nil || !strings.Contains(err.Error(), `"apple"`) {
		t.Errorf("two used ids with one string: %v", err)
	}
	// Unused ids may share a string.
	dup = slices.Clone(handVocab)
	dup[6] = "[PAD]"
	if err := write(dup, ciff.Options{}); err != nil {
		t.Errorf("two unused ids with one string: %v", err)
	}
	if err := write(handVocab, ciff.Options{MemoryBytes: -1}); err == nil {
		t.Error("negative memory bound: no error")
	}
	if err := write(handVocab, ciff.Options{Scale: -1}); err == nil {
		t.Error("negative scale: no error")
	}
	if err := write(handVocab, ciff.Options{}, failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing output: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.parquet")
	if _, err := ciff.Write(context.Background(), &bytes.Buffer{}, []string{paths[0], missing}, handVocab, ciff.Options{TempDir: tmp}); err == nil ||
		!strings.Contains(err.Error(), missing) {
		t.Errorf("missing shard: %v", err)
	}
	assertEmptyDir(t, tmp)
}

// TestDefaultTempDirIsOutputDir writes to a file without a TempDir: the
// output's directory holds only the output afterwards, and the output is
// the same as through a buffer.
func TestDefaultTempDirIsOutputDir(t *testing.T) {
	paths := handCorpus(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "index.ciff")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ciff.Write(context.Background(), f, paths, handVocab, ciff.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("output directory holds %d entries, want only the output", len(entries))
	}
	var buf bytes.Buffer
	if _, err := ciff.Write(context.Background(), &buf, paths, handVocab, ciff.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, buf.Bytes()) {
		t.Error("file output differs from buffer output")
	}
}

// TestNoShards: no input gives a header and nothing else.
func TestNoShards(t *testing.T) {
	var buf bytes.Buffer
	st, err := ciff.Write(context.Background(), &buf, nil, handVocab, ciff.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if st != (ciff.Stats{}) {
		t.Errorf("stats %+v", st)
	}
	if want := delimited(t, &ciffpb.Header{Version: 1}); !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("stream %x, want %x", buf.Bytes(), want)
	}
}
