package tokenizer

import "unicode/utf8"

// runeRanges is a sorted list of disjoint inclusive code point ranges.
type runeRanges [][2]rune

// contains reports whether r lies in one of the ranges (binary search).
func (t runeRanges) contains(r rune) bool {
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < t[m][0]:
			hi = m
		case r > t[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// classRange gives the rank of the canonical combining class of lo..hi.
type classRange struct {
	lo, hi rune
	class  uint8
}

// decompEntry is the full canonical decomposition of one code point.
type decompEntry struct {
	r rune
	n uint8
	d [4]rune
}

// lowerEntry is the lowercase mapping of one code point.
type lowerEntry struct {
	r rune
	n uint8
	l [3]rune
}

// combiningClass returns the rank of r's canonical combining class in HF's
// NFD (0 for starters).
func combiningClass(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	t := hfCombining[:]
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < t[m].lo:
			hi = m
		case r > t[m].hi:
			lo = m + 1
		default:
			return t[m].class
		}
	}
	return 0
}

const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulTCount = 28
	hangulNCount = 588
	hangulSCount = 11172
)

// decompose writes the canonical decomposition of r (or r itself) to buf and
// returns the number of runes written.
func decompose(r rune, buf *[4]rune) int {
	if r < 0xC0 {
		buf[0] = r
		return 1
	}
	if s := r - hangulSBase; s >= 0 && s < hangulSCount {
		buf[0] = hangulLBase + s/hangulNCount
		buf[1] = hangulVBase + (s%hangulNCount)/hangulTCount
		if t := s % hangulTCount; t != 0 {
			buf[2] = hangulTBase + t
			return 3
		}
		return 2
	}
	t := hfDecomp[:]
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < t[m].r:
			hi = m
		case r > t[m].r:
			lo = m + 1
		default:
			*buf = t[m].d
			return int(t[m].n)
		}
	}
	buf[0] = r
	return 1
}

// appendLower appends the lowercase form of r (Rust's char::to_lowercase, as
// HF's Lowercase and BertNormalizer use it).
func appendLower(dst []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, byte(r))
	}
	t := hfLower[:]
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < t[m].r:
			hi = m
		case r > t[m].r:
			lo = m + 1
		default:
			for _, l := range t[m].l[:t[m].n] {
				dst = utf8.AppendRune(dst, l)
			}
			return dst
		}
	}
	return utf8.AppendRune(dst, r)
}

// isRustWhitespace is Rust's char::is_whitespace (Unicode White_Space), which
// is also what the regex class \s matches.
func isRustWhitespace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return 0x2000 <= r && r <= 0x200A
}

// isRegexWord is the class \w of HF's regexes (Alphabetic, marks, decimal
// numbers, connector punctuation, Join_Control, in the Unicode version of the
// reference).
func isRegexWord(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
	}
	return hfWord.contains(r)
}

// decodeRune decodes the first rune of s; an invalid byte decodes as U+FFFD
// of width 1 (the package's invalid UTF-8 rule).
func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	c := s[0]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(string(s[:min(len(s), utf8.UTFMax)]))
}
