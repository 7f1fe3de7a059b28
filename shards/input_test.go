package shards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/encode"
)

// cranfieldDir holds the Cranfield document shards of the repository's test
// data (testdata/README.md), read in place. Relative to this package's
// directory.
const cranfieldDir = "../testdata/cranfield"

func cranfieldShards(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(cranfieldDir, "docs-*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no Cranfield shards in %s (see testdata/README.md)", cranfieldDir)
	}
	return paths
}

// readAll reads every document of r in batches of n.
func readAll(t testing.TB, r *InputReader, n int) []InputDoc {
	t.Helper()
	var all []InputDoc
	for {
		docs, err := r.Next(context.Background(), n)
		if err == io.EOF {
			return all
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(docs) == 0 || len(docs) > n {
			t.Fatalf("Next(%d) returned %d docs", n, len(docs))
		}
		all = append(all, docs...)
	}
}

// rowGroupOf maps the row indexes of a Parquet file to their row groups,
// from its footer.
func rowGroupOf(t testing.TB, path string) func(row int64) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	var sum int64
	for _, rg := range pf.RowGroups() {
		sum += rg.NumRows()
		ends = append(ends, sum)
	}
	return func(row int64) int {
		t.Helper()
		for g, end := range ends {
			if row < end {
				return g
			}
		}
		t.Fatalf("%s: no row %d (%d rows)", path, row, sum)
		return -1
	}
}

// fmtRowError shows a RowError with its id (or null).
func fmtRowError(e RowError) string {
	id := "null"
	if e.ID != nil {
		id = strconv.Quote(*e.ID)
	}
	return fmt.Sprintf("{%s: row group %d, row %d, column %q, code %q, id %s, reason %q}", e.Path, e.RowGroup, e.Row, e.Column, e.Code, id, e.Reason)
}

// sameRowError reports whether got is the rejection want: the same file,
// row group, row, column, code and id (both null or equal), and a reason.
func sameRowError(got, want RowError) bool {
	return got.Path == want.Path && got.RowGroup == want.RowGroup && got.Row == want.Row &&
		got.Column == want.Column && got.Code == want.Code && got.Reason != "" &&
		(got.ID == nil) == (want.ID == nil) && (got.ID == nil || *got.ID == *want.ID)
}

// checkDocs checks that got are the documents want: the same rows, row
// groups, ids and texts, in order.
func checkDocs(t *testing.T, name string, got, want []InputDoc) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d documents, want %d", name, len(got), len(want))
	}
	for i, g := range got {
		if w := want[i]; g != w {
			t.Fatalf("%s: document %d is row %d (group %d) {%q, %.60q}, want row %d (group %d) {%q, %.60q}",
				name, i, g.Row, g.RowGroup, g.Doc.ID, g.Doc.Text, w.Row, w.RowGroup, w.Doc.ID, w.Doc.Text)
		}
	}
}

// checkRead reads path with cols in batches of n, with a handler that
// collects the rejected rows, and checks the documents against want and the
// rejected rows against wantRej, exactly and in order. Then it reads the
// file again without a handler: with no rejected rows it must read want;
// otherwise Next must fail with the first rejected row's *RowError (which
// matches ErrInvalidInput), after returning only documents of the rows before
// it (all of them in batches of 1), and keep failing with that error.
func checkRead(t *testing.T, name, path string, cols Columns, n int, want []InputDoc, wantRej []RowError) {
	t.Helper()
	name = fmt.Sprintf("%s, batch %d", name, n)
	var rejected []RowError
	got, err := readEvery(t, path, cols, n, func(e *RowError) error {
		rejected = append(rejected, *e)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	checkDocs(t, name, got, want)
	if len(rejected) != len(wantRej) {
		t.Fatalf("%s: %d rows rejected, want %d", name, len(rejected), len(wantRej))
	}
	for i, e := range rejected {
		if !sameRowError(e, wantRej[i]) {
			t.Fatalf("%s: rejected row %d is %s, want %s", name, i, fmtRowError(e), fmtRowError(wantRej[i]))
		}
	}

	// Without a handler.
	r, err := OpenInput(path, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var docs []InputDoc
	for {
		batch, err := r.Next(context.Background(), n)
		if err == io.EOF {
			if len(wantRej) > 0 {
				t.Fatalf("%s, no handler: io.EOF after %d documents, want an error at row %d", name, len(docs), wantRej[0].Row)
			}
			checkDocs(t, name+", no handler", docs, want)
			return
		}
		if err != nil {
			if len(wantRej) == 0 {
				t.Fatalf("%s, no handler: %v", name, err)
			}
			var re *RowError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidInput) || !sameRowError(*re, wantRej[0]) {
				t.Fatalf("%s, no handler: error %v, want the RowError %s", name, err, fmtRowError(wantRej[0]))
			}
			before := 0
			for before < len(want) && want[before].Row < wantRej[0].Row {
				before++
			}
			if len(docs) > before || n == 1 && len(docs) != before {
				t.Fatalf("%s, no handler: %d documents before the error at row %d, want %d", name, len(docs), wantRej[0].Row, before)
			}
			checkDocs(t, name+", no handler", docs, want[:len(docs)])
			if _, err2 := r.Next(context.Background(), n); err2 != err {
				t.Fatalf("%s, no handler: Next after %v: %v, want the same error", name, err, err2)
			}
			return
		}
		if len(batch) == 0 || len(batch) > n {
			t.Fatalf("%s, no handler: Next(%d) returned %d docs", name, n, len(batch))
		}
		docs = append(docs, batch...)
	}
}

// cranfieldEmpty are the Cranfield documents whose title and text are both
// empty strings in the source data.
var cranfieldEmpty = []string{"471", "995"}

func TestInputCranfield(t *testing.T) {
	paths := cranfieldShards(t)
	var empty []string
	seen := map[string]string{}
	total := int64(0)
	for _, p := range paths {
		r, err := OpenInput(p, Columns{Title: "title"})
		if err != nil {
			t.Fatal(err)
		}
		docs := readAll(t, r, 64)
		if int64(len(docs)) != r.NumRows() {
			t.Errorf("%s: %d docs, footer says %d rows", p, len(docs), r.NumRows())
		}
		for i, d := range docs {
			if d.Row != int64(i) {
				t.Fatalf("%s: doc %d has row %d", p, i, d.Row)
			}
			if d.Doc.ID == "" {
				t.Errorf("%s row %d: empty id", p, d.Row)
			}
			if strings.TrimSpace(d.Doc.Text) == "" {
				empty = append(empty, d.Doc.ID)
			}
			if prev, dup := seen[d.Doc.ID]; dup {
				t.Errorf("id %q in %s and %s", d.Doc.ID, prev, p)
			}
			seen[d.Doc.ID] = p
		}
		total += int64(len(docs))
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
	if total != 1400 {
		t.Errorf("%d documents in %d shards, want 1400", total, len(paths))
	}
	slices.Sort(empty)
	if !slices.Equal(empty, cranfieldEmpty) {
		t.Errorf("documents with empty title and text: %v, want %v", empty, cranfieldEmpty)
	}
}

// TestInputCranfieldTitleJoin checks that the text read with a title column
// is joinTitle(title, text) of the two columns read separately.
func TestInputCranfieldTitleJoin(t *testing.T) {
	paths := cranfieldShards(t)
	byID := func(cols Columns) map[string]string {
		m := map[string]string{}
		for _, p := range paths {
			r, err := OpenInput(p, cols)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range readAll(t, r, 500) {
				m[d.Doc.ID] = d.Doc.Text
			}
			r.Close()
		}
		return m
	}
	texts, titles, joined := byID(Columns{}), byID(Columns{Text: "title"}), byID(Columns{Title: "title"})
	if len(joined) != 1400 || len(texts) != 1400 || len(titles) != 1400 {
		t.Fatalf("%d, %d, %d documents", len(joined), len(texts), len(titles))
	}
	for id, j := range joined {
		if want := titles[id] + " " + texts[id]; titles[id] != "" && texts[id] != "" && j != want {
			t.Fatalf("doc %s: joined %q, want %q", id, j, want)
		}
		if want := joinTitle(titles[id], texts[id]); j != want {
			t.Fatalf("doc %s: joined %q, want %q", id, j, want)
		}
	}
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestInputProjectionAndStreaming reads only id and title of a Cranfield
// shard in small batches: batches cross the row group boundary, rows are
// consecutive, and the bytes read leave out the text column chunks.
func TestInputProjectionAndStreaming(t *testing.T) {
	p := cranfieldShards(t)[0]
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	cr := &countingReaderAt{r: f}
	r, err := openInput(cr, st.Size(), p, Columns{ID: "id", Text: "title"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRowGroups() < 2 {
		t.Logf("%s has %d row group(s); streaming across groups not exercised", p, r.NumRowGroups())
	}
	var textBytes int64
	for _, rg := range r.pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			if slices.Equal(c.MetaData.PathInSchema, []string{"text"}) {
				textBytes += c.MetaData.TotalCompressedSize
			}
		}
	}
	next := int64(0)
	for {
		docs, err := r.Next(context.Background(), 7)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != 7 && next+int64(len(docs)) != r.NumRows() {
			t.Fatalf("short batch of %d at row %d (of %d)", len(docs), next, r.NumRows())
		}
		for _, d := range docs {
			if d.Row != next {
				t.Fatalf("row %d, want %d", d.Row, next)
			}
			next++
		}
	}
	if next != r.NumRows() {
		t.Fatalf("read %d rows, want %d", next, r.NumRows())
	}
	read := cr.n.Load()
	t.Logf("file %d bytes, text chunks %d bytes, read %d bytes", st.Size(), textBytes, read)
	if textBytes == 0 || read > st.Size()-textBytes+16<<10 {
		t.Errorf("read %d of %d bytes: the text column (%d bytes) was not skipped", read, st.Size(), textBytes)
	}
	if _, err := r.Next(context.Background(), 7); err != io.EOF {
		t.Errorf("Next after the end: %v, want io.EOF", err)
	}
}

func TestInputContextCancelled(t *testing.T) {
	p := cranfieldShards(t)[0]
	r, err := OpenInput(p, Columns{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Next(ctx, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: %v", err)
	}
}

// writeParquet writes rows with parquet-go in the shape of T.
func writeParquet[T any](t testing.TB, path string, rows []T, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

type docRequired struct {
	ID   string `parquet:"id"`
	Text string `parquet:"text"`
}

type docOptional struct {
	ID   *string `parquet:"id,optional"`
	Text *string `parquet:"text,optional"`
}

type docDict struct {
	ID   string  `parquet:"id,dict"`
	Text *string `parquet:"text,optional,dict"`
}

type docInt64 struct {
	DocID int64  `parquet:"doc_id"`
	Body  string `parquet:"body,zstd"`
}

type docInt32Opt struct {
	ID   *int32 `parquet:"id,optional"`
	Text string `parquet:"text"`
}

type docUint32 struct {
	ID   uint32 `parquet:"id"`
	Text string `parquet:"text"`
}

type docTitle struct {
	ID    string  `parquet:"id"`
	Title *string `parquet:"title,optional"`
	Text  *string `parquet:"text,optional"`
	Extra string  `parquet:"extra"` // not projected
}

type docBadText struct {
	ID   string `parquet:"id"`
	Text int64  `parquet:"text"`
}

type docBadID struct {
	ID   float64 `parquet:"id"`
	Text string  `parquet:"text"`
}

type docListText struct {
	ID   string   `parquet:"id"`
	Text []string `parquet:"text,list"`
}

func TestInputShapes(t *testing.T) {
	dir := t.TempDir()
	manyRows := func(n int) []docDict {
		rows := make([]docDict, n)
		for i := range rows {
			rows[i] = docDict{ID: fmt.Sprintf("d%04d", i), Text: ptr([]string{"alpha", "beta", "gamma"}[i%3])}
			if i%5 == 4 {
				rows[i].Text = nil
			}
		}
		return rows
	}
	many := manyRows(1000)
	// want is a document read; rej a rejected row (its file and row group
	// are filled in from the file).
	type want struct {
		row      int64
		id, text string
	}
	type rej struct {
		row          int64
		column, code string
		id           *string
	}
	tests := []struct {
		name  string
		write func(path string)
		cols  Columns
		want  []want
		rej   []rej
	}{
		{
			name: "required",
			write: func(p string) {
				writeParquet(t, p, []docRequired{{"a", "first"}, {"b", ""}, {"c", "third"}})
			},
			want: []want{{0, "a", "first"}, {1, "b", ""}, {2, "c", "third"}},
		},
		{
			name: "optional with null text",
			write: func(p string) {
				writeParquet(t, p, []docOptional{{ptr("a"), ptr("x")}, {ptr("b"), nil}, {ptr("c"), ptr("")}})
			},
			want: []want{{0, "a", "x"}, {2, "c", ""}},
			rej:  []rej{{1, "text", RejectNullText, ptr("b")}},
		},
		{
			name: "page v1",
			write: func(p string) {
				writeParquet(t, p, []docOptional{{ptr("a"), ptr("x")}, {ptr("b"), nil}, {ptr("c"), ptr("z")}}, parquet.DataPageVersion(1))
			},
			want: []want{{0, "a", "x"}, {2, "c", "z"}},
			rej:  []rej{{1, "text", RejectNullText, ptr("b")}},
		},
		{
			name: "null and empty ids",
			write: func(p string) {
				writeParquet(t, p, []docOptional{
					{ptr(""), ptr("x")},
					{nil, ptr("y")},
					{ptr("c"), ptr("z")},
					{nil, nil},     // the null id is reported, not the null text
					{ptr(""), nil}, // the empty id likewise
					{ptr("f"), ptr("")},
				})
			},
			want: []want{{2, "c", "z"}, {5, "f", ""}},
			rej: []rej{
				{0, "id", RejectEmptyID, ptr("")},
				{1, "id", RejectNullID, nil},
				{3, "id", RejectNullID, nil},
				{4, "id", RejectEmptyID, ptr("")},
			},
		},
		{
			name: "required empty ids",
			write: func(p string) {
				writeParquet(t, p, []docRequired{{"", "x"}, {"b", "y"}, {"", ""}})
			},
			want: []want{{1, "b", "y"}},
			rej:  []rej{{0, "id", RejectEmptyID, ptr("")}, {2, "id", RejectEmptyID, ptr("")}},
		},
		{
			name: "every row rejected",
			write: func(p string) {
				writeParquet(t, p, []docOptional{{nil, ptr("x")}, {ptr("b"), nil}})
			},
			rej: []rej{{0, "id", RejectNullID, nil}, {1, "text", RejectNullText, ptr("b")}},
		},
		{
			name: "int64 id and other column names",
			write: func(p string) {
				writeParquet(t, p, []docInt64{{-7, "neg"}, {0, "zero"}, {1 << 40, "big"}})
			},
			cols: Columns{ID: "doc_id", Text: "body"},
			want: []want{{0, "-7", "neg"}, {1, "0", "zero"}, {2, "1099511627776", "big"}},
		},
		{
			name: "optional int32 id",
			write: func(p string) {
				writeParquet(t, p, []docInt32Opt{{ptr(int32(-1)), "m"}, {nil, "null"}, {ptr(int32(2147483647)), "max"}})
			},
			want: []want{{0, "-1", "m"}, {2, "2147483647", "max"}},
			rej:  []rej{{1, "id", RejectNullID, nil}},
		},
		{
			name: "uint32 id",
			write: func(p string) {
				writeParquet(t, p, []docUint32{{4294967295, "max"}, {1, "one"}})
			},
			want: []want{{0, "4294967295", "max"}, {1, "1", "one"}},
		},
		{
			name: "title",
			write: func(p string) {
				writeParquet(t, p, []docTitle{
					{"a", ptr("Title"), ptr("body"), "x"},
					{"b", nil, ptr("body only"), "x"},
					{"c", ptr("title only"), nil, "x"}, // null text, the title is the text
					{"d", ptr(""), ptr(""), "x"},
					{"e", ptr("T"), ptr(""), "x"},
					{"f", nil, nil, "x"},
					{"g", ptr(""), nil, "x"},
					{"", ptr("T"), ptr("x"), "x"},
					{"", ptr("T"), nil, "x"},
					{"j", ptr("last"), nil, "x"},
				})
			},
			cols: Columns{Title: "title"},
			want: []want{{0, "a", "Title body"}, {1, "b", "body only"}, {2, "c", "title only"}, {3, "d", ""}, {4, "e", "T"}, {9, "j", "last"}},
			rej: []rej{
				{5, "text", RejectNullText, ptr("f")},
				{6, "text", RejectNullText, ptr("g")},
				{7, "id", RejectEmptyID, ptr("")},
				{8, "id", RejectEmptyID, ptr("")},
			},
		},
		{
			name: "dictionary, row groups and pages",
			write: func(p string) {
				writeParquet(t, p, many, parquet.MaxRowsPerRowGroup(97), parquet.PageBufferSize(256))
			},
			want: func() []want {
				var w []want
				for i, r := range many {
					if r.Text != nil {
						w = append(w, want{int64(i), r.ID, *r.Text})
					}
				}
				return w
			}(),
			rej: func() []rej {
				var w []rej
				for i, r := range many {
					if r.Text == nil {
						w = append(w, rej{int64(i), "text", RejectNullText, ptr(r.ID)})
					}
				}
				return w
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".parquet")
			tc.write(p)
			group := rowGroupOf(t, p)
			var want []InputDoc
			for _, w := range tc.want {
				want = append(want, InputDoc{Row: w.row, RowGroup: group(w.row), Doc: encode.Doc{ID: w.id, Text: w.text}})
			}
			var rejected []RowError
			for _, r := range tc.rej {
				rejected = append(rejected, RowError{Path: p, RowGroup: group(r.row), Row: r.row, Column: r.column, Code: r.code, ID: r.id})
			}
			for _, n := range []int{1, 3, 1000} {
				checkRead(t, tc.name, p, tc.cols, n, want, rejected)
			}
		})
	}
	// The dictionary case really has several row groups and dictionary pages.
	p := filepath.Join(dir, "dictionary,_row_groups_and_pages.parquet")
	r, err := OpenInput(p, Columns{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRowGroups() < 5 {
		t.Errorf("%d row groups, want several", r.NumRowGroups())
	}
	dict := false
	for _, rg := range r.pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			if c.MetaData.DictionaryPageOffset > 0 {
				dict = true
			}
		}
	}
	if !dict {
		t.Error("no dictionary page in the dictionary test file")
	}
}

func TestInputNullID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nullid.parquet")
	writeParquet(t, p, []docOptional{{ptr("a"), ptr("x")}, {nil, ptr("y")}, {ptr("c"), ptr("z")}})

	r, err := OpenInput(p, Columns{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next(context.Background(), 10)
	var re *RowError
	if !errors.As(err, &re) {
		t.Fatalf("Next: %v, want a *RowError", err)
	}
	if re.Path != p || re.Row != 1 || re.RowGroup != 0 || re.Column != "id" || re.Code != RejectNullID || re.ID != nil || !errors.Is(err, ErrInvalidInput) {
		t.Errorf("RowError %s", fmtRowError(*re))
	}
	for _, s := range []string{p, "row 1", `"id"`, "null id"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if _, err2 := r.Next(context.Background(), 10); !errors.Is(err2, err) {
		t.Errorf("Next after an error: %v, want the same error", err2)
	}
	r.Close()

	// With a handler the row is skipped.
	r, err = OpenInput(p, Columns{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var skipped []int64
	r.OnRowError(func(e *RowError) error {
		if e.Path != p || e.RowGroup != 0 || e.Column != "id" || e.Code != RejectNullID || e.ID != nil {
			t.Errorf("RowError %s", fmtRowError(*e))
		}
		skipped = append(skipped, e.Row)
		return nil
	})
	docs := readAll(t, r, 2)
	if len(docs) != 2 || docs[0].Row != 0 || docs[1].Row != 2 || docs[0].Doc.ID != "a" || docs[1].Doc.ID != "c" || !slices.Equal(skipped, []int64{1}) {
		t.Errorf("docs %+v, skipped %v", docs, skipped)
	}

	// A handler's error stops the reader: Next returns it, then again.
	r2, err := OpenInput(p, Columns{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	errStop := errors.New("stop")
	r2.OnRowError(func(e *RowError) error { return fmt.Errorf("row %d: %w", e.Row, errStop) })
	docs, err = r2.Next(context.Background(), 1)
	if err != nil || len(docs) != 1 || docs[0].Row != 0 {
		t.Fatalf("first row: %+v, %v", docs, err)
	}
	if _, err = r2.Next(context.Background(), 1); !errors.Is(err, errStop) {
		t.Fatalf("Next with a failing handler: %v, want its error", err)
	}
	if _, err2 := r2.Next(context.Background(), 1); err2 != err {
		t.Errorf("Next after the handler's error: %v, want the same error", err2)
	}
}

func TestInputSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		write func(path string)
		cols  Columns
		want  []string // substrings of the error besides the path
	}{
		{
			name:  "missing id",
			write: func(p string) { writeParquet(t, p, []docInt64{{1, "x"}}) },
			cols:  Columns{Text: "body"},
			want:  []string{`no column "id"`, `"doc_id"`, `"body"`},
		},
		{
			name:  "missing text",
			write: func(p string) { writeParquet(t, p, []docInt64{{1, "x"}}) },
			cols:  Columns{ID: "doc_id"},
			want:  []string{`no column "text"`, `"doc_id", "body"`},
		},
		{
			name:  "missing title",
			write: func(p string) { writeParquet(t, p, []docRequired{{"a", "x"}}) },
			cols:  Columns{Title: "heading"},
			want:  []string{`no column "heading"`},
		},
		{
			name:  "integer text",
			write: func(p string) { writeParquet(t, p, []docBadText{{"a", 1}}) },
			want:  []string{`column "text"`, "INT64", "want a string"},
		},
		{
			name:  "float id",
			write: func(p string) { writeParquet(t, p, []docBadID{{1.5, "x"}}) },
			want:  []string{`column "id"`, "DOUBLE", "want a string or an integer"},
		},
		{
			name:  "list text",
			write: func(p string) { writeParquet(t, p, []docListText{{"a", []string{"x"}}}) },
			want:  []string{`column "text"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".parquet")
			tc.write(p)
			r, err := OpenInput(p, tc.cols)
			if err == nil {
				r.Close()
				t.Fatal("OpenInput succeeded")
			}
			if !errors.Is(err, ErrInvalidInput) {
				t.Errorf("error %v does not wrap ErrInvalidInput", err)
			}
			for _, s := range append([]string{p}, tc.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %s", err, s)
				}
			}
		})
	}
}

func TestInputNotParquet(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "good.parquet")
	rows := make([]docRequired, 300)
	for i := range rows {
		rows[i] = docRequired{ID: strconv.Itoa(i), Text: strings.Repeat("word ", i%17)}
	}
	writeParquet(t, src, rows, parquet.MaxRowsPerRowGroup(100))
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		"empty":            write("empty.parquet", nil),
		"text":             write("notes.parquet", []byte("id,text\n1,hello\n")),
		"magic only":       write("magic.parquet", []byte("PAR1PAR1")),
		"truncated half":   write("half.parquet", good[:len(good)/2]),
		"truncated footer": write("footer.parquet", good[:len(good)-3]),
		"no head":          write("nohead.parquet", good[100:]),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := OpenInput(p, Columns{})
			if err == nil {
				_, err = r.Next(context.Background(), 1000)
				r.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), p) || !errors.Is(err, ErrInvalidInput) {
				t.Errorf("error %q: want it to name %s and wrap ErrInvalidInput", err, p)
			}
		})
	}
	// Corrupt bytes inside the pages: an error or garbage text, never a panic.
	for _, off := range []int{4, 40, 400, len(good) / 3, len(good) / 2} {
		bad := bytes.Clone(good)
		for i := off; i < off+16 && i < len(bad)-8; i++ {
			bad[i] ^= 0x5a
		}
		p := write(fmt.Sprintf("corrupt%d.parquet", off), bad)
		r, err := OpenInput(p, Columns{})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
			continue
		}
		for err == nil {
			_, err = r.Next(context.Background(), 64)
		}
		if err != io.EOF && !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name the file", err)
		}
		r.Close()
	}
	if _, err := OpenInput(filepath.Join(dir, "absent.parquet"), Columns{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// FuzzInputReader feeds arbitrary bytes to the Parquet input reader. It may
// refuse them, with an error that wraps ErrInvalidInput and names the file,
// never panic from splash's own code (safely turns parquet-go's panics into
// errors), and what it reads must make sense: every row once, in file order,
// either as a document with a non-empty id or as a rejected row (null id,
// empty id, null text) reported to the handler with a consistent code,
// column and id, all of them at io.EOF; the same documents and rejected rows
// whatever the batch size; with a title column, title and text joined, and
// a null text rejected only when the title is null or empty too.
// Its seeds are in testdata/fuzz/FuzzInputReader (see TestWriteFuzzSeeds).
func FuzzInputReader(f *testing.F) {
	failOnOwnPanics(f)
	dir := f.TempDir()
	src := filepath.Join(dir, "seed.parquet")
	writeParquet(f, src, []docTitle{{"a", ptr("T"), ptr("x"), "e"}, {"b", nil, ptr("y"), "e"}}, parquet.MaxRowsPerRowGroup(1))
	good, err := os.ReadFile(src)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	const path = "fuzz.parquet"
	const maxRows = 1 << 12 // rows read per pass, at most
	errTooMany := errors.New("too many rows for the fuzz test")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAlloc(t, len(data), func() {
			checkErr := func(err error) {
				t.Helper()
				if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not wrap ErrInvalidInput or does not name the file", err)
				}
			}
			// read reads every document in batches of n, collecting the
			// rejected rows.
			read := func(cols Columns, n int) (docs []InputDoc, rejected []RowError, err error) {
				t.Helper()
				r, err := openInput(bytes.NewReader(data), int64(len(data)), path, cols)
				if err != nil {
					checkErr(err)
					return nil, nil, err
				}
				defer r.Close()
				if r.NumRows() < 0 {
					t.Fatalf("NumRows %d", r.NumRows())
				}
				cols = cols.withDefaults()
				r.OnRowError(func(e *RowError) error {
					if !errors.Is(e, ErrInvalidInput) || e.Path != path || e.Row < 0 || e.Row >= r.NumRows() ||
						e.RowGroup < 0 || e.RowGroup >= r.NumRowGroups() || e.Reason == "" ||
						len(rejected) > 0 && e.Row <= rejected[len(rejected)-1].Row {
						t.Fatalf("bad RowError %s (file of %d rows)", fmtRowError(*e), r.NumRows())
					}
					var ok bool
					switch e.Code {
					case RejectNullID:
						ok = e.Column == cols.ID && e.ID == nil
					case RejectEmptyID:
						ok = e.Column == cols.ID && e.ID != nil && *e.ID == ""
					case RejectNullText:
						ok = e.Column == cols.Text && e.ID != nil && *e.ID != ""
					}
					if !ok {
						t.Fatalf("RowError %s: code, column and id do not agree (columns %+v)", fmtRowError(*e), cols)
					}
					rejected = append(rejected, *e)
					return nil
				})
				for {
					batch, err := r.Next(context.Background(), n)
					if err == io.EOF {
						break
					}
					if err != nil {
						checkErr(err)
						if _, again := r.Next(context.Background(), n); again != err {
							t.Fatalf("after %v, Next returns %v", err, again)
						}
						return docs, rejected, err
					}
					if len(batch) == 0 || len(batch) > n {
						t.Fatalf("Next(%d) returned %d documents", n, len(batch))
					}
					for _, d := range batch {
						if d.Row < 0 || d.Row >= r.NumRows() || len(docs) > 0 && d.Row <= docs[len(docs)-1].Row {
							t.Fatalf("row %d after row %d (file of %d rows)", d.Row, docs[max(len(docs)-1, 0)].Row, r.NumRows())
						}
						if d.RowGroup < 0 || d.RowGroup >= r.NumRowGroups() || len(docs) > 0 && d.RowGroup < docs[len(docs)-1].RowGroup {
							t.Fatalf("row %d in row group %d (%d groups)", d.Row, d.RowGroup, r.NumRowGroups())
						}
						if d.Doc.ID == "" {
							t.Fatalf("row %d: a document with an empty id", d.Row)
						}
						docs = append(docs, d)
					}
					if int64(len(docs)+len(rejected)) > maxRows {
						return docs, rejected, errTooMany
					}
				}
				if got := int64(len(docs) + len(rejected)); got != r.NumRows() {
					t.Fatalf("io.EOF after %d documents and %d rejected rows, footer says %d rows", len(docs), len(rejected), r.NumRows())
				}
				// Rows are in range and increasing: with the count, every row
				// once, unless a row is both read and rejected.
				j := 0
				for _, e := range rejected {
					for j < len(docs) && docs[j].Row < e.Row {
						j++
					}
					if j < len(docs) && docs[j].Row == e.Row {
						t.Fatalf("row %d is read and rejected", e.Row)
					}
				}
				if _, err := r.Next(context.Background(), n); err != io.EOF {
					t.Fatalf("Next after io.EOF: %v", err)
				}
				return docs, rejected, nil
			}
			sameRejected := func(a, b []RowError) bool {
				return slices.EqualFunc(a, b, sameRowError)
			}
			small := 1 + len(data)%13
			docs, rejected, err := read(Columns{}, small)
			docs2, rejected2, err2 := read(Columns{}, 4096)
			if err == errTooMany || err2 == errTooMany {
				return
			}
			if (err == nil) != (err2 == nil) {
				t.Fatalf("batches of %d: %v; batches of 4096: %v", small, err, err2)
			}
			if err != nil {
				return
			}
			if !sameRejected(rejected, rejected2) || !slices.Equal(docs, docs2) {
				t.Fatalf("batches of %d and of 4096 read different documents or rejected different rows", small)
			}
			// With a title column: the rows read without one (text not null)
			// are all there, and each text is the title (read as a text column)
			// joined with the text ("" for a null or a rejected row). A row
			// whose text is null is read when its title is not null nor empty,
			// and rejected otherwise; rows with a null or empty id are rejected
			// either way.
			titled, titledRej, err3 := read(Columns{Title: "title"}, small)
			titles, _, err4 := read(Columns{Text: "title"}, 4096)
			if err3 != nil || err4 != nil {
				return
			}
			byRow := func(docs []InputDoc) map[int64]encode.Doc {
				m := make(map[int64]encode.Doc, len(docs))
				for _, d := range docs {
					m[d.Row] = d.Doc
				}
				return m
			}
			rejByRow := func(rej []RowError) map[int64]RowError {
				m := make(map[int64]RowError, len(rej))
				for _, e := range rej {
					m[e.Row] = e
				}
				return m
			}
			plain, withTitle, titleOnly := byRow(docs), byRow(titled), byRow(titles)
			plainRej, titledRejByRow := rejByRow(rejected), rejByRow(titledRej)
			for row := range plain {
				if _, ok := withTitle[row]; !ok {
					t.Fatalf("row %d is read without the title column, not with it", row)
				}
			}
			for row, e := range plainRej {
				if e.Code != RejectNullText {
					if te, ok := titledRejByRow[row]; !ok || te.Code != e.Code {
						t.Fatalf("row %d is rejected as %s without the title column; with it: %s", row, e.Code, fmtRowError(titledRejByRow[row]))
					}
				}
			}
			for row, e := range titledRejByRow {
				pe, ok := plainRej[row]
				if !ok || pe.Code != e.Code || e.Code == RejectNullText && titleOnly[row].Text != "" {
					t.Fatalf("row %d is rejected with the title column (%s), not without it or with a title %q", row, fmtRowError(e), titleOnly[row].Text)
				}
			}
			for row, d := range withTitle {
				text, title := plain[row], titleOnly[row]
				if text.ID != "" && d.ID != text.ID || title.ID != "" && d.ID != title.ID || d.Text != joinTitle(title.Text, text.Text) {
					t.Fatalf("row %d with the title column is %+v; without it %+v, its title %+v", row, d, text, title)
				}
				if _, ok := plain[row]; !ok && (plainRej[row].Code != RejectNullText || title.Text == "") {
					t.Fatalf("row %d with the title column is %+v, without it rejected as %q, its title %q", row, d, plainRej[row].Code, title.Text)
				}
			}
		})
	})
}
