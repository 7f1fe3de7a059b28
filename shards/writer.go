package shards

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/splash-encode/splash/encode"
)

// Format is the file format of an impact shard.
type Format int

const (
	// FormatParquet is Parquet with zstd compression and the Arrow schema
	// stored in the file (the default).
	FormatParquet Format = iota
	// FormatArrow is an Arrow IPC file (uncompressed, readable by every
	// Arrow implementation).
	FormatArrow
)

// String returns "parquet" or "arrow", the spelling used in flags and manifests.
func (f Format) String() string {
	switch f {
	case FormatParquet:
		return "parquet"
	case FormatArrow:
		return "arrow"
	default:
		return fmt.Sprintf("Format(%d)", int(f))
	}
}

// Ext returns the file name extension of the format, with its dot.
func (f Format) Ext() string {
	switch f {
	case FormatArrow:
		return ".arrow"
	default:
		return ".parquet"
	}
}

// ParseFormat parses "parquet" or "arrow".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "parquet":
		return FormatParquet, nil
	case "arrow":
		return FormatArrow, nil
	default:
		return 0, fmt.Errorf("unknown output format %q: want parquet or arrow", s)
	}
}

// Row is one document of an impact shard. Vec's three slices must have the
// same length (nil counts as empty), its terms strictly ascending and its
// weights finite and > 0. An empty document has empty slices and is written
// as empty, non-null lists.
type Row struct {
	DocID     string
	Vec       encode.SparseVec
	NumTokens int32
	Truncated bool
	// NumWindows is the number of windows the model saw (--long-docs
	// window); written only by a Writer with WriterOptions.NumWindows, and
	// read back as 0 from shards without that column.
	NumWindows int32
}

// Default writer settings.
const (
	DefaultBatchRows    = 1024
	DefaultRowGroupRows = 16384
)

// WriterOptions tune a Writer. The zero value is usable.
type WriterOptions struct {
	// BatchRows is the number of rows per Arrow record batch (default 1024).
	BatchRows int
	// RowGroupRows is the number of rows per Parquet row group (default
	// 16384). A row group is buffered in memory, encoded and compressed,
	// until it is full.
	RowGroupRows int64
	// Allocator allocates Arrow memory (default memory.DefaultAllocator).
	Allocator memory.Allocator
	// NoClobber makes Commit fail with ErrExists, leaving the existing file
	// alone, when the final name is taken: of two workers writing the same
	// shard, the first to commit wins. Without it Commit replaces the file.
	NoClobber bool
	// NumWindows adds the optional num_windows column (Row.NumWindows).
	NumWindows bool

	// wrapFile, set only by this package's tests, wraps the temp file's
	// writer (to inject write failures such as a full disk).
	wrapFile func(io.Writer) io.Writer
}

// Committed describes a committed impact shard.
type Committed struct {
	Path   string // outDir/<base><ext>
	Rows   int64
	Size   int64  // bytes
	SHA256 string // lower-case hex
}

// Writer writes one impact shard. It writes to a temp file in the output
// directory whose name starts with "_tmp."; only Commit gives the file its
// final name. A Writer is not safe for concurrent use.
type Writer struct {
	dir, name, path string
	root            *os.Root // dir: the temp file is created, renamed and removed through it
	format          Format
	opts            WriterOptions
	schema          *arrow.Schema

	f   *os.File
	bw  *bufio.Writer
	hw  *hashWriter
	rb  *array.RecordBuilder
	pq  *pqarrow.FileWriter
	ipc *ipc.FileWriter

	docID                   *array.StringBuilder
	terms, weights, impacts *array.ListBuilder
	termVals                *array.Uint32Builder
	weightVals              *array.Float32Builder
	impactVals              *array.Uint16Builder
	numTokens               *array.Int32Builder
	truncated               *array.BooleanBuilder
	numWindows              *array.Int32Builder // nil without the column
	pending                 int                 // rows in the builders
	rows                    int64               // rows accepted
	err                     error               // sticky write failure
	done                    bool                // committed or aborted
}

// NewWriter starts the impact shard outDir/<base><format.Ext()>. base is a
// file name without extension; it must not start with "_" or "." (those are
// sidecar and hidden names) nor contain a path separator. outDir must exist.
func NewWriter(outDir, base string, format Format, meta Metadata, opts WriterOptions) (*Writer, error) {
	if format != FormatParquet && format != FormatArrow {
		return nil, fmt.Errorf("new writer: unknown format %v", format)
	}
	if err := checkBase(base); err != nil {
		return nil, fmt.Errorf("new writer: %w", err)
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = DefaultRowGroupRows
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	name := base + format.Ext()
	schemaOf := ArrowSchema
	if opts.NumWindows {
		schemaOf = arrowSchemaWithWindows
	}
	schema, err := schemaOf(meta)
	if err != nil {
		return nil, fmt.Errorf("new writer %s: %w", filepath.Join(outDir, name), err)
	}
	w := &Writer{dir: outDir, name: name, path: filepath.Join(outDir, name), format: format, opts: opts, schema: schema}
	if w.root, err = openRoot(outDir); err != nil {
		return nil, fmt.Errorf("new writer %s: %w", w.path, err)
	}
	if w.f, err = createTempIn(w.root, name); err != nil {
		w.root.Close()
		return nil, fmt.Errorf("new writer: %w", err)
	}
	var sink io.Writer = w.f
	if opts.wrapFile != nil {
		sink = opts.wrapFile(w.f)
	}
	w.bw = bufio.NewWriterSize(sink, 1<<20)
	w.hw = newHashWriter(w.bw)
	mem := opts.Allocator
	switch format {
	case FormatParquet:
		props := parquet.NewWriterProperties(
			parquet.WithAllocator(mem),
			parquet.WithCompression(compress.Codecs.Zstd),
			parquet.WithMaxRowGroupLength(opts.RowGroupRows),
			parquet.WithDictionaryFor(ColDocID, false), // ids are unique
		)
		arrProps := pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem))
		w.pq, err = pqarrow.NewFileWriter(schema, w.hw, props, arrProps)
	case FormatArrow:
		w.ipc, err = ipc.NewFileWriter(w.hw, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	}
	if err != nil {
		w.f.Close()
		removeTempIn(w.root, w.f)
		w.root.Close()
		return nil, fmt.Errorf("new writer %s: %w", w.path, err)
	}
	w.rb = array.NewRecordBuilder(mem, schema)
	w.docID = w.rb.Field(0).(*array.StringBuilder)
	w.terms = w.rb.Field(1).(*array.ListBuilder)
	w.weights = w.rb.Field(2).(*array.ListBuilder)
	w.impacts = w.rb.Field(3).(*array.ListBuilder)
	w.numTokens = w.rb.Field(4).(*array.Int32Builder)
	w.truncated = w.rb.Field(5).(*array.BooleanBuilder)
	if opts.NumWindows {
		w.numWindows = w.rb.Field(6).(*array.Int32Builder)
	}
	w.termVals = w.terms.ValueBuilder().(*array.Uint32Builder)
	w.weightVals = w.weights.ValueBuilder().(*array.Float32Builder)
	w.impactVals = w.impacts.ValueBuilder().(*array.Uint16Builder)
	return w, nil
}

func checkBase(base string) error {
	switch {
	case base == "":
		return errors.New("empty output base name")
	case strings.HasPrefix(base, "_") || strings.HasPrefix(base, "."):
		return fmt.Errorf("output base name %q starts with %q (reserved for sidecar and hidden files)", base, base[:1])
	case strings.ContainsAny(base, "/\\\x00"):
		return fmt.Errorf("output base name %q contains a path separator or NUL", base)
	}
	return nil
}

// Path is the final name of the shard (it exists only after Commit).
func (w *Writer) Path() string { return w.path }

// Rows is the number of rows written so far.
func (w *Writer) Rows() int64 { return w.rows }

// Write appends a row. An invalid row is refused with an error and leaves
// the writer usable; a failure to write the file is final (Abort then).
func (w *Writer) Write(row Row) error {
	if w.done {
		return fmt.Errorf("write %s: %w", w.path, ErrClosed)
	}
	if w.err != nil {
		return w.err
	}
	if err := checkRow(row); err != nil {
		return fmt.Errorf("write %s: row %d (doc %q): %w", w.path, w.rows, row.DocID, err)
	}
	w.docID.Append(row.DocID)
	w.terms.Append(true)
	w.termVals.AppendValues(row.Vec.Terms, nil)
	w.weights.Append(true)
	w.weightVals.AppendValues(row.Vec.Weights, nil)
	w.impacts.Append(true)
	w.impactVals.AppendValues(row.Vec.Impacts, nil)
	w.numTokens.Append(row.NumTokens)
	w.truncated.Append(row.Truncated)
	if w.numWindows != nil {
		w.numWindows.Append(row.NumWindows)
	}
	w.pending++
	w.rows++
	if w.pending >= w.opts.BatchRows {
		if err := w.flush(); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

func checkRow(row Row) error {
	v := row.Vec
	if len(v.Weights) != len(v.Terms) || len(v.Impacts) != len(v.Terms) {
		return fmt.Errorf("%d terms, %d weights, %d impacts: want aligned lists", len(v.Terms), len(v.Weights), len(v.Impacts))
	}
	for i, t := range v.Terms {
		if i > 0 && t <= v.Terms[i-1] {
			return fmt.Errorf("term ids not strictly ascending at %d: %d after %d", i, t, v.Terms[i-1])
		}
		if w := v.Weights[i]; !(w > 0) || math.IsInf(float64(w), 1) {
			return fmt.Errorf("term %d has weight %v, want finite and > 0", t, w)
		}
	}
	if row.NumTokens < 0 {
		return fmt.Errorf("num_tokens %d < 0", row.NumTokens)
	}
	if row.NumWindows < 0 {
		return fmt.Errorf("num_windows %d < 0", row.NumWindows)
	}
	if !utf8.ValidString(row.DocID) {
		return errors.New("doc id is not valid UTF-8")
	}
	return nil
}

// flush writes the pending rows as one record batch.
func (w *Writer) flush() error {
	if w.pending == 0 {
		return nil
	}
	rec := w.rb.NewRecordBatch()
	defer rec.Release()
	w.pending = 0
	var err error
	switch w.format {
	case FormatParquet:
		err = w.pq.WriteBuffered(rec)
	case FormatArrow:
		err = w.ipc.Write(rec)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// closeFormat writes the format's footer.
func (w *Writer) closeFormat() error {
	var err error
	switch w.format {
	case FormatParquet:
		err = w.pq.Close()
	case FormatArrow:
		err = w.ipc.Close()
	}
	return err
}

// Commit finishes the shard: it writes the pending rows and the footer,
// fsyncs the temp file, renames it to its final name, fsyncs the directory,
// and returns the output's size and sha256 (of the bytes written). On error
// the temp file is removed and nothing has the final name (unless another
// writer committed it). The Writer cannot be used afterwards.
func (w *Writer) Commit() (Committed, error) {
	if w.done {
		return Committed{}, fmt.Errorf("commit %s: %w", w.path, ErrClosed)
	}
	w.done = true
	defer w.rb.Release()
	defer w.root.Close()
	err := w.err
	if err == nil {
		err = w.flush()
	}
	closeErr := w.closeFormat() // always: it releases the format writer's memory
	if err == nil && closeErr != nil {
		err = fmt.Errorf("commit %s: %w", w.path, closeErr)
	}
	if err == nil {
		if ferr := w.bw.Flush(); ferr != nil {
			err = fmt.Errorf("commit %s: %w", w.path, ferr)
		}
	}
	if err != nil {
		w.f.Close()
		removeTempIn(w.root, w.f)
		return Committed{}, err
	}
	if err := commitTempIn(w.root, w.f, w.name, w.opts.NoClobber); err != nil {
		return Committed{}, err
	}
	return Committed{Path: w.path, Rows: w.rows, Size: w.hw.n, SHA256: w.hw.sum()}, nil
}

// Abort discards the shard: it releases memory and removes the temp file.
// It is safe to call after Commit (then it does nothing) and more than once,
// so `defer w.Abort()` right after NewWriter is the intended use.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.rb.Release()
	_ = w.closeFormat() // releases memory; the bytes go to a file about to be removed
	w.f.Close()
	defer w.root.Close()
	if err := removeTempIn(w.root, w.f); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("abort %s: %w", w.path, err)
	}
	return nil
}
