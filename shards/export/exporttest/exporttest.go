// Package exporttest reads back what package export writes, from each
// target's public description of its input format (Anserini's
// JsonVectorCollection, Seismic's binary and JSON inputs, the Elasticsearch
// bulk API, Qdrant's points) rather than from the writers' code, and compares
// it document by document with the impact shards it came from. It is for
// tests: the readers load whole files into memory.
package exporttest

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/splash-encode/splash/shards"
)

// Posting is one (term, value) pair as read back. Token formats fill Token
// (the raw, escaped key) and Decoded; id formats fill Term.
type Posting struct {
	Token   string  // the key as written
	Decoded string  // Token with the percent escapes undone
	Term    uint32  // seismic, qdrant
	Int     int64   // anserini
	Float   float32 // the other formats
}

// Doc is one document as read back.
type Doc struct {
	ID       string
	PointID  string // qdrant: the raw JSON of the point id
	Postings []Posting
}

// UnescapeToken undoes the percent escapes of package export's token rule:
// every %XX (X a hex digit, either case) becomes the byte 0xXX; anything else
// stays.
func UnescapeToken(s string) string {
	unhex := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// lines calls fn with every line of r (without its newline) and its
// number. JSON text must be UTF-8 (RFC 8259), which encoding/json does not
// check (it replaces bad bytes), so json lines are checked here.
func lines(r io.Reader, json bool, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<28)
	n := 0
	for sc.Scan() {
		n++
		if json && !utf8.Valid(sc.Bytes()) {
			return fmt.Errorf("line %d: not UTF-8", n)
		}
		if err := fn(n, sc.Bytes()); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// field is one member of a JSON object, in file order.
type field struct {
	key string
	val json.RawMessage
}

// members parses a JSON object keeping its members' order and refusing a
// repeated key (which encoding/json would silently collapse).
func members(raw []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want a JSON object, got %v", tok)
	}
	var out []field
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("key %q repeated", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		out = append(out, field{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the object")
	}
	return out, nil
}

// object parses a JSON object with exactly the given keys (in any order).
func object(raw []byte, keys ...string) (map[string]json.RawMessage, error) {
	fs, err := members(raw)
	if err != nil {
		return nil, err
	}
	m := make(map[string]json.RawMessage, len(fs))
	for _, f := range fs {
		m[f.key] = f.val
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("no %q member", k)
		}
	}
	if len(m) != len(keys) {
		return nil, fmt.Errorf("members %v, want %v", fieldKeys(fs), keys)
	}
	return m, nil
}

func fieldKeys(fs []field) []string {
	var ks []string
	for _, f := range fs {
		ks = append(ks, f.key)
	}
	return ks
}

func str(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("want a string, got %s", raw)
	}
	return s, nil
}

// float32Of reads a JSON number as a float32, refusing one that float32
// cannot hold or that is not a number.
func float32Of(raw json.RawMessage) (float32, error) {
	var num json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&num); err != nil {
		return 0, fmt.Errorf("want a number, got %s", raw)
	}
	v, err := strconv.ParseFloat(num.String(), 32)
	if err != nil {
		return 0, fmt.Errorf("number %s: %w", num, err)
	}
	return float32(v), nil
}

// tokenValues reads a {"TOKEN": number, ...} object.
func tokenValues(raw json.RawMessage, integer bool) ([]Posting, error) {
	fs, err := members(raw)
	if err != nil {
		return nil, err
	}
	ps := make([]Posting, 0, len(fs))
	for _, f := range fs {
		p := Posting{Token: f.key, Decoded: UnescapeToken(f.key)}
		if integer {
			// Anserini reads the value with Jackson's asInt: an integer
			// literal, within Java's int.
			n, err := strconv.ParseInt(string(f.val), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("token %q: want a 32-bit integer literal, got %s", f.key, f.val)
			}
			p.Int = n
		} else if p.Float, err = float32Of(f.val); err != nil {
			return nil, fmt.Errorf("token %q: %w", f.key, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// ReadAnserini reads JsonVectorCollection JSON Lines: objects with a string
// "id", a "contents" string and a "vector" object of integer values. Since
// Anserini builds a white-space separated pseudo-document from the vector,
// a key holding white space (as Java's Character.isWhitespace sees it) is an
// error.
func ReadAnserini(r io.Reader) ([]Doc, error) {
	var docs []Doc
	err := lines(r, true, func(_ int, line []byte) error {
		m, err := object(line, "id", "contents", "vector")
		if err != nil {
			return err
		}
		var d Doc
		if d.ID, err = str(m["id"]); err != nil {
			return err
		}
		if _, err := str(m["contents"]); err != nil {
			return err
		}
		if d.Postings, err = tokenValues(m["vector"], true); err != nil {
			return err
		}
		for _, p := range d.Postings {
			if i := strings.IndexFunc(p.Token, javaWhitespace); i >= 0 {
				return fmt.Errorf("token %q holds white space at byte %d", p.Token, i)
			}
		}
		docs = append(docs, d)
		return nil
	})
	return docs, err
}

// ReadAnseriniTopics reads an Anserini TsvString topic file as Anserini
// does with -pretokenized: lines end at \n, \r or \r\n (Java's readLine);
// each is trimmed (Java's String.trim: chars ≤ U+0020 at either end) and
// split at tabs, the first field being the query id and the second the query
// text; the text is split at white space (Java's Character.isWhitespace, as
// Lucene's WhitespaceTokenizer does) and a token's count is its weight
// (Posting.Int), tokens in the order of their first occurrence. Unlike
// Anserini, which keeps the last of two queries with one id and fails on a
// line without a tab, it returns an error for those, and for a query
// without a token.
func ReadAnseriniTopics(r io.Reader) ([]Doc, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil, nil
	}
	javaTrim := func(s string) string {
		return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	}
	var docs []Doc
	seen := map[string]bool{}
	for n, line := range strings.Split(text, "\n") {
		fields := strings.Split(javaTrim(line), "\t")
		if len(fields) < 2 {
			return nil, fmt.Errorf("line %d: no tab: %q", n+1, line)
		}
		d := Doc{ID: fields[0]}
		if seen[d.ID] {
			return nil, fmt.Errorf("line %d: query id %q again", n+1, d.ID)
		}
		seen[d.ID] = true
		at := map[string]int{}
		for _, tok := range strings.FieldsFunc(javaTrim(fields[1]), javaWhitespace) {
			if i, ok := at[tok]; ok {
				d.Postings[i].Int++
				continue
			}
			at[tok] = len(d.Postings)
			d.Postings = append(d.Postings, Posting{Token: tok, Decoded: UnescapeToken(tok), Int: 1})
		}
		if len(d.Postings) == 0 {
			return nil, fmt.Errorf("line %d: query %q has no token", n+1, d.ID)
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// javaWhitespace is java.lang.Character.isWhitespace: the space, line and
// paragraph separators except the no-break ones, and \t \n \v \f \r
// U+001C..U+001F.
func javaWhitespace(r rune) bool {
	switch r {
	case '\u00a0', '\u2007', '\u202f':
		return false
	case '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f:
		return true
	}
	return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

// ReadSeismic reads Seismic's binary format (u32 count; per vector a u32
// length n, n u32 components, n f32 values; little-endian) and the doc ids,
// one a line, that go with it.
func ReadSeismic(bin, ids io.Reader) ([]Doc, error) {
	br := bufio.NewReader(bin)
	u32 := func() (uint32, error) {
		var b [4]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint32(b[:]), nil
	}
	count, err := u32()
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	docs := make([]Doc, count)
	for i := range docs {
		n, err := u32()
		if err != nil {
			return nil, fmt.Errorf("vector %d: length: %w", i, err)
		}
		ps := make([]Posting, n)
		for k := range ps {
			if ps[k].Term, err = u32(); err != nil {
				return nil, fmt.Errorf("vector %d: component %d: %w", i, k, err)
			}
			if k > 0 && ps[k].Term <= ps[k-1].Term {
				return nil, fmt.Errorf("vector %d: components not ascending at %d", i, k)
			}
		}
		for k := range ps {
			bits, err := u32()
			if err != nil {
				return nil, fmt.Errorf("vector %d: value %d: %w", i, k, err)
			}
			ps[k].Float = math.Float32frombits(bits)
		}
		docs[i].Postings = ps
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("bytes after the %d vectors", count)
	}
	i := 0
	err = lines(ids, false, func(_ int, line []byte) error {
		if i >= len(docs) {
			return fmt.Errorf("more ids than the %d vectors", len(docs))
		}
		docs[i].ID = string(line)
		i++
		return nil
	})
	if err == nil && i != len(docs) {
		err = fmt.Errorf("%d ids for %d vectors", i, len(docs))
	}
	return docs, err
}

// ReadSeismicJSONL reads Seismic's JSON Lines input: a string "id", a
// "content" and a "vector" object of numbers.
func ReadSeismicJSONL(r io.Reader) ([]Doc, error) {
	var docs []Doc
	err := lines(r, true, func(_ int, line []byte) error {
		m, err := object(line, "id", "content", "vector")
		if err != nil {
			return err
		}
		var d Doc
		if d.ID, err = str(m["id"]); err != nil {
			return err
		}
		if d.Postings, err = tokenValues(m["vector"], false); err != nil {
			return err
		}
		docs = append(docs, d)
		return nil
	})
	return docs, err
}

// ReadESBulk reads bulk API NDJSON of index actions on index, each followed
// by a source with one rank_features field: feature names without dots,
// values positive normal floats (what Lucene's FeatureField accepts).
func ReadESBulk(r io.Reader, index, field string) ([]Doc, error) {
	var docs []Doc
	var action bool // the next line is a source
	err := lines(r, true, func(_ int, line []byte) error {
		if !action {
			m, err := object(line, "index")
			if err != nil {
				return err
			}
			a, err := object(m["index"], "_index", "_id")
			if err != nil {
				return err
			}
			if got, err := str(a["_index"]); err != nil || got != index {
				return fmt.Errorf("_index %s, want %q", a["_index"], index)
			}
			id, err := str(a["_id"])
			if err != nil {
				return err
			}
			docs = append(docs, Doc{ID: id})
			action = true
			return nil
		}
		m, err := object(line, field)
		if err != nil {
			return err
		}
		ps, err := tokenValues(m[field], false)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if strings.Contains(p.Token, ".") {
				return fmt.Errorf("feature name %q holds a dot", p.Token)
			}
			if !(p.Float >= 0x1p-126) || math.IsInf(float64(p.Float), 0) {
				return fmt.Errorf("feature %q: %v is not a positive normal float", p.Token, p.Float)
			}
		}
		docs[len(docs)-1].Postings = ps
		action = false
		return nil
	})
	if err == nil && action {
		err = errors.New("an action without its source at the end")
	}
	return docs, err
}

// ReadQdrant reads JSON Lines of points {"id", "vector": {field: {"indices",
// "values"}}, "payload": {"doc_id"}}; the point id must be an unsigned
// 64-bit integer or a UUID string, as Qdrant requires.
func ReadQdrant(r io.Reader, field string) ([]Doc, error) {
	var docs []Doc
	err := lines(r, true, func(_ int, line []byte) error {
		m, err := object(line, "id", "vector", "payload")
		if err != nil {
			return err
		}
		d := Doc{PointID: string(m["id"])}
		if s, err := str(m["id"]); err == nil {
			if !isUUID(s) {
				return fmt.Errorf("point id %q is not a UUID", s)
			}
		} else if _, err := strconv.ParseUint(d.PointID, 10, 64); err != nil {
			return fmt.Errorf("point id %s is neither an unsigned 64-bit integer nor a UUID string", d.PointID)
		}
		p, err := object(m["payload"], "doc_id")
		if err != nil {
			return err
		}
		if d.ID, err = str(p["doc_id"]); err != nil {
			return err
		}
		v, err := object(m["vector"], field)
		if err != nil {
			return err
		}
		sv, err := object(v[field], "indices", "values")
		if err != nil {
			return err
		}
		var indices []uint32
		if err := json.Unmarshal(sv["indices"], &indices); err != nil || indices == nil {
			return fmt.Errorf("indices %s: want an array of u32", sv["indices"])
		}
		var values []json.RawMessage
		if err := json.Unmarshal(sv["values"], &values); err != nil || values == nil {
			return fmt.Errorf("values: want an array")
		}
		if len(values) != len(indices) {
			return fmt.Errorf("%d indices, %d values", len(indices), len(values))
		}
		seen := map[uint32]bool{}
		for k, t := range indices {
			if seen[t] {
				return fmt.Errorf("index %d repeated", t)
			}
			seen[t] = true
			f, err := float32Of(values[k])
			if err != nil {
				return err
			}
			d.Postings = append(d.Postings, Posting{Term: t, Float: f})
		}
		docs = append(docs, d)
		return nil
	})
	return docs, err
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ReadRows reads the impact shards, in order, with shards.ReadShard.
func ReadRows(paths []string) ([]shards.Row, error) {
	var rows []shards.Row
	for _, p := range paths {
		if err := shards.ReadShard(p, func(r shards.Row) error { rows = append(rows, r); return nil }); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// Expect says what a comparison expects.
type Expect struct {
	Format string   // anserini, anserini-topics, seismic, seismic-jsonl, esbulk or qdrant
	Vocab  []string // term id -> token
	Scale  float64  // anserini, anserini-topics: impact = round(weight × Scale)
}

// Compare checks docs, read back from an export, document by document
// against the rows of the shards exported:
//
//   - the same documents, ids and order;
//   - anserini: the tokens (decoded) of the terms whose round(weight ×
//     scale), half away from zero, is not 0, with that integer;
//   - anserini-topics: the same, and the rows left without such a term are
//     not expected (the format leaves those queries out);
//   - seismic, qdrant: the term ids and the weights, bit for bit; qdrant's
//     point id is the doc_id when it is a canonical decimal below 2^64, else
//     the version 5 UUID of the doc_id in the URL name space;
//   - seismic-jsonl: the tokens and the weights, bit for bit;
//   - esbulk: the same, without the weights below 2^-126.
//
// Terms are expected in ascending term id order.
func Compare(docs []Doc, rows []shards.Row, x Expect) error {
	if x.Format == "anserini-topics" {
		var kept []shards.Row
		for _, r := range rows {
			for _, w := range r.Vec.Weights {
				if math.Round(float64(w)*x.Scale) != 0 {
					kept = append(kept, r)
					break
				}
			}
		}
		rows = kept
	}
	if len(docs) != len(rows) {
		return fmt.Errorf("%d documents exported, the shards hold %d", len(docs), len(rows))
	}
	for i, r := range rows {
		d := docs[i]
		if d.ID != r.DocID {
			return fmt.Errorf("document %d: id %q, want %q", i, d.ID, r.DocID)
		}
		if x.Format == "qdrant" {
			if want := pointID(r.DocID); d.PointID != want {
				return fmt.Errorf("document %d (%s): point id %s, want %s", i, r.DocID, d.PointID, want)
			}
		}
		var want []Posting
		for k, t := range r.Vec.Terms {
			w := r.Vec.Weights[k]
			p := Posting{Term: t, Float: w}
			if int(t) < len(x.Vocab) {
				p.Decoded = x.Vocab[t]
			}
			switch x.Format {
			case "anserini", "anserini-topics":
				p.Int = int64(math.Round(float64(w) * x.Scale))
				if p.Int == 0 {
					continue
				}
			case "esbulk":
				if w < 0x1p-126 {
					continue
				}
			}
			want = append(want, p)
		}
		if len(d.Postings) != len(want) {
			return fmt.Errorf("document %d (%s): %d postings, want %d", i, r.DocID, len(d.Postings), len(want))
		}
		for k, p := range d.Postings {
			q := want[k]
			switch x.Format {
			case "anserini", "anserini-topics":
				if p.Decoded != q.Decoded || p.Int != q.Int {
					return fmt.Errorf("document %d (%s) posting %d: %q:%d, want %q:%d", i, r.DocID, k, p.Decoded, p.Int, q.Decoded, q.Int)
				}
			case "seismic", "qdrant":
				if p.Term != q.Term || math.Float32bits(p.Float) != math.Float32bits(q.Float) {
					return fmt.Errorf("document %d (%s) posting %d: %d:%v, want %d:%v", i, r.DocID, k, p.Term, p.Float, q.Term, q.Float)
				}
			case "seismic-jsonl", "esbulk":
				if p.Decoded != q.Decoded || math.Float32bits(p.Float) != math.Float32bits(q.Float) {
					return fmt.Errorf("document %d (%s) posting %d: %q:%v, want %q:%v", i, r.DocID, k, p.Decoded, p.Float, q.Decoded, q.Float)
				}
			default:
				return fmt.Errorf("unknown format %q", x.Format)
			}
		}
	}
	return nil
}

// pointID is the expected Qdrant point id, as JSON.
func pointID(docID string) string {
	if n, err := strconv.ParseUint(docID, 10, 64); err == nil && strconv.FormatUint(n, 10) == docID {
		return docID
	}
	// RFC 9562 §5.5 with the URL name space 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
	ns := []byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	sum := sha1.Sum(append(ns, docID...))
	sum[6] = 0x50 | sum[6]&0x0f
	sum[8] = 0x80 | sum[8]&0x3f
	h := fmt.Sprintf("%x", sum[:16])
	return `"` + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + `"`
}
