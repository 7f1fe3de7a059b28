package export

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/splash-encode/splash/shards"
)

// Format is an export format.
type Format string

// The export formats (see the package documentation).
const (
	FormatAnserini Format = "anserini"
	// FormatAnseriniTopics is the TSV query file of Anserini's
	// "SearchCollection -topicReader TsvString -impact -pretokenized": one
	// line per query, "qid<TAB>tok tok ...", each token repeated by its
	// impact.
	FormatAnseriniTopics Format = "anserini-topics"
	FormatSeismic        Format = "seismic"
	FormatSeismicJSONL   Format = "seismic-jsonl"
	FormatESBulk         Format = "esbulk"
	FormatQdrant         Format = "qdrant"
)

// Formats lists the formats this package writes.
func Formats() []Format {
	return []Format{FormatAnserini, FormatAnseriniTopics, FormatSeismic, FormatSeismicJSONL, FormatESBulk, FormatQdrant}
}

// ParseFormat returns the Format named s; the error lists the names.
func ParseFormat(s string) (Format, error) {
	names := make([]string, 0, len(Formats()))
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown export format %q: want %s", s, strings.Join(names, ", "))
}

// NeedsVocabulary reports whether the format writes tokens (and so needs the
// vocabulary) rather than term ids.
func (f Format) NeedsVocabulary() bool {
	return f == FormatAnserini || f == FormatAnseriniTopics || f == FormatSeismicJSONL || f == FormatESBulk
}

// quantized reports whether the format writes integer impacts,
// round(weight × scale), rather than weights.
func (f Format) quantized() bool {
	return f == FormatAnserini || f == FormatAnseriniTopics
}

// Defaults of Options.
const (
	DefaultIndex = "splash"
	DefaultField = "splade"
)

// maxTopicImpact is the largest impact the anserini-topics format writes:
// it repeats a token that many times.
const maxTopicImpact = 1 << 16

// esMaxIDBytes is the longest _id Elasticsearch accepts.
const esMaxIDBytes = 512

// minNormalFloat32 is the smallest positive normal float32 (2^-126), the
// smallest value Lucene's FeatureField accepts.
const minNormalFloat32 = 0x1p-126

// Options are the export settings.
type Options struct {
	Format Format
	// Scale (anserini and anserini-topics only) quantizes impacts as
	// round(weight × Scale); 0 takes the shards' splash.scale metadata.
	// Other formats write weights and require 0.
	Scale float32
	// Index (esbulk only) is the _index of every action; default "splash".
	Index string
	// Field is the rank_features field (esbulk) or the named sparse vector
	// (qdrant); default "splade". Other formats require "".
	Field string
}

// Check reports settings that do not fit the format.
func (o Options) Check() error {
	_, err := o.validate()
	return err
}

// validate fills in the defaults and checks the settings.
func (o Options) validate() (Options, error) {
	if _, err := ParseFormat(string(o.Format)); err != nil {
		return o, err
	}
	if o.Scale != 0 {
		if !o.Format.quantized() {
			return o, fmt.Errorf("a scale applies to the anserini and anserini-topics formats only (%s writes weights)", o.Format)
		}
		if !(o.Scale > 0) || math.IsInf(float64(o.Scale), 0) {
			return o, fmt.Errorf("scale %v: must be a finite number > 0", o.Scale)
		}
	}
	if o.Index != "" && o.Format != FormatESBulk {
		return o, fmt.Errorf("an index name applies to the esbulk format only")
	}
	if o.Field != "" && o.Format != FormatESBulk && o.Format != FormatQdrant {
		return o, fmt.Errorf("a field name applies to the esbulk and qdrant formats only")
	}
	switch o.Format {
	case FormatESBulk:
		if o.Index == "" {
			o.Index = DefaultIndex
		}
		if err := checkIndexName(o.Index); err != nil {
			return o, err
		}
		fallthrough
	case FormatQdrant:
		if o.Field == "" {
			o.Field = DefaultField
		}
		if !utf8.ValidString(o.Field) || strings.TrimSpace(o.Field) != o.Field {
			return o, fmt.Errorf("field name %q: want valid UTF-8 without leading or trailing white space", o.Field)
		}
	}
	return o, nil
}

// checkIndexName applies Elasticsearch's rules for index names.
func checkIndexName(s string) error {
	bad := func(why string) error { return fmt.Errorf("index name %q: %s", s, why) }
	switch {
	case s == "." || s == "..":
		return bad("must not be . or ..")
	case len(s) > 255:
		return bad("longer than 255 bytes")
	case strings.ToLower(s) != s:
		return bad("must be lower case")
	case strings.IndexAny(s[:1], "-_+") == 0:
		return bad("must not start with -, _ or +")
	case strings.ContainsAny(s, "\\/*?\"<>| ,#:"):
		return bad(`must not contain \ / * ? " < > | space , # or :`)
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	}
	return nil
}

// ErrInput marks failures caused by the shards or the vocabulary being
// exported (not by the destination): retrying will not help.
var ErrInput = errors.New("bad export input")

// Stats counts what an export wrote.
type Stats struct {
	Documents int64 // documents written
	Empty     int64 // documents written with an empty vector
	Postings  int64 // (term, value) pairs written
	// Dropped counts the postings left out: impacts that round to 0
	// (anserini, anserini-topics), weights below the smallest normal
	// float32 (esbulk).
	Dropped int64
	// Skipped counts the rows left out (anserini-topics): queries without a
	// token of impact ≥ 1, which Anserini's TsvString reader cannot read.
	// They are not counted in Documents.
	Skipped int64
}

// String is a one-line summary.
func (s Stats) String() string {
	line := fmt.Sprintf("%d documents (%d with an empty vector), %d postings", s.Documents, s.Empty, s.Postings)
	if s.Dropped > 0 {
		line += fmt.Sprintf(", %d dropped", s.Dropped)
	}
	if s.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped (no posting left)", s.Skipped)
	}
	return line
}

// shardInfo is what Write learns about a shard before exporting it.
type shardInfo struct {
	path  string
	scale float64 // anserini, anserini-topics: the scale its impacts use
	limit int     // term ids must be below it (0: unknown)
	rows  int64   // seismic: its row count
}

// Write exports the shards, in order, to w. For FormatSeismic the doc ids go
// to ids, one a line (see the package documentation); ids is unused by the
// other formats. vocab maps term ids to tokens; it is required by the token
// formats (Format.NeedsVocabulary) and, when given, bounds the term ids of the
// others. The context is checked before every row.
func Write(ctx context.Context, w, ids io.Writer, shardPaths []string, vocab []string, opts Options) (Stats, error) {
	opts, err := opts.validate()
	if err != nil {
		return Stats{}, err
	}
	if opts.Format.NeedsVocabulary() && vocab == nil {
		return Stats{}, fmt.Errorf("%w: the %s format writes tokens and needs the vocabulary (%s)", ErrInput, opts.Format, shards.VocabularyFile)
	}
	if opts.Format == FormatSeismic && ids == nil {
		return Stats{}, fmt.Errorf("the seismic format needs a writer for the doc ids")
	}
	infos, err := inspectShards(ctx, shardPaths, vocab, opts)
	if err != nil {
		return Stats{}, err
	}
	e := newEncoder(w, ids, vocab, opts)
	if opts.Format == FormatSeismic {
		var total int64
		for _, in := range infos {
			total += in.rows
		}
		if total > math.MaxUint32 {
			return Stats{}, fmt.Errorf("%w: %d documents: the seismic format counts them in 32 bits", ErrInput, total)
		}
		e.buf = binary.LittleEndian.AppendUint32(e.buf[:0], uint32(total))
		if _, err := e.w.Write(e.buf); err != nil {
			return e.stats, fmt.Errorf("write: %w", err)
		}
		if err := e.exportAll(ctx, infos); err != nil {
			return e.stats, err
		}
		if e.stats.Documents != total {
			return e.stats, fmt.Errorf("%w: the shards held %d rows when counted and %d when exported (did they change?)", ErrInput, total, e.stats.Documents)
		}
		return e.stats, e.flush()
	}
	if err := e.exportAll(ctx, infos); err != nil {
		return e.stats, err
	}
	return e.stats, e.flush()
}

// inspectShards reads every shard's metadata (and, for seismic, its row
// count) before anything is written.
func inspectShards(ctx context.Context, paths []string, vocab []string, opts Options) ([]shardInfo, error) {
	infos := make([]shardInfo, len(paths))
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		kv, err := shards.ShardMetadata(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInput, err)
		}
		m, err := shards.ParseMetadata(kv)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInput, p, err)
		}
		in := shardInfo{path: p, limit: m.VocabSize}
		if vocab != nil {
			if m.VocabSize != 0 && m.VocabSize != len(vocab) {
				return nil, fmt.Errorf("%w: %s: the shard's vocabulary has %d entries, %s %d (another model's?)", ErrInput, p, m.VocabSize, shards.VocabularyFile, len(vocab))
			}
			in.limit = len(vocab)
		}
		if opts.Format.quantized() {
			switch {
			case opts.Scale != 0:
				in.scale = float64(opts.Scale)
			case !(m.Scale > 0) || math.IsInf(float64(m.Scale), 0):
				return nil, fmt.Errorf("%w: %s: no usable %s in the metadata (%v); give a scale", ErrInput, p, shards.MetaScale, m.Scale)
			default:
				in.scale = float64(m.Scale)
			}
			if i > 0 && in.scale != infos[0].scale {
				return nil, fmt.Errorf("%w: %s has %s %v but %s has %v: their impacts do not compare; give one scale for all", ErrInput, paths[0], shards.MetaScale, infos[0].scale, p, in.scale)
			}
		}
		if opts.Format == FormatSeismic {
			if in.rows, err = shards.ShardRows(p); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInput, err)
			}
		}
		infos[i] = in
	}
	return infos, nil
}

// encoder turns rows into the bytes of one format.
type encoder struct {
	opts  Options
	w     *bufio.Writer
	ids   *bufio.Writer
	toks  []string            // escaped tokens by term id (token formats)
	dup   []bool              // toks[i] is also the token of another id
	seen  map[string]uint32   // duplicate check within a row
	qids  map[string]struct{} // anserini-topics: the query ids seen
	buf   []byte
	stats Stats
}

func newEncoder(w, ids io.Writer, vocab []string, opts Options) *encoder {
	e := &encoder{opts: opts, w: bufio.NewWriterSize(w, 1<<16)}
	if ids != nil && opts.Format == FormatSeismic {
		e.ids = bufio.NewWriterSize(ids, 1<<16)
	}
	if opts.Format.NeedsVocabulary() {
		e.toks = make([]string, len(vocab))
		e.dup = make([]bool, len(vocab))
		first := make(map[string]int, len(vocab))
		for i, tok := range vocab {
			e.toks[i] = opts.Format.EscapeToken(tok)
			if j, ok := first[e.toks[i]]; ok {
				e.dup[i], e.dup[j] = true, true
			} else {
				first[e.toks[i]] = i
			}
		}
	}
	return e
}

func (e *encoder) exportAll(ctx context.Context, infos []shardInfo) error {
	for _, in := range infos {
		var row int64
		err := shards.ReadShard(in.path, func(r shards.Row) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := e.row(in, r); err != nil {
				return fmt.Errorf("export %s row %d (doc %q): %w", in.path, row, r.DocID, err)
			}
			row++
			return nil
		})
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("export %s: %w", in.path, err)
		case errors.Is(err, shards.ErrInvalidShard):
			return fmt.Errorf("%w: %w", ErrInput, err)
		default:
			return err
		}
	}
	return nil
}

func (e *encoder) flush() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if e.ids != nil {
		if err := e.ids.Flush(); err != nil {
			return fmt.Errorf("write doc ids: %w", err)
		}
	}
	return nil
}

// row writes one document.
func (e *encoder) row(in shardInfo, r shards.Row) error {
	if in.limit > 0 {
		if n := len(r.Vec.Terms); n > 0 && int64(r.Vec.Terms[n-1]) >= int64(in.limit) {
			return fmt.Errorf("%w: term id %d outside the vocabulary (%d entries)", ErrInput, r.Vec.Terms[n-1], in.limit)
		}
	}
	if e.opts.Format != FormatSeismic && !utf8.ValidString(r.DocID) {
		return fmt.Errorf("%w: the doc id is not valid UTF-8, which JSON cannot carry", ErrInput)
	}
	if e.toks != nil {
		if err := e.checkDuplicates(r); err != nil {
			return err
		}
	}
	b := e.buf[:0]
	var n int // postings written
	var err error
	switch e.opts.Format {
	case FormatAnserini:
		b, n, err = e.anserini(b, in.scale, r)
	case FormatAnseriniTopics:
		b, n, err = e.anseriniTopic(b, in.scale, r)
		if err == nil && n == 0 {
			e.stats.Skipped++
			return nil
		}
	case FormatSeismic:
		b, n, err = e.seismic(b, r)
	case FormatSeismicJSONL:
		b = append(b, `{"id":`...)
		b = appendJSONString(b, r.DocID)
		b = append(b, `,"content":"","vector":{`...)
		b, n = e.tokenFloats(b, r, false)
		b = append(b, "}}\n"...)
	case FormatESBulk:
		if len(r.DocID) > esMaxIDBytes {
			return fmt.Errorf("%w: the doc id is %d bytes long; Elasticsearch takes at most %d as _id", ErrInput, len(r.DocID), esMaxIDBytes)
		}
		b = append(b, `{"index":{"_index":`...)
		b = appendJSONString(b, e.opts.Index)
		b = append(b, `,"_id":`...)
		b = appendJSONString(b, r.DocID)
		b = append(b, "}}\n{"...)
		b = appendJSONString(b, e.opts.Field)
		b = append(b, ":{"...)
		b, n = e.tokenFloats(b, r, true)
		b = append(b, "}}\n"...)
	case FormatQdrant:
		b, n = e.qdrant(b, r)
	}
	e.buf = b
	if err != nil {
		return err
	}
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	e.stats.Documents++
	e.stats.Postings += int64(n)
	if n == 0 {
		e.stats.Empty++
	}
	return nil
}

// checkDuplicates refuses a row with two terms that export as one token.
func (e *encoder) checkDuplicates(r shards.Row) error {
	has := false
	for _, t := range r.Vec.Terms {
		if e.dup[t] {
			has = true
			break
		}
	}
	if !has {
		return nil
	}
	if e.seen == nil {
		e.seen = make(map[string]uint32)
	}
	clear(e.seen)
	for _, t := range r.Vec.Terms {
		if !e.dup[t] {
			continue
		}
		if u, ok := e.seen[e.toks[t]]; ok {
			return fmt.Errorf("%w: terms %d and %d both export as token %q (the vocabulary repeats it)", ErrInput, u, t, e.toks[t])
		}
		e.seen[e.toks[t]] = t
	}
	return nil
}

func (e *encoder) anserini(b []byte, scale float64, r shards.Row) ([]byte, int, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.DocID)
	b = append(b, `,"contents":"","vector":{`...)
	n := 0
	for k, t := range r.Vec.Terms {
		q := math.Round(float64(r.Vec.Weights[k]) * scale) // half away from zero
		if q == 0 {
			e.stats.Dropped++
			continue
		}
		if q > math.MaxInt32 {
			return b, n, fmt.Errorf("%w: term %d: impact %.0f exceeds Anserini's 32-bit integers (weight %v × scale %v)", ErrInput, t, q, r.Vec.Weights[k], scale)
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.toks[t])
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(q), 10)
		n++
	}
	return append(b, "}}\n"...), n, nil
}

// anseriniTopic appends one line of an Anserini TsvString topic file:
// "qid<TAB>" and the tokens of r separated by spaces, each written
// round(weight × scale) times. It appends nothing and returns n = 0 for a row
// without a posting left.
func (e *encoder) anseriniTopic(b []byte, scale float64, r shards.Row) ([]byte, int, error) {
	if err := checkQID(r.DocID); err != nil {
		return b, 0, err
	}
	if e.qids == nil {
		e.qids = make(map[string]struct{})
	}
	if _, ok := e.qids[r.DocID]; ok {
		return b, 0, fmt.Errorf("%w: an earlier query has the same id: Anserini would keep one of them", ErrInput)
	}
	start := len(b)
	b = append(b, r.DocID...)
	b = append(b, '\t')
	n := 0
	for k, t := range r.Vec.Terms {
		q := math.Round(float64(r.Vec.Weights[k]) * scale) // half away from zero
		if q == 0 {
			e.stats.Dropped++
			continue
		}
		if q > maxTopicImpact {
			return b[:start], 0, fmt.Errorf("%w: term %d: impact %.0f: the anserini-topics format repeats a token at most %d times (weight %v × scale %v)", ErrInput, t, q, maxTopicImpact, r.Vec.Weights[k], scale)
		}
		for range int(q) {
			if b[len(b)-1] != '\t' {
				b = append(b, ' ')
			}
			b = append(b, e.toks[t]...)
		}
		n++
	}
	if n == 0 {
		return b[:start], 0, nil
	}
	e.qids[r.DocID] = struct{}{}
	return append(b, '\n'), n, nil
}

// checkQID refuses a query id that an Anserini TsvString topic file cannot
// carry: the reader splits lines at \n and \r, trims the line (Java's trim:
// every char ≤ U+0020 at either end) and splits it at tabs.
func checkQID(qid string) error {
	switch {
	case qid == "":
		return fmt.Errorf("%w: an empty query id", ErrInput)
	case strings.ContainsAny(qid, "\t\n\r"):
		return fmt.Errorf("%w: the query id holds a tab or a line break, which the TSV topic format cannot carry", ErrInput)
	case qid[0] <= ' ' || qid[len(qid)-1] <= ' ':
		return fmt.Errorf("%w: the query id starts or ends with white space or a control character, which Anserini's topic reader trims", ErrInput)
	}
	return nil
}

// tokenFloats appends "TOKEN":WEIGHT pairs; esbulk leaves out subnormal
// weights.
func (e *encoder) tokenFloats(b []byte, r shards.Row, normalOnly bool) ([]byte, int) {
	n := 0
	for k, t := range r.Vec.Terms {
		w := r.Vec.Weights[k]
		if normalOnly && w < minNormalFloat32 {
			e.stats.Dropped++
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.toks[t])
		b = append(b, ':')
		b = appendFloat32(b, w)
		n++
	}
	return b, n
}

func (e *encoder) seismic(b []byte, r shards.Row) ([]byte, int, error) {
	if strings.ContainsAny(r.DocID, "\n\r") {
		return b, 0, fmt.Errorf("%w: the doc id holds a line break, which the one-id-a-line sidecar cannot carry", ErrInput)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Vec.Terms)))
	for _, t := range r.Vec.Terms {
		b = binary.LittleEndian.AppendUint32(b, t)
	}
	for _, w := range r.Vec.Weights {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(w))
	}
	if _, err := e.ids.WriteString(r.DocID); err != nil {
		return b, 0, fmt.Errorf("write doc ids: %w", err)
	}
	if err := e.ids.WriteByte('\n'); err != nil {
		return b, 0, fmt.Errorf("write doc ids: %w", err)
	}
	return b, len(r.Vec.Terms), nil
}

func (e *encoder) qdrant(b []byte, r shards.Row) ([]byte, int) {
	b = append(b, `{"id":`...)
	b = appendPointID(b, r.DocID)
	b = append(b, `,"vector":{`...)
	b = appendJSONString(b, e.opts.Field)
	b = append(b, `:{"indices":[`...)
	for k, t := range r.Vec.Terms {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(t), 10)
	}
	b = append(b, `],"values":[`...)
	for k, w := range r.Vec.Weights {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendFloat32(b, w)
	}
	b = append(b, `]}},"payload":{"doc_id":`...)
	b = appendJSONString(b, r.DocID)
	return append(b, "}}\n"...), len(r.Vec.Terms)
}

// appendFloat32 appends the shortest decimal that reads back as w (a JSON
// number: w is finite, the shard reader checked it).
func appendFloat32(b []byte, w float32) []byte {
	return strconv.AppendFloat(b, float64(w), 'g', -1, 32)
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
