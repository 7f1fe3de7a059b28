package tokenizer

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncodeBPE checks Encode's contract on the BPE tokenizers (GPT-2, its
// Llama 3 variant, Mistral): ids in the vocabulary, the template's specials
// around the content, truncation keeping a prefix, the invalid UTF-8 rule,
// chunked encoding of a long repetition equal to whole encoding, and for
// GPT-2 that the tokens spell the text back byte for byte.
func FuzzEncodeBPE(f *testing.F) {
	for _, s := range []string{"", "Hello, World!", "a<|endoftext|>b", "<s> x </s>", "café naïve", "北京大学",
		"👩‍👩‍👧‍👦", "\x00\u0085\u200b\ufeff", "ab\xffcd", "  a \n\n b\t", "don't 12345"} {
		for _, n := range []int{0, 1, 2, 8} {
			f.Add(s, n)
		}
	}
	type variant struct {
		tok, whole *Tokenizer
		unbyte     map[rune]byte // GPT-2: byte-level character -> byte
		vocab      []string
	}
	var variants []variant
	for _, v := range []struct{ name, patch string }{
		{"gpt2", ""}, {"gpt2", filepath.Join("testdata", "gpt2", "llama3.patch.json")}, {"mistral-7b", ""},
	} {
		tok, whole := loadSharedF(f, v.name, v.patch), loadSharedF(f, v.name, v.patch)
		whole.chunked = false
		vr := variant{tok: tok, whole: whole}
		if v.name == "gpt2" && v.patch == "" {
			vr.vocab = tok.Vocab()
			vr.unbyte = make(map[rune]byte)
			for b, s := range byteLevelChars {
				r, _ := utf8.DecodeRuneInString(s)
				vr.unbyte[r] = byte(b)
			}
		}
		variants = append(variants, vr)
	}
	f.Fuzz(func(t *testing.T, text string, maxLength int) {
		maxLength = min(maxLength, 1<<20)
		for _, v := range variants {
			tok := v.tok
			p, s := len(tok.prefix), len(tok.suffix)
			full := tok.Encode(text, 0)
			got := tok.Encode(text, maxLength)
			for _, e := range []Encoding{full, got} {
				if len(e.IDs) < p+s || !slices.Equal(e.IDs[:p], tok.prefix) || !slices.Equal(e.IDs[len(e.IDs)-s:], tok.suffix) {
					t.Fatalf("Encode(%q, %d) = %v: not wrapped in %v ... %v", text, maxLength, e.IDs, tok.prefix, tok.suffix)
				}
				for _, id := range e.IDs {
					if id < 0 || int(id) >= tok.VocabSize() {
						t.Fatalf("Encode(%q, %d): id %d outside the vocabulary", text, maxLength, id)
					}
				}
			}
			content := full.IDs[p : len(full.IDs)-s]
			if maxLength > 0 && tok.ValidateMaxLength(maxLength) == nil {
				limit := maxLength - tok.NumSpecialTokens()
				if got.Truncated != (len(content) > limit) || len(got.IDs) > maxLength ||
					!slices.Equal(got.IDs[p:len(got.IDs)-s], content[:min(limit, len(content))]) {
					t.Fatalf("Encode(%q, %d) = %v (truncated %v); without a limit %v", text, maxLength, got.IDs, got.Truncated, full.IDs)
				}
			}
			if valid := replaceInvalid(text); valid != text {
				if e := tok.Encode(valid, 0); !slices.Equal(e.IDs, full.IDs) {
					t.Fatalf("Encode(%q) = %v but with U+FFFD per invalid byte %v", text, full.IDs, e.IDs)
				}
			}
			if text != "" && tok.chunked {
				long := strings.Repeat(text+" ", 2*chunkSize/(len(text)+1)+2)
				if a, b := tok.Encode(long, 0), v.whole.Encode(long, 0); !slices.Equal(a.IDs, b.IDs) {
					t.Fatalf("%q repeated: chunked %v, whole %v", text, a.IDs, b.IDs)
				}
			}
			if v.unbyte != nil {
				var back []byte
				for _, id := range content {
					for _, r := range v.vocab[id] {
						back = append(back, v.unbyte[r])
					}
				}
				if string(back) != replaceInvalid(text) {
					t.Fatalf("Encode(%q) = %v spells %q", text, content, back)
				}
			}
		}
	})
}

// loadSharedF loads a tokenizer of the test data for a fuzz target.
func loadSharedF(f *testing.F, name, patch string) *Tokenizer {
	return loadShared(f, name, patch)
}
