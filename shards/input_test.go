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
)

// cranfieldDir holds the Cranfield document shards, read in place (never
// copied into the repository). Relative to this package's directory.
const cranfieldDir = "../../shared/data/cranfield/parquet"

func cranfieldShards(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(cranfieldDir, "docs-*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skipf("no Cranfield shards in %s (the shared data directory is absent)", cranfieldDir)
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
	type want struct{ id, text string }
	tests := []struct {
		name  string
		write func(path string)
		cols  Columns
		want  []want
	}{
		{
			name: "required",
			write: func(p string) {
				writeParquet(t, p, []docRequired{{"a", "first"}, {"b", ""}, {"c", "third"}})
			},
			want: []want{{"a", "first"}, {"b", ""}, {"c", "third"}},
		},
		{
			name: "optional with null text",
			write: func(p string) {
				writeParquet(t, p, []docOptional{{ptr("a"), ptr("x")}, {ptr("b"), nil}, {ptr("c"), ptr("")}})
			},
			want: []want{{"a", "x"}, {"b", ""}, {"c", ""}},
		},
		{
			name: "page v1",
			write: func(p string) {
				writeParquet(t, p, []docOptional{{ptr("a"), ptr("x")}, {ptr("b"), nil}}, parquet.DataPageVersion(1))
			},
			want: []want{{"a", "x"}, {"b", ""}},
		},
		{
			name: "int64 id and other column names",
			write: func(p string) {
				writeParquet(t, p, []docInt64{{-7, "neg"}, {0, "zero"}, {1 << 40, "big"}})
			},
			cols: Columns{ID: "doc_id", Text: "body"},
			want: []want{{"-7", "neg"}, {"0", "zero"}, {"1099511627776", "big"}},
		},
		{
			name: "optional int32 id",
			write: func(p string) {
				writeParquet(t, p, []docInt32Opt{{ptr(int32(-1)), "m"}, {ptr(int32(2147483647)), "max"}})
			},
			want: []want{{"-1", "m"}, {"2147483647", "max"}},
		},
		{
			name: "uint32 id",
			write: func(p string) {
				writeParquet(t, p, []docUint32{{4294967295, "max"}, {1, "one"}})
			},
			want: []want{{"4294967295", "max"}, {"1", "one"}},
		},
		{
			name: "title",
			write: func(p string) {
				writeParquet(t, p, []docTitle{
					{"a", ptr("Title"), ptr("body"), "x"},
					{"b", nil, ptr("body only"), "x"},
					{"c", ptr("title only"), nil, "x"},
					{"d", ptr(""), ptr(""), "x"},
					{"e", ptr("T"), ptr(""), "x"},
				})
			},
			cols: Columns{Title: "title"},
			want: []want{{"a", "Title body"}, {"b", "body only"}, {"c", "title only"}, {"d", ""}, {"e", "T"}},
		},
		{
			name: "dictionary, row groups and pages",
			write: func(p string) {
				writeParquet(t, p, many, parquet.MaxRowsPerRowGroup(97), parquet.PageBufferSize(256))
			},
			want: func() []want {
				var w []want
				for _, r := range many {
					text := ""
					if r.Text != nil {
						text = *r.Text
					}
					w = append(w, want{r.ID, text})
				}
				return w
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".parquet")
			tc.write(p)
			for _, n := range []int{1, 3, 1000} {
				r, err := OpenInput(p, tc.cols)
				if err != nil {
					t.Fatal(err)
				}
				docs := readAll(t, r, n)
				r.Close()
				if len(docs) != len(tc.want) {
					t.Fatalf("n=%d: %d docs, want %d", n, len(docs), len(tc.want))
				}
				for i, d := range docs {
					if d.Row != int64(i) || d.Doc.ID != tc.want[i].id || d.Doc.Text != tc.want[i].text {
						t.Fatalf("n=%d: doc %d = row %d %q %q, want %q %q", n, i, d.Row, d.Doc.ID, d.Doc.Text, tc.want[i].id, tc.want[i].text)
					}
				}
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
	if re.Path != p || re.Row != 1 || re.RowGroup != 0 || re.Column != "id" || !errors.Is(err, ErrInvalidInput) {
		t.Errorf("RowError %+v", re)
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
	r.OnRowError(func(e *RowError) error { skipped = append(skipped, e.Row); return nil })
	docs := readAll(t, r, 2)
	if len(docs) != 2 || docs[0].Row != 0 || docs[1].Row != 2 || !slices.Equal(skipped, []int64{1}) {
		t.Errorf("docs %+v, skipped %v", docs, skipped)
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

// FuzzInputReader feeds arbitrary bytes to the Parquet input reader: it may
// fail, never panic, and errors name the file.
func FuzzInputReader(f *testing.F) {
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
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "in.parquet")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := OpenInput(p, Columns{Title: "title"})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		defer r.Close()
		for i := 0; i < 100; i++ {
			_, err := r.Next(context.Background(), 16)
			if err == io.EOF {
				return
			}
			if err != nil {
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("error %q does not name the file", err)
				}
				return
			}
		}
	})
}
