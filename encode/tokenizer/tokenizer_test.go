package tokenizer

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// tinyConfig is a small BERT-like tokenizer.json, as a JSON object to tweak.
func tinyConfig() map[string]any {
	vocab := map[string]any{}
	for i, tok := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
		"un", "##aff", "##able", "a", "b", "hello", "world", ",", "!", "##s", "cafe", "中", "文", "x", "##x"} {
		vocab[tok] = i
	}
	tok := func(id int, content string) map[string]any {
		return map[string]any{"id": id, "content": content, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true}
	}
	return map[string]any{
		"version":    "1.0",
		"truncation": nil,
		"padding":    nil,
		"added_tokens": []any{tok(0, "[PAD]"), tok(1, "[UNK]"), tok(2, "[CLS]"), tok(3, "[SEP]"),
			tok(4, "[MASK]")},
		"normalizer": map[string]any{"type": "BertNormalizer", "clean_text": true,
			"handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{
			"type": "TemplateProcessing",
			"single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}},
			},
			"special_tokens": map[string]any{
				"[CLS]": map[string]any{"id": "[CLS]", "ids": []int{2}, "tokens": []string{"[CLS]"}},
				"[SEP]": map[string]any{"id": "[SEP]", "ids": []int{3}, "tokens": []string{"[SEP]"}},
			},
		},
		"decoder": map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model": map[string]any{"type": "WordPiece", "unk_token": "[UNK]",
			"continuing_subword_prefix": "##", "max_input_chars_per_word": 10, "vocab": vocab},
	}
}

func parseConfig(t testing.TB, cfg map[string]any) (*Tokenizer, error) {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data)
}

// tinyJSON is tinyConfig as bytes.
func tinyJSON(t testing.TB) []byte {
	t.Helper()
	data, err := json.Marshal(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustTiny(t *testing.T) *Tokenizer {
	t.Helper()
	tok, err := parseConfig(t, tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTinyEncode(t *testing.T) {
	tok := mustTiny(t)
	for _, c := range []struct {
		text  string
		max   int
		want  []int32
		trunc bool
	}{
		{"unaffable", 0, []int32{2, 5, 6, 7, 3}, false},
		{"Hello, World!", 0, []int32{2, 10, 12, 11, 13, 3}, false},
		{"Café", 0, []int32{2, 15, 3}, false},
		{"中文", 0, []int32{2, 16, 17, 3}, false},
		{"a[MASK]b", 0, []int32{2, 8, 4, 9, 3}, false},
		{"[mask]", 0, []int32{2, 1, 1, 1, 3}, false},                                    // "[", "mask", "]" are not in the tiny vocab
		{"xxxxxxxxxx", 0, []int32{2, 18, 19, 19, 19, 19, 19, 19, 19, 19, 19, 3}, false}, // 10 chars: fits
		{"xxxxxxxxxxx", 0, []int32{2, 1, 3}, false},                                     // 11 chars: [UNK]
		{"unaffables", 0, []int32{2, 5, 6, 7, 14, 3}, false},
		{"unaffablez", 0, []int32{2, 1, 3}, false},
		{"hello world hello", 4, []int32{2, 10, 11, 3}, true},
		{"hello world", 4, []int32{2, 10, 11, 3}, false},
		{"hello world", 2, []int32{2, 3}, true},
		{"", 2, []int32{2, 3}, false},
		{"", 0, []int32{2, 3}, false},
	} {
		got := tok.Encode(c.text, c.max)
		if !slices.Equal(got.IDs, c.want) || got.Truncated != c.trunc {
			t.Errorf("Encode(%q, %d) = %v truncated=%v, want %v truncated=%v", c.text, c.max, got.IDs, got.Truncated, c.want, c.trunc)
		}
	}
}

func TestAccessors(t *testing.T) {
	tok := mustTiny(t)
	if got := tok.VocabSize(); got != 20 {
		t.Errorf("VocabSize = %d, want 20", got)
	}
	if got := tok.NumSpecialTokens(); got != 2 {
		t.Errorf("NumSpecialTokens = %d, want 2", got)
	}
	if got := tok.PadID(); got != 0 {
		t.Errorf("PadID = %d, want 0", got)
	}
	if got := tok.UnkID(); got != 1 {
		t.Errorf("UnkID = %d, want 1", got)
	}
	v := tok.Vocab()
	if len(v) != 20 || v[5] != "un" || v[6] != "##aff" || v[4] != "[MASK]" {
		t.Errorf("Vocab = %q", v)
	}
	v[5] = "changed"
	if tok.Vocab()[5] != "un" {
		t.Error("Vocab returns the tokenizer's own storage")
	}
	if id, ok := tok.TokenID("##able"); !ok || id != 7 {
		t.Errorf("TokenID(##able) = %d, %v", id, ok)
	}
	if _, ok := tok.TokenID("nope"); ok {
		t.Error("TokenID(nope) found")
	}
	if err := tok.ValidateMaxLength(1); err == nil {
		t.Error("ValidateMaxLength(1) accepted with 2 special tokens")
	}
	for _, n := range []int{-1, 0, 2, 512} {
		if err := tok.ValidateMaxLength(n); err != nil {
			t.Errorf("ValidateMaxLength(%d): %v", n, err)
		}
	}
	if tok.FileMaxLength() != 0 {
		t.Errorf("FileMaxLength = %d, want 0", tok.FileMaxLength())
	}

	cfg := tinyConfig()
	cfg["padding"] = map[string]any{"pad_id": 3, "pad_token": "[SEP]"}
	cfg["truncation"] = map[string]any{"max_length": 128, "strategy": "LongestFirst", "stride": 0, "direction": "Right"}
	tok2, err := parseConfig(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok2.PadID() != 3 || tok2.FileMaxLength() != 128 {
		t.Errorf("PadID = %d, FileMaxLength = %d; want 3, 128", tok2.PadID(), tok2.FileMaxLength())
	}
	if got := tok2.Encode("hello world hello", 0); got.Truncated || len(got.IDs) != 5 {
		t.Errorf("Encode with maxLength 0 applied the file's truncation: %v", got)
	}
}

// TestAddedTokenIDs checks HF's id assignment: a token missing from the
// vocabulary gets the next id after the model's, whatever the file says.
func TestAddedTokenIDs(t *testing.T) {
	cfg := tinyConfig()
	added := cfg["added_tokens"].([]any)
	cfg["added_tokens"] = append(added,
		map[string]any{"id": 999, "content": "<new>", "normalized": false, "special": true},
		map[string]any{"id": 5, "content": "<newer>", "normalized": false, "special": false},
		map[string]any{"id": 7, "content": "hello", "normalized": false, "special": false})
	tok, err := parseConfig(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for tokStr, want := range map[string]int32{"<new>": 20, "<newer>": 21, "hello": 10} {
		if id, ok := tok.TokenID(tokStr); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tokStr, id, ok, want)
		}
	}
	if tok.VocabSize() != 22 || tok.Vocab()[21] != "<newer>" {
		t.Errorf("VocabSize = %d, Vocab[21] = %q", tok.VocabSize(), tok.Vocab()[21])
	}
	if got := tok.Encode("a<new>b<newer>", 0).IDs; !slices.Equal(got, []int32{2, 8, 20, 9, 21, 3}) {
		t.Errorf("Encode = %v", got)
	}
}

func TestUnsupportedComponents(t *testing.T) {
	for _, c := range []struct {
		key, typ string
		value    any
	}{
		{"normalizer", "Precompiled", map[string]any{"type": "Precompiled", "precompiled_charsmap": "AAAA"}},
		{"normalizer", "Replace", map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " +"}, "content": "_"}},
		{"normalizer", "Replace", map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Lowercase"}, map[string]any{"type": "Replace", "pattern": map[string]any{"String": ""}}}}},
		{"normalizer", "ByteLevel", map[string]any{"type": "ByteLevel"}},
		{"pre_tokenizer", "ByteLevel", map[string]any{"type": "ByteLevel", "add_prefix_space": false}},
		{"pre_tokenizer", "Metaspace", map[string]any{"type": "Metaspace", "replacement": "▁"}},
		{"pre_tokenizer", "Split", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "WhitespaceSplit"}, map[string]any{"type": "Split"}}}},
		{"pre_tokenizer", "Split", map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\w+`}, "behavior": "Isolated"}},
		{"pre_tokenizer", "Split", map[string]any{"type": "Split", "pattern": map[string]any{"Regex": gpt2Pattern}, "behavior": "Removed"}},
		{"pre_tokenizer", "Digits", map[string]any{"type": "Digits", "individual_digits": true}},
		{"model", "BPE", map[string]any{"type": "BPE", "vocab": map[string]int{"a": 0}, "merges": []string{}, "dropout": 0.1}},
		{"model", "Unigram", map[string]any{"type": "Unigram", "vocab": [][]any{{"a", -1.0}}}},
		{"model", "WordLevel", map[string]any{"type": "WordLevel", "vocab": map[string]int{"a": 0}, "unk_token": "a"}},
		{"post_processor", "Unknown", map[string]any{"type": "Unknown"}},
		{"post_processor", "Unknown", map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel"}, map[string]any{"type": "Unknown"}}}},
	} {
		cfg := tinyConfig()
		cfg[c.key] = c.value
		_, err := parseConfig(t, cfg)
		if err == nil {
			t.Errorf("%s %s: accepted", c.key, c.typ)
			continue
		}
		var ue *UnsupportedError
		if !errors.Is(err, ErrUnsupported) || !errors.As(err, &ue) {
			t.Errorf("%s %s: error %v is not an UnsupportedError", c.key, c.typ, err)
			continue
		}
		if ue.Component != c.key || ue.Type != c.typ || !strings.Contains(err.Error(), c.key+` "`+c.typ+`" is not supported`) {
			t.Errorf("%s %s: error %q (component %q, type %q)", c.key, c.typ, err, ue.Component, ue.Type)
		}
	}
}

// TestLoadsBPEModels loads the GPT-2 and Mistral tokenizers of the test data and checks
// what the rest of splash reads from them.
func TestLoadsBPEModels(t *testing.T) {
	for _, c := range []struct {
		name            string
		vocab, specials int
		unk, pad        int32
		text            string
		want            []int32
	}{
		// gpt2: no special tokens, no unknown token, no pad token (0).
		{"gpt2", 50257, 0, -1, 0, "Hello world", []int32{15496, 995}},
		// mistral-7b: <s> first, <unk> is 0, no pad token (0).
		{"mistral-7b", 32000, 1, 0, 0, "Hello world", []int32{1, 22557, 1526}},
	} {
		tok, err := Load(sharedModelPath(c.name))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if tok.VocabSize() != c.vocab || len(tok.Vocab()) != c.vocab || tok.NumSpecialTokens() != c.specials ||
			tok.UnkID() != c.unk || tok.PadID() != c.pad {
			t.Errorf("%s: vocab %d (%d tokens), %d specials, unk %d, pad %d; want %d, %d, %d, %d", c.name,
				tok.VocabSize(), len(tok.Vocab()), tok.NumSpecialTokens(), tok.UnkID(), tok.PadID(), c.vocab, c.specials, c.unk, c.pad)
		}
		if got := tok.Encode(c.text, 0).IDs; !slices.Equal(got, c.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", c.name, c.text, got, c.want)
		}
		// Truncation keeps the template's specials and cuts the content.
		e := tok.Encode(c.text, c.specials+1)
		if !e.Truncated || !slices.Equal(e.IDs, c.want[:c.specials+1]) {
			t.Errorf("%s: Encode(%q, %d) = %v, want %v truncated", c.name, c.text, c.specials+1, e, c.want[:c.specials+1])
		}
	}
}

func TestMalformed(t *testing.T) {
	_, err := Parse([]byte(`{"model": {"type": "WordPiece"`))
	var se *json.SyntaxError
	if err == nil || !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "parse tokenizer.json: ") {
		t.Errorf("truncated JSON: %v", err)
	}
	_, err = Parse([]byte(`{"model": {"type": "WordPiece", "vocab": {"a": "x"}}}`))
	var te *json.UnmarshalTypeError
	if err == nil || !errors.As(err, &te) {
		t.Errorf("bad vocab: %v", err)
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}

	for name, mutate := range map[string]func(map[string]any){
		"no model":         func(c map[string]any) { delete(c, "model") },
		"model no type":    func(c map[string]any) { delete(c["model"].(map[string]any), "type") },
		"unk not in vocab": func(c map[string]any) { c["model"].(map[string]any)["unk_token"] = "<unk>" },
		"negative id":      func(c map[string]any) { c["model"].(map[string]any)["vocab"].(map[string]any)["neg"] = -1 },
		"bad version":      func(c map[string]any) { c["version"] = "2.0" },
		"template no A": func(c map[string]any) {
			pp := c["post_processor"].(map[string]any)
			pp["single"] = pp["single"].([]any)[:1]
		},
		"template $B": func(c map[string]any) { c["post_processor"].(map[string]any)["single"] = "[CLS] $B [SEP]" },
		"template unknown special": func(c map[string]any) {
			c["post_processor"].(map[string]any)["single"] = "[BOS] $A [SEP]"
		},
		"special id outside vocab": func(c map[string]any) {
			c["post_processor"] = map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]", 3}, "cls": []any{"[CLS]", 5000}}
		},
	} {
		cfg := tinyConfig()
		mutate(cfg)
		if _, err := parseConfig(t, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "parse tokenizer.json: ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
}

func TestTemplateStringForm(t *testing.T) {
	cfg := tinyConfig()
	cfg["post_processor"].(map[string]any)["single"] = "[CLS]:0 [MASK] $A:0 [SEP]:0"
	cfg["post_processor"].(map[string]any)["special_tokens"].(map[string]any)["[MASK]"] =
		map[string]any{"id": "[MASK]", "ids": []int{4}, "tokens": []string{"[MASK]"}}
	tok, err := parseConfig(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("a", 0).IDs; !slices.Equal(got, []int32{2, 4, 8, 3}) {
		t.Errorf("Encode = %v", got)
	}
	if tok.NumSpecialTokens() != 3 {
		t.Errorf("NumSpecialTokens = %d", tok.NumSpecialTokens())
	}
}

// replaceInvalid replaces every byte that is not part of valid UTF-8 with
// U+FFFD: the package's documented reading of invalid input.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

func TestInvalidUTF8(t *testing.T) {
	inputs := []string{
		"ab\xffcd", "caf\xc3", "\xc3\xa9\xc3", "\xe4\xb8", "\xe4[MASK]\xb8", "[MA\xffSK]", "\xff\xfe\xfd",
		"hello \xed\xa0\x80 world", "\xf4\x90\x80\x80", "\xc0\xaf", "a\x80b \x80 c\x80", "中\xe4\xb8文",
		strings.Repeat("a", 99) + "\xff\xff", "\xff" + strings.Repeat("é", 100),
	}
	check := func(t *testing.T, tok *Tokenizer) {
		for _, s := range inputs {
			for _, max := range []int{0, 4} {
				got := tok.Encode(s, max)
				want := tok.Encode(replaceInvalid(s), max)
				if !slices.Equal(got.IDs, want.IDs) || got.Truncated != want.Truncated {
					t.Errorf("Encode(%q, %d) = %v, but with U+FFFD per invalid byte %v", s, max, got.IDs, want.IDs)
				}
			}
		}
	}
	t.Run("tiny", func(t *testing.T) {
		tok := mustTiny(t)
		check(t, tok)
		// clean_text drops U+FFFD: invalid bytes vanish and join their neighbours.
		if got, want := tok.Encode("he\xffllo w\xc3orld", 0).IDs, tok.Encode("hello world", 0).IDs; !slices.Equal(got, want) {
			t.Errorf("invalid bytes not dropped: %v, want %v", got, want)
		}
		if got := tok.Encode("\xe4[MASK]\xb8", 0).IDs; !slices.Equal(got, []int32{2, 4, 3}) {
			t.Errorf("[MASK] between invalid bytes: %v", got)
		}
	})
	t.Run("tiny-no-normalizer", func(t *testing.T) {
		// Without clean_text U+FFFD stays, one per invalid byte.
		cfg := tinyConfig()
		cfg["normalizer"] = nil
		cfg["model"].(map[string]any)["vocab"].(map[string]any)["\uFFFD"] = 20
		cfg["model"].(map[string]any)["vocab"].(map[string]any)["##\uFFFD"] = 21
		tok, err := parseConfig(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		check(t, tok)
		if got := tok.Encode("a\xff\xfeb", 0).IDs; !slices.Equal(got, []int32{2, 1, 3}) {
			t.Errorf("a\\xff\\xfeb: %v", got)
		}
		if got := tok.Encode("\xff\xfe", 0).IDs; !slices.Equal(got, []int32{2, 20, 21, 3}) {
			t.Errorf("\\xff\\xfe: %v, want one U+FFFD per byte", got)
		}
	})
	t.Run("bert", func(t *testing.T) {
		tok := loadBert(t)
		check(t, tok)
		// The reference saw "repl\uFFFDchar" (testdata/cases.jsonl) and drops U+FFFD.
		if got, want := tok.Encode("repl\xffchar", 0).IDs, tok.Encode("replchar", 0).IDs; !slices.Equal(got, want) {
			t.Errorf("repl\\xffchar = %v, want %v", got, want)
		}
	})
}

// TestUnicodeTables checks invariants of the measured tables.
func TestUnicodeTables(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if got, want := isRustWhitespace(r), hfPreSpace.contains(r); got != want {
			t.Fatalf("isRustWhitespace(%U) = %v, reference %v", r, got, want)
		}
	}
	for name, tbl := range map[string]runeRanges{"hfDrop": hfDrop, "hfCleanSpace": hfCleanSpace, "hfPreSpace": hfPreSpace,
		"hfPunct": hfPunct, "hfMn": hfMn, "hfMarks": hfMarks, "hfWord": hfWord, "hfCJK": hfCJK} {
		for i, rg := range tbl {
			if rg[0] > rg[1] || i > 0 && tbl[i-1][1] >= rg[0] {
				t.Errorf("%s: range %d %U-%U out of order", name, i, rg[0], rg[1])
			}
		}
	}
	for i := 1; i < len(hfDecomp); i++ {
		if hfDecomp[i-1].r >= hfDecomp[i].r {
			t.Fatalf("hfDecomp not sorted at %d", i)
		}
	}
	for i := 1; i < len(hfLower); i++ {
		if hfLower[i-1].r >= hfLower[i].r {
			t.Fatalf("hfLower not sorted at %d", i)
		}
	}
	for i := 1; i < len(hfCombining); i++ {
		if hfCombining[i-1].hi >= hfCombining[i].lo {
			t.Fatalf("hfCombining not sorted at %d", i)
		}
	}
	if hfTablesVersion == "" {
		t.Error("no reference version")
	}
}

// TestConcurrent encodes from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	tok := mustTiny(t)
	want := tok.Encode("Hello, World! unaffable [MASK] 中文", 0).IDs
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if got := tok.Encode("Hello, World! unaffable [MASK] 中文", 0).IDs; !slices.Equal(got, want) {
					t.Errorf("concurrent Encode = %v, want %v", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestChunking checks that a long text cut into pieces gives the ids of the
// whole, with and without truncation.
func TestChunking(t *testing.T) {
	tok := mustTiny(t)
	unit := "hello, world! unaffable cafe 中文 x\u0301\u0301 a\tb\u3000[MASK] "
	long := strings.Repeat(unit, 400)
	if !tok.chunked {
		t.Fatal("tiny BERT tokenizer is not chunked")
	}
	whole := mustTiny(t)
	whole.chunked = false
	for _, max := range []int{0, 3, 100, 1000, 5000} {
		got, want := tok.Encode(long, max), whole.Encode(long, max)
		if !slices.Equal(got.IDs, want.IDs) || got.Truncated != want.Truncated {
			t.Errorf("max %d: chunked encoding differs (%d vs %d ids)", max, len(got.IDs), len(want.IDs))
		}
	}
}
