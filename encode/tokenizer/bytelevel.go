package tokenizer

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// The regexes of the byte-level pre-tokenizers. Go's regexp has no
// look-ahead (\s+(?!\S)), so both are matched by hand (gpt2Match and
// llama3Match), following the alternation order of a backtracking engine.
const (
	// gpt2Pattern is GPT-2's, used by ByteLevel with use_regex.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// llama3Pattern is Llama 3's Split pattern.
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// Character classes of the regexes: \p{L}, \p{N}, \s and the rest.
const (
	ccOther = iota
	ccLetter
	ccNumber
	ccSpace
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for b := range utf8.RuneSelf {
		t[b] = runeClass(rune(b))
	}
	return t
}()

// runeClass classifies r with the reference's Unicode data (tables_regex.go,
// newer than Go's unicode package), not Go's.
func runeClass(r rune) uint8 {
	switch {
	case hfRegexLetter.contains(r):
		return ccLetter
	case hfRegexNumber.contains(r):
		return ccNumber
	case isRustWhitespace(r):
		return ccSpace
	}
	return ccOther
}

// runeAt decodes the rune at s[i]; at the end it returns (-1, 0).
func runeAt(s []byte, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return decodeRune(s[i:])
}

// classAt returns the class of the rune at s[i] and its size; at the end the
// class is 255.
func classAt(s []byte, i int) (uint8, int) {
	if i >= len(s) {
		return 255, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := decodeRune(s[i:])
	return runeClass(r), n
}

// runEnd returns the end of the run of runes of class c that starts at i.
func runEnd(s []byte, i int, c uint8) int {
	for i < len(s) {
		ci, n := classAt(s, i)
		if ci != c {
			break
		}
		i += n
	}
	return i
}

// contraction returns the end of 's, 't, 're, 've, 'm, 'll or 'd when s[i]
// is the quote, or -1. With fold the letters match case-insensitively (as
// (?i:...) does, where U+017F LATIN SMALL LETTER LONG S folds to s).
func contraction(s []byte, i int, fold bool) int {
	at := func(j int) byte {
		if j >= len(s) {
			return 0
		}
		c := s[j]
		if fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c
	}
	switch at(i + 1) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if at(i+2) == 'e' {
			return i + 3
		}
	case 'l':
		if at(i+2) == 'l' {
			return i + 3
		}
	case 0xC5:
		if fold && i+2 < len(s) && s[i+2] == 0xBF { // U+017F
			return i + 3
		}
	}
	return -1
}

// spaceTail matches \s+(?!\S)|\s+ at the whitespace rune s[i]: the run of
// whitespace but its last rune when a non-space follows and the run has
// more than one rune.
func spaceTail(s []byte, i int) int {
	j := runEnd(s, i, ccSpace)
	if j == len(s) {
		return j
	}
	_, n := utf8.DecodeLastRune(s[i:j])
	if j-n > i {
		return j - n
	}
	return j
}

// gpt2Match returns the end of the match of gpt2Pattern at i < len(s).
func gpt2Match(s []byte, i int) int {
	if s[i] == '\'' {
		if j := contraction(s, i, false); j > 0 {
			return j
		}
	}
	c, n := classAt(s, i)
	if s[i] == ' ' {
		// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
		if c2, _ := classAt(s, i+1); c2 != ccSpace && c2 != 255 {
			return runEnd(s, i+1, c2)
		}
	}
	if c != ccSpace {
		return runEnd(s, i+n, c)
	}
	return spaceTail(s, i)
}

// llama3Match returns the end of the match of llama3Pattern at i < len(s).
func llama3Match(s []byte, i int) int {
	if s[i] == '\'' {
		if j := contraction(s, i, true); j > 0 {
			return j
		}
	}
	c, n := classAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == ccLetter {
		return runEnd(s, i+n, ccLetter)
	}
	if c != ccNumber && s[i] != '\r' && s[i] != '\n' {
		if c2, _ := classAt(s, i+n); c2 == ccLetter {
			return runEnd(s, i+n, ccLetter)
		}
	}
	// \p{N}{1,3}
	if c == ccNumber {
		j := i + n
		for k := 0; k < 2; k++ {
			c2, n2 := classAt(s, j)
			if c2 != ccNumber {
				break
			}
			j += n2
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if c == ccOther {
		start = i
	} else if s[i] == ' ' {
		if c2, _ := classAt(s, i+1); c2 == ccOther {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runEnd(s, start, ccOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// \s*[\r\n]+: the whitespace run up to its last \r or \n.
	j := runEnd(s, i, ccSpace)
	if k := bytes.LastIndexAny(s[i:j], "\r\n"); k >= 0 {
		return i + k + 1
	}
	return spaceTail(s, i)
}

// appendRegexWords appends the matches of a pattern covering all of s.
func appendRegexWords(dst []span, s []byte, base int, match func([]byte, int) int) []span {
	for i := 0; i < len(s); {
		j := match(s, i)
		dst = append(dst, span{base + i, base + j})
		i = j
	}
	return dst
}

// byteLevelPreTokenizer is HF's ByteLevel pre-tokenizer. Its splitting (GPT-2's
// regex if useRegex) happens here; add_prefix_space and the mapping of bytes
// to characters happen in the encoder and the BPE model.
type byteLevelPreTokenizer struct {
	addPrefixSpace, useRegex bool
}

func (byteLevelPreTokenizer) splitsOnSpace() bool { return false }

func (p byteLevelPreTokenizer) appendWords(dst []span, s []byte, base int) []span {
	if !p.useRegex {
		if len(s) > 0 {
			dst = append(dst, span{base, base + len(s)})
		}
		return dst
	}
	return appendRegexWords(dst, s, base, gpt2Match)
}

// splitPreTokenizer is HF's Split with behavior Isolated (every match is a
// word) for the two regexes above.
type splitPreTokenizer struct {
	match func([]byte, int) int
}

func (splitPreTokenizer) splitsOnSpace() bool { return false }

func (p splitPreTokenizer) appendWords(dst []span, s []byte, base int) []span {
	return appendRegexWords(dst, s, base, p.match)
}

// Metaspace prepend schemes.
const (
	prependAlways = iota
	prependFirst
	prependNever
)

// metaspacePreTokenizer is HF's Metaspace. The encoder replaces spaces and
// prepends the replacement (transform); appendWords then splits the
// transformed text before each replacement when split is set.
type metaspacePreTokenizer struct {
	replacement string
	prepend     int
	split       bool
}

func (metaspacePreTokenizer) splitsOnSpace() bool { return false }

// transform appends to dst the text as Metaspace rewrites it: every U+0020
// replaced, and the replacement prepended unless the text already starts
// with it (after the replacement) or the scheme says no (first: only for the
// text at the start of the input).
func (p metaspacePreTokenizer) transform(dst, text []byte, atStart bool) []byte {
	startsWith := text[0] == ' ' || bytes.HasPrefix(text, []byte(p.replacement))
	if !startsWith && (p.prepend == prependAlways || p.prepend == prependFirst && atStart) {
		dst = append(dst, p.replacement...)
	}
	for len(text) > 0 {
		k := bytes.IndexByte(text, ' ')
		if k < 0 {
			return append(dst, text...)
		}
		dst = append(append(dst, text[:k]...), p.replacement...)
		text = text[k+1:]
	}
	return dst
}

func (p metaspacePreTokenizer) appendWords(dst []span, s []byte, base int) []span {
	if !p.split || p.replacement == "" {
		if len(s) > 0 {
			dst = append(dst, span{base, base + len(s)})
		}
		return dst
	}
	start := 0
	for i := 0; i < len(s); {
		k := bytes.Index(s[i:], []byte(p.replacement))
		if k < 0 {
			break
		}
		if i+k > start {
			dst = append(dst, span{base + start, base + i + k})
			start = i + k
		}
		i += k + len(p.replacement)
	}
	if start < len(s) {
		dst = append(dst, span{base + start, base + len(s)})
	}
	return dst
}

// joinsAcrossReplacement reports whether a token holds rep right after
// another character.
func joinsAcrossReplacement(vocab map[string]int32, rep string) bool {
	for tok := range vocab {
		for i := 1; i < len(tok); i++ {
			if strings.HasPrefix(tok[i:], rep) && !strings.HasSuffix(tok[:i], rep) {
				return true
			}
		}
	}
	return false
}

// appendReplacementRuns cuts s before each run of rep that follows another
// character.
func appendReplacementRuns(dst []span, s []byte, rep string) []span {
	start := 0
	for i := 1; i < len(s); {
		k := bytes.Index(s[i:], []byte(rep))
		if k < 0 {
			break
		}
		at := i + k
		if !bytes.HasSuffix(s[:at], []byte(rep)) {
			dst = append(dst, span{start, at})
			start = at
		}
		i = at + len(rep)
	}
	return append(dst, span{start, len(s)})
}
