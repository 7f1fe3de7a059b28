package shards

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// arrowSchemaKey is where pqarrow stores the serialized Arrow schema; it is
// an implementation detail, left out of ShardMetadata.
const arrowSchemaKey = "ARROW:schema"

// readBatchRows is the record batch size when reading Parquet shards.
const readBatchRows = 4096

// ReadShard reads an impact shard, Parquet or Arrow IPC (told apart by their
// magic bytes, not by the name), and calls fn for each row in order. It stops
// at the first error; an error returned by fn is returned as it is. Row
// slices are fresh for every row: fn may keep them.
func ReadShard(path string, fn func(Row) error) error {
	return readShard(path, memory.DefaultAllocator, fn)
}

// ReadDocIDs calls fn with the doc_id of every row of an impact shard, in
// order. From Parquet it reads only that column's pages.
func ReadDocIDs(path string, fn func(id string) error) error {
	sf, err := openShard(path, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	defer sf.close()
	var leaves []int
	if sf.format == FormatParquet {
		i := sf.pq.MetaData().Schema.ColumnIndexByName(ColDocID)
		if i < 0 {
			return fmt.Errorf("read %s: %w: no %s column", path, ErrInvalidShard, ColDocID)
		}
		leaves = []int{i}
	}
	return sf.eachRecordOf(leaves, func(rec arrow.RecordBatch) error {
		idx := rec.Schema().FieldIndices(ColDocID)
		if len(idx) != 1 {
			return fmt.Errorf("read %s: %w: no single %s column", path, ErrInvalidShard, ColDocID)
		}
		ids, ok := rec.Column(idx[0]).(*array.String)
		if !ok {
			return fmt.Errorf("read %s: %w: %s is %s, want utf8", path, ErrInvalidShard, ColDocID, rec.Column(idx[0]).DataType())
		}
		for i := 0; i < ids.Len(); i++ {
			if ids.IsNull(i) {
				return fmt.Errorf("read %s: %w: null %s", path, ErrInvalidShard, ColDocID)
			}
			if err := fn(strings.Clone(ids.Value(i))); err != nil { // Value aliases the record buffer
				return err
			}
		}
		return nil
	})
}

// ShardMetadata returns the key-value metadata of an impact shard (the
// Parquet file metadata, or the Arrow IPC schema metadata), without the
// serialized Arrow schema that Parquet files also carry.
func ShardMetadata(path string) (map[string]string, error) {
	sf, err := openShard(path, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	defer sf.close()
	return sf.metadata(), nil
}

// ShardRows returns the number of rows of an impact shard. For Parquet it
// reads the footer only; for Arrow IPC it reads every record batch.
func ShardRows(path string) (int64, error) {
	sf, err := openShard(path, memory.DefaultAllocator)
	if err != nil {
		return 0, err
	}
	defer sf.close()
	return sf.numRows()
}

func readShard(path string, mem memory.Allocator, fn func(Row) error) error {
	sf, err := openShard(path, mem)
	if err != nil {
		return err
	}
	defer sf.close()
	var cols shardColumns
	first := true
	return sf.eachRecord(func(rec arrow.RecordBatch) error {
		var rows []Row
		err := safely(ErrInvalidShard, func() error {
			if first {
				first = false
				var err error
				if cols, err = findShardColumns(rec.Schema()); err != nil {
					return err
				}
			}
			var err error
			rows, err = decodeRows(rec, cols)
			return err
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// shardFile is an open impact shard of either format.
type shardFile struct {
	path   string
	format Format
	f      *os.File
	pq     *file.Reader
	ipc    *ipc.FileReader
	mem    memory.Allocator
}

func openShard(path string, mem memory.Allocator) (*shardFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return newShardFile(path, f, mem)
}

// openShardIn opens the shard dir/name inside dir (see openInDir): a
// symbolic link leading out of dir is refused with ErrUnsafePath.
func openShardIn(dir, name string, mem memory.Allocator) (*shardFile, error) {
	path := filepath.Join(dir, name)
	f, err := openInDir(dir, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return newShardFile(path, f, mem)
}

// newShardFile reads the header of the open file f (closed on error).
func newShardFile(path string, f *os.File, mem memory.Allocator) (*shardFile, error) {
	sf := &shardFile{path: path, f: f, mem: mem}
	var magic [6]byte
	n, err := io.ReadFull(f, magic[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	switch {
	case n >= 4 && string(magic[:4]) == "PAR1":
		sf.format = FormatParquet
	case n == 6 && string(magic[:]) == "ARROW1":
		sf.format = FormatArrow
	default:
		f.Close()
		return nil, fmt.Errorf("read %s: %w: neither a Parquet nor an Arrow IPC file", path, ErrInvalidShard)
	}
	err = safely(ErrInvalidShard, func() error {
		var err error
		switch sf.format {
		case FormatParquet:
			sf.pq, err = file.NewParquetReader(f, file.WithReadProps(parquet.NewReaderProperties(mem)))
		case FormatArrow:
			// arrow-go trusts the lengths in the file: see checkArrowFile.
			var st os.FileInfo
			if st, err = f.Stat(); err != nil {
				return err
			}
			if err = checkArrowFile(f, st.Size()); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidShard, err)
			}
			sf.mem = newLimitedAllocator(mem, st.Size())
			sf.ipc, err = ipc.NewFileReader(f, ipc.WithAllocator(sf.mem))
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidShard, err)
		}
		return nil
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return sf, nil
}

func (sf *shardFile) close() {
	if sf.ipc != nil {
		sf.ipc.Close()
	}
	sf.f.Close() // the Parquet reader's Close would close it too
}

func (sf *shardFile) metadata() map[string]string {
	out := map[string]string{}
	switch sf.format {
	case FormatParquet:
		kv := sf.pq.MetaData().KeyValueMetadata()
		keys, values := kv.Keys(), kv.Values()
		for i := range keys {
			if keys[i] != arrowSchemaKey {
				out[keys[i]] = values[i]
			}
		}
	case FormatArrow:
		md := sf.ipc.Schema().Metadata()
		for i, k := range md.Keys() {
			out[k] = md.Values()[i]
		}
	}
	return out
}

func (sf *shardFile) numRows() (int64, error) {
	if sf.format == FormatParquet {
		return sf.pq.NumRows(), nil
	}
	var n int64
	err := sf.eachRecord(func(rec arrow.RecordBatch) error {
		n += rec.NumRows()
		return nil
	})
	return n, err
}

// eachRecord calls fn for every record batch; reads are panic-safe, fn is
// called outside the recovery (it runs the caller's code).
func (sf *shardFile) eachRecord(fn func(arrow.RecordBatch) error) error {
	return sf.eachRecordOf(nil, fn)
}

// eachRecordOf is eachRecord reading, from a Parquet shard, only the given
// leaf columns (nil: all); Arrow IPC record batches always hold them all.
func (sf *shardFile) eachRecordOf(leaves []int, fn func(arrow.RecordBatch) error) error {
	wrap := func(err error) error { return fmt.Errorf("read %s: %w", sf.path, err) }
	switch sf.format {
	case FormatArrow:
		n := sf.ipc.NumRecords()
		for i := 0; i < n; i++ {
			var rec arrow.RecordBatch
			err := safely(ErrInvalidShard, func() error {
				var err error
				if rec, err = sf.ipc.RecordBatchAt(i); err != nil {
					return fmt.Errorf("%w: record batch %d: %w", ErrInvalidShard, i, err)
				}
				return nil
			})
			if err != nil {
				return wrap(err)
			}
			err = fn(rec)
			rec.Release()
			if err != nil {
				return err
			}
		}
		return nil
	default:
		var rr pqarrow.RecordReader
		err := safely(ErrInvalidShard, func() error {
			fr, err := pqarrow.NewFileReader(sf.pq, pqarrow.ArrowReadProperties{BatchSize: readBatchRows}, sf.mem)
			if err == nil {
				rr, err = fr.GetRecordReader(context.Background(), leaves, nil)
			}
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidShard, err)
			}
			return nil
		})
		if err != nil {
			return wrap(err)
		}
		defer rr.Release()
		for {
			var rec arrow.RecordBatch
			err := safely(ErrInvalidShard, func() error {
				if rr.Next() {
					rec = rr.RecordBatch()
					return nil
				}
				if err := rr.Err(); err != nil && err != io.EOF {
					return fmt.Errorf("%w: %w", ErrInvalidShard, err)
				}
				return nil
			})
			if err != nil {
				return wrap(err)
			}
			if rec == nil {
				return nil
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
}

// shardColumns are the column indexes of an impact shard's fields.
type shardColumns struct {
	docID, terms, weights, impacts, numTokens, truncated int
	numWindows                                           int // -1: no such column
}

func findShardColumns(s *arrow.Schema) (shardColumns, error) {
	find := func(name string, ok func(arrow.DataType) bool, want string) (int, error) {
		idx := s.FieldIndices(name)
		if len(idx) != 1 {
			return 0, fmt.Errorf("%w: %d columns named %q, want 1", ErrInvalidShard, len(idx), name)
		}
		if t := s.Field(idx[0]).Type; !ok(t) {
			return 0, fmt.Errorf("%w: column %q has type %s, want %s", ErrInvalidShard, name, t, want)
		}
		return idx[0], nil
	}
	is := func(id arrow.Type) func(arrow.DataType) bool {
		return func(t arrow.DataType) bool { return t.ID() == id }
	}
	listOf := func(id arrow.Type) func(arrow.DataType) bool {
		return func(t arrow.DataType) bool {
			lt, ok := t.(*arrow.ListType)
			return ok && lt.Elem().ID() == id
		}
	}
	var c shardColumns
	var err error
	if c.docID, err = find(ColDocID, is(arrow.STRING), "string"); err != nil {
		return c, err
	}
	if c.terms, err = find(ColTermIDs, listOf(arrow.UINT32), "list<uint32>"); err != nil {
		return c, err
	}
	if c.weights, err = find(ColWeights, listOf(arrow.FLOAT32), "list<float32>"); err != nil {
		return c, err
	}
	if c.impacts, err = find(ColImpacts, listOf(arrow.UINT16), "list<uint16>"); err != nil {
		return c, err
	}
	if c.numTokens, err = find(ColNumTokens, is(arrow.INT32), "int32"); err != nil {
		return c, err
	}
	if c.truncated, err = find(ColTruncated, is(arrow.BOOL), "bool"); err != nil {
		return c, err
	}
	c.numWindows = -1
	if len(s.FieldIndices(ColNumWindows)) > 0 {
		if c.numWindows, err = find(ColNumWindows, is(arrow.INT32), "int32"); err != nil {
			return c, err
		}
	}
	return c, nil
}

// decodeRows copies the rows of rec out of Arrow memory.
func decodeRows(rec arrow.RecordBatch, c shardColumns) ([]Row, error) {
	ids := rec.Column(c.docID).(*array.String)
	terms := rec.Column(c.terms).(*array.List)
	weights := rec.Column(c.weights).(*array.List)
	impacts := rec.Column(c.impacts).(*array.List)
	numTokens := rec.Column(c.numTokens).(*array.Int32)
	truncated := rec.Column(c.truncated).(*array.Boolean)
	var numWindows *array.Int32
	if c.numWindows >= 0 {
		numWindows = rec.Column(c.numWindows).(*array.Int32)
	}
	termVals := terms.ListValues().(*array.Uint32).Uint32Values()
	weightVals := weights.ListValues().(*array.Float32).Float32Values()
	impactVals := impacts.ListValues().(*array.Uint16).Uint16Values()

	n := int(rec.NumRows())
	rows := make([]Row, n)
	for i := 0; i < n; i++ {
		if ids.IsNull(i) {
			return nil, fmt.Errorf("%w: row %d: null %s", ErrInvalidShard, i, ColDocID)
		}
		if terms.IsNull(i) {
			return nil, fmt.Errorf("%w: row %d: null %s", ErrInvalidShard, i, ColTermIDs)
		}
		r := Row{DocID: ids.Value(i)}
		var err error
		if r.Vec.Terms, err = listSlice(terms, termVals, i); err != nil {
			return nil, fmt.Errorf("%w: row %d: %s: %w", ErrInvalidShard, i, ColTermIDs, err)
		}
		if r.Vec.Weights, err = listSlice(weights, weightVals, i); err != nil {
			return nil, fmt.Errorf("%w: row %d: %s: %w", ErrInvalidShard, i, ColWeights, err)
		}
		if r.Vec.Impacts, err = listSlice(impacts, impactVals, i); err != nil {
			return nil, fmt.Errorf("%w: row %d: %s: %w", ErrInvalidShard, i, ColImpacts, err)
		}
		if numTokens.IsValid(i) {
			r.NumTokens = numTokens.Value(i)
		}
		if truncated.IsValid(i) {
			r.Truncated = truncated.Value(i)
		}
		if numWindows != nil && numWindows.IsValid(i) {
			r.NumWindows = numWindows.Value(i)
		}
		// What the Writer refuses is refused here too: callers index
		// weights and impacts by the position of a term (design.md §5).
		if err := checkRow(r); err != nil {
			return nil, fmt.Errorf("%w: row %d: %w", ErrInvalidShard, i, err)
		}
		rows[i] = r
	}
	return rows, nil
}

// listSlice copies list i of l (nil when null; empty, non-nil when empty).
func listSlice[T uint32 | float32 | uint16](l *array.List, vals []T, i int) ([]T, error) {
	if l.IsNull(i) {
		return nil, nil
	}
	start, end := l.ValueOffsets(i)
	if start < 0 || end < start || end > int64(len(vals)) {
		return nil, fmt.Errorf("list offsets [%d, %d) outside %d values", start, end, len(vals))
	}
	return append(make([]T, 0, end-start), vals[start:end]...), nil
}
