package shards

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pqparquet "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
)

// TestWriteFuzzSeeds regenerates the gen-* seeds of FuzzInputReader,
// FuzzReadShard and FuzzReadManifest with -update-fuzz-seeds:
//
//	go test ./shards -run TestWriteFuzzSeeds -update-fuzz-seeds
//
// The inputs are small Parquet files of documents (a few Cranfield
// abstracts, cut short) written by parquet-go with every encoding and
// compression it offers, by arrow-go and by DuckDB (when node and
// @duckdb/node-api are there), small impact shards of both formats, real
// manifests and broken ones, and damaged copies of some of each.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateFuzzSeeds {
		t.Skip("run with -update-fuzz-seeds to rewrite the seed corpora")
	}
	removeGeneratedSeeds(t, "FuzzInputReader", "gen-duckdb-")
	removeGeneratedSeeds(t, "FuzzReadShard")
	removeGeneratedSeeds(t, "FuzzReadManifest")
	docs := seedDocs(t)
	writeInputSeeds(t, docs)
	t.Run("duckdb", func(t *testing.T) { writeDuckDBInputSeeds(t, docs) })
	writeShardSeeds(t)
	writeManifestSeeds(t)
	for _, target := range []string{"FuzzInputReader", "FuzzReadShard", "FuzzReadManifest"} {
		files, size := corpusSize(t, target)
		t.Logf("%s: %d seed files, %d bytes", target, files, size)
	}
}

// seedDoc is a document of the seed files; nil title or text is null.
type seedDoc struct {
	id          string
	title, text *string
}

// seedDocs returns a few documents: the first Cranfield abstracts cut to a
// few words (or stand-ins without them), then the cases a
// reader must get right (nulls, empty strings, unicode, a long text).
func seedDocs(t *testing.T) []seedDoc {
	var docs []seedDoc
	cut := func(s string, n int) string {
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:min(n, len(s))]
	}
	paths, _ := filepath.Glob(filepath.Join(cranfieldDir, "docs-*.parquet"))
	if len(paths) > 0 {
		plain, err := readEvery(t, paths[0], Columns{}, 6, nil)
		if err != nil {
			t.Fatal(err)
		}
		titles, err := readEvery(t, paths[0], Columns{Text: "title"}, 6, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4 && i < len(plain); i++ {
			docs = append(docs, seedDoc{id: plain[i].Doc.ID, title: ptr(cut(titles[i].Doc.Text, 30)), text: ptr(cut(plain[i].Doc.Text, 80))})
		}
	} else {
		docs = append(docs,
			seedDoc{"1", ptr("experimental investigation of the aerodynamics of a wing"), ptr("an experimental study of a wing in a propeller slipstream")},
			seedDoc{"2", ptr("simple shear flow past a flat plate"), ptr("the boundary layer in simple shear flow past a flat plate")})
	}
	return append(docs,
		seedDoc{"null-title", nil, ptr("no title here")},
		seedDoc{"null-text", ptr("only a title"), nil},
		seedDoc{"", ptr(""), ptr("")},
		seedDoc{"unicode-é北京🙂", ptr("Über naïve café"), ptr("\u00e9\u0301 \u200b\ufeff 日本語 👩\u200d👩\u200d👧")},
		seedDoc{"long", ptr("t"), ptr(strings.Repeat("boundary layer ", 12))},
	)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func parquetGoBytes[T any](t *testing.T, rows []T, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Row types of the parquet-go seeds: each column tag picks an encoding and a
// compression codec.
type (
	seedPlain struct {
		ID    string  `parquet:"id,plain"`
		Title *string `parquet:"title,optional,plain"`
		Text  *string `parquet:"text,optional,plain"`
	}
	seedDict struct {
		ID    string  `parquet:"id,dict,snappy"`
		Title *string `parquet:"title,optional,dict,snappy"`
		Text  *string `parquet:"text,optional,dict,gzip"`
	}
	seedDelta struct {
		ID    string `parquet:"id,delta,zstd"`
		Title string `parquet:"title,delta,zstd"`
		Text  string `parquet:"text,delta,lz4"`
	}
	seedBrotli struct {
		ID    string  `parquet:"id,brotli"`
		Text  *string `parquet:"text,optional,brotli"`
		Title *string `parquet:"title,optional,uncompressed"`
	}
	seedInt64ID struct {
		ID    int64   `parquet:"id,delta"`
		Title *string `parquet:"title,optional"`
		Text  *string `parquet:"text,optional,zstd"`
	}
	seedUint32ID struct {
		ID   uint32  `parquet:"id"`
		Text *string `parquet:"text,optional"`
	}
	seedNullableID struct {
		ID    *string `parquet:"id,optional"`
		Title *string `parquet:"title,optional"`
		Text  *string `parquet:"text,optional"`
	}
	seedEnum struct {
		ID    string `parquet:"id"`
		Title string `parquet:"title,enum"`
		Text  string `parquet:"text,json"`
	}
)

func writeInputSeeds(t *testing.T, docs []seedDoc) {
	const target = "FuzzInputReader"
	var (
		plain  []seedPlain
		dict   []seedDict
		delta  []seedDelta
		brotli []seedBrotli
		i64    []seedInt64ID
		u32    []seedUint32ID
		nullID []seedNullableID
		enum   []seedEnum
	)
	for i, d := range docs {
		plain = append(plain, seedPlain{d.id, d.title, d.text})
		dict = append(dict, seedDict{d.id, d.title, d.text})
		delta = append(delta, seedDelta{d.id, str(d.title), str(d.text)})
		brotli = append(brotli, seedBrotli{d.id, d.text, d.title})
		i64 = append(i64, seedInt64ID{int64(i)*1_000_000_007 - 3, d.title, d.text})
		u32 = append(u32, seedUint32ID{uint32(4_000_000_000 + i), d.text})
		id := &d.id
		if i%3 == 1 {
			id = nil // a row error: skipped with OnRowError
		}
		nullID = append(nullID, seedNullableID{id, d.title, d.text})
		enum = append(enum, seedEnum{d.id, str(d.title), fmt.Sprintf("{\"n\": %d}", i)})
	}
	files := map[string][]byte{
		"gen-pqgo-plain-uncompressed-v1": parquetGoBytes(t, plain, parquet.Compression(&parquet.Uncompressed), parquet.DataPageVersion(1)),
		"gen-pqgo-plain-rg1":             parquetGoBytes(t, plain[:3], parquet.MaxRowsPerRowGroup(1)),
		"gen-pqgo-dict-snappy-gzip-rg4":  parquetGoBytes(t, dict, parquet.MaxRowsPerRowGroup(4)),
		"gen-pqgo-delta-v2-small-pages":  parquetGoBytes(t, delta, parquet.DataPageVersion(2), parquet.PageBufferSize(128)),
		"gen-pqgo-delta-length-v1":       parquetGoBytes(t, plain, parquet.DefaultEncodingFor(parquet.ByteArray, &parquet.DeltaLengthByteArray), parquet.DataPageVersion(1), parquet.Compression(&parquet.Snappy)),
		"gen-pqgo-brotli-stats":          parquetGoBytes(t, brotli, parquet.DataPageStatistics(true), parquet.PageBufferSize(256)),
		"gen-pqgo-int64-id":              parquetGoBytes(t, i64, parquet.MaxRowsPerRowGroup(5)),
		"gen-pqgo-uint32-id-no-title":    parquetGoBytes(t, u32),
		"gen-pqgo-null-ids":              parquetGoBytes(t, nullID, parquet.MaxRowsPerRowGroup(3)),
		"gen-pqgo-enum-json":             parquetGoBytes(t, enum),
		"gen-pqgo-empty":                 parquetGoBytes(t, []seedPlain{}),
		"gen-pqgo-text-is-int":           parquetGoBytes(t, []docBadText{{"a", 1}, {"b", 2}}),
		"gen-pqgo-text-is-list":          parquetGoBytes(t, []docListText{{"a", []string{"x", "y"}}, {"b", nil}}),
		"gen-arrowgo-dict-v1":            arrowGoInput(t, docs, pqparquet.DataPageV1, compress.Codecs.Snappy, true, 3),
		"gen-arrowgo-plain-v2-zstd":      arrowGoInput(t, docs, pqparquet.DataPageV2, compress.Codecs.Zstd, false, 100),
	}
	for name, data := range files {
		writeSeed(t, target, name, data)
	}
	for _, base := range []string{"gen-pqgo-plain-uncompressed-v1", "gen-pqgo-dict-snappy-gzip-rg4", "gen-pqgo-delta-v2-small-pages", "gen-arrowgo-dict-v1"} {
		for how, data := range damage(files[base], uint64(len(base))) {
			writeSeed(t, target, base+"-"+how, data)
		}
	}
	// Footers that lie: a footer length pointing before the start, a huge
	// one, and the magic bytes alone.
	good := files["gen-pqgo-plain-rg1"]
	lie := func(n uint32) []byte {
		c := slices.Clone(good)
		c[len(c)-8], c[len(c)-7], c[len(c)-6], c[len(c)-5] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		return c
	}
	writeSeed(t, target, "gen-footer-length-too-big", lie(uint32(len(good))))
	writeSeed(t, target, "gen-footer-length-huge", lie(0xfffffff0))
	writeSeed(t, target, "gen-magic-only", []byte("PAR1PAR1"))
}

// arrowGoInput writes docs with arrow-go's Parquet writer (not the
// parquet-go the reader uses), with REQUIRED id and nullable title and text.
func arrowGoInput(t *testing.T, docs []seedDoc, version pqparquet.DataPageVersion, codec compress.Compression, dict bool, rowGroup int64) []byte {
	t.Helper()
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "title", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, d := range docs {
		b.Field(0).(*array.StringBuilder).Append(d.id)
		for i, s := range []*string{d.title, d.text} {
			if s == nil {
				b.Field(1 + i).AppendNull()
			} else {
				b.Field(1 + i).(*array.StringBuilder).Append(*s)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	props := pqparquet.NewWriterProperties(pqparquet.WithAllocator(mem), pqparquet.WithMaxRowGroupLength(rowGroup),
		pqparquet.WithDictionaryDefault(dict), pqparquet.WithDataPageVersion(version), pqparquet.WithCompression(codec))
	w, err := pqarrow.NewFileWriter(schema, &buf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeDuckDBInputSeeds writes inputs with DuckDB, the writer of the
// Cranfield shards: optional columns, PLAIN or dictionary pages, small row
// groups, and an extra rn column.
func writeDuckDBInputSeeds(t *testing.T, docs []seedDoc) {
	mod := duckDBModule(t)
	removeGeneratedSeeds(t, "FuzzInputReader", "gen-pqgo-", "gen-arrowgo-", "gen-footer-", "gen-magic-")
	var rows []map[string]any
	for i, d := range docs {
		r := map[string]any{"rn": i, "id": d.id, "title": nil, "text": nil, "n": i * 7}
		if d.title != nil {
			r["title"] = *d.title
		}
		if d.text != nil {
			r["text"] = *d.text
		}
		rows = append(rows, r)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name, columns string
		rowGroup      int
	}{
		{"gen-duckdb-strings-rg4", "rn INTEGER, id VARCHAR, title VARCHAR, text VARCHAR", 4},
		{"gen-duckdb-bigint-id", "rn INTEGER, n BIGINT, id VARCHAR, text VARCHAR", 100},
	} {
		path, _ := writeWithDuckDB(t, mod, dir, c.name, c.columns, c.rowGroup, rows)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, "FuzzInputReader", c.name, data)
		if c.rowGroup == 4 {
			for how, d := range damage(data, 7) {
				if strings.HasPrefix(how, "flip") {
					writeSeed(t, "FuzzInputReader", c.name+"-"+how, d)
				}
			}
		}
	}
}

// shardSeedRows returns n small rows: few terms, so that the seeds stay
// small.
func shardSeedRows(n int) []Row {
	rows := testRows(n, 3)
	for i := range rows {
		k := min(rows[i].Vec.Len(), 3)
		rows[i].Vec.Terms, rows[i].Vec.Weights, rows[i].Vec.Impacts = rows[i].Vec.Terms[:k], rows[i].Vec.Weights[:k], rows[i].Vec.Impacts[:k]
	}
	return rows
}

func writeShardSeeds(t *testing.T) {
	const target = "FuzzReadShard"
	dir := t.TempDir()
	shard := func(name string, format Format, rows []Row, opts WriterOptions) []byte {
		out := writeShard(t, dir, name, format, rows, opts)
		data, err := os.ReadFile(out.Path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	files := map[string][]byte{
		"gen-parquet-3":           shard("p3", FormatParquet, shardSeedRows(3), WriterOptions{}),
		"gen-parquet-empty":       shard("p0", FormatParquet, nil, WriterOptions{}),
		"gen-parquet-5-rg2":       shard("p5", FormatParquet, shardSeedRows(5), WriterOptions{BatchRows: 2, RowGroupRows: 2}),
		"gen-arrow-3":             shard("a3", FormatArrow, shardSeedRows(3), WriterOptions{}),
		"gen-arrow-empty":         shard("a0", FormatArrow, nil, WriterOptions{}),
		"gen-arrow-5-batch2":      shard("a5", FormatArrow, shardSeedRows(5), WriterOptions{BatchRows: 2}),
		"gen-arrow-misaligned":    foreignShard(t, FormatArrow, true),
		"gen-parquet-misaligned":  foreignShard(t, FormatParquet, true),
		"gen-arrow-wrong-schema":  foreignShard(t, FormatArrow, false),
		"gen-parquet-input-file":  parquetGoBytes(t, []seedPlain{{"a", nil, ptr("x")}}),
		"gen-arrow-magic-only":    []byte("ARROW1\x00\x00ARROW1"),
		"gen-parquet-magic-only":  []byte("PAR1\x00\x00\x00\x00PAR1"),
		"gen-arrow-stream-format": arrowStream(t),
		"gen-arrow-zstd":          compressedArrowShard(t, 0),
		"gen-arrow-zstd-1tib":     compressedArrowShard(t, 1<<40),
	}
	for name, data := range files {
		writeSeed(t, target, name, data)
	}
	for _, base := range []string{"gen-parquet-3", "gen-arrow-3"} {
		for how, data := range damage(files[base], uint64(len(base))) {
			writeSeed(t, target, base+"-"+how, data)
		}
	}
}

// foreignShard writes, with arrow-go directly (not the Writer), a shard
// with the schema of an impact shard whose second row has fewer weights than
// terms (misaligned), or a file whose term_ids are strings (not misaligned).
func foreignShard(t *testing.T, format Format, misaligned bool) []byte {
	t.Helper()
	mem := memory.NewGoAllocator()
	schema, err := ArrowSchema(testMetadata())
	if err != nil {
		t.Fatal(err)
	}
	if !misaligned {
		schema = arrow.NewSchema([]arrow.Field{
			{Name: ColDocID, Type: arrow.BinaryTypes.String},
			{Name: ColTermIDs, Type: arrow.BinaryTypes.String},
		}, nil)
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	if misaligned {
		ids := b.Field(0).(*array.StringBuilder)
		terms, weights, impacts := b.Field(1).(*array.ListBuilder), b.Field(2).(*array.ListBuilder), b.Field(3).(*array.ListBuilder)
		for i, n := range []int{2, 3} {
			ids.Append(fmt.Sprint("d", i))
			terms.Append(true)
			weights.Append(true)
			impacts.Append(true)
			for j := 0; j < n; j++ {
				terms.ValueBuilder().(*array.Uint32Builder).Append(uint32(10 * (j + 1)))
				impacts.ValueBuilder().(*array.Uint16Builder).Append(uint16(j + 1))
				if i == 0 || j < n-1 {
					weights.ValueBuilder().(*array.Float32Builder).Append(float32(j+1) / 100)
				}
			}
			b.Field(4).(*array.Int32Builder).Append(7)
			b.Field(5).(*array.BooleanBuilder).Append(false)
		}
	} else {
		b.Field(0).(*array.StringBuilder).Append("d0")
		b.Field(1).(*array.StringBuilder).Append("1 2 3")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	switch format {
	case FormatArrow:
		w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		w, err := pqarrow.NewFileWriter(schema, &buf, pqparquet.NewWriterProperties(pqparquet.WithAllocator(mem)),
			pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// arrowStream is a shard in the Arrow IPC stream format, which is not the
// file format ReadShard reads.
func arrowStream(t *testing.T) []byte {
	t.Helper()
	mem := memory.NewGoAllocator()
	schema, err := ArrowSchema(testMetadata())
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeManifestSeeds(t *testing.T) {
	const target = "FuzzReadManifest"
	dir := t.TempDir()
	created := time.Date(2025, 11, 22, 3, 0, 0, 123456789, time.UTC)
	var real [][]byte
	for i, format := range []Format{FormatParquet, FormatArrow} {
		out := writeShard(t, dir, fmt.Sprint("docs-0000", i), format, shardSeedRows(2), WriterOptions{})
		settings, err := testMetadata().Map()
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			settings = nil
		}
		m := Manifest{
			SplashVersion: "0.1.0",
			Input:         ManifestInput{Path: fmt.Sprintf("in/docs-0000%d.parquet", i), Size: 130642, MTime: created.Add(-time.Hour).In(time.FixedZone("CET", 3600))},
			Settings:      settings,
			Output:        NewManifestOutput(out, format),
			CreatedAt:     created,
		}
		if i == 0 {
			m.Input.SHA256 = strings.Repeat("1f", 32)
		}
		if err := WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, ManifestName(fmt.Sprint("docs-0000", i))))
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, target, fmt.Sprintf("gen-real-%s", format), data)
		real = append(real, data)
	}
	// Broken variants of the first: each breaks one rule of ReadManifest.
	variant := func(name string, edit func(m map[string]any)) {
		c := map[string]any{}
		if err := json.Unmarshal(real[0], &c); err != nil {
			t.Fatal(err)
		}
		edit(c)
		data, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, target, name, data)
	}
	output := func(m map[string]any) map[string]any { return m["output"].(map[string]any) }
	input := func(m map[string]any) map[string]any { return m["input"].(map[string]any) }
	variant("gen-schema-version-2", func(m map[string]any) { m["schema_version"] = 2 })
	variant("gen-no-created-at", func(m map[string]any) { delete(m, "created_at") })
	variant("gen-created-at-not-rfc3339", func(m map[string]any) { m["created_at"] = "22/11/2025 03:00" })
	variant("gen-upper-case-sha", func(m map[string]any) { output(m)["sha256"] = strings.ToUpper(output(m)["sha256"].(string)) })
	variant("gen-output-path-dir", func(m map[string]any) { output(m)["path"] = "sub/docs-00000.parquet" })
	variant("gen-output-format-csv", func(m map[string]any) { output(m)["format"] = "csv" })
	variant("gen-negative-rows", func(m map[string]any) { output(m)["rows"] = -1 })
	variant("gen-size-float", func(m map[string]any) { output(m)["size"] = 1.5 })
	variant("gen-input-no-path", func(m map[string]any) { input(m)["path"] = "" })
	variant("gen-settings-not-strings", func(m map[string]any) { m["settings"] = map[string]any{"splash.top_k": 0} })
	variant("gen-settings-null", func(m map[string]any) { m["settings"] = nil })
	writeSeed(t, target, "gen-trailing-object", append(slices.Clone(real[1]), "{}"...))
	writeSeed(t, target, "gen-bom", append([]byte("\xef\xbb\xbf"), real[1]...))
	writeSeed(t, target, "gen-duplicate-key", bytes.Replace(real[1], []byte(`"schema_version": 1,`), []byte(`"schema_version": 1, "schema_version": 2,`), 1))
	writeSeed(t, target, "gen-invalid-utf8", bytes.Replace(real[1], []byte(`"0.1.0"`), []byte("\"0.1.\xff\""), 1))
	writeSeed(t, target, "gen-huge-number", bytes.Replace(real[1], []byte(`"size": 130642`), []byte(`"size": 1e400`), 1))
	writeSeed(t, target, "gen-deep-nesting", []byte(`{"settings": `+strings.Repeat("[", 2000)+strings.Repeat("]", 2000)+`}`))
	writeSeed(t, target, "gen-cut", real[0][:len(real[0])*2/3])
}

// corpusSize returns the number of seed files of a target and their size.
func corpusSize(t *testing.T, target string) (files int, size int64) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", target))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		files++
		size += info.Size()
	}
	return files, size
}

// compressedArrowShard is an Arrow IPC shard with zstd-compressed buffers
// (the Writer does not compress, other writers may). With claim > 0 the
// decompressed length that prefixes each buffer is replaced by claim: arrow-go
// allocates that length before it decompresses.
func compressedArrowShard(t *testing.T, claim uint64) []byte {
	t.Helper()
	mem := memory.NewGoAllocator()
	schema, err := ArrowSchema(testMetadata())
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, r := range shardSeedRows(2) {
		b.Field(0).(*array.StringBuilder).Append(r.DocID)
		terms, weights, impacts := b.Field(1).(*array.ListBuilder), b.Field(2).(*array.ListBuilder), b.Field(3).(*array.ListBuilder)
		terms.Append(true)
		weights.Append(true)
		impacts.Append(true)
		for i := range r.Vec.Terms {
			terms.ValueBuilder().(*array.Uint32Builder).Append(r.Vec.Terms[i])
			weights.ValueBuilder().(*array.Float32Builder).Append(r.Vec.Weights[i])
			impacts.ValueBuilder().(*array.Uint16Builder).Append(r.Vec.Impacts[i])
		}
		b.Field(4).(*array.Int32Builder).Append(r.NumTokens)
		b.Field(5).(*array.BooleanBuilder).Append(r.Truncated)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem), ipc.WithZstd())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if claim > 0 {
		zstdMagic := []byte{0x28, 0xb5, 0x2f, 0xfd}
		n := 0
		for i := 8; i+4 <= len(data); i++ {
			if bytes.Equal(data[i:i+4], zstdMagic) {
				binary.LittleEndian.PutUint64(data[i-8:], claim)
				n++
			}
		}
		if n == 0 {
			t.Fatal("no zstd frame in the compressed shard")
		}
	}
	return data
}
