package tokenizer

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// uniSpace is \s of HF's regexes (Unicode White_Space) as a Go class body:
// Go's own \s is ASCII only.
const uniSpace = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`

// altSplitter is a simple reference for the hand-written splitters: at each
// position, the first alternative that matches (anchored, Go's regexp),
// which is what a backtracking engine does with a top-level alternation.
// Go has no look-ahead, so \s+(?!\S) is written as "\s+ to the end" or
// "(\s+)\s", the match being the group: the same strings.
type altSplitter []*regexp.Regexp

func newAltSplitter(alts ...string) altSplitter {
	var s altSplitter
	for _, a := range alts {
		a = strings.ReplaceAll(a, `[^\s`, `[^`+uniSpace)
		a = strings.ReplaceAll(a, `\s`, `[`+uniSpace+`]`)
		s = append(s, regexp.MustCompile(`^(?:`+a+`)`))
	}
	return s
}

func (s altSplitter) split(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		n := 0
		for _, re := range s {
			if m := re.FindStringSubmatchIndex(text[i:]); m != nil {
				n = m[1]
				if len(m) > 2 && m[2] >= 0 {
					n = m[3]
				}
				break
			}
		}
		if n == 0 {
			panic("no alternative matches " + text[i:])
		}
		out = append(out, text[i:i+n])
		i += n
	}
	return out
}

var (
	gpt2Alts = newAltSplitter(`'s|'t|'re|'ve|'m|'ll|'d`, ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`,
		`\s+$`, `(\s+)\s`, `\s+`)
	llama3Alts = newAltSplitter(`(?i:'s|'t|'re|'ve|'m|'ll|'d)`, `[^\r\n\p{L}\p{N}]?\p{L}+`, `\p{N}{1,3}`,
		` ?[^\s\p{L}\p{N}]+[\r\n]*`, `\s*[\r\n]+`, `\s+$`, `(\s+)\s`, `\s+`)
)

func splitWith(text string, match func([]byte, int) int) []string {
	var out []string
	for _, w := range appendRegexWords(nil, []byte(text), 0, match) {
		out = append(out, text[w.start:w.end])
	}
	return out
}

func TestRegexSplitters(t *testing.T) {
	for _, c := range []struct {
		text         string
		gpt2, llama3 []string
	}{
		{"Hello world", []string{"Hello", " world"}, []string{"Hello", " world"}},
		{"a  b", []string{"a", " ", " b"}, []string{"a", " ", " b"}},
		{"a \n b", []string{"a", " \n", " b"}, []string{"a", " \n", " b"}},
		{"x  ", []string{"x", "  "}, []string{"x", "  "}},
		{"don't DON'T", []string{"don", "'t", " DON", "'", "T"}, []string{"don", "'t", " DON", "'T"}},
		{"12345", []string{"12345"}, []string{"123", "45"}},
		{"(hi)\n\n", []string{"(", "hi", ")", "\n\n"}, []string{"(hi", ")\n\n"}},
		{"\tword", []string{"\t", "word"}, []string{"\tword"}},
		{"a\r\n\r\n b", []string{"a", "\r\n\r\n", " b"}, []string{"a", "\r\n\r\n", " b"}},
		{"'ſ", []string{"'", "ſ"}, []string{"'ſ"}},
		{" !!\n", []string{" !!", "\n"}, []string{" !!\n"}},
		// Unicode 16 letters and digits (U+1C89, U+105C0, U+10D40), which the
		// reference knows and Go 1.26's unicode package does not.
		{"a\u1c89 \U000105c0 \U00010d40\U00010d41", []string{"a\u1c89", " \U000105c0", " \U00010d40\U00010d41"},
			[]string{"a\u1c89", " \U000105c0", " ", "\U00010d40\U00010d41"}},
	} {
		if got := splitWith(c.text, gpt2Match); !slices.Equal(got, c.gpt2) {
			t.Errorf("gpt2 %q: %q, want %q", c.text, got, c.gpt2)
		}
		if got := splitWith(c.text, llama3Match); !slices.Equal(got, c.llama3) {
			t.Errorf("llama3 %q: %q, want %q", c.text, got, c.llama3)
		}
	}
}

// TestRegexSplittersRandom compares the splitters with altSplitter on random
// strings over the characters that matter to the patterns (all of them in
// Unicode 15, where Go's \p{L} and \p{N} agree with the reference's).
func TestRegexSplittersRandom(t *testing.T) {
	pool := []string{" ", " ", "  ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2028", "\v", "'", "'",
		"s", "t", "re", "RE", "Ve", "ll", "D", "m", "ſ", "a", "Z", "é", "中", "한", "1", "23", "٣", "½", "Ⅻ",
		".", "!", "(", "-", "😀", "\u0301", "\u200d", "\x00", "\x1f", "_"}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		var b strings.Builder
		for k := rng.IntN(12) + 1; k > 0; k-- {
			b.WriteString(pool[rng.IntN(len(pool))])
		}
		text := b.String()
		if got, want := splitWith(text, gpt2Match), gpt2Alts.split(text); !slices.Equal(got, want) {
			t.Fatalf("gpt2 %q: %q, want %q", text, got, want)
		}
		if got, want := splitWith(text, llama3Match), llama3Alts.split(text); !slices.Equal(got, want) {
			t.Fatalf("llama3 %q: %q, want %q", text, got, want)
		}
	}
}
