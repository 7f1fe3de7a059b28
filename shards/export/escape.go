package export

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// EscapeToken returns tok as the format writes it (see "Tokens" in the
// package documentation): bytes that are not UTF-8, the format's own special
// characters and a '%' followed by two hex digits are percent-encoded;
// everything else is kept. Formats without tokens return tok unchanged.
func (f Format) EscapeToken(tok string) string {
	var special func(rune) bool
	switch f {
	case FormatAnserini, FormatAnseriniTopics:
		special = isAnseriniSpace
	case FormatESBulk:
		special = func(r rune) bool { return r == '.' }
	case FormatSeismicJSONL:
		special = func(rune) bool { return false }
	default:
		return tok
	}
	return escapeToken(tok, special)
}

// isAnseriniSpace reports the runes that split an Anserini pseudo-document:
// Go's white space and, like Java's Character.isWhitespace, U+001C..U+001F.
func isAnseriniSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func escapeToken(tok string, special func(rune) bool) string {
	var b []byte // nil until something needs escaping
	for i := 0; i < len(tok); {
		r, size := utf8.DecodeRuneInString(tok[i:])
		esc := (r == utf8.RuneError && size == 1) || special(r) ||
			(r == '%' && i+2 < len(tok) && isHexDigit(tok[i+1]) && isHexDigit(tok[i+2]))
		if esc && b == nil {
			b = append(make([]byte, 0, len(tok)+8), tok[:i]...)
		}
		switch {
		case esc:
			for _, c := range []byte(tok[i : i+size]) {
				b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
			}
		case b != nil:
			b = append(b, tok[i:i+size]...)
		}
		i += size
	}
	if b == nil {
		return tok
	}
	return string(b)
}

const upperHex = "0123456789ABCDEF"

func isHexDigit(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// namespaceURL is RFC 9562's name space for URLs,
// 6ba7b811-9dad-11d1-80b4-00c04fd430c8 (Python's uuid.NAMESPACE_URL).
var namespaceURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// QdrantPointID returns the Qdrant point id of a doc_id as a JSON value: the
// doc_id itself when it is a canonical decimal below 2^64, else the quoted
// version 5 UUID of the doc_id in the URL name space.
func QdrantPointID(docID string) string {
	return string(appendPointID(nil, docID))
}

func appendPointID(b []byte, docID string) []byte {
	if isCanonicalUint64(docID) {
		return append(b, docID...)
	}
	u := uuid5(namespaceURL, docID)
	b = append(b, '"')
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[10:16])
	return append(b, '"')
}

// isCanonicalUint64 reports a decimal integer without sign or leading zeros
// that fits in 64 bits.
func isCanonicalUint64(s string) bool {
	if s == "" || len(s) > 20 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// uuid5 is the name-based UUID of RFC 9562 §5.5: SHA-1 of the name space and
// the name, with the version (5) and variant (10) bits set.
func uuid5(ns [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}
