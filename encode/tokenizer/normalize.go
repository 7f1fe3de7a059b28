package tokenizer

import (
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer is one tokenizer.json normalizer.
type normalizer interface {
	// appendNormalized appends the normalized form of src to dst.
	appendNormalized(dst []byte, src string) []byte
	// local reports whether normalizing two strings separately and joining
	// the results equals normalizing their concatenation, whenever the second
	// one starts with U+0020. Encode then may work through long texts in
	// pieces cut before spaces and stop once enough tokens were produced.
	local() bool
}

// bertNormalizer is HF's BertNormalizer: clean_text, handle_chinese_chars,
// strip_accents (NFD, then drop nonspacing marks) and lowercase, in that order.
type bertNormalizer struct {
	clean, chinese, strip, lower bool
	// ascii maps an ASCII byte to its output byte, or -1 to drop it.
	ascii [utf8.RuneSelf]int16
}

func newBertNormalizer(clean, chinese, strip, lower bool) *bertNormalizer {
	n := &bertNormalizer{clean: clean, chinese: chinese, strip: strip, lower: lower}
	for b := range utf8.RuneSelf {
		out := int16(b)
		if clean {
			switch {
			case b == 0 || hfDrop.contains(rune(b)):
				out = -1
			case hfCleanSpace.contains(rune(b)):
				out = ' '
			}
		}
		if lower && 'A' <= out && out <= 'Z' {
			out += 'a' - 'A'
		}
		n.ascii[b] = out
	}
	return n
}

func (n *bertNormalizer) local() bool { return true }

func (n *bertNormalizer) appendNormalized(dst []byte, src string) []byte {
	// marks collects a run of combining marks (non-zero combining class) for
	// canonical reordering; short runs stay on the stack.
	var arr [16]rune
	marks := arr[:0]
	for i := 0; i < len(src); {
		if c := src[i]; c < utf8.RuneSelf {
			i++
			o := n.ascii[c]
			if o < 0 {
				continue
			}
			if len(marks) > 0 {
				dst, marks = n.flushMarks(dst, marks)
			}
			dst = append(dst, byte(o))
			continue
		}
		r, size := decodeRune(src[i:])
		i += size
		if n.clean {
			if r == 0xFFFD || hfDrop.contains(r) {
				continue
			}
			if hfCleanSpace.contains(r) {
				r = ' '
			}
		}
		if n.chinese && hfCJK.contains(r) {
			dst, marks = n.emit(dst, ' ', marks)
			dst, marks = n.emit(dst, r, marks)
			dst, marks = n.emit(dst, ' ', marks)
			continue
		}
		dst, marks = n.emit(dst, r, marks)
	}
	if len(marks) > 0 {
		dst, _ = n.flushMarks(dst, marks)
	}
	return dst
}

// emit passes r through the strip_accents and lowercase steps.
func (n *bertNormalizer) emit(dst []byte, r rune, marks []rune) ([]byte, []rune) {
	if !n.strip {
		return n.out(dst, r), marks // marks are only buffered when stripping
	}
	var buf [4]rune
	k := decompose(r, &buf)
	for _, d := range buf[:k] {
		if combiningClass(d) == 0 {
			if len(marks) > 0 {
				dst, marks = n.flushMarks(dst, marks)
			}
			dst = n.out(dst, d)
		} else {
			marks = append(marks, d)
		}
	}
	return dst, marks
}

// flushMarks writes the buffered marks out in canonical order and empties
// the buffer.
func (n *bertNormalizer) flushMarks(dst []byte, marks []rune) ([]byte, []rune) {
	sortMarks(marks)
	for _, m := range marks {
		dst = n.out(dst, m)
	}
	return dst, marks[:0]
}

// sortMarks sorts a run of combining marks by combining class, stably, as the
// canonical ordering algorithm requires.
func sortMarks(marks []rune) {
	if len(marks) > 1 {
		slices.SortStableFunc(marks, func(a, b rune) int {
			return int(combiningClass(a)) - int(combiningClass(b))
		})
	}
}

// out applies the nonspacing-mark filter (when stripping) and lowercasing.
func (n *bertNormalizer) out(dst []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if n.lower && 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, byte(r))
	}
	if n.strip && hfMn.contains(r) {
		return dst
	}
	if n.lower {
		return appendLower(dst, r)
	}
	return utf8.AppendRune(dst, r)
}

// nfdNormalizer is HF's NFD normalizer (with HF's Unicode data).
type nfdNormalizer struct{}

func (nfdNormalizer) local() bool { return true }

func (nfdNormalizer) appendNormalized(dst []byte, src string) []byte {
	var arr [16]rune
	marks := arr[:0]
	for i := 0; i < len(src); {
		r, size := decodeRune(src[i:])
		i += size
		var buf [4]rune
		k := decompose(r, &buf)
		for _, d := range buf[:k] {
			if combiningClass(d) != 0 {
				marks = append(marks, d)
				continue
			}
			sortMarks(marks)
			for _, m := range marks {
				dst = utf8.AppendRune(dst, m)
			}
			marks = marks[:0]
			dst = utf8.AppendRune(dst, d)
		}
	}
	sortMarks(marks)
	for _, m := range marks {
		dst = utf8.AppendRune(dst, m)
	}
	return dst
}

// lowercaseNormalizer is HF's Lowercase normalizer.
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) local() bool { return true }

func (lowercaseNormalizer) appendNormalized(dst []byte, src string) []byte {
	for i := 0; i < len(src); {
		r, size := decodeRune(src[i:])
		i += size
		dst = appendLower(dst, r)
	}
	return dst
}

// stripAccentsNormalizer is HF's StripAccents normalizer: it removes combining
// marks (it does not decompose; pair it with NFD or NFKD).
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) local() bool { return true }

func (stripAccentsNormalizer) appendNormalized(dst []byte, src string) []byte {
	for i := 0; i < len(src); {
		r, size := decodeRune(src[i:])
		i += size
		if r >= 0x300 && hfMarks.contains(r) {
			continue
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// stripNormalizer is HF's Strip normalizer (whitespace at either end).
type stripNormalizer struct{ left, right bool }

func (stripNormalizer) local() bool { return false }

func (s stripNormalizer) appendNormalized(dst []byte, src string) []byte {
	if s.left {
		for len(src) > 0 {
			r, size := decodeRune(src)
			if !isRustWhitespace(r) {
				break
			}
			src = src[size:]
		}
	}
	if s.right {
		for len(src) > 0 {
			r, size := utf8.DecodeLastRuneInString(src)
			if !isRustWhitespace(r) {
				break
			}
			src = src[:len(src)-size]
		}
	}
	return appendValid(dst, src)
}

// unicodeFormNormalizer is NFC, NFKC or NFKD through golang.org/x/text, whose
// Unicode data may differ from HF's for recently assigned characters.
type unicodeFormNormalizer struct{ form norm.Form }

func (unicodeFormNormalizer) local() bool { return false }

func (u unicodeFormNormalizer) appendNormalized(dst []byte, src string) []byte {
	if !utf8.ValidString(src) {
		src = string(appendValid(nil, src))
	}
	return u.form.AppendString(dst, src)
}

// sequenceNormalizer applies normalizers in order.
type sequenceNormalizer []normalizer

func (s sequenceNormalizer) local() bool {
	for _, n := range s {
		if !n.local() {
			return false
		}
	}
	return true
}

func (s sequenceNormalizer) appendNormalized(dst []byte, src string) []byte {
	if len(s) == 0 {
		return appendValid(dst, src)
	}
	cur := src
	for _, n := range s[:len(s)-1] {
		cur = string(n.appendNormalized(nil, cur))
	}
	return s[len(s)-1].appendNormalized(dst, cur)
}

// appendValid appends src to dst with every invalid UTF-8 byte replaced by
// U+FFFD.
func appendValid(dst []byte, src string) []byte {
	if utf8.ValidString(src) {
		return append(dst, src...)
	}
	for i := 0; i < len(src); {
		r, size := decodeRune(src[i:])
		i += size
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// prependNormalizer is HF's Prepend: the string before any non-empty text.
type prependNormalizer string

func (prependNormalizer) local() bool { return false }

func (p prependNormalizer) appendNormalized(dst []byte, src string) []byte {
	if src == "" {
		return dst
	}
	return appendValid(append(dst, p...), src)
}

// replaceNormalizer is HF's Replace with a String pattern: every
// non-overlapping occurrence, leftmost first, replaced by content.
type replaceNormalizer struct{ pattern, content string }

func (replaceNormalizer) local() bool { return false }

func (r replaceNormalizer) appendNormalized(dst []byte, src string) []byte {
	start := len(dst)
	dst = appendValid(dst, src)
	text := string(dst[start:])
	return append(dst[:start], strings.ReplaceAll(text, r.pattern, r.content)...)
}
