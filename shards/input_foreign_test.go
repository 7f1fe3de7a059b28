package shards

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pqparquet "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/encode"
)

// duckDBWriteScript writes Parquet files with DuckDB from JSON Lines that
// the test generated, and describes what it wrote (schema, row groups,
// encodings). argv: the JSON Lines file, the table's columns (SQL), the
// Parquet file, the row group size. The table is copied in slices of
// row-group-size rows joined with UNION ALL: DuckDB cuts row groups only
// between the chunks it writes (2048 rows), so a plain COPY of 1000 rows
// makes one row group whatever ROW_GROUP_SIZE says.
const duckDBWriteScript = `
const { DuckDBInstance } = require(process.env.DUCKDB_MODULE);
const q = s => "'" + s.replaceAll("'", "''") + "'";
(async () => {
  const [src, columns, dst, rgSize] = process.argv.slice(2);
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  await con.run("CREATE TABLE docs (" + columns + ")");
  const names = (await con.runAndReadAll("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'docs' ORDER BY column_index")).getRowObjectsJson();
  const cols = '{' + names.map(c => q(c.column_name) + ': ' + q(c.data_type)).join(', ') + '}';
  await con.run("INSERT INTO docs SELECT * FROM read_json(" + q(src) + ", format = 'newline_delimited', columns = " + cols +
    ", maximum_object_size = 134217728)");
  const n = Number((await con.runAndReadAll("SELECT count(*) AS n FROM docs")).getRowObjectsJson()[0].n);
  const size = Number(rgSize);
  const parts = [];
  for (let lo = 0; lo < n; lo += size) {
    parts.push("(SELECT * FROM docs WHERE rn >= " + lo + " AND rn < " + (lo + size) + " ORDER BY rn)");
  }
  await con.run("COPY (" + parts.join(" UNION ALL ") + ") TO " + q(dst) + " (FORMAT parquet, ROW_GROUP_SIZE " + size + ")");
  const schema = (await con.runAndReadAll("SELECT name, repetition_type, type, converted_type FROM parquet_schema(" + q(dst) + ")")).getRowObjectsJson();
  const chunks = (await con.runAndReadAll("SELECT row_group_id, row_group_num_rows, path_in_schema, encodings FROM parquet_metadata(" + q(dst) + ") ORDER BY row_group_id, column_id")).getRowObjectsJson();
  process.stdout.write(JSON.stringify({ rows: n, schema, chunks }));
})().catch(e => { console.error(e); process.exit(1); });
`

// duckDBFile describes a Parquet file that DuckDB wrote.
type duckDBFile struct {
	Rows   int `json:"rows"`
	Schema []struct {
		Name          string  `json:"name"`
		Repetition    string  `json:"repetition_type"`
		Type          *string `json:"type"`
		ConvertedType *string `json:"converted_type"`
	} `json:"schema"`
	Chunks []struct {
		RowGroup  string `json:"row_group_id"`
		Rows      string `json:"row_group_num_rows"`
		Column    string `json:"path_in_schema"`
		Encodings string `json:"encodings"`
	} `json:"chunks"`
}

// rowGroups returns the row count of each row group.
func (f duckDBFile) rowGroups() []int {
	var rgs []int
	last := ""
	for _, c := range f.Chunks {
		if c.RowGroup != last {
			n, _ := strconv.Atoi(c.Rows)
			rgs = append(rgs, n)
			last = c.RowGroup
		}
	}
	return rgs
}

// encodings returns, per row group, the encodings of a column.
func (f duckDBFile) encodings(col string) []string {
	var encs []string
	for _, c := range f.Chunks {
		if c.Column == col {
			encs = append(encs, c.Encodings)
		}
	}
	return encs
}

// writeWithDuckDB writes rows (JSON objects with an "rn" column, 0, 1, ...)
// to a Parquet file with DuckDB, through a table with the given columns.
func writeWithDuckDB(t *testing.T, mod, dir, name, columns string, rowGroupSize int, rows []map[string]any) (string, duckDBFile) {
	t.Helper()
	src := filepath.Join(dir, "_"+name+".jsonl")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src)
	dst := filepath.Join(dir, name+".parquet")
	out := runNode(t, dir, duckDBWriteScript, []string{"DUCKDB_MODULE=" + mod}, src, columns, dst, strconv.Itoa(rowGroupSize))
	var desc duckDBFile
	if err := json.Unmarshal(out, &desc); err != nil {
		t.Fatalf("%v: %.300s", err, out)
	}
	if desc.Rows != len(rows) {
		t.Fatalf("DuckDB loaded %d rows, want %d", desc.Rows, len(rows))
	}
	return dst, desc
}

// duckDoc is one generated document of the DuckDB input test.
type duckDoc struct {
	id         string
	intID      int64
	optID      *int64
	int32ID    int32
	uintID     uint32
	text       *string
	title      string
	lang       string
	dictColumn *string
}

// genDuckDocs generates n documents: unique string ids, integer ids with
// their extremes, optional ids with nulls, null and empty texts, texts
// repeated within every other row group (dictionary-encoded), repeated
// titles and languages, unicode.
func genDuckDocs(n, rowGroupSize int) []duckDoc {
	rng := rand.New(rand.NewPCG(42, 7))
	words := []string{"aircraft", "wing", "flow", "boundary", "layer", "Mach", "naïve", "über", "日本語", "🙂", "x", "shock"}
	sentence := func(k int) string {
		var b strings.Builder
		for i := 0; i < k; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.String()
	}
	repeated := []string{"the same text", "another repeated text", "", "répété", "short"}
	titles := []string{"Title A", "Title B", "", "Titre ç"}
	langs := []string{"en", "fr", "de"}
	docs := make([]duckDoc, n)
	for i := range docs {
		d := duckDoc{
			id:      fmt.Sprintf("doc-%04d-é", i),
			intID:   int64(i)*1_000_003 - 500_000_000,
			int32ID: int32(i*7919 - 3_000_000),
			uintID:  uint32(4_000_000_000 + i),
			title:   titles[i%len(titles)],
			lang:    langs[i%len(langs)],
		}
		switch i {
		case 1:
			d.intID = math.MaxInt64
			d.int32ID = math.MinInt32
			d.uintID = math.MaxUint32
		case 2:
			d.intID = math.MinInt64
			d.int32ID = math.MaxInt32
			d.uintID = 0
		}
		if i%13 != 5 {
			v := int64(i) * 31
			d.optID = &v
		}
		switch {
		case i%11 == 4:
			// null text
		case (i/rowGroupSize)%2 == 0:
			s := repeated[rng.IntN(len(repeated))]
			d.text = &s
		default:
			s := fmt.Sprintf("%d %s", i, sentence(1+rng.IntN(30)))
			d.text = &s
		}
		if i%4 != 0 {
			s := langs[(i/7)%len(langs)]
			d.dictColumn = &s
		}
		docs[i] = d
	}
	return docs
}

func (d duckDoc) json(rn int) map[string]any {
	m := map[string]any{
		"rn": rn, "id": d.id, "int_id": d.intID, "int32_id": d.int32ID, "uint_id": d.uintID,
		"title": d.title, "lang": d.lang, "opt_id": nil, "text": nil, "category": nil,
	}
	if d.optID != nil {
		m["opt_id"] = *d.optID
	}
	if d.text != nil {
		m["text"] = *d.text
	}
	if d.dictColumn != nil {
		m["category"] = *d.dictColumn
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// readEvery reads every document of path with cols in batches of n,
// installing onRowError when it is not nil.
func readEvery(t *testing.T, path string, cols Columns, n int, onRowError func(*RowError) error) ([]InputDoc, error) {
	t.Helper()
	r, err := OpenInput(path, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if onRowError != nil {
		r.OnRowError(onRowError)
	}
	var all []InputDoc
	for {
		docs, err := r.Next(context.Background(), n)
		if err == io.EOF {
			return all, nil
		}
		if err != nil {
			return all, err
		}
		if len(docs) == 0 || len(docs) > n {
			t.Fatalf("Next(%d) returned %d docs", n, len(docs))
		}
		all = append(all, docs...)
	}
}

// TestInputWrittenByDuckDB reads Parquet files that DuckDB, an independent
// writer, wrote from generated documents: 1000 rows in row groups of 100,
// dictionary-encoded and plain strings, NOT NULL and nullable columns,
// integer ids (signed 64 and 32 bits, unsigned 32 bits, extremes), null ids,
// null and empty texts. Every document must come back as generated, in
// order, with its row number and row group, whatever the batch size; rows
// with a null id, or a null text and no title, go to the OnRowError handler
// (and without one, Next fails at the first of them).
func TestInputWrittenByDuckDB(t *testing.T) {
	mod := duckDBModule(t)
	dir := t.TempDir()
	const n, rgSize = 1000, 100
	docs := genDuckDocs(n, rgSize)
	rows := make([]map[string]any, n)
	for i, d := range docs {
		rows[i] = d.json(i)
	}
	path, desc := writeWithDuckDB(t, mod, dir, "docs",
		"rn BIGINT NOT NULL, id VARCHAR NOT NULL, int_id BIGINT NOT NULL, opt_id BIGINT, int32_id INTEGER NOT NULL, "+
			"uint_id UINTEGER NOT NULL, text VARCHAR, title VARCHAR NOT NULL, lang VARCHAR NOT NULL, category VARCHAR",
		rgSize, rows)

	// What DuckDB wrote covers what the test is about.
	if rgs := desc.rowGroups(); len(rgs) != n/rgSize || slices.ContainsFunc(rgs, func(k int) bool { return k != rgSize }) {
		t.Fatalf("DuckDB wrote row groups of %v rows, want %d of %d", rgs, n/rgSize, rgSize)
	}
	isDict := func(enc string) bool { return strings.Contains(enc, "DICTIONARY") }
	textEnc := desc.encodings("text")
	if !slices.ContainsFunc(textEnc, isDict) || !slices.ContainsFunc(textEnc, func(e string) bool { return !isDict(e) }) {
		t.Errorf("text column encodings %v: want dictionary-encoded and plain row groups", textEnc)
	}
	if enc := desc.encodings("lang"); !slices.ContainsFunc(enc, isDict) {
		t.Errorf("lang column encodings %v: want dictionary encoding", enc)
	}
	repetition := map[string]string{}
	for _, s := range desc.Schema {
		repetition[s.Name] = s.Repetition
	}
	// DuckDB 1.5 writes every column OPTIONAL, NOT NULL ones too (its
	// issue 23051); REQUIRED columns from a foreign writer are covered by
	// TestInputWrittenByArrowGo. Either way the values must read back.
	t.Logf("DuckDB repetition: id %s, text %s, opt_id %s", repetition["id"], repetition["text"], repetition["opt_id"])

	// A null text is a rejected row (without a title, or with an empty
	// one): text returns nil for it.
	type check struct {
		name string
		cols Columns
		id   func(duckDoc) string
		text func(duckDoc) *string
	}
	titled := func(d duckDoc) *string {
		if d.text == nil && d.title == "" {
			return nil
		}
		return ptr(joinTitle(d.title, deref(d.text)))
	}
	checks := []check{
		{"string id, text", Columns{}, func(d duckDoc) string { return d.id }, func(d duckDoc) *string { return d.text }},
		{"int64 id", Columns{ID: "int_id"}, func(d duckDoc) string { return strconv.FormatInt(d.intID, 10) }, func(d duckDoc) *string { return d.text }},
		{"int32 id", Columns{ID: "int32_id"}, func(d duckDoc) string { return strconv.FormatInt(int64(d.int32ID), 10) }, func(d duckDoc) *string { return d.text }},
		{"uint32 id", Columns{ID: "uint_id"}, func(d duckDoc) string { return strconv.FormatUint(uint64(d.uintID), 10) }, func(d duckDoc) *string { return d.text }},
		{"title", Columns{Title: "title"}, func(d duckDoc) string { return d.id }, titled},
		{"dictionary text", Columns{Text: "lang"}, func(d duckDoc) string { return d.id }, func(d duckDoc) *string { return &d.lang }},
		{"nullable dictionary text", Columns{Text: "category"}, func(d duckDoc) string { return d.id }, func(d duckDoc) *string { return d.dictColumn }},
	}
	for _, c := range checks {
		want, wantRej := duckExpect(path, rgSize, docs, c.cols, func(d duckDoc) (string, *string, *RowError) {
			if text := c.text(d); text != nil {
				return c.id(d), text, nil
			}
			return c.id(d), nil, &RowError{Column: c.cols.withDefaults().Text, Code: RejectNullText, ID: ptr(c.id(d))}
		})
		for _, batch := range []int{1, 37, 100, 1000, 4096} {
			checkRead(t, c.name, path, c.cols, batch, want, wantRej)
		}
	}
	// The title check reads null texts with a title and rejects those
	// without one.
	var titleOnly, untitled int
	for _, d := range docs {
		if d.text == nil && d.title != "" {
			titleOnly++
		} else if d.text == nil {
			untitled++
		}
	}
	if titleOnly == 0 || untitled == 0 {
		t.Fatalf("%d null texts with a title, %d without: the title check does not cover both", titleOnly, untitled)
	}

	// Null ids: rejected rows, the others keeping their row numbers. With
	// the never null lang as the text, only null ids are rejected; with
	// the text, null texts too (a row with both is rejected for its id).
	var nullRows int
	for _, d := range docs {
		if d.optID == nil {
			nullRows++
		}
	}
	if nullRows == 0 {
		t.Fatal("no null opt_id")
	}
	for _, c := range []struct {
		name string
		cols Columns
		text func(duckDoc) *string
	}{
		{"null ids", Columns{ID: "opt_id", Text: "lang"}, func(d duckDoc) *string { return &d.lang }},
		{"null ids and texts", Columns{ID: "opt_id"}, func(d duckDoc) *string { return d.text }},
	} {
		want, wantRej := duckExpect(path, rgSize, docs, c.cols, func(d duckDoc) (string, *string, *RowError) {
			if d.optID == nil {
				return "", nil, &RowError{Column: "opt_id", Code: RejectNullID}
			}
			id := strconv.FormatInt(*d.optID, 10)
			if text := c.text(d); text != nil {
				return id, text, nil
			}
			return id, nil, &RowError{Column: c.cols.withDefaults().Text, Code: RejectNullText, ID: ptr(id)}
		})
		for _, batch := range []int{1, 64, 1000} {
			checkRead(t, c.name, path, c.cols, batch, want, wantRej)
		}
	}
}

// duckExpect returns the documents and the rejected rows expected from docs,
// row i in row group i/rgSize: f gives the id and text of a row, or the
// rejection (Path, RowGroup and Row are filled in).
func duckExpect(path string, rgSize int, docs []duckDoc, cols Columns, f func(duckDoc) (string, *string, *RowError)) ([]InputDoc, []RowError) {
	var want []InputDoc
	var rejected []RowError
	for i, d := range docs {
		id, text, rej := f(d)
		if rej != nil {
			rej.Path, rej.RowGroup, rej.Row = path, i/rgSize, int64(i)
			rejected = append(rejected, *rej)
			continue
		}
		want = append(want, InputDoc{Row: int64(i), RowGroup: i / rgSize, Doc: encode.Doc{ID: id, Text: *text}})
	}
	return want, rejected
}

// TestInputLargeDocsWrittenByDuckDB reads documents of 1 to 10 MB that
// DuckDB wrote, one at a time (the one with a null text is rejected), and
// checks that the heap does not grow beyond a few times the largest
// document.
func TestInputLargeDocsWrittenByDuckDB(t *testing.T) {
	mod := duckDBModule(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zêta", "η", "θήτα", "iota", "kappa"}
	bigText := func(size int) string {
		var b strings.Builder
		b.Grow(size + 16)
		for b.Len() < size {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(" \n\t."[rng.IntN(4)])
		}
		return b.String()
	}
	const mb = 1 << 20
	sizes := []int{100, mb, 10, 10 * mb, -1, 3 * mb, 0, 5 * mb, 2*mb + 17, 1000}
	texts := make([]*string, len(sizes))
	rows := make([]map[string]any, len(sizes))
	largest, total := 0, 0
	for i, size := range sizes {
		rows[i] = map[string]any{"rn": i, "id": fmt.Sprintf("big-%d", i), "text": nil}
		if size >= 0 {
			s := bigText(size)
			texts[i] = &s
			rows[i]["text"] = s
			largest = max(largest, len(s))
			total += len(s)
		}
	}
	path, desc := writeWithDuckDB(t, mod, dir, "big", "rn BIGINT NOT NULL, id VARCHAR NOT NULL, text VARCHAR", 4, rows)
	rows = nil
	if rgs := desc.rowGroups(); len(rgs) != 3 {
		t.Errorf("DuckDB wrote row groups of %v rows, want 3", rgs)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, allocBase := ms.HeapAlloc, ms.TotalAlloc
	var peak uint64
	r, err := OpenInput(path, Columns{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The row with a null text (row 4, the first of row group 1) is
	// rejected; the others are read in order.
	var rejected []RowError
	r.OnRowError(func(e *RowError) error { rejected = append(rejected, *e); return nil })
	var wantRows []int
	for i, text := range texts {
		if text != nil {
			wantRows = append(wantRows, i)
		}
	}
	for j := 0; ; j++ {
		got, err := r.Next(context.Background(), 1)
		if err == io.EOF {
			if j != len(wantRows) {
				t.Fatalf("read %d documents, want %d", j, len(wantRows))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if j >= len(wantRows) {
			t.Fatalf("more than %d documents", len(wantRows))
		}
		i := wantRows[j]
		if len(got) != 1 || got[0].Row != int64(i) || got[0].RowGroup != i/4 || got[0].Doc.ID != fmt.Sprintf("big-%d", i) {
			t.Fatalf("document %d: %d docs, first row %d (group %d) id %q, want row %d", j, len(got), got[0].Row, got[0].RowGroup, got[0].Doc.ID, i)
		}
		if want := *texts[i]; got[0].Doc.Text != want {
			t.Fatalf("document %d: text of %d bytes differs from the %d bytes written", i, len(got[0].Doc.Text), len(want))
		}
		got = nil
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	wantRej := RowError{Path: path, RowGroup: 1, Row: 4, Column: "text", Code: RejectNullText, ID: ptr("big-4")}
	if len(rejected) != 1 || !sameRowError(rejected[0], wantRej) {
		t.Errorf("rejected %d rows (first %v), want %s", len(rejected), rejected, fmtRowError(wantRej))
	}
	retained := int64(peak) - int64(base)
	allocated := int64(ms.TotalAlloc - allocBase)
	t.Logf("file %d bytes, %d bytes of text, largest document %d bytes; heap retained between reads at most %d bytes, %d bytes allocated in all",
		st.Size(), total, largest, retained, allocated)
	// Between reads the reader may keep the current row group's pages.
	if limit := int64(3*largest + 16*mb); retained > limit {
		t.Errorf("heap retained between reads %d bytes, want at most %d", retained, limit)
	}
	// Each text is decompressed, decoded and copied into a string a few
	// times; nothing should be copied over and over.
	if limit := int64(8*total + 64*mb); allocated > limit {
		t.Errorf("reading allocated %d bytes, want at most %d", allocated, limit)
	}
}

// TestInputWrittenByArrowGo reads a file that another Parquet writer
// (arrow-go's pqarrow, not the parquet-go the reader uses) wrote with
// REQUIRED columns, which DuckDB does not write: a non-nullable string id,
// a non-nullable int64 id, a non-nullable dictionary-encoded text, a
// nullable text with nulls, in row groups of 100.
func TestInputWrittenByArrowGo(t *testing.T) {
	const n, rgSize = 1000, 100
	docs := genDuckDocs(n, rgSize)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "int_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "lang", Type: arrow.BinaryTypes.String},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, d := range docs {
		b.Field(0).(*array.StringBuilder).Append(d.id)
		b.Field(1).(*array.Int64Builder).Append(d.intID)
		b.Field(2).(*array.StringBuilder).Append(d.lang)
		if d.text == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.StringBuilder).Append(*d.text)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "arrowgo.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := pqparquet.NewWriterProperties(pqparquet.WithAllocator(mem), pqparquet.WithMaxRowGroupLength(rgSize), pqparquet.WithDictionaryDefault(true))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // closes f
		t.Fatal(err)
	}

	pf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	st, _ := pf.Stat()
	meta, err := parquet.OpenFile(pf, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"id", "int_id", "lang"} {
		if col := meta.Root().Column(c); col == nil || !col.Required() {
			t.Fatalf("column %s is not REQUIRED: the test does not cover what it is about", c)
		}
	}
	if g := len(meta.RowGroups()); g != n/rgSize {
		t.Fatalf("%d row groups, want %d", g, n/rgSize)
	}

	// A null text is a rejected row unless there is a non-empty title:
	// text returns nil for it.
	for _, c := range []struct {
		name string
		cols Columns
		id   func(duckDoc) string
		text func(duckDoc) *string
	}{
		{"string id, nullable text", Columns{}, func(d duckDoc) string { return d.id }, func(d duckDoc) *string { return d.text }},
		{"int64 id, dictionary text", Columns{ID: "int_id", Text: "lang"}, func(d duckDoc) string { return strconv.FormatInt(d.intID, 10) }, func(d duckDoc) *string { return &d.lang }},
		{"nullable title", Columns{Text: "lang", Title: "text"}, func(d duckDoc) string { return d.id }, func(d duckDoc) *string { return ptr(joinTitle(deref(d.text), d.lang)) }},
		// A null text with a title is read, the title as its text.
		{"null text, title", Columns{Title: "lang"}, func(d duckDoc) string { return d.id }, func(d duckDoc) *string { return ptr(joinTitle(d.lang, deref(d.text))) }},
	} {
		want, wantRej := duckExpect(path, rgSize, docs, c.cols, func(d duckDoc) (string, *string, *RowError) {
			if text := c.text(d); text != nil {
				return c.id(d), text, nil
			}
			return c.id(d), nil, &RowError{Column: c.cols.withDefaults().Text, Code: RejectNullText, ID: ptr(c.id(d))}
		})
		for _, batch := range []int{1, 64, 1000} {
			checkRead(t, c.name, path, c.cols, batch, want, wantRej)
		}
	}
}
