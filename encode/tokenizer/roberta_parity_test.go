package tokenizer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
)

// The RoBERTa tokenizer is testmodel.RobertaTokenizerJSON built from the
// GPT-2 tokenizer.json of testdata/tokenizers (byte-level BPE, RobertaProcessing <s> $A </s>,
// <mask> with lstrip). Its cases (testdata/roberta/cases.jsonl) are the BPE
// "llm" cases picked with that tokenizer, its own added tokens inside text
// included; cases-truncated.jsonl are the same texts, each with a
// max_length. The expectations are Hugging Face tokenizers' ids (see
// testdata/README.md).

var robertaCaseFiles = []struct{ cases, expected string }{
	{"cases.jsonl", "expected.jsonl"},
	{"cases-truncated.jsonl", "truncated.expected.jsonl"},
}

// robertaJSON returns the RoBERTa tokenizer.json generated from the GPT-2
// tokenizer of the test data.
func robertaJSON(t *testing.T) []byte {
	t.Helper()
	path := tokenizer.SharedModelPath("gpt2")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("test data missing (%v): gpt2's tokenizer.json is needed", err)
	}
	b, err := testmodel.RobertaTokenizerJSON(tokenizer.ReadFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParityRoBERTa requires the ids of Hugging Face tokenizers on every
// case, with and without truncation.
func TestParityRoBERTa(t *testing.T) {
	tok, err := tokenizer.Parse(robertaJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range robertaCaseFiles {
		t.Run(f.cases, func(t *testing.T) {
			casesPath := filepath.Join("testdata", "roberta", f.cases)
			cases := tokenizer.ReadCases(t, tokenizer.ReadFile(t, casesPath), casesPath)
			if len(cases) < 300 {
				t.Errorf("only %d cases, want at least 300", len(cases))
			}
			truncating := 0
			for _, c := range cases {
				if c.MaxLength > 0 {
					truncating++
				}
			}
			t.Logf("%d cases, %d with a max_length", len(cases), truncating)
			path := filepath.Join("testdata", "roberta", f.expected)
			tokenizer.CompareAll(t, tok, cases, tokenizer.ReadExpectations(t, tokenizer.ReadFile(t, path), path))
		})
	}
}

// TestRoBERTaTokenizer checks what the rest of splash reads from the
// generated tokenizer, and the template and truncation on texts whose ids
// are known from the vocabulary (GPT-2's ids + 4).
func TestRoBERTaTokenizer(t *testing.T) {
	tok, err := tokenizer.Parse(robertaJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 50261 || tok.NumSpecialTokens() != 2 || tok.PadID() != 1 {
		t.Errorf("vocab %d, specials %d, pad %d; want 50261, 2, 1", tok.VocabSize(), tok.NumSpecialTokens(), tok.PadID())
	}
	for tokStr, want := range map[string]int32{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 50260, "Hello": 15496 + 4, "Ġworld": 995 + 4} {
		if id, ok := tok.TokenID(tokStr); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tokStr, id, ok, want)
		}
	}
	for _, c := range []struct {
		text      string
		max       int
		want      []int32
		truncated bool
	}{
		{"Hello world", 0, []int32{0, 15500, 999, 2}, false},
		{"Hello world", 4, []int32{0, 15500, 999, 2}, false},
		{"Hello world", 3, []int32{0, 15500, 2}, true},
		{"Hello world", 2, []int32{0, 2}, true},
		{"", 0, []int32{0, 2}, false},
		// <mask> takes the space before it (lstrip); <pad> in the text is the pad id.
		{"a <mask> b<pad>", 0, []int32{0, 64 + 4, 50260, 275 + 4, 1, 2}, false},
	} {
		got := tok.Encode(c.text, c.max)
		if !slices.Equal(got.IDs, c.want) || got.Truncated != c.truncated {
			t.Errorf("Encode(%q, %d) = %v (truncated %v), want %v (%v)", c.text, c.max, got.IDs, got.Truncated, c.want, c.truncated)
		}
	}
}

// TestReferenceLiveRoBERTa re-runs the reference on the generated
// tokenizer.json and requires the committed expectations to be what it
// prints.
func TestReferenceLiveRoBERTa(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running the node reference")
	}
	node, why := tokenizer.ReferenceAvailable()
	if why != "" {
		t.Skip(why)
	}
	tj, err := filepath.Abs(filepath.Join(t.TempDir(), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tj, robertaJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range robertaCaseFiles {
		t.Run(f.cases, func(t *testing.T) {
			out := tokenizer.RunReference(t, node, tj, filepath.Join("encode", "tokenizer", "testdata", "roberta", f.cases))
			path := filepath.Join("testdata", "roberta", f.expected)
			if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(tokenizer.ReadFile(t, path))) {
				t.Fatalf("%s is stale: regenerate it (see testdata/README.md)", path)
			}
		})
	}
}
