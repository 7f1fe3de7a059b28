package tokenizer

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the generated (gen-*) seed corpora of FuzzParse and FuzzEncode under testdata/fuzz")

// FuzzParse feeds arbitrary tokenizer.json bytes and a text to Parse and
// Encode. Parse may refuse the bytes, with an error that starts with
// "parse tokenizer.json: " and matches ErrUnsupported exactly when it is an
// *UnsupportedError about one of the four components; it must not panic
// (parse is called, without Parse's recovery). What it accepts is a working
// tokenizer: the unknown token's id (-1 if none) and every id Encode returns are in the
// vocabulary, Vocab is deterministic and each of its tokens has an id,
// Encode wraps the content in the template's special ids, EncodeInto agrees
// with Encode, and truncation keeps a prefix of the content. Seeds:
// testdata/fuzz/FuzzParse (bert-base-uncased cut to a few hundred tokens
// with the variants of testdata/variants, unsupported and broken files).
func FuzzParse(f *testing.F) {
	f.Add(tinyJSON(f), "Hello, World! unaffable 中文")
	f.Add([]byte(`{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}`), "x")
	components := []string{"model", "normalizer", "pre_tokenizer", "post_processor"}
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tok, err := parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse tokenizer.json: ") {
				t.Fatalf("error %q does not say what failed", err)
			}
			var u *UnsupportedError
			if errors.As(err, &u) != errors.Is(err, ErrUnsupported) || u != nil && !slices.Contains(components, u.Component) {
				t.Fatalf("error %q: UnsupportedError %+v and ErrUnsupported disagree", err, u)
			}
			return
		}
		n := tok.VocabSize()
		if n <= 0 || tok.UnkID() < -1 || int(tok.UnkID()) >= n {
			t.Fatalf("vocabulary size %d, unknown token id %d", n, tok.UnkID())
		}
		if tok.FileMaxLength() < 0 {
			t.Fatalf("FileMaxLength %d", tok.FileMaxLength())
		}
		vocab := tok.Vocab()
		if len(vocab) != n {
			t.Fatalf("Vocab has %d entries, VocabSize is %d", len(vocab), n)
		}
		if n <= 1<<16 {
			for i, s := range vocab {
				if _, ok := tok.TokenID(s); s != "" && !ok {
					t.Fatalf("Vocab()[%d] = %q has no id", i, s)
				}
			}
			// The vocabulary file of an output directory is written from
			// Vocab: it must not change from one call (or run) to the next.
			if again := tok.Vocab(); !slices.Equal(vocab, again) {
				t.Fatalf("Vocab differs from one call to the next")
			}
		}
		checkIDs := func(e Encoding, maxLength int) []int32 {
			t.Helper()
			p, s := len(tok.prefix), len(tok.suffix)
			if len(e.IDs) < p+s || !slices.Equal(e.IDs[:p], tok.prefix) || !slices.Equal(e.IDs[len(e.IDs)-s:], tok.suffix) {
				t.Fatalf("Encode(%q, %d) = %v: not wrapped in %v ... %v", text, maxLength, e.IDs, tok.prefix, tok.suffix)
			}
			for _, id := range e.IDs {
				if id < 0 || int(id) >= n {
					t.Fatalf("Encode(%q, %d): id %d outside the vocabulary of %d", text, maxLength, id, n)
				}
			}
			return e.IDs[p : len(e.IDs)-s]
		}
		full := tok.Encode(text, 0)
		content := checkIDs(full, 0)
		if full.Truncated {
			t.Fatalf("Encode(%q, 0) is truncated", text)
		}
		if into := tok.EncodeInto(make([]int32, 3, 64), text, 0); !slices.Equal(into.IDs, full.IDs) {
			t.Fatalf("EncodeInto = %v, Encode = %v", into.IDs, full.IDs)
		}
		specials := tok.NumSpecialTokens()
		for _, m := range []int{specials, specials + 1, specials + 3, tok.FileMaxLength()} {
			if m <= 0 || tok.ValidateMaxLength(m) != nil || m > 1<<20 {
				continue
			}
			e := tok.Encode(text, m)
			got := checkIDs(e, m)
			limit := m - specials
			if len(e.IDs) > m || e.Truncated != (len(content) > limit) || !slices.Equal(got, content[:min(limit, len(content))]) {
				t.Fatalf("Encode(%q, %d) = %v (truncated %v); without a limit %v", text, m, e.IDs, e.Truncated, full.IDs)
			}
		}
	})
}

// TestParseRecovers checks that Parse turns a panic of parse into an error:
// a tokenizer.json can then never crash the process that loads it.
func TestParseRecovers(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("null"), []byte(`{"model": null}`), tinyJSON(t)} {
		tok, err := Parse(data)
		if (tok == nil) == (err == nil) {
			t.Fatalf("Parse(%.40q) = %v, %v", data, tok, err)
		}
	}
}

// writeSeed writes the seed corpus file testdata/fuzz/<target>/<name> in the
// format of go test fuzz v1; args are []byte, string or int.
func writeSeed(t testing.TB, target, name string, args ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case int:
			fmt.Fprintf(&b, "int(%d)\n", v)
		default:
			t.Fatalf("seed %s/%s: unsupported type %T", target, name, a)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFuzzSeeds regenerates the gen-* seeds of FuzzParse and
// FuzzEncode with -update-fuzz-seeds:
//
//	go test ./encode/tokenizer -run TestWriteFuzzSeeds -args -update-fuzz-seeds
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateFuzzSeeds {
		t.Skip("run with -update-fuzz-seeds to rewrite the seed corpora")
	}
	bert := loadBert(t)
	for _, target := range []string{"FuzzParse", "FuzzEncode"} {
		old, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "gen-*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := seedCases(t)

	// FuzzEncode: the short hand-written cases of the parity tests (every
	// script, combining marks, case folding, invalid UTF-8, added-token
	// look-alikes), with their max_length, plus a few more.
	extra := []testCase{
		{"\xc0\xaf overlong \xe0\x80\xaf slash", 0},
		{"\xed\xa0\x80 surrogate half \xed\xbf\xbf", 0},
		{"\ufffe\uffff noncharacters \U0010ffff", 5},
		{"𐐀𐐨 Deseret 𐐶𐑅", 0},
		{"tag\U000E0041\U000E0062 variation\ufe0f\U000e0100", 0},
		{"각 jamo 각", 4},
		{"\u200f\u202eRTL override\u202c \u0627\u0644\u0639\u0640\u0640\u0631\u0628\u064a\u0629", 0},
		{"ภาษาไทยไม่มีช่องว่าง", 0},
		{"हिन्दी क्षत्रिय", 3},
		{"a\u00a0b\u2028c\u3000d\u180ee", 0},
		{"[CLS] [SEP] [PAD] [UNK] ##ing [MASK]", 6},
		{strings.Repeat("é", 101) + " " + strings.Repeat("x", 100), 0},
		{strings.Repeat("\u0301", 40), 0},
	}
	n := 0
	for _, c := range append(cases, extra...) {
		if len(c.Text) > 200 || n >= 200 {
			continue
		}
		writeSeed(t, "FuzzEncode", fmt.Sprintf("gen-%03d", n), c.Text, c.MaxLength)
		n++
	}

	// FuzzParse: bert-base-uncased cut down to the special tokens, the
	// punctuation and characters, and the tokens of a few cases; then each
	// variant of the parity tests; then files refused for good reasons.
	keep := map[int32]bool{0: true, 100: true, 101: true, 102: true, 103: true}
	for id := int32(999); id < 1100; id++ {
		keep[id] = true
	}
	for _, c := range cases[:min(len(cases), 60)] {
		for _, id := range bert.Encode(c.Text, 0).IDs {
			keep[id] = true
		}
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(readFile(t, bertPath), &cfg); err != nil {
		t.Fatal(err)
	}
	var model map[string]json.RawMessage
	if err := json.Unmarshal(cfg["model"], &model); err != nil {
		t.Fatal(err)
	}
	small := map[string]int32{}
	for i, tok := range bert.Vocab() {
		if keep[int32(i)] {
			small[tok] = int32(i)
		}
	}
	model["vocab"] = mustJSON(t, small)
	cfg["model"] = mustJSON(t, model)
	text := "An experimental study of a wing in a propeller slipstream, naïve 北京 [MASK]."
	with := func(patch map[string]json.RawMessage) []byte {
		c := map[string]json.RawMessage{}
		for k, v := range cfg {
			c[k] = v
		}
		for k, v := range patch {
			c[k] = v
		}
		return []byte(mustJSON(t, c))
	}
	writeSeed(t, "FuzzParse", "gen-bert-small", with(nil), text)
	patches, err := filepath.Glob(filepath.Join("testdata", "variants", "*.patch.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range patches {
		var patch map[string]json.RawMessage
		if err := json.Unmarshal(readFile(t, p), &patch); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".patch.json")
		writeSeed(t, "FuzzParse", "gen-bert-small-"+name, with(patch), cases[(7*i+3)%len(cases)].Text)
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	broken := map[string]map[string]json.RawMessage{
		"model-bpe":                    {"model": raw(`{"type": "BPE", "vocab": {"a": 0}, "merges": []}`)},
		"normalizer-precompiled":       {"normalizer": raw(`{"type": "Precompiled", "precompiled_charsmap": "AAAA"}`)},
		"pre-tokenizer-bytelevel":      {"pre_tokenizer": raw(`{"type": "ByteLevel", "add_prefix_space": false}`)},
		"post-processor-roberta":       {"post_processor": raw(`{"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}`)},
		"version-2":                    {"version": raw(`"2.0"`)},
		"template-without-a":           {"post_processor": raw(`{"type": "TemplateProcessing", "single": "[CLS] [SEP]", "special_tokens": {"[CLS]": {"ids": [101]}, "[SEP]": {"ids": [102]}}}`)},
		"template-string-b":            {"post_processor": raw(`{"type": "TemplateProcessing", "single": "[CLS]:0 $B:1 [SEP]:1", "special_tokens": {"[CLS]": {"ids": [101]}, "[SEP]": {"ids": [102]}}}`)},
		"template-id-outside":          {"post_processor": raw(`{"type": "TemplateProcessing", "single": "[CLS] $A [SEP]", "special_tokens": {"[CLS]": {"ids": [30522]}, "[SEP]": {"ids": [102, 2147483648]}}}`)},
		"bert-processing-short":        {"post_processor": raw(`{"type": "BertProcessing", "sep": ["[SEP]"], "cls": ["[CLS]", 101]}`)},
		"padding-id-negative":          {"padding": raw(`{"pad_id": -1, "pad_token": "[PAD]"}`)},
		"truncation-negative":          {"truncation": raw(`{"max_length": -5}`)},
		"truncation-512":               {"truncation": raw(`{"max_length": 512, "strategy": "LongestFirst"}`)},
		"unk-missing":                  {"model": raw(`{"type": "WordPiece", "unk_token": "<unk>", "vocab": {"[UNK]": 0, "a": 1}}`)},
		"vocab-id-too-big":             {"model": raw(`{"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 4294967296}}`)},
		"vocab-duplicate-ids":          {"model": raw(`{"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1, "b": 1, "##a": 2}}`)},
		"vocab-sparse-ids":             {"model": raw(`{"type": "WordPiece", "vocab": {"[UNK]": 7, "a": 100, "##b": 3}}`)},
		"empty-prefix-max-chars-0":     {"model": raw(`{"type": "WordPiece", "continuing_subword_prefix": "", "max_input_chars_per_word": 0, "vocab": {"[UNK]": 0, "a": 1}}`)},
		"nested-sequences":             {"normalizer": raw(`{"type": "Sequence", "normalizers": [{"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "Strip", "strip_left": true}]}, {"type": "BertNormalizer"}]}`)},
		"added-tokens-overlapping":     {"added_tokens": raw(`[{"content": "ab", "special": true}, {"content": "abc", "lstrip": true, "rstrip": true}, {"content": "", "special": true}, {"content": "b", "normalized": true, "single_word": true}]`)},
		"component-without-type":       {"normalizer": raw(`{"lowercase": true}`)},
		"component-not-an-object":      {"pre_tokenizer": raw(`[1, 2]`)},
		"post-processor-no-specials":   {"post_processor": raw(`null`), "pre_tokenizer": raw(`null`), "normalizer": raw(`null`)},
		"added-token-beyond-vocab-gap": {"model": raw(`{"type": "WordPiece", "vocab": {"[UNK]": 5, "q": 0}}`), "added_tokens": raw(`[{"content": "[CLS]", "special": true}, {"content": "[SEP]", "special": true}]`), "post_processor": raw(`{"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]}`)},
	}
	for name, patch := range broken {
		if _, ok := patch["model"]; ok {
			// A small vocabulary of its own: no template ids beyond it.
			for _, k := range []string{"post_processor", "added_tokens"} {
				if _, ok := patch[k]; !ok {
					patch[k] = raw("null")
				}
			}
		}
		writeSeed(t, "FuzzParse", "gen-"+name, with(patch), text)
	}
	whole := with(nil)
	writeSeed(t, "FuzzParse", "gen-cut", whole[:len(whole)/2], text)
	writeSeed(t, "FuzzParse", "gen-not-json", []byte("model: WordPiece\n"), text)
}

// seedCases returns the cases of the parity tests (testdata/cases.jsonl).
func seedCases(t *testing.T) []testCase {
	t.Helper()
	f, err := os.Open(casesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []testCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	seen := map[string]bool{}
	for sc.Scan() {
		var c testCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if !seen[c.Text] {
			cases = append(cases, c)
			seen[c.Text] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
