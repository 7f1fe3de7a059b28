package tokenizer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestSmallBPE checks the BPE options the real tokenizers do not use (or use
// only one way) on a tiny vocabulary: merges as strings or pairs, fuse_unk,
// byte_fallback (whose bytes come before a pending unknown token, as in HF),
// ignore_merges, no unk_token, continuing_subword_prefix and
// end_of_word_suffix. The expected ids are those of tokenizers
// 0.23.2 on the same configurations.
func TestSmallBPE(t *testing.T) {
	vocab := map[string]int{"<unk>": 0, "▁": 1, "a": 2, "b": 3, "c": 4, "ab": 5, "abc": 6, "▁a": 7,
		"<0xC3>": 8, "<0xA9>": 9, "bc": 10, "▁ab": 11}
	first := map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
	never := map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": true}
	configs := map[string][2]map[string]any{
		"plain":    {first, {"type": "BPE", "vocab": vocab, "merges": []string{"a b", "▁ a", "▁a b"}, "unk_token": "<unk>", "fuse_unk": false, "byte_fallback": false}},
		"fuse":     {first, {"type": "BPE", "vocab": vocab, "merges": [][]string{{"a", "b"}, {"▁", "a"}}, "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false}},
		"fallback": {first, {"type": "BPE", "vocab": vocab, "merges": []string{"a b"}, "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true}},
		"ignore":   {never, {"type": "BPE", "vocab": vocab, "merges": []string{"b c"}, "unk_token": "<unk>", "ignore_merges": true}},
		"noignore": {never, {"type": "BPE", "vocab": vocab, "merges": []string{"b c"}, "unk_token": "<unk>", "ignore_merges": false}},
		"nounk":    {first, {"type": "BPE", "vocab": vocab, "merges": []string{"a b"}, "unk_token": nil}},
	}
	affixVocab := map[string]int{"<unk>": 0, "a": 1, "##b": 2, "##c</w>": 3, "a##b": 4, "ab": 5, "c</w>": 6,
		"ab##c</w>": 7, "abc</w>": 8, "##a": 9, "a</w>": 10, "b": 11}
	configs["affix"] = [2]map[string]any{{"type": "WhitespaceSplit"}, {"type": "BPE", "vocab": affixVocab,
		"merges": []string{"a ##b", "ab ##c</w>"}, "unk_token": "<unk>", "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>"}}
	toks := map[string]*Tokenizer{}
	for name, c := range configs {
		data, err := json.Marshal(map[string]any{"version": "1.0", "pre_tokenizer": c[0], "model": c[1]})
		if err != nil {
			t.Fatal(err)
		}
		if toks[name], err = Parse(data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, c := range []struct {
		config, text string
		want         []int32
	}{
		{"plain", "abc", []int32{1, 5, 4}},
		{"plain", "ab c", []int32{1, 5, 1, 4}},
		{"plain", "éé x", []int32{1, 0, 0, 1, 0}},
		{"plain", "xyz", []int32{1, 0, 0, 0}},
		{"plain", "aéb", []int32{7, 0, 3}},
		{"plain", "abcd", []int32{1, 5, 4, 0}},
		{"plain", "c ab", []int32{1, 4, 1, 5}},
		{"plain", "dé", []int32{1, 0, 0}},
		{"fuse", "abc", []int32{1, 5, 4}},
		{"fuse", "ab c", []int32{1, 5, 1, 4}},
		{"fuse", "éé x", []int32{1, 0, 1, 0}},
		{"fuse", "xyz", []int32{1, 0}},
		{"fuse", "aéb", []int32{7, 0, 3}},
		{"fuse", "abcd", []int32{1, 5, 4, 0}},
		{"fuse", "c ab", []int32{1, 4, 1, 5}},
		{"fuse", "dé", []int32{1, 0}},
		{"fallback", "abc", []int32{1, 5, 4}},
		{"fallback", "ab c", []int32{1, 5, 1, 4}},
		{"fallback", "éé x", []int32{1, 8, 9, 8, 9, 1, 0}},
		{"fallback", "xyz", []int32{1, 0}},
		{"fallback", "aéb", []int32{1, 2, 8, 9, 3}},
		{"fallback", "abcd", []int32{1, 5, 4, 0}},
		{"fallback", "c ab", []int32{1, 4, 1, 5}},
		{"fallback", "dé", []int32{1, 8, 9, 0}},
		{"ignore", "abc", []int32{6}},
		{"ignore", "ab c", []int32{5, 1, 4}},
		{"ignore", "éé x", []int32{0, 0, 1, 0}},
		{"ignore", "xyz", []int32{0, 0, 0}},
		{"ignore", "aéb", []int32{2, 0, 3}},
		{"ignore", "abcd", []int32{2, 10, 0}},
		{"ignore", "c ab", []int32{4, 11}},
		{"ignore", "dé", []int32{0, 0}},
		{"noignore", "abc", []int32{2, 10}},
		{"noignore", "ab c", []int32{2, 3, 1, 4}},
		{"noignore", "éé x", []int32{0, 0, 1, 0}},
		{"noignore", "xyz", []int32{0, 0, 0}},
		{"noignore", "aéb", []int32{2, 0, 3}},
		{"noignore", "abcd", []int32{2, 10, 0}},
		{"noignore", "c ab", []int32{4, 1, 2, 3}},
		{"noignore", "dé", []int32{0, 0}},
		{"nounk", "abc", []int32{1, 5, 4}},
		{"nounk", "ab c", []int32{1, 5, 1, 4}},
		{"nounk", "éé x", []int32{1, 1}},
		{"nounk", "xyz", []int32{1}},
		{"nounk", "aéb", []int32{1, 5}},
		{"nounk", "abcd", []int32{1, 5, 4}},
		{"nounk", "c ab", []int32{1, 4, 1, 5}},
		{"nounk", "dé", []int32{1}},
		{"affix", "abc", []int32{8}},
		{"affix", "ab", []int32{1, 0}},
		{"affix", "a", []int32{10}},
		{"affix", "c", []int32{6}},
		{"affix", "aab", []int32{1, 9, 0}},
		{"affix", "abd", []int32{5, 0}},
		{"affix", "ba abc", []int32{11, 0, 8}},
	} {
		if got := toks[c.config].Encode(c.text, 0).IDs; !slices.Equal(got, c.want) {
			t.Errorf("%s %q: %v, want %v", c.config, c.text, got, c.want)
		}
	}
}

// TestBPEParseErrors checks that broken BPE files are refused with a reason.
func TestBPEParseErrors(t *testing.T) {
	for _, c := range []struct{ model, want string }{
		{`{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}`, `"ab" is not in the vocabulary`},
		{`{"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]}`, `"c" is not in the vocabulary`},
		{`{"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}`, `not two tokens`},
		{`{"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}`, `neither`},
		{`{"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}`, `unk_token "<unk>" is not in the vocabulary`},
		{`{"type": "BPE", "vocab": {"a": -1}, "merges": []}`, `out of range`},
		{`{"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.5}`, `dropout`},
	} {
		_, err := Parse([]byte(`{"model": ` + c.model + `}`))
		if err == nil || !strings.HasPrefix(err.Error(), "parse tokenizer.json: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.model, err, c.want)
		}
	}
}
