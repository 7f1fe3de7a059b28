package shards

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/splash-encode/splash/encode"
)

func testMetadata() Metadata {
	return Metadata{
		SplashVersion:   "0.0.0-test",
		ModelSHA256:     strings.Repeat("ab", 32),
		TokenizerSHA256: strings.Repeat("cd", 32),
		VocabSize:       30522,
		MaxLength:       256,
		Pooling:         "max",
		MinWeight:       0.01,
		TopK:            0,
		Scale:           100,
		SourcePath:      "in/docs-00000.parquet",
		SourceSize:      130642,
		SourceSHA256:    strings.Repeat("ef", 32),
		Extra:           map[string]string{"x.note": "héllo\tworld"},
	}
}

// testRows returns n rows: random sorted vectors with ids beyond 65535, an
// empty document, a truncated one, and unicode ids.
func testRows(n int, seed uint64) []Row {
	rng := rand.New(rand.NewPCG(seed, 1))
	rows := make([]Row, n)
	for i := range rows {
		k := rng.IntN(40)
		if i%10 == 3 {
			k = 0 // empty document
		}
		set := map[uint32]bool{}
		for len(set) < k {
			set[rng.Uint32N(130000)] = true
		}
		v := encode.SparseVec{}
		for t := range set {
			v.Terms = append(v.Terms, t)
		}
		slices.Sort(v.Terms)
		for range v.Terms {
			w := rng.Float32()*3 + 1e-3
			v.Weights = append(v.Weights, w)
			v.Impacts = append(v.Impacts, uint16(math.Round(float64(w)*100)))
		}
		rows[i] = Row{
			DocID:     fmt.Sprintf("doc-%d-é", i),
			Vec:       v,
			NumTokens: int32(2 + rng.IntN(300)),
			Truncated: i%7 == 0,
		}
	}
	return rows
}

func rowsEqual(a, b Row) bool {
	return a.DocID == b.DocID && a.NumTokens == b.NumTokens && a.Truncated == b.Truncated &&
		slices.Equal(a.Vec.Terms, b.Vec.Terms) && slices.Equal(a.Vec.Weights, b.Vec.Weights) &&
		slices.Equal(a.Vec.Impacts, b.Vec.Impacts)
}

// writeShard writes rows with a checked allocator and checks that every
// byte of Arrow memory is released.
func writeShard(t *testing.T, dir, base string, format Format, rows []Row, opts WriterOptions) Committed {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	opts.Allocator = mem
	w, err := NewWriter(dir, base, format, testMetadata(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readShardRows(t *testing.T, path string) []Row {
	t.Helper()
	var got []Row
	if err := ReadShard(path, func(r Row) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestWriterRoundTrip(t *testing.T) {
	for _, format := range []Format{FormatParquet, FormatArrow} {
		for _, n := range []int{0, 1, 57, 2500} {
			t.Run(fmt.Sprintf("%s/%d", format, n), func(t *testing.T) {
				dir := t.TempDir()
				rows := testRows(n, uint64(n))
				out := writeShard(t, dir, "docs-00000", format, rows, WriterOptions{BatchRows: 100, RowGroupRows: 250})
				if want := filepath.Join(dir, "docs-00000"+format.Ext()); out.Path != want {
					t.Errorf("path %s, want %s", out.Path, want)
				}
				if out.Rows != int64(n) {
					t.Errorf("rows %d, want %d", out.Rows, n)
				}
				sum, size, err := FileSHA256(out.Path)
				if err != nil {
					t.Fatal(err)
				}
				if sum != out.SHA256 || size != out.Size {
					t.Errorf("Commit says %d bytes %s, file has %d bytes %s", out.Size, out.SHA256, size, sum)
				}
				got := readShardRows(t, out.Path)
				if len(got) != n {
					t.Fatalf("read %d rows, want %d", len(got), n)
				}
				for i := range rows {
					if !rowsEqual(got[i], rows[i]) {
						t.Fatalf("row %d: got %+v, want %+v", i, got[i], rows[i])
					}
					if got[i].Vec.Terms == nil || got[i].Vec.Weights == nil || got[i].Vec.Impacts == nil {
						t.Fatalf("row %d: a list read back as null", i)
					}
				}
				nrows, err := ShardRows(out.Path)
				if err != nil || nrows != int64(n) {
					t.Errorf("ShardRows = %d, %v; want %d", nrows, err, n)
				}
				kv, err := ShardMetadata(out.Path)
				if err != nil {
					t.Fatal(err)
				}
				if kv[MetaSchemaVersion] != "1" || kv[MetaScale] != "100" || kv[MetaMinWeight] != "0.01" || kv["x.note"] != "héllo\tworld" {
					t.Errorf("metadata %v", kv)
				}
				if _, ok := kv[arrowSchemaKey]; ok {
					t.Error("ShardMetadata includes the serialized Arrow schema")
				}
				m, err := ParseMetadata(kv)
				if err != nil {
					t.Fatal(err)
				}
				want := testMetadata()
				if m.SplashVersion != want.SplashVersion || m.ModelSHA256 != want.ModelSHA256 ||
					m.TokenizerSHA256 != want.TokenizerSHA256 || m.VocabSize != want.VocabSize ||
					m.MaxLength != want.MaxLength || m.Pooling != want.Pooling || m.MinWeight != want.MinWeight ||
					m.TopK != want.TopK || m.Scale != want.Scale || m.SourcePath != want.SourcePath ||
					m.SourceSize != want.SourceSize || m.SourceSHA256 != want.SourceSHA256 ||
					len(m.Extra) != 1 || m.Extra["x.note"] != want.Extra["x.note"] {
					t.Errorf("ParseMetadata = %+v, want %+v", m, want)
				}
				entries, _ := os.ReadDir(dir)
				if len(entries) != 1 {
					t.Errorf("directory holds %d entries, want only the shard", len(entries))
				}
			})
		}
	}
}

// TestReadShardCheckedAllocator reads a shard of each format with a checked
// allocator: the readers release what they allocate.
func TestReadShardCheckedAllocator(t *testing.T) {
	dir := t.TempDir()
	rows := testRows(300, 9)
	for _, format := range []Format{FormatParquet, FormatArrow} {
		out := writeShard(t, dir, "s-"+format.String(), format, rows, WriterOptions{BatchRows: 64})
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		n := 0
		if err := readShard(out.Path, mem, func(r Row) error {
			if !rowsEqual(r, rows[n]) {
				return fmt.Errorf("row %d differs", n)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != len(rows) {
			t.Fatalf("%s: %d rows", format, n)
		}
		mem.AssertSize(t, 0)
	}
}

func TestReadShardStopsOnCallbackError(t *testing.T) {
	dir := t.TempDir()
	out := writeShard(t, dir, "s", FormatParquet, testRows(50, 1), WriterOptions{})
	stop := errors.New("stop")
	n := 0
	err := ReadShard(out.Path, func(Row) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("ReadShard = %v after %d rows, want the callback's error after 1", err, n)
	}
}

func TestReadShardErrors(t *testing.T) {
	dir := t.TempDir()
	out := writeShard(t, dir, "s", FormatParquet, testRows(20, 2), WriterOptions{})
	good, err := os.ReadFile(out.Path)
	if err != nil {
		t.Fatal(err)
	}
	outA := writeShard(t, dir, "a", FormatArrow, testRows(20, 2), WriterOptions{})
	goodA, err := os.ReadFile(outA.Path)
	if err != nil {
		t.Fatal(err)
	}
	// A Parquet file of documents is not an impact shard.
	docs := filepath.Join(dir, "docs.parquet")
	writeParquet(t, docs, []docRequired{{"a", "x"}})
	cases := map[string][]byte{
		"text":           []byte("hello world"),
		"truncated":      good[:len(good)/2],
		"arrow trunc":    goodA[:len(goodA)-20],
		"parquet footer": good[:len(good)-1],
	}
	paths := []string{docs}
	for name, data := range cases {
		p := filepath.Join(dir, "_bad_"+strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for _, p := range paths {
		err := ReadShard(p, func(Row) error { return nil })
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("ReadShard(%s) = %v, want an error naming the file", p, err)
		}
	}
}

func TestWriterRejectsBadRows(t *testing.T) {
	dir := t.TempDir()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w, err := NewWriter(dir, "s", FormatParquet, Metadata{}, WriterOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	bad := []Row{
		{DocID: "unsorted", Vec: encode.SparseVec{Terms: []uint32{5, 3}, Weights: []float32{1, 1}, Impacts: []uint16{1, 1}}},
		{DocID: "dup", Vec: encode.SparseVec{Terms: []uint32{3, 3}, Weights: []float32{1, 1}, Impacts: []uint16{1, 1}}},
		{DocID: "misaligned", Vec: encode.SparseVec{Terms: []uint32{1, 2}, Weights: []float32{1}, Impacts: []uint16{1, 1}}},
		{DocID: "no impacts", Vec: encode.SparseVec{Terms: []uint32{1}, Weights: []float32{1}}},
		{DocID: "zero", Vec: encode.SparseVec{Terms: []uint32{1}, Weights: []float32{0}, Impacts: []uint16{0}}},
		{DocID: "nan", Vec: encode.SparseVec{Terms: []uint32{1}, Weights: []float32{float32(math.NaN())}, Impacts: []uint16{0}}},
		{DocID: "inf", Vec: encode.SparseVec{Terms: []uint32{1}, Weights: []float32{float32(math.Inf(1))}, Impacts: []uint16{0}}},
		{DocID: "neg tokens", NumTokens: -1},
		{DocID: "bad \xff utf8"},
	}
	for _, r := range bad {
		if err := w.Write(r); err == nil {
			t.Errorf("Write(%q) accepted a bad row", r.DocID)
		}
	}
	// The writer is still usable.
	if err := w.Write(Row{DocID: "ok"}); err != nil {
		t.Fatal(err)
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	got := readShardRows(t, out.Path)
	if len(got) != 1 || got[0].DocID != "ok" || len(got[0].Vec.Terms) != 0 {
		t.Errorf("read back %+v", got)
	}
}

func TestWriterNames(t *testing.T) {
	dir := t.TempDir()
	for _, base := range []string{"", "_x", ".x", "a/b", `a\b`} {
		if w, err := NewWriter(dir, base, FormatParquet, Metadata{}, WriterOptions{}); err == nil {
			w.Abort()
			t.Errorf("NewWriter accepted base %q", base)
		}
	}
	if _, err := NewWriter(dir, "x", Format(7), Metadata{}, WriterOptions{}); err == nil {
		t.Error("NewWriter accepted format 7")
	}
	if _, err := NewWriter(dir, "x", FormatArrow, Metadata{Extra: map[string]string{MetaScale: "1"}}, WriterOptions{}); err == nil {
		t.Error("NewWriter accepted an Extra key that overrides a fixed one")
	}
	if _, err := NewWriter(filepath.Join(dir, "absent"), "x", FormatArrow, Metadata{}, WriterOptions{}); err == nil {
		t.Error("NewWriter accepted a missing directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed NewWriter calls left %d files", len(entries))
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCommitProtocol(t *testing.T) {
	for _, format := range []Format{FormatParquet, FormatArrow} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			final := filepath.Join(dir, "docs-00001"+format.Ext())

			// While writing, and when never committed, only a temp name exists.
			w, err := NewWriter(dir, "docs-00001", format, testMetadata(), WriterOptions{BatchRows: 10, Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range testRows(95, 3) {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			names := dirNames(t, dir)
			if len(names) != 1 || !IsTempName(names[0]) || !strings.HasPrefix(names[0], "_tmp.") {
				t.Fatalf("while writing the directory holds %v, want one _tmp. name", names)
			}
			if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("final name exists before Commit: %v", err)
			}
			// Abort removes the temp file; nothing has the final name.
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("after Abort the directory holds %v", names)
			}
			if err := w.Write(Row{DocID: "x"}); !errors.Is(err, ErrClosed) {
				t.Errorf("Write after Abort: %v", err)
			}
			if _, err := w.Commit(); !errors.Is(err, ErrClosed) {
				t.Errorf("Commit after Abort: %v", err)
			}

			// Commit: final name only, sha256 and size match the file.
			w, err = NewWriter(dir, "docs-00001", format, testMetadata(), WriterOptions{BatchRows: 10, Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range testRows(95, 3) {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			out, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{filepath.Base(final)}) {
				t.Fatalf("after Commit the directory holds %v", names)
			}
			sum, size, err := FileSHA256(final)
			if err != nil {
				t.Fatal(err)
			}
			if out.SHA256 != sum || out.Size != size || out.Rows != 95 || out.Path != final {
				t.Errorf("Output %+v; file %d bytes %s", out, size, sum)
			}
			if st, err := os.Stat(final); err != nil || st.Mode().Perm() != outputPerm {
				t.Errorf("mode of the output: %v %v", st.Mode(), err)
			}
			// Abort after Commit does nothing; a second Commit fails.
			if err := w.Abort(); err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(final); err != nil {
				t.Errorf("Abort after Commit removed the output: %v", err)
			}
			if _, err := w.Commit(); !errors.Is(err, ErrClosed) {
				t.Errorf("second Commit: %v", err)
			}

			// NoClobber: the first writer wins, the second leaves no trace.
			w2, err := NewWriter(dir, "docs-00001", format, testMetadata(), WriterOptions{NoClobber: true, Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			w2.Write(Row{DocID: "other"})
			if _, err := w2.Commit(); !errors.Is(err, ErrExists) {
				t.Errorf("NoClobber Commit over an existing shard: %v", err)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{filepath.Base(final)}) {
				t.Fatalf("after a lost race the directory holds %v", names)
			}
			if sum2, _, _ := FileSHA256(final); sum2 != sum {
				t.Error("the losing writer changed the output")
			}
			// Without NoClobber a re-run replaces the output.
			out3 := writeShard(t, dir, "docs-00001", format, testRows(3, 4), WriterOptions{})
			if out3.SHA256 == sum || len(readShardRows(t, final)) != 3 {
				t.Error("Commit did not replace the previous output")
			}
		})
	}
}

// duckDBModule finds the npm package @duckdb/node-api (see nodeModule).
func duckDBModule(t *testing.T) string {
	t.Helper()
	return nodeModule(t, "@duckdb/node-api", "the independent DuckDB check")
}

const duckDBScript = `
const { DuckDBInstance } = require(process.env.DUCKDB_MODULE);
(async () => {
  const file = "'" + process.argv[2].replaceAll("'", "''") + "'";
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  const rows = await con.runAndReadAll(
    "SELECT doc_id, term_ids, weights, impacts, num_tokens, truncated FROM read_parquet(" + file +
    ", file_row_number = true) ORDER BY file_row_number");
  const types = await con.runAndReadAll("DESCRIBE SELECT * FROM read_parquet(" + file + ")");
  const meta = await con.runAndReadAll(
    "SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(" + file + ") WHERE decode(key) LIKE 'splash.%'");
  process.stdout.write(JSON.stringify({
    rows: rows.getRowObjectsJson(),
    types: types.getRowObjectsJson().map(r => [r.column_name, r.column_type]),
    meta: meta.getRowObjectsJson(),
  }));
})().catch(e => { console.error(e); process.exit(1); });
`

// TestParquetReadByDuckDB reads a written shard with DuckDB, an independent
// Parquet reader, and compares every value.
func TestParquetReadByDuckDB(t *testing.T) {
	mod := duckDBModule(t)
	dir := t.TempDir()
	rows := testRows(300, 5)
	out := writeShard(t, dir, "docs", FormatParquet, rows, WriterOptions{BatchRows: 64, RowGroupRows: 128})
	script := filepath.Join(dir, "_read.cjs")
	if err := os.WriteFile(script, []byte(duckDBScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, out.Path)
	cmd.Env = append(os.Environ(), "DUCKDB_MODULE="+mod)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var res struct {
		Rows []struct {
			DocID     string    `json:"doc_id"`
			TermIDs   []uint32  `json:"term_ids"`
			Weights   []float64 `json:"weights"`
			Impacts   []uint16  `json:"impacts"`
			NumTokens int32     `json:"num_tokens"`
			Truncated bool      `json:"truncated"`
		} `json:"rows"`
		Types [][2]string `json:"types"`
		Meta  []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("%v: %.300s", err, stdout)
	}
	wantTypes := [][2]string{
		{"doc_id", "VARCHAR"}, {"term_ids", "UINTEGER[]"}, {"weights", "FLOAT[]"},
		{"impacts", "USMALLINT[]"}, {"num_tokens", "INTEGER"}, {"truncated", "BOOLEAN"},
	}
	if !slices.Equal(res.Types, wantTypes) {
		t.Errorf("DuckDB types %v, want %v", res.Types, wantTypes)
	}
	if len(res.Rows) != len(rows) {
		t.Fatalf("DuckDB read %d rows, want %d", len(res.Rows), len(rows))
	}
	for i, r := range res.Rows {
		w := rows[i]
		weights := make([]float32, len(r.Weights))
		for j, x := range r.Weights {
			weights[j] = float32(x)
		}
		got := Row{DocID: r.DocID, Vec: encode.SparseVec{Terms: r.TermIDs, Weights: weights, Impacts: r.Impacts}, NumTokens: r.NumTokens, Truncated: r.Truncated}
		if !rowsEqual(got, w) {
			t.Fatalf("row %d: DuckDB read %+v, want %+v", i, got, w)
		}
		if r.TermIDs == nil || r.Weights == nil || r.Impacts == nil {
			t.Fatalf("row %d: DuckDB read a null list", i)
		}
	}
	meta := map[string]string{}
	for _, kv := range res.Meta {
		meta[kv.Key] = kv.Value
	}
	if meta[MetaSchemaVersion] != "1" || meta[MetaModelSHA256] != testMetadata().ModelSHA256 {
		t.Errorf("DuckDB metadata %v", meta)
	}
}
