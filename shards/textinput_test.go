package shards

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/encode"
)

// cranfieldGlob holds the repository's Cranfield shards (columns id, title, text).
const cranfieldGlob = "../testdata/cranfield/docs-*.parquet"

// cranDoc is one Cranfield document as the Parquet shards hold it.
type cranDoc struct {
	ID    string `parquet:"id"`
	Title string `parquet:"title"`
	Text  string `parquet:"text"`
}

// readCranfield reads the Cranfield shards with an independent reader
// (parquet-go's generic one, not InputReader).
func readCranfield(t *testing.T) []cranDoc {
	t.Helper()
	paths, _ := filepath.Glob(cranfieldGlob)
	slices.Sort(paths)
	var docs []cranDoc
	for _, p := range paths {
		rows, err := parquet.ReadFile[cranDoc](p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, rows...)
	}
	if len(docs) != 1400 {
		t.Fatalf("Cranfield: %d documents, want 1400", len(docs))
	}
	return docs
}

// readAllDocs reads every document of r.
func readAllDocs(t *testing.T, r DocReader) []InputDoc {
	t.Helper()
	var all []InputDoc
	for {
		docs, err := r.Next(context.Background(), 97)
		all = append(all, docs...)
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func gzipBytes(t *testing.T, data []byte) []byte {
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

// openAll discovers values and reads every input in order.
func openAll(t *testing.T, values []string, opts SourceOptions, cols Columns) (docs []InputDoc, rejected []*RowError, names []string) {
	t.Helper()
	ctx := context.Background()
	in, err := DiscoverSources(ctx, values, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, n := range in.Names {
		if _, err := in.Identity(ctx, n); err != nil {
			t.Fatalf("identity of %s: %v", n, err)
		}
		r, err := in.Open(ctx, n, cols)
		if err != nil {
			t.Fatalf("open %s: %v", n, err)
		}
		r.OnRowError(func(e *RowError) error { rejected = append(rejected, e); return nil })
		docs = append(docs, readAllDocs(t, r)...)
		r.Close()
	}
	return docs, rejected, in.Names
}

// TestTextInputsReadCranfieldAsParquet writes Cranfield as BEIR JSON
// Lines, gzipped JSON Lines, Pyserini JSON Lines, MS MARCO-style TSV and
// TSV with a header, and checks that each reads the documents (ids and
// title + " " + text) that the Parquet shards give, in order.
func TestTextInputsReadCranfieldAsParquet(t *testing.T) {
	cran := readCranfield(t)
	var want []encode.Doc
	for _, d := range cran {
		want = append(want, encode.Doc{ID: d.ID, Text: joinTitle(d.Title, d.Text)})
	}
	// The Parquet reader itself gives these.
	var fromParquet []encode.Doc
	paths, _ := filepath.Glob(cranfieldGlob)
	slices.Sort(paths)
	for _, p := range paths {
		r, err := OpenInput(p, Columns{Title: "title"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range readAllDocs(t, r) {
			fromParquet = append(fromParquet, d.Doc)
		}
		r.Close()
	}
	if !slices.Equal(fromParquet, want) {
		t.Fatal("the Parquet reader does not give title + \" \" + text")
	}

	dir := t.TempDir()
	var beir, pyserini, msmarco, headed bytes.Buffer
	headed.WriteString("id\ttitle\ttext\n")
	tsvSafe := true
	for _, d := range cran {
		b, _ := json.Marshal(map[string]string{"_id": d.ID, "title": d.Title, "text": d.Text})
		beir.Write(append(b, '\n'))
		b, _ = json.Marshal(map[string]string{"id": d.ID, "contents": joinTitle(d.Title, d.Text)})
		pyserini.Write(append(b, '\n'))
		if strings.ContainsAny(d.Title+d.Text, "\t\n\r") {
			tsvSafe = false
		}
		fmt.Fprintf(&msmarco, "%s\t%s\n", d.ID, joinTitle(d.Title, d.Text))
		fmt.Fprintf(&headed, "%s\t%s\t%s\n", d.ID, d.Title, d.Text)
	}
	writeFile(t, filepath.Join(dir, "beir.jsonl"), beir.Bytes())
	writeFile(t, filepath.Join(dir, "beirgz.jsonl.gz"), gzipBytes(t, beir.Bytes()))
	writeFile(t, filepath.Join(dir, "pyserini.jsonl"), pyserini.Bytes())
	cases := []string{"beir.jsonl", "beirgz.jsonl.gz", "pyserini.jsonl"}
	if tsvSafe {
		writeFile(t, filepath.Join(dir, "msmarco.tsv"), msmarco.Bytes())
		writeFile(t, filepath.Join(dir, "headed.tsv.gz"), gzipBytes(t, headed.Bytes()))
		cases = append(cases, "msmarco.tsv", "headed.tsv.gz")
	} else {
		t.Log("Cranfield texts hold tabs or line breaks: the TSV cases are left out")
	}
	for _, name := range cases {
		for _, partSize := range []int64{0, MinPartSize} {
			t.Run(fmt.Sprintf("%s/part-size=%d", name, partSize), func(t *testing.T) {
				docs, rejected, names := openAll(t, []string{filepath.Join(dir, name)}, SourceOptions{PartSize: partSize}, Columns{})
				if len(rejected) > 0 {
					t.Fatalf("rejected: %v", rejected[0])
				}
				var got []encode.Doc
				for i, d := range docs {
					got = append(got, d.Doc)
					if strings.HasPrefix(name, "headed") {
						if d.Line != int64(i)+2 {
							t.Fatalf("document %d: line %d, want %d (after the header)", i, d.Line, i+2)
						}
					} else if d.Line != int64(i)+1 || d.Row != int64(i) {
						t.Fatalf("document %d: line %d row %d", i, d.Line, d.Row)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%d documents differ from the Parquet ones (%d)", len(got), len(want))
				}
				st, _ := os.Stat(filepath.Join(dir, name))
				cut := partSize > 0 && st.Size() > partSize && !strings.HasSuffix(name, ".gz")
				if wantParts := 1 + int((st.Size()-1)/max(partSize, 1)); cut && len(names) != wantParts {
					t.Fatalf("%d parts, want %d", len(names), wantParts)
				}
				if !cut && len(names) != 1 {
					t.Fatalf("%d inputs, want 1 (not cut)", len(names))
				}
				base := InputBase(names[0])
				if cut && !strings.HasSuffix(base, ".part00000") || !cut && strings.Contains(base, ".part") || strings.Contains(base, ".jsonl") || strings.Contains(base, ".tsv") {
					t.Fatalf("base name %q of %s", base, names[0])
				}
			})
		}
	}
}

// TestTextPartsTileTheFile cuts random files into random byte ranges and
// checks that the parts together read every line exactly once, in order,
// with its line number, whatever falls on a boundary: a line starting
// exactly at it, a "\r\n" split by it, a blank line, no final "\n".
func TestTextPartsTileTheFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		var file bytes.Buffer
		var want []InputDoc
		n := rng.IntN(40)
		line := int64(0)
		for i := range n {
			line++
			switch rng.IntN(8) {
			case 0:
				file.WriteString("\n") // blank: skipped
				continue
			case 1:
				file.WriteString("  \r\n")
				continue
			}
			id := fmt.Sprintf("d%d", i)
			text := strings.Repeat("x", rng.IntN(30))
			fmt.Fprintf(&file, `{"id":%q,"text":%q}`, id, text)
			if rng.IntN(3) == 0 {
				file.WriteString("\r")
			}
			if i < n-1 || rng.IntN(2) == 0 {
				file.WriteString("\n")
			}
			want = append(want, InputDoc{Row: line - 1, Line: line, Doc: encode.Doc{ID: id, Text: text}})
		}
		data := file.Bytes()
		size := int64(len(data))
		partSize := 1 + rng.Int64N(max(size, 1))
		var bounds []int64
		for b := partSize; b < size; b += partSize {
			bounds = append(bounds, b)
		}
		sc, err := scanText(context.Background(), bytes.NewReader(data), false, bounds)
		if err != nil {
			t.Fatal(err)
		}
		if wantLines := int64(bytes.Count(data, []byte{'\n'})); size > 0 && data[size-1] != '\n' && sc.linesBefore[len(bounds)] != wantLines+1 ||
			(size == 0 || data[size-1] == '\n') && sc.linesBefore[len(bounds)] != wantLines {
			t.Fatalf("trial %d: %d lines counted in %q", trial, sc.linesBefore[len(bounds)], data)
		}
		open := func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data[offset:])), nil
		}
		var got []InputDoc
		var lines int64
		for k := 0; k <= len(bounds); k++ {
			spec := textPartSpec{path: "mem.jsonl", kind: TextJSONL, start: int64(k) * partSize, end: min(int64(k+1)*partSize, size)}
			if k > 0 {
				spec.firstLine = sc.linesBefore[k-1]
			}
			spec.lines = sc.linesBefore[k] - spec.firstLine
			lines += spec.lines
			r, err := openText(context.Background(), open, spec, Columns{})
			if err != nil {
				t.Fatal(err)
			}
			r.OnRowError(func(e *RowError) error { return fmt.Errorf("trial %d part %d: %w", trial, k, e) })
			got = append(got, readAllDocs(t, r)...)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (part size %d of %d bytes):\n got %v\nwant %v\nfile %q", trial, partSize, size, got, want, data)
		}
		if lines != sc.linesBefore[len(bounds)] {
			t.Fatalf("trial %d: parts count %d lines, the file has %d", trial, lines, sc.linesBefore[len(bounds)])
		}
	}
}

// TestTextInputBadLines checks that every kind of bad line is a row error
// with its line number and reason, and the good lines around it are read.
func TestTextInputBadLines(t *testing.T) {
	dir := t.TempDir()
	lines := []string{
		`{"_id": "a", "text": "alpha"}`,
		`{"_id": "b", "text": "beta"`, // 2: truncated JSON
		`["not", "an", "object"]`,     // 3
		`{"text": "no id"}`,           // 4
		`{"_id": "", "text": "x"}`,    // 5
		`{"_id": 17, "text": "int id"}`,
		`{"_id": 1.5, "text": "x"}`, // 7: float id
		`{"_id": "c", "text": 3}`,   // 8: text not a string
		`{"_id": "d"}`,              // 9: no text, no title
		`{"_id": "e", "title": "only a title"}`,
		``,                                          // 11: blank, skipped
		`{"_id": "f", "text": "caf` + "\xff" + `"}`, // 12: not UTF-8: read as Parquet text is
		`null`, // 13
		`{"_id": "g", "contents": "pyserini text"}`,
	}
	path := filepath.Join(dir, "bad.jsonl")
	writeFile(t, path, []byte(strings.Join(lines, "\n")+"\n"))
	docs, rejected, _ := openAll(t, []string{path}, SourceOptions{}, Columns{})
	var ids []string
	var docLines []int64
	for _, d := range docs {
		ids = append(ids, d.Doc.ID)
		docLines = append(docLines, d.Line)
	}
	if want := []string{"a", "17", "e", "f", "g"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	if want := []int64{1, 6, 10, 12, 14}; !slices.Equal(docLines, want) {
		t.Fatalf("lines %v, want %v", docLines, want)
	}
	type bad struct {
		line int64
		code string
	}
	var got []bad
	for _, e := range rejected {
		got = append(got, bad{e.Line, e.Code})
		if e.Path != path || e.Row != e.Line-1 || !strings.Contains(e.Error(), fmt.Sprintf("line %d", e.Line)) {
			t.Errorf("row error %+v: %v", e, e)
		}
	}
	want := []bad{{2, RejectInvalidLine}, {3, RejectInvalidLine}, {4, RejectNullID}, {5, RejectEmptyID},
		{7, RejectInvalidField}, {8, RejectInvalidField}, {9, RejectNullText}, {13, RejectInvalidLine}}
	if !slices.Equal(got, want) {
		t.Fatalf("rejected %v, want %v", got, want)
	}

	// TSV: wrong field counts and empty ids; the header decides the columns.
	tsv := filepath.Join(dir, "bad.tsv")
	writeFile(t, tsv, []byte("1\tone\n2\n3\tthree\textra\n\tno id\n4\tfour\r\n"))
	docs, rejected, _ = openAll(t, []string{tsv}, SourceOptions{}, Columns{})
	if len(docs) != 2 || docs[0].Doc != (encode.Doc{ID: "1", Text: "one"}) || docs[1].Doc != (encode.Doc{ID: "4", Text: "four"}) || docs[1].Line != 5 {
		t.Fatalf("TSV documents %+v", docs)
	}
	if len(rejected) != 3 || rejected[0].Line != 2 || rejected[1].Line != 3 || rejected[2].Line != 4 || rejected[2].Code != RejectEmptyID {
		t.Fatalf("TSV rejected %v", rejected)
	}
	// Named columns need a header that names them.
	in, err := DiscoverSources(context.Background(), []string{tsv}, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Open(context.Background(), in.Names[0], Columns{ID: "docid"}); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "not a header") {
		t.Fatalf("--id-column docid on a TSV without a header: %v", err)
	}
}

// TestTextInputLongLine checks that a line over MaxLineBytes is a bad row
// and reading goes on after it.
func TestTextInputLongLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 64 MiB line")
	}
	path := filepath.Join(t.TempDir(), "long.jsonl")
	var b bytes.Buffer
	b.WriteString(`{"id":"a","text":"x"}` + "\n")
	b.WriteString(`{"id":"big","text":"`)
	b.Write(bytes.Repeat([]byte("y"), MaxLineBytes))
	b.WriteString("\"}\n")
	b.WriteString(`{"id":"c","text":"z"}` + "\n")
	writeFile(t, path, b.Bytes())
	docs, rejected, _ := openAll(t, []string{path}, SourceOptions{}, Columns{})
	if len(docs) != 2 || docs[1].Doc.ID != "c" || docs[1].Line != 3 {
		t.Fatalf("documents %+v", docs)
	}
	if len(rejected) != 1 || rejected[0].Line != 2 || rejected[0].Code != RejectInvalidLine {
		t.Fatalf("rejected %v", rejected)
	}
}

// TestInputBaseOfTextInputs checks the output names of text inputs.
func TestInputBaseOfTextInputs(t *testing.T) {
	for in, want := range map[string]string{
		"a/corpus.jsonl":               "corpus",
		"a/corpus.jsonl.gz":            "corpus",
		"a/collection.tsv":             "collection",
		"a/c.TSV.GZ":                   "c",
		"a/corpus.jsonl#part00003":     "corpus.part00003",
		"s3://b/x/corpus.jsonl#part12": "corpus", // not a part name (five digits at least): the last extension goes
		"a/docs-00000.parquet":         "docs-00000",
		"a/odd.parquet#part00001":      "odd",
	} {
		if got := InputBase(in); got != want {
			t.Errorf("InputBase(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTextInputChangedWhileRead checks that a file that grows after
// discovery is an error, not a silently different part.
func TestTextInputChangedWhileRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grow.jsonl")
	writeFile(t, path, []byte(`{"id":"a","text":"x"}`+"\n"))
	in, err := DiscoverSources(context.Background(), []string{path}, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, []byte(`{"id":"a","text":"x"}`+"\n"+`{"id":"b","text":"y"}`+"\n"))
	if _, err := in.Identity(context.Background(), in.Names[0]); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("identity of a grown file: %v", err)
	}
}

// TestTextInputsInABucket reads JSON Lines objects from a bucket (the fake
// S3), one cut into parts by range requests and one gzipped, and checks
// that they give the documents and identities of the same local files.
func TestTextInputsInABucket(t *testing.T) {
	cran := readCranfield(t)[:400]
	var beir bytes.Buffer
	for _, d := range cran {
		b, _ := json.Marshal(map[string]string{"_id": d.ID, "title": d.Title, "text": d.Text})
		beir.Write(append(b, '\n'))
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "corpus.jsonl"), beir.Bytes())
	writeFile(t, filepath.Join(dir, "zipped.jsonl.gz"), gzipBytes(t, beir.Bytes()))
	f := newFakeS3(t)
	s := f.open(t, "in/")
	writeObject(t, s, "in/corpus.jsonl", beir.Bytes(), nil)
	writeObject(t, s, "in/zipped.jsonl.gz", gzipBytes(t, beir.Bytes()), nil)

	opts := SourceOptions{PartSize: MinPartSize}
	local, _, localNames := openAll(t, []string{dir}, opts, Columns{})
	remote, rejected, remoteNames := openAll(t, []string{f.url("in/")}, opts, Columns{})
	if len(rejected) > 0 {
		t.Fatalf("rejected %v", rejected[0])
	}
	if len(local) != 2*len(cran) || !slices.Equal(local, remote) {
		t.Fatalf("%d documents from the bucket, %d from files: they differ", len(remote), len(local))
	}
	if len(remoteNames) != len(localNames) || len(localNames) < 3 {
		t.Fatalf("inputs %v and %v", remoteNames, localNames)
	}
	ctx := context.Background()
	lin, err := DiscoverSources(ctx, []string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	rin, err := DiscoverSources(ctx, []string{f.url("in/")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range localNames {
		if InputBase(localNames[i]) != InputBase(remoteNames[i]) {
			t.Fatalf("base %s vs %s", InputBase(localNames[i]), InputBase(remoteNames[i]))
		}
		li, err := lin.Identity(ctx, localNames[i])
		if err != nil {
			t.Fatal(err)
		}
		ri, err := rin.Identity(ctx, remoteNames[i])
		if err != nil {
			t.Fatal(err)
		}
		if li.SHA256 != ri.SHA256 || li.Size != ri.Size || (li.Part == nil) != (ri.Part == nil) || li.Part != nil && *li.Part != *ri.Part {
			t.Fatalf("%s: identity %+v (part %+v) vs %+v (part %+v)", localNames[i], li, li.Part, ri, ri.Part)
		}
	}
}

// FuzzTextParts reads arbitrary bytes as JSON Lines and as TSV, whole and
// cut into parts at an arbitrary size: reading never fails as a whole
// (every bad line is a row error), and the parts give exactly the
// documents and row errors of the whole file.
func FuzzTextParts(f *testing.F) {
	f.Add([]byte("{\"_id\":\"a\",\"text\":\"x\"}\n{\"id\":1,\"contents\":\"y\"}\n"), uint16(7), false)
	f.Add([]byte("id\ttitle\ttext\n1\tt\tx\n2\t\t\n\n3\tu"), uint16(3), true)
	f.Add([]byte("1\tx\r\n2\ty\tz\n{\"a\":"), uint16(1), true)
	f.Fuzz(func(t *testing.T, data []byte, part uint16, tsv bool) {
		kind := TextJSONL
		if tsv {
			kind = TextTSV
		}
		size := int64(len(data))
		partSize := int64(part)%max(size, 1) + 1
		open := func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data[offset:])), nil
		}
		type rowErr struct {
			line         int64
			code, reason string
			id           string
		}
		read := func(bounds []int64) (docs []InputDoc, errs []rowErr, err error) {
			sc, err := scanText(context.Background(), bytes.NewReader(data), false, bounds)
			if err != nil {
				return nil, nil, err
			}
			for k := 0; k <= len(bounds); k++ {
				spec := textPartSpec{path: "fuzz", kind: kind, end: size}
				if k > 0 {
					spec.start, spec.firstLine = bounds[k-1], sc.linesBefore[k-1]
				}
				if k < len(bounds) {
					spec.end = bounds[k]
				}
				spec.lines = sc.linesBefore[k] - spec.firstLine
				r, err := openText(context.Background(), open, spec, Columns{})
				if err != nil {
					return nil, nil, err // a TSV header without a text column
				}
				r.OnRowError(func(e *RowError) error {
					var id string
					if e.ID != nil {
						id = *e.ID
					}
					errs = append(errs, rowErr{e.Line, e.Code, e.Reason, id})
					return nil
				})
				for {
					d, err := r.Next(context.Background(), 3)
					docs = append(docs, d...)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("part %d: %v", k, err)
					}
				}
				r.Close()
			}
			return docs, errs, nil
		}
		wholeDocs, wholeErrs, wholeErr := read(nil)
		var bounds []int64
		for b := partSize; b < size; b += partSize {
			bounds = append(bounds, b)
		}
		partDocs, partErrs, partErr := read(bounds)
		if (wholeErr == nil) != (partErr == nil) {
			t.Fatalf("whole: %v, parts: %v", wholeErr, partErr)
		}
		if !slices.Equal(wholeDocs, partDocs) || !slices.Equal(wholeErrs, partErrs) {
			t.Fatalf("parts of %d bytes read %d documents and %d errors, the whole file %d and %d",
				partSize, len(partDocs), len(partErrs), len(wholeDocs), len(wholeErrs))
		}
	})
}
