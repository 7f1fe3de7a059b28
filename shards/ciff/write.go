package ciff

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/ciff/ciffpb"
)

// Version is the CIFF version Write produces (Header.version).
const Version = 1

// DefaultMemoryBytes is the default bound of the in-memory postings buffer.
const DefaultMemoryBytes = 256 << 20

// postingBytes is what one buffered posting takes in memory.
const postingBytes = 12

// Options tune Write. The zero value is usable.
type Options struct {
	// MemoryBytes bounds the in-memory postings buffer (12 bytes a posting);
	// a full buffer is sorted and spilled to a run file in TempDir. Default
	// DefaultMemoryBytes.
	MemoryBytes int64
	// TempDir is where Write makes its private temp directory (named
	// "_tmp.ciff.*", removed before Write returns). Default: the directory of
	// the output when w is a file (*os.File), else os.TempDir().
	TempDir string
	// Description is the Header's description, for people.
	Description string
	// Scale, when > 0, makes each posting's tf round(weight*Scale) (half
	// away from zero) instead of the stored impact. 0 uses the impacts
	// column.
	Scale float32
}

// Stats says what Write wrote.
type Stats struct {
	Docs     int64 // DocRecords (rows of the shards)
	Terms    int64 // postings lists
	Postings int64 // postings (impact > 0)
	Runs     int   // sorted runs spilled to disk (0: everything fitted in memory)
}

// Write exports the impact shards shardPaths, read in that order with
// shards.ReadShard, as one CIFF stream to w. vocab maps term ids to term
// strings (as shards.ReadVocabulary returns it). See the package
// documentation for what is written and how memory stays bounded.
//
// A shard whose metadata gives another vocabulary size than len(vocab) is
// refused (wrapping shards.ErrVocabularyMismatch). A term id outside vocab,
// or a row whose lists are not aligned or whose term ids are not strictly
// ascending, is an error wrapping shards.ErrInvalidShard that names the
// shard and row; so is a used term that is empty, not UTF-8, or spelled
// like another used term. Write checks ctx between rows, before each spill,
// during merge passes and between postings lists. On error, part of the
// stream may have been written to w; the caller discards it.
func Write(ctx context.Context, w io.Writer, shardPaths []string, vocab []string, opts Options) (st Stats, err error) {
	if err := opts.check(); err != nil {
		return Stats{}, err
	}
	tempDir := opts.TempDir
	if tempDir == "" {
		tempDir = defaultTempDir(w)
	}
	dir, err := os.MkdirTemp(tempDir, "_tmp.ciff.")
	if err != nil {
		return Stats{}, fmt.Errorf("ciff: temp directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("ciff: remove temp directory: %w", rerr)
		}
	}()

	e, err := newExporter(ctx, dir, vocab, opts)
	if err != nil {
		return Stats{}, err
	}
	defer e.close()
	for _, p := range shardPaths {
		if err := e.readShard(p); err != nil {
			return e.stats, err
		}
	}
	if err := e.finishDocs(); err != nil {
		return e.stats, err
	}
	if err := e.checkTerms(); err != nil {
		return e.stats, err
	}
	srcs, err := e.sources()
	if err != nil {
		return e.stats, err
	}
	defer closeSources(srcs)

	out := bufio.NewWriterSize(w, 256<<10)
	if err := e.writeHeader(out); err != nil {
		return e.stats, err
	}
	if err := e.writePostings(out, srcs); err != nil {
		return e.stats, err
	}
	if err := e.copyDocs(out); err != nil {
		return e.stats, err
	}
	if err := out.Flush(); err != nil {
		return e.stats, fmt.Errorf("ciff: write: %w", err)
	}
	return e.stats, nil
}

func (o Options) check() error {
	switch {
	case o.MemoryBytes < 0:
		return fmt.Errorf("ciff: memory bound %d bytes: must be >= 0 (0: default %d)", o.MemoryBytes, DefaultMemoryBytes)
	case o.Scale < 0 || math.IsNaN(float64(o.Scale)) || math.IsInf(float64(o.Scale), 0):
		return fmt.Errorf("ciff: scale %v: must be finite and >= 0 (0: use the stored impacts)", o.Scale)
	}
	return nil
}

// defaultTempDir is the directory of w when it is a regular file, else
// os.TempDir().
func defaultTempDir(w io.Writer) string {
	if f, ok := w.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode().IsRegular() && f.Name() != "" {
			return filepath.Dir(f.Name())
		}
	}
	return os.TempDir()
}

// posting is one buffered (term, docid, tf) triple; the term is its rank in
// the term order.
type posting struct {
	rank, doc, tf uint32
}

func comparePostings(a, b posting) int {
	if a.rank != b.rank {
		if a.rank < b.rank {
			return -1
		}
		return 1
	}
	switch {
	case a.doc < b.doc:
		return -1
	case a.doc > b.doc:
		return 1
	}
	return 0
}

// exporter holds the state of one Write.
type exporter struct {
	ctx    context.Context
	dir    string
	vocab  []string
	opts   Options
	rank   []uint32 // term id -> rank in the term order
	byRank []uint32 // rank -> term id
	used   []bool   // by rank: the term has a posting
	limit  int      // postings the buffer may hold
	buf    []posting
	runs   []string // spilled run files, in spill order

	docsPath string
	docsFile *os.File
	docs     *bufio.Writer
	scratch  []byte

	totalTF int64
	stats   Stats
}

func newExporter(ctx context.Context, dir string, vocab []string, opts Options) (*exporter, error) {
	mem := opts.MemoryBytes
	if mem == 0 {
		mem = DefaultMemoryBytes
	}
	limit := int64(1)
	if mem/postingBytes > 1 {
		limit = mem / postingBytes
	}
	if limit > math.MaxInt32 {
		limit = math.MaxInt32
	}
	e := &exporter{ctx: ctx, dir: dir, vocab: vocab, opts: opts, limit: int(limit)}
	if len(vocab) > math.MaxInt32 {
		return nil, fmt.Errorf("ciff: vocabulary of %d entries: CIFF counts postings lists in an int32", len(vocab))
	}
	e.byRank = make([]uint32, len(vocab))
	for i := range e.byRank {
		e.byRank[i] = uint32(i)
	}
	slices.SortFunc(e.byRank, func(a, b uint32) int {
		if c := strings.Compare(vocab[a], vocab[b]); c != 0 {
			return c
		}
		return int(a) - int(b)
	})
	e.rank = make([]uint32, len(vocab))
	for r, id := range e.byRank {
		e.rank[id] = uint32(r)
	}
	e.used = make([]bool, len(vocab))
	e.docsPath = filepath.Join(dir, "docs")
	f, err := os.Create(e.docsPath)
	if err != nil {
		return nil, fmt.Errorf("ciff: doc records: %w", err)
	}
	e.docsFile = f
	e.docs = bufio.NewWriterSize(f, 64<<10)
	return e, nil
}

// close closes the doc records file (the caller removes the directory).
func (e *exporter) close() {
	if e.docsFile != nil {
		e.docsFile.Close()
		e.docsFile = nil
	}
}

// readShard reads one impact shard: its postings into the buffer (spilling
// when full), a DocRecord per row into the doc records file.
func (e *exporter) readShard(path string) error {
	kv, err := shards.ShardMetadata(path)
	if err != nil {
		return fmt.Errorf("ciff: %w", err)
	}
	meta, err := shards.ParseMetadata(kv)
	if err != nil {
		return fmt.Errorf("ciff: %s: %w", path, err)
	}
	if meta.VocabSize != 0 && meta.VocabSize != len(e.vocab) {
		return fmt.Errorf("ciff: %s: %w: the shard's model has %d vocabulary entries, the vocabulary given has %d",
			path, shards.ErrVocabularyMismatch, meta.VocabSize, len(e.vocab))
	}
	var (
		row    int64
		rowErr error
	)
	err = shards.ReadShard(path, func(r shards.Row) error {
		if err := e.ctx.Err(); err != nil {
			rowErr = fmt.Errorf("ciff: reading %s: %w", path, err)
			return rowErr
		}
		if err := e.addRow(r); err != nil {
			rowErr = fmt.Errorf("ciff: %s: row %d (doc %q): %w", path, row, r.DocID, err)
			return rowErr
		}
		row++
		return nil
	})
	switch {
	case rowErr != nil:
		return rowErr
	case err != nil:
		return fmt.Errorf("ciff: %w", err) // the reader's errors name the file
	}
	return nil
}

// addRow buffers one document's postings and writes its DocRecord.
func (e *exporter) addRow(r shards.Row) error {
	if e.stats.Docs >= math.MaxInt32 {
		return fmt.Errorf("more than %d documents: CIFF docids are int32", math.MaxInt32)
	}
	doc := uint32(e.stats.Docs)
	v := r.Vec
	scaled := e.opts.Scale > 0
	if scaled && len(v.Weights) != len(v.Terms) {
		return fmt.Errorf("%w: %d terms but %d weights", shards.ErrInvalidShard, len(v.Terms), len(v.Weights))
	}
	if !scaled && len(v.Impacts) != len(v.Terms) {
		return fmt.Errorf("%w: %d terms but %d impacts", shards.ErrInvalidShard, len(v.Terms), len(v.Impacts))
	}
	var length int64
	for i, t := range v.Terms {
		if i > 0 && t <= v.Terms[i-1] {
			return fmt.Errorf("%w: term_ids not strictly ascending at %d: %d after %d", shards.ErrInvalidShard, i, t, v.Terms[i-1])
		}
		if int64(t) >= int64(len(e.vocab)) {
			return fmt.Errorf("%w: term id %d (element %d) is outside the vocabulary of %d entries", shards.ErrInvalidShard, t, i, len(e.vocab))
		}
		var tf int64
		if scaled {
			w := v.Weights[i]
			q := math.Round(float64(w) * float64(e.opts.Scale))
			if math.IsNaN(q) || q < 0 || q > math.MaxInt32 {
				return fmt.Errorf("%w: term %d: weight %v times scale %v is not a tf in [0, %d]", shards.ErrInvalidShard, t, w, e.opts.Scale, math.MaxInt32)
			}
			tf = int64(q)
		} else {
			tf = int64(v.Impacts[i])
		}
		if tf == 0 {
			continue // dropped: see the package documentation
		}
		if len(e.buf) == e.limit {
			if err := e.spill(); err != nil {
				return err
			}
		}
		rk := e.rank[t]
		e.used[rk] = true
		e.push(posting{rank: rk, doc: doc, tf: uint32(tf)})
		length += tf
	}
	if length > math.MaxInt32 {
		return fmt.Errorf("document length (sum of tfs) %d does not fit CIFF's int32 doclength", length)
	}
	e.totalTF += length
	e.stats.Docs++
	msg, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(e.scratch[:0], &ciffpb.DocRecord{
		Docid: int32(doc), CollectionDocid: r.DocID, Doclength: int32(length),
	})
	if err != nil {
		return fmt.Errorf("doc record: %w", err)
	}
	e.scratch = msg
	if err := writeDelimited(e.docs, msg); err != nil {
		return fmt.Errorf("write %s: %w", e.docsPath, err)
	}
	return nil
}

// push appends p, growing the buffer in steps up to limit (never past it).
func (e *exporter) push(p posting) {
	if len(e.buf) == cap(e.buf) {
		n := max(2*cap(e.buf), 1024)
		n = min(n, e.limit)
		nb := make([]posting, len(e.buf), n)
		copy(nb, e.buf)
		e.buf = nb
	}
	e.buf = append(e.buf, p)
	e.stats.Postings++
}

// spill sorts the buffer and writes it as a run file.
func (e *exporter) spill() error {
	if err := e.ctx.Err(); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	slices.SortFunc(e.buf, comparePostings)
	path := filepath.Join(e.dir, fmt.Sprintf("run-%06d", len(e.runs)))
	rw, err := createRun(path)
	if err != nil {
		return err
	}
	for _, p := range e.buf {
		if err := rw.add(p); err != nil {
			rw.abort()
			return err
		}
	}
	if err := rw.close(); err != nil {
		return err
	}
	e.runs = append(e.runs, path)
	e.stats.Runs++
	e.buf = e.buf[:0]
	return nil
}

// finishDocs flushes the doc records file.
func (e *exporter) finishDocs() error {
	if err := e.docs.Flush(); err != nil {
		return fmt.Errorf("ciff: write %s: %w", e.docsPath, err)
	}
	return nil
}

// checkTerms counts the postings lists and refuses used terms that CIFF
// cannot tell apart: two ids with one string, or the empty string.
func (e *exporter) checkTerms() error {
	prev := -1
	for r, u := range e.used {
		if !u {
			continue
		}
		e.stats.Terms++
		id := e.byRank[r]
		if e.vocab[id] == "" || !utf8.ValidString(e.vocab[id]) {
			return fmt.Errorf("ciff: %w: term id %d is %q in the vocabulary; a CIFF term is a non-empty UTF-8 string", shards.ErrInvalidShard, id, e.vocab[id])
		}
		if prev >= 0 && e.vocab[e.byRank[prev]] == e.vocab[id] {
			return fmt.Errorf("ciff: %w: term ids %d and %d are both %q in the vocabulary; CIFF postings lists are keyed by the string",
				shards.ErrInvalidShard, e.byRank[prev], id, e.vocab[id])
		}
		prev = r
	}
	if e.stats.Terms > math.MaxInt32 {
		return fmt.Errorf("ciff: %d postings lists: CIFF counts them in an int32", e.stats.Terms)
	}
	return nil
}

// sources returns what the final merge reads: the runs (merged in passes
// down to fewer than maxFanIn) and the sorted last buffer.
func (e *exporter) sources() ([]source, error) {
	for len(e.runs)+1 > maxFanIn {
		group := e.runs[:maxFanIn]
		path := filepath.Join(e.dir, fmt.Sprintf("merged-%06d", len(e.runs)))
		if err := mergeRuns(e.ctx, group, path); err != nil {
			return nil, fmt.Errorf("ciff: merge runs: %w", err)
		}
		for _, p := range group {
			os.Remove(p) // early, to bound disk use; RemoveAll gets any left
		}
		e.runs = append(e.runs[maxFanIn:], path)
	}
	var srcs []source
	for _, p := range e.runs {
		r, err := openRun(p)
		if err != nil {
			closeSources(srcs)
			return nil, fmt.Errorf("ciff: %w", err)
		}
		srcs = append(srcs, r)
	}
	slices.SortFunc(e.buf, comparePostings)
	srcs = append(srcs, &memSource{buf: e.buf})
	return srcs, nil
}

func (e *exporter) writeHeader(out *bufio.Writer) error {
	n := e.stats.Docs
	avg := 0.0
	if n > 0 {
		avg = float64(e.totalTF) / float64(n)
	}
	h := &ciffpb.Header{
		Version:                Version,
		NumPostingsLists:       int32(e.stats.Terms),
		NumDocs:                int32(n),
		TotalPostingsLists:     int32(e.stats.Terms),
		TotalDocs:              int32(n),
		TotalTermsInCollection: e.totalTF,
		AverageDoclength:       avg,
		Description:            e.opts.Description,
	}
	msg, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	if err != nil {
		return fmt.Errorf("ciff: header: %w", err)
	}
	if err := writeDelimited(out, msg); err != nil {
		return fmt.Errorf("ciff: write header: %w", err)
	}
	return nil
}

// writePostings merges srcs into PostingsList messages.
func (e *exporter) writePostings(out *bufio.Writer, srcs []source) error {
	m, err := newMerger(srcs)
	if err != nil {
		return fmt.Errorf("ciff: %w", err)
	}
	var (
		pl      postingsList
		cur     uint32
		started bool
		written int64
	)
	flush := func() error {
		if err := e.ctx.Err(); err != nil {
			return fmt.Errorf("ciff: write postings lists: %w", err)
		}
		if err := pl.write(out, e.vocab[e.byRank[cur]]); err != nil {
			return fmt.Errorf("ciff: write postings list of %q: %w", e.vocab[e.byRank[cur]], err)
		}
		written++
		return nil
	}
	for {
		p, ok, err := m.next()
		if err != nil {
			return fmt.Errorf("ciff: %w", err)
		}
		if !ok {
			break
		}
		if !started || p.rank != cur {
			if started {
				if err := flush(); err != nil {
					return err
				}
			}
			started, cur = true, p.rank
			pl.reset()
		}
		if err := pl.add(p.doc, p.tf); err != nil {
			return fmt.Errorf("ciff: postings list of %q: %w", e.vocab[e.byRank[cur]], err)
		}
	}
	if started {
		if err := flush(); err != nil {
			return err
		}
	}
	if written != e.stats.Terms {
		return fmt.Errorf("ciff: internal error: merged %d postings lists, counted %d", written, e.stats.Terms)
	}
	return nil
}

// copyDocs appends the doc records file to out.
func (e *exporter) copyDocs(out *bufio.Writer) error {
	if err := e.ctx.Err(); err != nil {
		return fmt.Errorf("ciff: write doc records: %w", err)
	}
	if _, err := e.docsFile.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("ciff: read %s: %w", e.docsPath, err)
	}
	if _, err := io.Copy(out, e.docsFile); err != nil {
		return fmt.Errorf("ciff: copy doc records from %s: %w", e.docsPath, err)
	}
	return nil
}

// postingsList encodes one PostingsList message as it grows: the postings
// are appended in their wire form (field 4, each a Posting message with the
// docid gap and the tf), so a list costs a few bytes a posting in memory.
type postingsList struct {
	body     []byte // encoded postings
	df, cf   int64
	prevDoc  int64
	sub, hdr []byte
}

func (pl *postingsList) reset() {
	pl.body = pl.body[:0]
	pl.df, pl.cf, pl.prevDoc = 0, 0, -1
}

func (pl *postingsList) add(doc, tf uint32) error {
	gap := int64(doc)
	if pl.prevDoc >= 0 {
		gap = int64(doc) - pl.prevDoc
		if gap <= 0 {
			return fmt.Errorf("docid %d after %d: postings out of order", doc, pl.prevDoc)
		}
	}
	pl.prevDoc = int64(doc)
	// proto3: fields with their zero value are not written (Marshal does the same).
	sub := pl.sub[:0]
	if gap != 0 {
		sub = protowire.AppendTag(sub, 1, protowire.VarintType)
		sub = protowire.AppendVarint(sub, uint64(gap))
	}
	if tf != 0 {
		sub = protowire.AppendTag(sub, 2, protowire.VarintType)
		sub = protowire.AppendVarint(sub, uint64(tf))
	}
	pl.sub = sub
	pl.body = protowire.AppendTag(pl.body, 4, protowire.BytesType)
	pl.body = protowire.AppendBytes(pl.body, sub)
	pl.df++
	pl.cf += int64(tf)
	return nil
}

// write writes the length-delimited PostingsList message for term.
func (pl *postingsList) write(w io.Writer, term string) error {
	h := pl.hdr[:0]
	if term != "" {
		h = protowire.AppendTag(h, 1, protowire.BytesType)
		h = protowire.AppendString(h, term)
	}
	if pl.df != 0 {
		h = protowire.AppendTag(h, 2, protowire.VarintType)
		h = protowire.AppendVarint(h, uint64(pl.df))
	}
	if pl.cf != 0 {
		h = protowire.AppendTag(h, 3, protowire.VarintType)
		h = protowire.AppendVarint(h, uint64(pl.cf))
	}
	size := len(h) + len(pl.body)
	if size > math.MaxInt32 {
		return fmt.Errorf("message of %d bytes exceeds protobuf's 2 GiB limit", size)
	}
	var prefix [binary.MaxVarintLen64]byte
	pre := protowire.AppendVarint(prefix[:0], uint64(size))
	pl.hdr = h
	for _, b := range [][]byte{pre, h, pl.body} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeDelimited writes msg preceded by its length as a varint.
func writeDelimited(w io.Writer, msg []byte) error {
	var prefix [binary.MaxVarintLen64]byte
	if _, err := w.Write(protowire.AppendVarint(prefix[:0], uint64(len(msg)))); err != nil {
		return err
	}
	_, err := w.Write(msg)
	return err
}
