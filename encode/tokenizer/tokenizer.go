package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer is a parsed tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	model  model
	norm   normalizer   // nil: none
	pre    preTokenizer // nil: none, every piece of text is one word
	raw    *patternSet  // added tokens matched in the raw text (nil: none)
	normed *patternSet  // added tokens matched in the normalized text (nil: none)

	prefix, suffix []int32 // the single-sequence template around $A

	// mode says how words reach the model: as they are, as bytes for a
	// byte-level BPE (ByteLevel pre-tokenizer), or rewritten by Metaspace.
	mode        int
	prefixSpace bool                  // byte-level: ByteLevel's add_prefix_space
	meta        metaspacePreTokenizer // modeMetaspace: its settings
	// metaCut: Metaspace does not split, but no token of the vocabulary
	// holds the replacement after another character, so no merge crosses the
	// start of a run of replacements and the word may be cut there before
	// BPE (same ids; long texts are then not one huge word).
	metaCut bool

	// chunked: texts may be encoded in pieces cut before spaces (see
	// normalizer.local), which lets truncation stop early.
	chunked bool
	// cutAfterWord: the cuts of chunked texts must moreover follow a
	// printable ASCII character (byte-level and Metaspace files, whose words
	// start with the space).
	cutAfterWord bool
	// normedCuttable: no added token matched in the normalized text holds a
	// space or strips spaces around it.
	normedCuttable bool

	added     map[string]int32 // added tokens, looked up before the model
	vocabSize int
	padID     int32
	fileMax   int // truncation.max_length of the file, 0 if none

	scratch sync.Pool // *scratch
}

// Encoding is the result of encoding one text.
type Encoding struct {
	// IDs holds the token ids, special tokens ([CLS] ... [SEP]) included.
	IDs []int32
	// Truncated reports that the text had more tokens than fit in maxLength.
	Truncated bool
}

// Word modes of a Tokenizer.
const (
	modePlain = iota
	modeByteLevel
	modeMetaspace
)

// scratch holds per-call buffers, reused through Tokenizer.scratch.
type scratch struct {
	rawMatches  []match
	normMatches []match
	norm        []byte
	words       []span
	pre         []byte // the text as ByteLevel or Metaspace rewrite it
}

// chunkSize is the length (bytes) from which a long text is cut, before the
// next space, into pieces encoded one after the other.
const chunkSize = 2048

// maxScratch bounds the normalization buffer kept for reuse.
const maxScratch = 1 << 20

// Load reads and parses a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

// Parse parses the contents of a tokenizer.json file. Whatever the bytes,
// it returns an error rather than panicking.
func Parse(data []byte) (t *Tokenizer, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("parse tokenizer.json: internal error (a bug of splash, please report it): %v", r)
		}
	}()
	return parse(data)
}

// parse is Parse without the recovery, which FuzzParse calls so that a
// panic is a crash.
func parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if f.Version != nil && *f.Version != "1.0" {
		return nil, fmt.Errorf("parse tokenizer.json: unknown version %q (want \"1.0\")", *f.Version)
	}
	t := &Tokenizer{}
	var err error
	// The model first: a BPE or Unigram file is refused for its model, the
	// most telling reason, before anything else.
	if t.model, err = parseModel(f.Model); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if !isNull(f.Normalizer) {
		if t.norm, err = parseNormalizer(f.Normalizer); err != nil {
			return nil, fmt.Errorf("parse tokenizer.json: %w", err)
		}
	}
	if !isNull(f.PreTokenizer) {
		if t.pre, err = parsePreTokenizer(f.PreTokenizer); err != nil {
			return nil, fmt.Errorf("parse tokenizer.json: %w", err)
		}
		if err := t.setMode(); err != nil {
			return nil, fmt.Errorf("parse tokenizer.json: %w", err)
		}
	}
	if !isNull(f.PostProcessor) {
		if t.prefix, t.suffix, err = parsePostProcessor(f.PostProcessor); err != nil {
			return nil, fmt.Errorf("parse tokenizer.json: %w", err)
		}
	}
	if err := t.addTokens(f.AddedTokens); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if f.Truncation != nil {
		if f.Truncation.MaxLength < 0 {
			return nil, fmt.Errorf("parse tokenizer.json: truncation.max_length %d is negative", f.Truncation.MaxLength)
		}
		t.fileMax = f.Truncation.MaxLength
	}

	for _, id := range t.model.vocabulary() {
		t.vocabSize = max(t.vocabSize, int(id)+1)
	}
	for _, id := range t.added {
		t.vocabSize = max(t.vocabSize, int(id)+1)
	}
	for _, id := range append(append([]int32(nil), t.prefix...), t.suffix...) {
		if int(id) >= t.vocabSize {
			return nil, fmt.Errorf("parse tokenizer.json: post_processor special token id %d is outside the vocabulary (size %d)", id, t.vocabSize)
		}
	}
	pad, ok := t.TokenID("[PAD]")
	if !ok {
		pad, ok = t.TokenID("<pad>")
	}
	switch {
	case f.Padding != nil && f.Padding.PadID != nil:
		if t.padID, err = checkID("padding.pad_id", *f.Padding.PadID); err != nil {
			return nil, fmt.Errorf("parse tokenizer.json: %w", err)
		}
	case ok:
		t.padID = pad
	}

	localNorm := t.norm == nil || t.norm.local()
	switch t.mode {
	case modePlain:
		t.chunked = localNorm && t.pre != nil && t.pre.splitsOnSpace() && t.normed == nil
	case modeByteLevel:
		// Both regexes never match across a space that follows a
		// non-space character, and look only ahead.
		t.chunked = localNorm && !t.prefixSpace && t.normedCuttable && onlyRegexSplits(t.pre)
		t.cutAfterWord = true
	case modeMetaspace:
		t.chunked = localNorm && t.metaCut && t.normedCuttable && t.meta.replacement[0] >= utf8.RuneSelf
		t.cutAfterWord = true
	}
	t.scratch.New = func() any { return new(scratch) }
	return t, nil
}

// setMode checks where ByteLevel and Metaspace stand in the pre-tokenizer
// (they rewrite the text, so nothing may follow them) and sets t.mode.
func (t *Tokenizer) setMode() error {
	var list []preTokenizer
	if seq, ok := t.pre.(sequencePreTokenizer); ok {
		list = seq
	} else {
		list = []preTokenizer{t.pre}
	}
	for i, p := range list {
		last := i == len(list)-1
		switch p := p.(type) {
		case sequencePreTokenizer:
			if rewrites(p) {
				return &UnsupportedError{Component: "pre_tokenizer", Type: "Sequence", Detail: "ByteLevel and Metaspace are implemented at the top level only"}
			}
		case byteLevelPreTokenizer:
			b, isBPE := t.model.(*bpe)
			if !isBPE || !last || p.addPrefixSpace && len(list) > 1 {
				return &UnsupportedError{Component: "pre_tokenizer", Type: "ByteLevel",
					Detail: "implemented with a BPE model, last in a Sequence, and with add_prefix_space only on its own"}
			}
			b.setByteLevel()
			t.mode, t.prefixSpace = modeByteLevel, p.addPrefixSpace
		case metaspacePreTokenizer:
			if _, isBPE := t.model.(*bpe); !isBPE || len(list) > 1 {
				return &UnsupportedError{Component: "pre_tokenizer", Type: "Metaspace",
					Detail: "implemented with a BPE model, on its own"}
			}
			t.mode, t.meta = modeMetaspace, p
			t.metaCut = !p.split && !joinsAcrossReplacement(t.model.vocabulary(), p.replacement)
		}
	}
	return nil
}

// rewrites reports whether p holds a ByteLevel or Metaspace pre-tokenizer.
func rewrites(p preTokenizer) bool {
	switch p := p.(type) {
	case byteLevelPreTokenizer, metaspacePreTokenizer:
		return true
	case sequencePreTokenizer:
		for _, q := range p {
			if rewrites(q) {
				return true
			}
		}
	}
	return false
}

// addTokens registers added_tokens like HF's AddedVocabulary, one token at a
// time in file order: a token already in the vocabulary keeps that id, any
// other gets the next free id after the model's vocabulary (HF does not use
// the file's "id" field either).
func (t *Tokenizer) addTokens(tokens []addedToken) error {
	t.added = make(map[string]int32)
	byID := make(map[int32]addedToken)
	var specials, plain []addedToken
	specialSet := make(map[string]bool)
	modelSize := int64(len(t.model.vocabulary()))
	for _, tok := range tokens {
		if tok.Special && tok.Content != "" && !specialSet[tok.Content] {
			specials = append(specials, tok)
			specialSet[tok.Content] = true
		}
		if tok.Content == "" {
			continue
		}
		dup := false
		for _, old := range byID {
			if old.same(tok) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		id, ok := t.TokenID(tok.Content)
		if !ok {
			next := modelSize
			if len(t.added) > 0 {
				var mx int64 = -1
				for _, v := range t.added {
					mx = max(mx, int64(v))
				}
				if mx >= modelSize || modelSize == 0 {
					next = mx + 1
				}
			}
			v, err := checkID(fmt.Sprintf("added token %q", tok.Content), next)
			if err != nil {
				return err
			}
			id = v
		}
		t.added[tok.Content] = id
		byID[id] = tok
		if !specialSet[tok.Content] {
			plain = append(plain, tok)
		}
	}

	var rawPatterns, normPatterns []string
	var rawRules, normRules []matchRule
	for _, tok := range append(specials, plain...) {
		id, _ := t.TokenID(tok.Content)
		cur := byID[id]
		rule := matchRule{id: id, singleWord: cur.SingleWord, lstrip: cur.LStrip, rstrip: cur.RStrip}
		if tok.Normalized {
			p := tok.Content
			if t.norm != nil {
				p = string(t.norm.appendNormalized(nil, p))
			}
			normPatterns = append(normPatterns, p)
			normRules = append(normRules, rule)
		} else {
			rawPatterns = append(rawPatterns, tok.Content)
			rawRules = append(rawRules, rule)
		}
	}
	if len(rawPatterns) > 0 {
		t.raw = &patternSet{m: newMatcher(rawPatterns), rules: rawRules}
	}
	t.normedCuttable = true
	for i, p := range normPatterns {
		if strings.Contains(p, " ") || normRules[i].lstrip || normRules[i].rstrip {
			t.normedCuttable = false
		}
	}
	if len(normPatterns) > 0 && hasNonEmpty(normPatterns) {
		t.normed = &patternSet{m: newMatcher(normPatterns), rules: normRules}
	}
	return nil
}

func hasNonEmpty(ps []string) bool {
	for _, p := range ps {
		if p != "" {
			return true
		}
	}
	return false
}

// ValidateMaxLength reports whether n is a usable maxLength for Encode: n <= 0
// (no truncation) or at least NumSpecialTokens.
func (t *Tokenizer) ValidateMaxLength(n int) error {
	if n > 0 && n < t.NumSpecialTokens() {
		return fmt.Errorf("tokenizer: max length %d is smaller than the %d special tokens the template adds", n, t.NumSpecialTokens())
	}
	return nil
}

// NumSpecialTokens is the number of ids the single-sequence template adds
// around the text (2 for BERT's [CLS] $A [SEP], 0 for gpt2, 1 for
// mistral-7b's <s> $A).
func (t *Tokenizer) NumSpecialTokens() int { return len(t.prefix) + len(t.suffix) }

// VocabSize is the number of ids: the largest id of the vocabulary and the
// added tokens, plus one.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// Vocab returns a new slice mapping each id to its token (added tokens
// included; "" for an id nothing maps to).
// When a broken file gives two tokens one id, the smaller token is kept, so
// that Vocab (and the vocabulary file written from it) is the same in every
// run whatever the order of Go's map iteration.
func (t *Tokenizer) Vocab() []string {
	v := make([]string, t.vocabSize)
	for _, m := range []map[string]int32{t.model.vocabulary(), t.added} {
		set := make([]bool, t.vocabSize)
		for tok, id := range m {
			if !set[id] || tok < v[id] {
				v[id], set[id] = tok, true
			}
		}
	}
	return v
}

// TokenID returns the id of a token: an added token's, else the model's.
func (t *Tokenizer) TokenID(tok string) (int32, bool) {
	if id, ok := t.added[tok]; ok {
		return id, true
	}
	id, ok := t.model.vocabulary()[tok]
	return id, ok
}

// PadID is the padding id: padding.pad_id of the file if set, else the id of
// "[PAD]" or "<pad>", else 0 (gpt2 and mistral-7b, which have no pad token:
// padded positions must be hidden by the attention mask, as always).
func (t *Tokenizer) PadID() int32 { return t.padID }

// UnkID is the id of the model's unknown token, or -1 for a model without one
// (byte-level BPE such as GPT-2's, which needs none).
func (t *Tokenizer) UnkID() int32 {
	if id, ok := t.model.unknown(); ok {
		return id
	}
	return -1
}

// FileMaxLength is truncation.max_length of the tokenizer.json (0 if the file
// sets no truncation). Encode never applies it by itself: callers that want
// the file's default pass it as maxLength.
func (t *Tokenizer) FileMaxLength() int { return t.fileMax }

// Encode tokenizes text. maxLength <= 0 means no truncation; otherwise the
// content is cut to maxLength - NumSpecialTokens ids (HF's truncation with
// strategy longest_first, direction right, stride 0), so the result has at
// most maxLength ids and keeps the final [SEP]. A maxLength below
// NumSpecialTokens (see ValidateMaxLength) drops all content: the result is
// the special tokens alone.
func (t *Tokenizer) Encode(text string, maxLength int) Encoding {
	// About one id per 4 bytes of English text: one allocation, usually.
	n := len(text)/4 + t.NumSpecialTokens() + 1
	if maxLength > 0 {
		n = min(n, maxLength)
	}
	return t.EncodeInto(make([]int32, 0, n), text, maxLength)
}

// EncodeInto is Encode storing the ids in dst's storage when it is large
// enough (the returned IDs alias dst then).
func (t *Tokenizer) EncodeInto(dst []int32, text string, maxLength int) Encoding {
	s := t.scratch.Get().(*scratch)
	e := encoder{t: t, s: s, ids: append(dst[:0], t.prefix...), limit: -1}
	e.base = len(e.ids)
	if maxLength > 0 {
		e.limit = max(maxLength-t.NumSpecialTokens(), 0)
	}
	e.run(text)
	ids := e.ids
	if e.full() {
		ids = ids[:e.base+e.limit]
	}
	ids = append(ids, t.suffix...)
	if cap(s.norm) <= maxScratch && cap(s.pre) <= maxScratch {
		t.scratch.Put(s) // huge buffers of a rare huge text are left to the GC
	}
	return Encoding{IDs: ids, Truncated: e.full()}
}

// encoder is the state of one Encode call.
type encoder struct {
	t     *Tokenizer
	s     *scratch
	ids   []int32
	base  int // len(prefix)
	limit int // content ids allowed, -1 for no limit
}

// full reports that more content ids than the limit were produced: the text
// is truncated and the rest need not be looked at.
func (e *encoder) full() bool { return e.limit >= 0 && len(e.ids)-e.base > e.limit }

func (e *encoder) run(text string) {
	t := e.t
	if t.raw == nil {
		e.segment(text, true)
		return
	}
	e.s.rawMatches = appendMatches(e.s.rawMatches[:0], t.raw, text)
	pos := 0
	for _, m := range e.s.rawMatches {
		if pos < m.start {
			e.segment(text[pos:m.start], pos == 0)
		}
		if e.full() {
			return
		}
		e.ids = append(e.ids, m.id)
		pos = m.end
	}
	if pos < len(text) && !e.full() {
		e.segment(text[pos:], pos == 0)
	}
}

// segment encodes text between added tokens; atStart: it begins the input.
func (e *encoder) segment(seg string, atStart bool) {
	if e.full() {
		return
	}
	if !e.t.chunked || len(seg) <= chunkSize {
		e.piece(seg, atStart)
		return
	}
	for pos := 0; pos < len(seg) && !e.full(); {
		end := pos + chunkSize
		if end >= len(seg) {
			end = len(seg)
		} else {
			end = e.t.cutAt(seg, end)
		}
		e.piece(seg[pos:end], atStart && pos == 0)
		pos = end
	}
}

// cutAt returns where a chunk that reaches at least from ends: before the
// next space where the text may be cut, or at the end.
func (t *Tokenizer) cutAt(seg string, from int) int {
	for {
		k := strings.IndexByte(seg[from:], ' ')
		if k < 0 {
			return len(seg)
		}
		at := from + k
		if !t.cutAfterWord || '!' <= seg[at-1] && seg[at-1] <= '~' {
			return at
		}
		from = at + 1
	}
}

// onlyRegexSplits reports whether a byte-level pre-tokenizer is ByteLevel,
// or a Sequence of Splits and ByteLevel.
func onlyRegexSplits(p preTokenizer) bool {
	switch p := p.(type) {
	case byteLevelPreTokenizer, splitPreTokenizer:
		return true
	case sequencePreTokenizer:
		for _, q := range p {
			if !onlyRegexSplits(q) {
				return false
			}
		}
		return true
	}
	return false
}

// piece normalizes a piece of text and encodes it.
func (e *encoder) piece(p string, atStart bool) {
	t, s := e.t, e.s
	if t.norm != nil {
		s.norm = t.norm.appendNormalized(s.norm[:0], p)
	} else {
		s.norm = appendValid(s.norm[:0], p)
	}
	text := s.norm
	if t.normed == nil {
		e.words(text, atStart)
		return
	}
	s.normMatches = appendMatches(s.normMatches[:0], t.normed, text)
	pos := 0
	for _, m := range s.normMatches {
		if pos < m.start {
			e.words(text[pos:m.start], atStart && pos == 0)
		}
		if e.full() {
			return
		}
		e.ids = append(e.ids, m.id)
		pos = m.end
	}
	if pos < len(text) {
		e.words(text[pos:], atStart && pos == 0)
	}
}

// words pre-tokenizes normalized text and runs the model on each word.
func (e *encoder) words(text []byte, atStart bool) {
	if e.full() || len(text) == 0 {
		return
	}
	t, s := e.t, e.s
	switch t.mode {
	case modeByteLevel:
		if t.prefixSpace && text[0] != ' ' {
			s.pre = append(append(s.pre[:0], ' '), text...)
			text = s.pre
		}
	case modeMetaspace:
		s.pre = t.meta.transform(s.pre[:0], text, atStart)
		text = s.pre
	}
	if t.pre == nil {
		e.ids = t.model.appendIDs(e.ids, text)
		return
	}
	if t.metaCut {
		s.words = appendReplacementRuns(s.words[:0], text, t.meta.replacement)
	} else {
		s.words = t.pre.appendWords(s.words[:0], text, 0)
	}
	for _, w := range s.words {
		e.ids = t.model.appendIDs(e.ids, text[w.start:w.end])
		if e.full() {
			return
		}
	}
}
