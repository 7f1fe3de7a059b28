package shards

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/splash-encode/splash/encode"
)

// Default input column names.
const (
	DefaultIDColumn   = "id"
	DefaultTextColumn = "text"
)

// Columns names the input columns to read. Empty ID and Text take the
// defaults "id" and "text"; an empty Title means the input has no title.
type Columns struct {
	ID, Text, Title string
}

func (c Columns) withDefaults() Columns {
	if c.ID == "" {
		c.ID = DefaultIDColumn
	}
	if c.Text == "" {
		c.Text = DefaultTextColumn
	}
	return c
}

// InputDoc is one input document with its row index in the file (from 0)
// and, in a text input, its line number (from 1; 0 in Parquet).
type InputDoc struct {
	Row      int64
	RowGroup int
	Line     int64
	Doc      encode.Doc
}

// DocReader streams the documents of one input: an InputReader (Parquet)
// or a TextReader (JSON Lines, TSV).
type DocReader interface {
	// Next returns the next documents, at most n, or io.EOF after the last.
	Next(ctx context.Context, n int) ([]InputDoc, error)
	// NumRows is the number of rows (lines of a text input) to expect.
	NumRows() int64
	// OnRowError installs the handler of bad rows (see InputReader.OnRowError).
	OnRowError(handler func(*RowError) error)
	// Close releases the input.
	Close() error
}

// InputReader streams documents from one Parquet file, row group by row group,
// reading only the pages of the id, text and title column chunks. It is not
// safe for concurrent use.
type InputReader struct {
	path      string
	file      *os.File // nil when the reader was given an io.ReaderAt
	pf        *parquet.File
	id        column
	text      column
	title     column // index < 0 when there is no title column
	rowGroups []parquet.RowGroup
	numRows   int64

	rg      int           // current row group
	rgRows  int64         // rows in the current row group
	rgDone  int64         // rows of the current row group already returned
	rowBase int64         // file row index of the current group's first row
	cursors []*pageCursor // id, text[, title] of the current group; nil between groups

	onRowError func(*RowError) error
	err        error // sticky: after a failure every Next returns it
	closed     bool
}

type valueKind int

const (
	kindString valueKind = iota
	kindSigned
	kindUnsigned
)

type column struct {
	name  string
	index int // leaf column index; -1 when not used
	kind  valueKind
}

// OpenInput opens a Parquet file of documents. It reads only the footer and
// checks that the id and text columns (and the title column when cols.Title
// is set) exist with usable types: the id a string (BYTE_ARRAY) or an integer
// (INT32/INT64, returned as decimal strings), text and title strings.
// Errors wrap ErrInvalidInput when the file itself is unusable.
func OpenInput(path string, cols Columns) (*InputReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open input %s: %w", path, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("open input %s: %w: is a directory", path, ErrInvalidInput)
	}
	r, err := openInput(f, st.Size(), path, cols)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.file = f
	return r, nil
}

// openInput opens a Parquet file from ra; path is used in messages only.
func openInput(ra io.ReaderAt, size int64, path string, cols Columns) (*InputReader, error) {
	cols = cols.withDefaults()
	var pf *parquet.File
	err := safely(ErrInvalidInput, func() error {
		if err := checkFooterLength(ra, size); err != nil {
			return err
		}
		var err error
		pf, err = parquet.OpenFile(ra, size,
			parquet.SkipPageIndex(true),
			parquet.SkipBloomFilters(true),
			parquet.FileReadMode(parquet.ReadModeSync), // panics stay on this goroutine
		)
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrInvalidInput) {
			err = classify(fmt.Errorf("not a readable Parquet file: %w", err))
		}
		return nil, fmt.Errorf("open input %s: %w", path, err)
	}
	r := &InputReader{path: path, pf: pf, title: column{index: -1}}
	err = safely(ErrInvalidInput, func() error {
		var err error
		if r.id, err = lookupColumn(pf, cols.ID, true); err != nil {
			return err
		}
		if r.text, err = lookupColumn(pf, cols.Text, false); err != nil {
			return err
		}
		if cols.Title != "" {
			if r.title, err = lookupColumn(pf, cols.Title, false); err != nil {
				return err
			}
		}
		r.rowGroups = pf.RowGroups()
		r.numRows = pf.NumRows()
		var sum int64
		for i, rg := range r.rowGroups {
			n := rg.NumRows()
			if n < 0 {
				return fmt.Errorf("%w: row group %d has %d rows", ErrInvalidInput, i, n)
			}
			sum += n
		}
		if sum != r.numRows {
			return fmt.Errorf("%w: row groups hold %d rows, footer says %d", ErrInvalidInput, sum, r.numRows)
		}
		return r.checkPages(ra, size)
	})
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", path, err)
	}
	return r, nil
}

// checkPages checks the page headers of the column chunks the reader will
// read (see checkChunkPages) before parquet-go trusts them.
func (r *InputReader) checkPages(ra io.ReaderAt, size int64) error {
	groups := r.pf.Metadata().RowGroups
	if len(groups) != len(r.rowGroups) {
		return fmt.Errorf("%w: footer lists %d row groups, the reader %d", ErrInvalidInput, len(groups), len(r.rowGroups))
	}
	for g := range groups {
		for _, c := range []column{r.id, r.text, r.title} {
			if c.index < 0 {
				continue
			}
			chunks := groups[g].Columns
			if c.index >= len(chunks) {
				return fmt.Errorf("%w: row group %d: column %q: row group has %d column chunks", ErrInvalidInput, g, c.name, len(chunks))
			}
			if err := checkChunkPages(ra, size, &chunks[c.index].MetaData); err != nil {
				return fmt.Errorf("row group %d, column %q: %w", g, c.name, err)
			}
		}
	}
	return nil
}

// lookupColumn finds a top-level leaf column and checks its type.
func lookupColumn(pf *parquet.File, name string, isID bool) (column, error) {
	col := pf.Root().Column(name)
	if col == nil {
		return column{}, fmt.Errorf("%w: no column %q (the file has: %s)", ErrInvalidInput, name, columnNames(pf))
	}
	if !col.Leaf() {
		return column{}, fmt.Errorf("%w: column %q is a group, want a string%s", ErrInvalidInput, name, orInteger(isID))
	}
	if col.Repeated() {
		return column{}, fmt.Errorf("%w: column %q is repeated, want a single string%s", ErrInvalidInput, name, orInteger(isID))
	}
	typ := col.Type()
	c := column{name: name, index: col.Index()}
	switch typ.Kind() {
	case parquet.ByteArray:
		if isStringType(typ) {
			c.kind = kindString
			return c, nil
		}
	case parquet.Int32, parquet.Int64:
		if isID {
			if signed, ok := integerSignedness(typ); ok {
				c.kind = kindUnsigned
				if signed {
					c.kind = kindSigned
				}
				return c, nil
			}
		}
	}
	return column{}, fmt.Errorf("%w: column %q has type %s, want a string%s", ErrInvalidInput, name, describeType(typ), orInteger(isID))
}

func orInteger(isID bool) string {
	if isID {
		return " or an integer"
	}
	return ""
}

func columnNames(pf *parquet.File) string {
	var names []string
	for _, c := range pf.Root().Columns() {
		names = append(names, strconv.Quote(c.Name()))
	}
	if len(names) == 0 {
		return "no columns"
	}
	return strings.Join(names, ", ")
}

func describeType(t parquet.Type) string {
	s := t.Kind().String()
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		s += " (" + lt.String() + ")"
	} else if ct := t.ConvertedType(); ct != nil {
		s += fmt.Sprintf(" (converted type %d)", int32(*ct))
	}
	return s
}

// isStringType accepts a BYTE_ARRAY annotated as STRING, ENUM or JSON, or not
// annotated at all (many writers store text as plain binary).
func isStringType(t parquet.Type) bool {
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		switch lt.Value.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return true
		}
		return false
	}
	if ct := t.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.UTF8, deprecated.Enum, deprecated.Json:
			return true
		}
		return false
	}
	return true
}

// integerSignedness reports whether an INT32/INT64 column holds signed or
// unsigned integers; ok is false for other annotations (decimal, date, time...).
func integerSignedness(t parquet.Type) (signed, ok bool) {
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		if it, isInt := lt.Value.(*format.IntType); isInt {
			return it.IsSigned, true
		}
		return false, false
	}
	if ct := t.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.Int8, deprecated.Int16, deprecated.Int32, deprecated.Int64:
			return true, true
		case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32, deprecated.Uint64:
			return false, true
		}
		return false, false
	}
	return true, true
}

// NumRows is the number of rows in the file, from its footer.
func (r *InputReader) NumRows() int64 { return r.numRows }

// NumRowGroups is the number of row groups in the file.
func (r *InputReader) NumRowGroups() int { return len(r.rowGroups) }

// Path is the file name given to OpenInput.
func (r *InputReader) Path() string { return r.path }

// OnRowError installs a handler for per-row problems (a null or empty id,
// a null text with no title: see RowError.Code). Without one,
// or when the handler returns a non-nil error, Next fails with that error and
// the reader stops. When the handler returns nil the row is skipped (for a
// dead-letter queue) and reading goes on.
func (r *InputReader) OnRowError(handler func(*RowError) error) { r.onRowError = handler }

// Next returns the next documents, at most n, in file order, or io.EOF after
// the last one. A batch may span row groups. With a title column the text is
// title + " " + text (just one of them when the other is null or empty).
// Rows with a null or empty id, or a null text and no title, go to the
// OnRowError handler. After an error other than io.EOF the reader is
// unusable. Next checks ctx between reads.
func (r *InputReader) Next(ctx context.Context, n int) ([]InputDoc, error) {
	if r.closed {
		return nil, fmt.Errorf("read %s: %w", r.path, ErrClosed)
	}
	if r.err != nil {
		return nil, r.err
	}
	if n <= 0 {
		return nil, fmt.Errorf("read %s: batch size %d, want > 0", r.path, n)
	}
	docs, err := r.next(ctx, n)
	if err != nil {
		r.err = err
		r.releaseCursors()
		return nil, err
	}
	if len(docs) == 0 {
		return nil, io.EOF
	}
	return docs, nil
}

func (r *InputReader) next(ctx context.Context, n int) ([]InputDoc, error) {
	docs := make([]InputDoc, 0, max(0, min(int64(n), r.numRows-r.rowBase-r.rgDone)))
	for len(docs) < n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.cursors == nil {
			if r.rg >= len(r.rowGroups) {
				break
			}
			if err := r.openRowGroup(); err != nil {
				return nil, err
			}
		}
		k := min(int64(n-len(docs)), r.rgRows-r.rgDone)
		if k > 0 {
			var err error
			if docs, err = r.readRows(docs, int(k)); err != nil {
				return nil, err
			}
		}
		if r.rgDone == r.rgRows {
			r.releaseCursors()
			r.rowBase += r.rgRows
			r.rgRows, r.rgDone = 0, 0
			r.rg++
		}
	}
	return docs, nil
}

func (r *InputReader) openRowGroup() error {
	rg := r.rowGroups[r.rg]
	r.rgRows, r.rgDone = rg.NumRows(), 0
	cols := []*column{&r.id, &r.text}
	if r.title.index >= 0 {
		cols = append(cols, &r.title)
	}
	return r.wrap(0, 0, "", safely(ErrInvalidInput, func() error {
		chunks := rg.ColumnChunks()
		r.cursors = make([]*pageCursor, 0, len(cols))
		for _, c := range cols {
			if c.index < 0 || c.index >= len(chunks) {
				return fmt.Errorf("%w: column %q: row group has %d column chunks", ErrInvalidInput, c.name, len(chunks))
			}
			r.cursors = append(r.cursors, &pageCursor{col: c, pages: chunks[c.index].Pages()})
		}
		return nil
	}))
}

func (r *InputReader) releaseCursors() {
	for _, c := range r.cursors {
		c.close()
	}
	r.cursors = nil
}

// readRows reads k rows of the current row group and appends them to docs.
func (r *InputReader) readRows(docs []InputDoc, k int) ([]InputDoc, error) {
	for _, c := range r.cursors {
		err := safely(ErrInvalidInput, func() error { return c.read(k) })
		if err != nil {
			return nil, r.wrap(r.rowBase+r.rgDone, int64(k), c.col.name, err)
		}
	}
	ids, texts := r.cursors[0], r.cursors[1]
	var titles *pageCursor
	if len(r.cursors) > 2 {
		titles = r.cursors[2]
	}
	for i := 0; i < k; i++ {
		row := r.rowBase + r.rgDone + int64(i)
		var rerr *RowError
		id := ids.strs[i]
		text := texts.strs[i]
		switch {
		case ids.nulls[i]:
			rerr = &RowError{Column: r.id.name, Code: RejectNullID, Reason: "null id"}
		case id == "":
			rerr = &RowError{Column: r.id.name, Code: RejectEmptyID, Reason: "empty id", ID: &id}
		case titles != nil:
			if texts.nulls[i] && titles.strs[i] == "" {
				rerr = &RowError{Column: r.text.name, Code: RejectNullText, Reason: "null text and no title", ID: &id}
			}
			text = joinTitle(titles.strs[i], text)
		case texts.nulls[i]:
			rerr = &RowError{Column: r.text.name, Code: RejectNullText, Reason: "null text", ID: &id}
		}
		if rerr != nil {
			rerr.Path, rerr.RowGroup, rerr.Row = r.path, r.rg, row
			if r.onRowError == nil {
				return nil, rerr
			}
			if err := r.onRowError(rerr); err != nil {
				return nil, err
			}
			continue
		}
		docs = append(docs, InputDoc{Row: row, RowGroup: r.rg, Doc: encode.Doc{ID: id, Text: text}})
	}
	r.rgDone += int64(k)
	return docs, nil
}

// wrap adds the file, row group, and where known the rows [first, first+n)
// (n > 0) and the column to err.
func (r *InputReader) wrap(first, n int64, col string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("row group %d", r.rg)
	switch {
	case n == 1:
		where += fmt.Sprintf(", row %d", first)
	case n > 1:
		where += fmt.Sprintf(", rows %d-%d", first, first+n-1)
	}
	if col != "" {
		where += fmt.Sprintf(", column %q", col)
	}
	return fmt.Errorf("read %s: %s: %w", r.path, where, classify(err))
}

// classify marks err as ErrInvalidInput unless it already is, or is an
// error of the operating system (a syscall.Errno such as EIO), which may be
// transient. Errors of the Parquet decoder, reads past the end and the like
// mean a corrupt or truncated file.
func classify(err error) error {
	var errno syscall.Errno
	if errors.Is(err, ErrInvalidInput) || errors.As(err, &errno) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidInput, err)
}

// valueString converts a non-null value of a column of the given kind. The
// result never aliases parquet-go's page buffers.
func valueString(v parquet.Value, kind valueKind) string {
	switch kind {
	case kindSigned:
		if v.Kind() == parquet.Int32 {
			return strconv.FormatInt(int64(v.Int32()), 10)
		}
		return strconv.FormatInt(v.Int64(), 10)
	case kindUnsigned:
		if v.Kind() == parquet.Int32 {
			return strconv.FormatUint(uint64(uint32(v.Int32())), 10)
		}
		return strconv.FormatUint(uint64(v.Int64()), 10)
	default:
		return string(v.ByteArray())
	}
}

func joinTitle(title, text string) string {
	switch {
	case title == "":
		return text
	case text == "":
		return title
	default:
		return title + " " + text
	}
}

// Close releases the file. It is safe to call more than once.
func (r *InputReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.releaseCursors()
	if r.file != nil {
		if err := r.file.Close(); err != nil {
			return fmt.Errorf("close input %s: %w", r.path, err)
		}
	}
	return nil
}

// pageCursor reads the values of one flat column chunk page by page.
type pageCursor struct {
	col    *column
	pages  parquet.Pages
	values parquet.ValueReader // of the current page; nil before the first
	buf    []parquet.Value
	strs   []string // the last read: values as strings ("" for null)
	nulls  []bool   // the last read: which values were null
}

// read reads the next k values (one per row: the column is flat, so nulls
// are values too) into c.strs and c.nulls. Values are converted to strings
// before the next page is read, so nothing points into page buffers.
func (c *pageCursor) read(k int) error {
	c.strs = slices.Grow(c.strs[:0], k)[:k]
	c.nulls = slices.Grow(c.nulls[:0], k)[:k]
	if len(c.buf) == 0 {
		c.buf = make([]parquet.Value, 256)
	}
	got := 0
	for got < k {
		if c.values == nil {
			page, err := c.pages.ReadPage()
			if err == io.EOF {
				return fmt.Errorf("%w: column chunk ends after %d values of the read (%w)", ErrInvalidInput, got, io.ErrUnexpectedEOF)
			}
			if err != nil {
				return err
			}
			if page.Column() != c.col.index {
				return fmt.Errorf("%w: page of column %d in the chunk of column %d", ErrInvalidInput, page.Column(), c.col.index)
			}
			c.values = page.Values()
		}
		want := min(k-got, len(c.buf))
		m, err := c.values.ReadValues(c.buf[:want])
		if m < 0 || m > want {
			return fmt.Errorf("%w: page reader returned %d values", ErrInvalidInput, m)
		}
		for i, v := range c.buf[:m] {
			if v.IsNull() {
				c.strs[got+i], c.nulls[got+i] = "", true
			} else {
				c.strs[got+i], c.nulls[got+i] = valueString(v, c.col.kind), false
			}
		}
		clear(c.buf[:m])
		got += m
		if err == io.EOF {
			c.values = nil
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			return fmt.Errorf("%w: page reader made no progress", ErrInvalidInput)
		}
	}
	return nil
}

func (c *pageCursor) close() {
	if c.pages != nil {
		_ = c.pages.Close()
		c.pages = nil
	}
}
