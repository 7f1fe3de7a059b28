package tokenizer

import (
	"slices"
	"testing"
)

// FuzzEncode checks Encode's contract on arbitrary input: no panic, ids in
// the vocabulary, [CLS] first and [SEP] last, the length bound and the
// Truncated flag, truncation keeping a prefix of the untruncated content, and
// the invalid UTF-8 rule. It uses bert-base-uncased (testdata/tokenizers).
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Hello, World!", "a[MASK]b", "[mask]", "café naïve", "北京大学",
		"👩‍👩‍👧‍👦", "\x00\u0085\u200b\ufeff", "ab\xffcd", "e\u0301\u0323"} {
		for _, n := range []int{0, 2, 3, 8} {
			f.Add(s, n)
		}
	}
	tok := loadBert(f)
	cls, sep := tok.prefix[0], tok.suffix[len(tok.suffix)-1]
	f.Fuzz(func(t *testing.T, text string, maxLength int) {
		if maxLength > 1<<20 {
			maxLength = 1 << 20
		}
		full := tok.Encode(text, 0)
		got := tok.Encode(text, maxLength)
		for _, e := range []Encoding{full, got} {
			if len(e.IDs) < 2 || e.IDs[0] != cls || e.IDs[len(e.IDs)-1] != sep {
				t.Fatalf("Encode(%q, %d) = %v: not [CLS] ... [SEP]", text, maxLength, e.IDs)
			}
			for _, id := range e.IDs {
				if id < 0 || int(id) >= tok.VocabSize() {
					t.Fatalf("Encode(%q, %d): id %d outside the vocabulary", text, maxLength, id)
				}
			}
		}
		if full.Truncated {
			t.Fatalf("Encode(%q, 0) truncated", text)
		}
		content := full.IDs[1 : len(full.IDs)-1]
		if tok.ValidateMaxLength(maxLength) == nil && maxLength > 0 {
			limit := maxLength - tok.NumSpecialTokens()
			wantTrunc := len(content) > limit
			if got.Truncated != wantTrunc {
				t.Fatalf("Encode(%q, %d).Truncated = %v with %d content ids", text, maxLength, got.Truncated, len(content))
			}
			if len(got.IDs) > maxLength {
				t.Fatalf("Encode(%q, %d) has %d ids", text, maxLength, len(got.IDs))
			}
			if !slices.Equal(got.IDs[1:len(got.IDs)-1], content[:min(limit, len(content))]) {
				t.Fatalf("Encode(%q, %d) = %v is not a prefix of %v", text, maxLength, got.IDs, full.IDs)
			}
		} else if !slices.Equal(got.IDs, full.IDs) && maxLength <= 0 {
			t.Fatalf("Encode(%q, %d) differs from Encode(%q, 0)", text, maxLength, text)
		}
		if valid := replaceInvalid(text); valid != text {
			if v := tok.Encode(valid, 0); !slices.Equal(v.IDs, full.IDs) {
				t.Fatalf("Encode(%q) = %v but with U+FFFD per invalid byte %v", text, full.IDs, v.IDs)
			}
		}
	})
}
