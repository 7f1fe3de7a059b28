package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/ciff"
)

// TestCIFFRoundTripCranfield encodes Cranfield documents with a tiny
// generated model, exports the impact shards as CIFF (once with a memory
// bound that forces sorted runs to disk, once without) and reads the stream
// back with ciff.Reader: the two streams are byte-identical, the temp
// directory is empty afterwards, the structure
// holds (term order, positive gaps, docids below num_docs, df, cf, doc
// lengths, totals), and every document rebuilt from the postings lists has
// exactly the (term string, impact) pairs of its row in shards.ReadShard.
func TestCIFFRoundTripCranfield(t *testing.T) {
	requireORT(t)
	// Two of the four shards, truncated to 64 tokens: the docids cross a
	// shard boundary, and the encoding stays quick on two cores.
	inputs := cranfieldShards(t)[:2]
	modelDir := genTinyModel(t)
	out := filepath.Join(t.TempDir(), "out")
	if stdout, code, err := runCLI(t, "", "encode", "--model", modelDir, "--input", strings.Join(inputs, ","), "--output", out,
		"--title-column", "title", "--max-length", "64"); code != exitOK {
		t.Fatalf("encode: exit %d (%v)\n%s", code, err, stdout)
	}
	paths, err := filepath.Glob(filepath.Join(out, "docs-*.parquet"))
	if err != nil || len(paths) != len(inputs) {
		t.Fatalf("outputs %v (%v), want %d", paths, err, len(inputs))
	}
	vocab, err := shards.ReadVocabulary(filepath.Join(out, shards.VocabularyFile))
	if err != nil {
		t.Fatal(err)
	}
	var rows []shards.Row
	for _, p := range paths {
		if err := shards.ReadShard(p, func(r shards.Row) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatal(err)
		}
	}

	tmp := t.TempDir()
	var whole, bounded bytes.Buffer
	st, err := ciff.Write(context.Background(), &whole, paths, vocab, ciff.Options{TempDir: tmp, Description: "cranfield"})
	if err != nil {
		t.Fatal(err)
	}
	st2, err := ciff.Write(context.Background(), &bounded, paths, vocab, ciff.Options{TempDir: tmp, MemoryBytes: 64 << 10, Description: "cranfield"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Runs != 0 || st2.Runs <= 1 || st2.Postings != st.Postings || st.Docs != int64(len(rows)) {
		t.Errorf("stats %+v unbounded, %+v with 64 KiB; %d rows", st, st2, len(rows))
	}
	if !bytes.Equal(bounded.Bytes(), whole.Bytes()) {
		t.Errorf("the export with 64 KiB of memory differs from the unbounded one (%d vs %d bytes)", bounded.Len(), whole.Len())
	}
	assertNoEntries(t, tmp)
	r1, err := ciff.NewReader(bytes.NewReader(whole.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	h := r1.Header()
	if h.Description != "cranfield" || h.NumDocs != int32(len(rows)) || h.TotalDocs != h.NumDocs ||
		h.NumPostingsLists != int32(st.Terms) || h.TotalPostingsLists != h.NumPostingsLists || h.Version != 1 {
		t.Fatalf("header %v, stats %+v", h, st)
	}
	docs := make([]map[string]int32, h.NumDocs)
	for i := range docs {
		docs[i] = map[string]int32{}
	}
	var prevTerm string
	var sumCF int64
	for i := 0; ; i++ {
		pl, err := r1.NextPostingsList()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && pl.Term <= prevTerm {
			t.Fatalf("term %q after %q: want ascending bytes", pl.Term, prevTerm)
		}
		prevTerm = pl.Term
		if pl.Df != int64(len(pl.Postings)) || pl.Df == 0 {
			t.Fatalf("term %q: df %d, %d postings", pl.Term, pl.Df, len(pl.Postings))
		}
		var doc, cf int64
		for j, p := range pl.Postings {
			if p.Docid < 0 || j > 0 && p.Docid == 0 || p.Tf <= 0 {
				t.Fatalf("term %q posting %d: gap %d, tf %d", pl.Term, j, p.Docid, p.Tf)
			}
			doc += int64(p.Docid)
			if doc >= int64(h.NumDocs) {
				t.Fatalf("term %q: docid %d of %d docs", pl.Term, doc, h.NumDocs)
			}
			docs[doc][pl.Term] = p.Tf
			cf += int64(p.Tf)
		}
		if cf != pl.Cf {
			t.Fatalf("term %q: cf %d, sum of tf %d", pl.Term, pl.Cf, cf)
		}
		sumCF += cf
	}
	if sumCF != h.TotalTermsInCollection {
		t.Errorf("total_terms_in_collection %d, sum of cf %d", h.TotalTermsInCollection, sumCF)
	}
	for i, row := range rows {
		d, err := r1.NextDocRecord()
		if err != nil {
			t.Fatalf("doc record %d: %v", i, err)
		}
		if d.Docid != int32(i) || d.CollectionDocid != row.DocID {
			t.Fatalf("doc record %d: docid %d, id %q; row id %q", i, d.Docid, d.CollectionDocid, row.DocID)
		}
		want := map[string]int32{}
		var length int32
		for j, id := range row.Vec.Terms {
			if imp := row.Vec.Impacts[j]; imp > 0 {
				want[vocab[id]] = int32(imp)
				length += int32(imp)
			}
		}
		if d.Doclength != length {
			t.Fatalf("doc %s: doclength %d, sum of impacts %d", row.DocID, d.Doclength, length)
		}
		if len(docs[i]) != len(want) {
			t.Fatalf("doc %s: %d terms in the postings, %d in the row", row.DocID, len(docs[i]), len(want))
		}
		for term, imp := range want {
			if docs[i][term] != imp {
				t.Fatalf("doc %s: term %q has tf %d in the postings, impact %d in the row", row.DocID, term, docs[i][term], imp)
			}
		}
	}
	if _, err := r1.NextDocRecord(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last doc record: %v", err)
	}
}

func assertNoEntries(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}
