package shards

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/splash-encode/splash/encode"
)

// Text inputs: JSON Lines (BEIR's corpus.jsonl, Pyserini's JsonCollection)
// and tab-separated values (MS MARCO's collection.tsv), plain or gzipped.

// TextKind is the format of a text input.
type TextKind int

const (
	TextJSONL TextKind = iota + 1 // one JSON object per line
	TextTSV                       // tab-separated fields, one document per line
)

// textExts are the extensions of text inputs, longest first.
var textExts = []struct {
	ext  string
	kind TextKind
	gz   bool
}{
	{".jsonl.gz", TextJSONL, true},
	{".tsv.gz", TextTSV, true},
	{".jsonl", TextJSONL, false},
	{".tsv", TextTSV, false},
}

// TextInputKind tells from a file name whether it is a text input, of what
// kind, and whether it is gzipped. Everything else is read as Parquet.
func TextInputKind(name string) (kind TextKind, gz, ok bool) {
	lower := strings.ToLower(name)
	for _, e := range textExts {
		if strings.HasSuffix(lower, e.ext) && len(name) > len(e.ext) {
			return e.kind, e.gz, true
		}
	}
	return 0, false, false
}

// isInputName reports whether a file name has the extension of an input
// that a directory listing takes: *.parquet or a text input.
func isInputName(name string) bool {
	if strings.HasSuffix(name, InputExt) {
		return true
	}
	_, _, ok := TextInputKind(name)
	return ok
}

// MaxLineBytes bounds one line of a text input. A longer line is a bad row
// (reason "invalid_line"), skipped without being held in memory.
const MaxLineBytes = 64 << 20

// Reason codes of text inputs (besides the Reject* codes of Parquet rows).
const (
	RejectInvalidLine  = "invalid_line"  // not a JSON object, wrong number of TSV fields, or too long
	RejectInvalidField = "invalid_field" // the id, text or title has a type that cannot be used
)

// Field names recognised by default in text inputs: with the default
// --id-column ("id") a line's "id" is used, else BEIR's "_id"; with the
// default --text-column ("text") its "text", else Pyserini's "contents";
// without --title-column its "title" when it has one (BEIR). A name given
// explicitly is the only one looked for.
var (
	defaultIDFields    = []string{DefaultIDColumn, "_id"}
	defaultTextFields  = []string{DefaultTextColumn, "contents"}
	defaultTitleFields = []string{"title"}
)

// fieldNames returns the names a text input looks up for cols.
func fieldNames(cols Columns) (id, text, title []string) {
	id, text, title = []string{cols.ID}, []string{cols.Text}, []string{cols.Title}
	if cols.ID == "" || cols.ID == DefaultIDColumn {
		id = defaultIDFields
	}
	if cols.Text == "" || cols.Text == DefaultTextColumn {
		text = defaultTextFields
	}
	if cols.Title == "" {
		title = defaultTitleFields
	}
	return id, text, title
}

// textScan is what one pass over a whole text input found: its sha256 (of
// the bytes as stored, compressed or not), and for each part boundary the
// number of lines that start before it.
type textScan struct {
	sha256 string
	size   int64 // bytes as stored
	// linesBefore[k] is the number of lines starting before the k-th
	// boundary given to scanText; the last entry is the number of lines.
	linesBefore []int64
}

// scanText reads r (a whole text input) once: it hashes it and counts the
// lines that start before each of bounds (ascending byte offsets of the
// stored file; nil for a gzipped input, whose lines are counted after
// decompression). A line starts at offset 0 and after every "\n" that is
// not the last byte.
func scanText(ctx context.Context, r io.Reader, gz bool, bounds []int64) (textScan, error) {
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(r, h)}
	var src io.Reader = counted
	var zr *gzip.Reader
	if gz {
		var err error
		if zr, err = gzip.NewReader(counted); err != nil {
			return textScan{}, fmt.Errorf("%w: not a readable gzip file: %w", ErrInvalidInput, err)
		}
		src = zr
	}
	buf := make([]byte, 1<<20)
	var pos, newlines int64 // bytes seen; "\n" among them
	last := byte('\n')      // the byte before pos ("\n" at the start: a line starts there)
	var before []int64
	next := 0
	for {
		if err := ctx.Err(); err != nil {
			return textScan{}, err
		}
		n, err := src.Read(buf)
		chunk := buf[:n]
		// A boundary b counts the line starts at offsets < b: one at 0 (when
		// b > 0) plus one after every "\n" before offset b-1.
		for next < len(bounds) && bounds[next]-1 < pos+int64(n) {
			b := bounds[next]
			switch {
			case b <= 0:
				before = append(before, 0)
			default:
				before = append(before, 1+newlines+int64(bytes.Count(chunk[:b-1-pos], []byte{'\n'})))
			}
			next++
		}
		newlines += int64(bytes.Count(chunk, []byte{'\n'}))
		if n > 0 {
			last = chunk[n-1]
		}
		pos += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if gz {
				return textScan{}, fmt.Errorf("%w: gzip data at compressed byte %d: %w", ErrInvalidInput, counted.n, err)
			}
			return textScan{}, err
		}
	}
	if gz {
		// Drain what the gzip reader left unread (trailing padding) so the
		// hash covers the whole file.
		if _, err := io.Copy(io.Discard, counted); err != nil {
			return textScan{}, err
		}
	}
	lines := newlines
	if pos > 0 && last != '\n' {
		lines++ // the last line has no "\n"
	}
	for ; next < len(bounds); next++ { // boundaries at or past the end
		before = append(before, lines)
	}
	before = append(before, lines)
	return textScan{sha256: hex.EncodeToString(h.Sum(nil)), size: counted.n, linesBefore: before}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// textPartSpec is what a TextReader reads: the lines of a text input that
// start at stored byte offsets [start, end), the first being the file's
// line firstLine (from 0), lines of them.
type textPartSpec struct {
	path       string // for messages and records
	kind       TextKind
	gz         bool
	start, end int64
	firstLine  int64
	lines      int64
}

// textOpener opens a text input at a byte offset of the stored file (for
// a gzipped one only at 0): from that offset to the end.
type textOpener func(ctx context.Context, offset int64) (io.ReadCloser, error)

// TextReader streams the documents of a text input (or of one part of it),
// line by line, with bounded memory. It is the text counterpart of
// InputReader and, like it, not safe for concurrent use.
type TextReader struct {
	spec               textPartSpec
	cols               Columns
	idF, textF, titleF []string

	rc      io.ReadCloser
	br      *bufio.Reader
	pos     int64 // stored offset of the next line (plain files only)
	line    int64 // index of the next line in the file, from 0
	header  []string
	tsvCols [3]int // id, text, title field indexes in a TSV with a header; title -1 when none

	onRowError func(*RowError) error
	err        error
	closed     bool
	eof        bool
}

// openText opens a reader of spec. A TSV's first line decides whether it
// has a header: it has one when it names the id column (by default "id" or
// "_id"); then the columns are found by name, otherwise every line must be
// "id<TAB>text". Parts after the first read the header from the file's
// start.
func openText(ctx context.Context, open textOpener, spec textPartSpec, cols Columns) (*TextReader, error) {
	r := &TextReader{spec: spec, cols: cols, line: spec.firstLine, pos: spec.start}
	r.idF, r.textF, r.titleF = fieldNames(cols)
	if spec.kind == TextTSV {
		if err := r.readHeader(ctx, open); err != nil {
			return nil, err
		}
	}
	at := spec.start
	if at > 0 {
		at-- // the byte before the part tells whether a line starts at start
	}
	rc, err := open(ctx, at)
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", spec.path, err)
	}
	var src io.Reader = rc
	if spec.gz {
		zr, err := gzip.NewReader(rc)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("open input %s: %w: not a readable gzip file: %w", spec.path, ErrInvalidInput, err)
		}
		src = zr
	}
	r.rc, r.br = rc, bufio.NewReaderSize(src, 1<<16)
	if spec.start > 0 {
		// Skip to the first line starting at or after start: the rest of the
		// line that holds byte start-1 (just that "\n" when one ends there).
		n, err := r.discardLine()
		if err != nil && !errors.Is(err, io.EOF) {
			r.Close()
			return nil, fmt.Errorf("open input %s: %w", spec.path, err)
		}
		r.pos = at + n
	}
	if spec.kind == TextTSV && r.header != nil && r.line == 0 {
		// The header is the file's first line, not a document.
		n, err := r.discardLine()
		if err != nil && !errors.Is(err, io.EOF) {
			r.Close()
			return nil, fmt.Errorf("open input %s: %w", spec.path, err)
		}
		r.pos += n
		r.line++
	}
	return r, nil
}

// readHeader reads a TSV's first line and decides whether it is a header.
func (r *TextReader) readHeader(ctx context.Context, open textOpener) error {
	rc, err := open(ctx, 0)
	if err != nil {
		return fmt.Errorf("open input %s: %w", r.spec.path, err)
	}
	defer rc.Close()
	var src io.Reader = rc
	if r.spec.gz {
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return fmt.Errorf("open input %s: %w: not a readable gzip file: %w", r.spec.path, ErrInvalidInput, err)
		}
		src = zr
	}
	first, err := bufio.NewReaderSize(src, 1<<16).ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("open input %s: %w", r.spec.path, err)
	}
	fields := strings.Split(strings.TrimRight(string(first), "\r\n"), "\t")
	find := func(names []string) int {
		for _, n := range names {
			for i, f := range fields {
				if f == n {
					return i
				}
			}
		}
		return -1
	}
	id := find(r.idF)
	explicit := (r.cols.ID != "" && r.cols.ID != DefaultIDColumn) || (r.cols.Text != "" && r.cols.Text != DefaultTextColumn) || r.cols.Title != ""
	if id < 0 {
		if explicit {
			return fmt.Errorf("open input %s: %w: --id-column, --text-column or --title-column name TSV columns, but the first line is not a header naming %s (a TSV without a header is read as id<TAB>text)",
				r.spec.path, ErrInvalidInput, strings.Join(quoteAll(r.idF), " or "))
		}
		r.tsvCols = [3]int{0, 1, -1}
		return nil
	}
	text := find(r.textF)
	if text < 0 {
		return fmt.Errorf("open input %s: %w: the header line names no text column (looked for %s; found %s)",
			r.spec.path, ErrInvalidInput, strings.Join(quoteAll(r.textF), ", "), strings.Join(quoteAll(fields), ", "))
	}
	title := find(r.titleF)
	if r.cols.Title != "" && title < 0 {
		return fmt.Errorf("open input %s: %w: the header line has no title column %q (found %s)",
			r.spec.path, ErrInvalidInput, r.cols.Title, strings.Join(quoteAll(fields), ", "))
	}
	r.header = fields
	r.tsvCols = [3]int{id, text, title}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// discardLine skips the rest of the current line, "\n" included, and
// returns the bytes skipped.
func (r *TextReader) discardLine() (int64, error) {
	var n int64
	for {
		b, err := r.br.ReadSlice('\n')
		n += int64(len(b))
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return n, err
	}
}

// readLine returns the next line without its "\n" (and "\r"), the stored
// offset where it starts, and whether it was longer than MaxLineBytes (then
// the line is skipped and not returned). io.EOF after the last line.
func (r *TextReader) readLine(buf []byte) (line []byte, start int64, tooLong bool, err error) {
	start = r.pos
	buf = buf[:0]
	var n int64
	for {
		b, err := r.br.ReadSlice('\n')
		n += int64(len(b))
		if !tooLong {
			if len(buf)+len(b) > MaxLineBytes {
				tooLong, buf = true, buf[:0]
			} else {
				buf = append(buf, b...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		r.pos += n
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, start, false, err
		}
		if n == 0 {
			return nil, start, false, io.EOF
		}
		buf = bytes.TrimSuffix(buf, []byte{'\n'})
		buf = bytes.TrimSuffix(buf, []byte{'\r'})
		return buf, start, tooLong, nil
	}
}

// NumRows is the number of lines of the input (or part), blank ones and
// a TSV's header included: a bound for progress.
func (r *TextReader) NumRows() int64 { return r.spec.lines }

// Path is the input's name.
func (r *TextReader) Path() string { return r.spec.path }

// OnRowError installs the handler of bad lines, as InputReader.OnRowError.
func (r *TextReader) OnRowError(handler func(*RowError) error) { r.onRowError = handler }

// Next returns the next documents, at most n, in file order, or io.EOF
// after the last one. Blank lines are skipped. Bytes that are not UTF-8
// are read as in Parquet inputs (the tokenizer sees U+FFFD). A line that is not a JSON
// object (JSON Lines), has the wrong number of fields (TSV), is longer than
// MaxLineBytes, or has a null, empty or mistyped id or text goes to the
// OnRowError handler with its line number. Row is the line's index in the
// file, from 0 (its line number minus one).
func (r *TextReader) Next(ctx context.Context, n int) ([]InputDoc, error) {
	if r.closed {
		return nil, fmt.Errorf("read %s: %w", r.spec.path, ErrClosed)
	}
	if r.err != nil {
		return nil, r.err
	}
	if n <= 0 {
		return nil, fmt.Errorf("read %s: batch size %d, want > 0", r.spec.path, n)
	}
	docs, err := r.next(ctx, n)
	if err != nil {
		r.err = err
		return nil, err
	}
	if len(docs) == 0 {
		return nil, io.EOF
	}
	return docs, nil
}

func (r *TextReader) next(ctx context.Context, n int) ([]InputDoc, error) {
	var docs []InputDoc
	var buf []byte
	for len(docs) < n && !r.eof {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !r.spec.gz && r.pos >= r.spec.end {
			r.eof = true
			break
		}
		line, _, tooLong, err := r.readLine(buf)
		if errors.Is(err, io.EOF) {
			r.eof = true
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: line %d: %w", r.spec.path, r.line+1, err)
		}
		buf = line
		row := r.line
		r.line++
		var doc encode.Doc
		var rerr *RowError
		switch {
		case tooLong:
			rerr = &RowError{Code: RejectInvalidLine, Reason: fmt.Sprintf("line longer than %d MiB", MaxLineBytes>>20)}
		case len(bytes.TrimSpace(line)) == 0:
			continue
		case r.spec.kind == TextJSONL:
			doc, rerr = r.parseJSON(line)
		default:
			doc, rerr = r.parseTSV(line)
		}
		if rerr != nil {
			rerr.Path, rerr.Row, rerr.Line = r.spec.path, row, row+1
			if r.onRowError == nil {
				return nil, rerr
			}
			if err := r.onRowError(rerr); err != nil {
				return nil, err
			}
			continue
		}
		docs = append(docs, InputDoc{Row: row, Line: row + 1, Doc: doc})
	}
	return docs, nil
}

// parseJSON reads one JSON Lines document.
func (r *TextReader) parseJSON(line []byte) (encode.Doc, *RowError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return encode.Doc{}, &RowError{Code: RejectInvalidLine, Column: "", Reason: fmt.Sprintf("invalid JSON at column %d: %s", se.Offset, se.Error())}
		case errors.As(err, &te):
			return encode.Doc{}, &RowError{Code: RejectInvalidLine, Reason: fmt.Sprintf("not a JSON object but %s", te.Value)}
		default:
			return encode.Doc{}, &RowError{Code: RejectInvalidLine, Reason: "invalid JSON: " + err.Error()}
		}
	}
	if obj == nil {
		return encode.Doc{}, &RowError{Code: RejectInvalidLine, Reason: "not a JSON object but null"}
	}
	lookup := func(names []string) (string, json.RawMessage) {
		for _, n := range names {
			if v, ok := obj[n]; ok {
				return n, v
			}
		}
		return names[0], nil
	}
	idName, idRaw := lookup(r.idF)
	id, isNull, ok := jsonID(idRaw)
	switch {
	case !ok:
		return encode.Doc{}, &RowError{Column: idName, Code: RejectInvalidField, Reason: fmt.Sprintf("id %s is neither a string nor an integer", abbreviate(idRaw))}
	case isNull:
		return encode.Doc{}, &RowError{Column: idName, Code: RejectNullID, Reason: "null or missing id (looked for " + strings.Join(quoteAll(r.idF), ", ") + ")"}
	case id == "":
		return encode.Doc{}, &RowError{Column: idName, Code: RejectEmptyID, Reason: "empty id", ID: &id}
	}
	textName, textRaw := lookup(r.textF)
	text, textNull, ok := jsonString(textRaw)
	if !ok {
		return encode.Doc{}, &RowError{Column: textName, Code: RejectInvalidField, Reason: fmt.Sprintf("text %s is not a string", abbreviate(textRaw)), ID: &id}
	}
	titleName, titleRaw := lookup(r.titleF)
	title, _, ok := jsonString(titleRaw)
	if !ok {
		return encode.Doc{}, &RowError{Column: titleName, Code: RejectInvalidField, Reason: fmt.Sprintf("title %s is not a string", abbreviate(titleRaw)), ID: &id}
	}
	if textNull && title == "" {
		return encode.Doc{}, &RowError{Column: textName, Code: RejectNullText, Reason: "null or missing text (looked for " + strings.Join(quoteAll(r.textF), ", ") + ") and no title", ID: &id}
	}
	return encode.Doc{ID: id, Text: joinTitle(title, text)}, nil
}

// jsonID decodes an id: a string, or an integer written without fraction
// or exponent (kept as written, like Parquet's integer ids). A missing
// field is null.
func jsonID(raw json.RawMessage) (id string, isNull, ok bool) {
	if raw == nil || string(raw) == "null" {
		return "", true, true
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", false, false
		}
		return id, false, true
	}
	s := string(raw)
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return s, false, true
	}
	if _, err := strconv.ParseUint(s, 10, 64); err == nil {
		return s, false, true
	}
	return "", false, false
}

// jsonString decodes a string field; a missing field is null.
func jsonString(raw json.RawMessage) (s string, isNull, ok bool) {
	if raw == nil || string(raw) == "null" {
		return "", true, true
	}
	if raw[0] != '"' {
		return "", false, false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, false
	}
	return s, false, true
}

// abbreviate shortens a JSON value for a message.
func abbreviate(raw json.RawMessage) string {
	const limit = 40
	if len(raw) > limit {
		return string(raw[:limit]) + "…"
	}
	return string(raw)
}

// parseTSV reads one TSV document.
func (r *TextReader) parseTSV(line []byte) (encode.Doc, *RowError) {
	fields := strings.Split(string(line), "\t")
	name := func(i int) string {
		if r.header != nil && i >= 0 && i < len(r.header) {
			return r.header[i]
		}
		return []string{"id", "text"}[min(i, 1)]
	}
	if r.header == nil && len(fields) != 2 {
		return encode.Doc{}, &RowError{Code: RejectInvalidLine, Reason: fmt.Sprintf("%d tab-separated fields, want 2 (id, text)", len(fields))}
	}
	if r.header != nil && len(fields) != len(r.header) {
		return encode.Doc{}, &RowError{Code: RejectInvalidLine, Reason: fmt.Sprintf("%d tab-separated fields, want %d as in the header", len(fields), len(r.header))}
	}
	id, text := fields[r.tsvCols[0]], fields[r.tsvCols[1]]
	title := ""
	if r.tsvCols[2] >= 0 {
		title = fields[r.tsvCols[2]]
	}
	if id == "" {
		return encode.Doc{}, &RowError{Column: name(r.tsvCols[0]), Code: RejectEmptyID, Reason: "empty id", ID: &id}
	}
	return encode.Doc{ID: id, Text: joinTitle(title, text)}, nil
}

// Close releases the input. It is safe to call more than once.
func (r *TextReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.rc != nil {
		if err := r.rc.Close(); err != nil {
			return fmt.Errorf("close input %s: %w", r.spec.path, err)
		}
	}
	return nil
}
