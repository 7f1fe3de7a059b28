package tokenizer

import "unicode/utf8"

// span is a word: the byte range [start, end) of the normalized text.
type span struct{ start, end int }

// preTokenizer is one tokenizer.json pre-tokenizer.
type preTokenizer interface {
	// appendWords appends the words of s (never empty), with offsets shifted
	// by base, to dst.
	appendWords(dst []span, s []byte, base int) []span
	// splitsOnSpace reports whether U+0020 always ends a word and is never
	// part of one, so a text cut before a space gives the same words.
	splitsOnSpace() bool
}

// Character classes of the pre-tokenizers.
const (
	classWord  = iota // part of a word
	classSpace        // separates words, removed
	classPunct        // a word of its own (BertPreTokenizer)
)

// bertPreTokenizer is HF's BertPreTokenizer: split on whitespace (removed),
// then isolate every punctuation character.
type bertPreTokenizer struct {
	ascii [utf8.RuneSelf]uint8
}

func newBertPreTokenizer() *bertPreTokenizer {
	p := &bertPreTokenizer{}
	for b := range utf8.RuneSelf {
		p.ascii[b] = bertClass(rune(b))
	}
	return p
}

func bertClass(r rune) uint8 {
	switch {
	case r == ' ' || hfPreSpace.contains(r):
		return classSpace
	case hfPunct.contains(r):
		return classPunct
	}
	return classWord
}

func (*bertPreTokenizer) splitsOnSpace() bool { return true }

func (p *bertPreTokenizer) appendWords(dst []span, s []byte, base int) []span {
	start := -1
	for i := 0; i < len(s); {
		var class uint8
		size := 1
		if c := s[i]; c < utf8.RuneSelf {
			class = p.ascii[c]
		} else {
			var r rune
			r, size = decodeRune(s[i:])
			class = bertClass(r)
		}
		switch class {
		case classWord:
			if start < 0 {
				start = i
			}
		case classSpace:
			if start >= 0 {
				dst = append(dst, span{base + start, base + i})
				start = -1
			}
		default:
			if start >= 0 {
				dst = append(dst, span{base + start, base + i})
				start = -1
			}
			dst = append(dst, span{base + i, base + i + size})
		}
		i += size
	}
	if start >= 0 {
		dst = append(dst, span{base + start, base + len(s)})
	}
	return dst
}

// whitespaceSplitPreTokenizer is HF's WhitespaceSplit: split on whitespace.
type whitespaceSplitPreTokenizer struct{}

func (whitespaceSplitPreTokenizer) splitsOnSpace() bool { return true }

func (whitespaceSplitPreTokenizer) appendWords(dst []span, s []byte, base int) []span {
	start := -1
	for i := 0; i < len(s); {
		r, size := decodeRune(s[i:])
		if isRustWhitespace(r) {
			if start >= 0 {
				dst = append(dst, span{base + start, base + i})
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		dst = append(dst, span{base + start, base + len(s)})
	}
	return dst
}

// whitespacePreTokenizer is HF's Whitespace: the matches of \w+|[^\w\s]+.
type whitespacePreTokenizer struct{}

func (whitespacePreTokenizer) splitsOnSpace() bool { return true }

func (whitespacePreTokenizer) appendWords(dst []span, s []byte, base int) []span {
	start, cur := -1, uint8(0)
	for i := 0; i < len(s); {
		r, size := decodeRune(s[i:])
		class := uint8(classPunct)
		switch {
		case isRegexWord(r):
			class = classWord
		case isRustWhitespace(r):
			class = classSpace
		}
		if start >= 0 && class != cur {
			dst = append(dst, span{base + start, base + i})
			start = -1
		}
		if start < 0 && class != classSpace {
			start, cur = i, class
		}
		i += size
	}
	if start >= 0 {
		dst = append(dst, span{base + start, base + len(s)})
	}
	return dst
}

// sequencePreTokenizer applies pre-tokenizers in order, each to the words of
// the previous one.
type sequencePreTokenizer []preTokenizer

func (s sequencePreTokenizer) splitsOnSpace() bool {
	for _, p := range s {
		if p.splitsOnSpace() {
			return true
		}
	}
	return false
}

func (s sequencePreTokenizer) appendWords(dst []span, text []byte, base int) []span {
	if len(s) == 0 {
		if len(text) > 0 {
			dst = append(dst, span{base, base + len(text)})
		}
		return dst
	}
	cur := s[0].appendWords(nil, text, 0)
	for _, p := range s[1:] {
		var next []span
		for _, w := range cur {
			next = p.appendWords(next, text[w.start:w.end], w.start)
		}
		cur = next
	}
	for _, w := range cur {
		dst = append(dst, span{base + w.start, base + w.end})
	}
	return dst
}
