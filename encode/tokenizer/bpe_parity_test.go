package tokenizer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The BPE families are checked on the GPT-2 and Mistral tokenizers of the
// repository's test data (testdata/tokenizers/, see testdata/README.md),
// each with its own cases (testdata/NAME/cases.jsonl, written by
// scripts/tokenizer-cases.mjs with its "llm" cases) and expectations
// (testdata/NAME/expected.jsonl), and on variants of them
// (testdata/NAME/VARIANT.patch.json: top-level keys replaced, such as the
// Llama 3 pre-tokenizer on GPT-2's vocabulary).

var bpeModels = []string{"gpt2", "mistral-7b"}

// sharedModelPath is the tokenizer.json of testdata/tokenizers/NAME,
// relative to this package.
func sharedModelPath(name string) string {
	return filepath.Join("..", "..", "testdata", "tokenizers", name, "tokenizer.json")
}

// loadShared loads a tokenizer.json of the test data, patched if patch is
// not "".
func loadShared(t testing.TB, name, patch string) *Tokenizer {
	t.Helper()
	path := sharedModelPath(name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("test data missing (%v): %s's tokenizer.json is needed", err, name)
	}
	if patch == "" {
		tok, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return loadPatched(t, path, patch)
}

// bpeVariants returns the patch files of a model ("" first: the file itself).
func bpeVariants(t *testing.T, name string) []string {
	t.Helper()
	patches, err := filepath.Glob(filepath.Join("testdata", name, "*.patch.json"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{""}, patches...)
}

func bpeExpectedPath(name, patch string) string {
	if patch == "" {
		return filepath.Join("testdata", name, "expected.jsonl")
	}
	return strings.TrimSuffix(patch, ".patch.json") + ".expected.jsonl"
}

func variantLabel(patch string) string {
	if patch == "" {
		return "file"
	}
	return strings.TrimSuffix(filepath.Base(patch), ".patch.json")
}

// TestParityBPE requires the ids of Hugging Face tokenizers on every case,
// for GPT-2 (byte-level BPE), Mistral (SentencePiece-style BPE with byte
// fallback) and their variants (Llama 3's Split pre-tokenizer, ByteLevel with
// add_prefix_space, the legacy Prepend+Replace normalizers, Metaspace with
// split).
func TestParityBPE(t *testing.T) {
	for _, name := range bpeModels {
		casesFile := filepath.Join("testdata", name, "cases.jsonl")
		cases := readJSONL[testCase](t, readFile(t, casesFile), casesFile)
		if len(cases) < 300 {
			t.Errorf("%s: only %d cases, want at least 300", name, len(cases))
		}
		for _, patch := range bpeVariants(t, name) {
			t.Run(name+"/"+variantLabel(patch), func(t *testing.T) {
				tok := loadShared(t, name, patch)
				path := bpeExpectedPath(name, patch)
				compareAll(t, tok, cases, readJSONL[expectation](t, readFile(t, path), path))
			})
		}
	}
}

// TestReferenceLiveBPE re-runs the reference on the BPE cases and requires
// the committed expectations to be what it prints.
func TestReferenceLiveBPE(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running the node reference")
	}
	node, why := referenceAvailable()
	if why != "" {
		t.Skip(why)
	}
	for _, name := range bpeModels {
		for _, patch := range bpeVariants(t, name) {
			t.Run(name+"/"+variantLabel(patch), func(t *testing.T) {
				if _, err := os.Stat(sharedModelPath(name)); err != nil {
					t.Fatalf("test data missing: %v", err)
				}
				args := []string{filepath.Join("testdata", "tokenizers", name, "tokenizer.json"),
					filepath.Join("encode", "tokenizer", "testdata", name, "cases.jsonl")}
				if patch != "" {
					args = append(args, filepath.Join("encode", "tokenizer", patch))
				}
				out := runReference(t, node, args...)
				path := bpeExpectedPath(name, patch)
				if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(readFile(t, path))) {
					t.Fatalf("%s is stale: regenerate it (see testdata/README.md)", path)
				}
			})
		}
	}
}

// TestBPEEncodeInto checks that reusing storage gives the same ids.
func TestBPEEncodeInto(t *testing.T) {
	for _, name := range bpeModels {
		t.Run(name, func(t *testing.T) {
			tok := loadShared(t, name, "")
			casesFile := filepath.Join("testdata", name, "cases.jsonl")
			cases := readJSONL[testCase](t, readFile(t, casesFile), casesFile)
			var buf []int32
			for i, c := range cases {
				want := tok.Encode(c.Text, c.MaxLength).IDs
				e := tok.EncodeInto(buf, c.Text, c.MaxLength)
				if !slices.Equal(e.IDs, want) {
					t.Fatalf("case %d %+q: EncodeInto gives %v, want %v", i+1, shorten(c.Text), e.IDs, want)
				}
				buf = e.IDs
			}
		})
	}
}

// TestBPEChunking checks that encoding long texts in chunks (cut before
// spaces, so that truncation stops early) gives the ids of encoding them
// whole, on random texts built to put odd characters around the cuts.
func TestBPEChunking(t *testing.T) {
	frags := []string{" ", " ", "  ", "   ", " \u00a0 ", "\n", "\n\n", "\t", " \n ", "word", "Word", "x", "'s", "'", "123", "45678",
		"!", "?!", ".", "é", "中文", "😀", "\u3000", "\u00a0", "▁", "▁▁", "<|endoftext|>", "<s>", "</s>", "ſ", "\u0301"}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, v := range []struct{ name, patch string }{
		{"gpt2", ""}, {"gpt2", filepath.Join("testdata", "gpt2", "llama3.patch.json")}, {"mistral-7b", ""},
	} {
		t.Run(v.name+"/"+variantLabel(v.patch), func(t *testing.T) {
			tok := loadShared(t, v.name, v.patch)
			if !tok.chunked {
				t.Fatal("not chunked")
			}
			whole := loadShared(t, v.name, v.patch)
			whole.chunked = false
			var texts []string
			for k := 1; k <= 4; k++ { // the chunk size falls in or after a run of spaces
				for _, tail := range []string{"    y z", " \n  y", "\u00a0  y", "▁  y", "é  y"} {
					texts = append(texts, strings.Repeat("a", chunkSize-k)+tail+strings.Repeat(" b", 10))
				}
			}
			for range 150 {
				var b strings.Builder
				for b.Len() < 3*chunkSize {
					b.WriteString(frags[rng.IntN(len(frags))])
				}
				texts = append(texts, b.String())
			}
			for _, text := range texts {
				for _, m := range []int{0, 100, 700} {
					got, want := tok.Encode(text, m), whole.Encode(text, m)
					if !slices.Equal(got.IDs, want.IDs) || got.Truncated != want.Truncated {
						t.Fatalf("max %d %+q: chunked %v, whole %v", m, shorten(text), got, want)
					}
				}
			}
		})
	}
}

// TestBPEConcurrent encodes from several goroutines at once (the word cache
// and the scratch buffers are shared); run it with -race.
func TestBPEConcurrent(t *testing.T) {
	tok := loadShared(t, "gpt2", "")
	casesFile := filepath.Join("testdata", "gpt2", "cases.jsonl")
	cases := readJSONL[testCase](t, readFile(t, casesFile), casesFile)
	path := bpeExpectedPath("gpt2", "")
	want := readJSONL[expectation](t, readFile(t, path), path)
	errs := make(chan string, 4)
	for g := range 4 {
		go func() {
			msg := ""
			for i := g; i < len(cases); i += 2 {
				if got := tok.Encode(cases[i].Text, cases[i].MaxLength); !slices.Equal(got.IDs, want[i].IDs) && msg == "" {
					msg = fmt.Sprintf("case %d: %v, want %v", i+1, got.IDs, want[i].IDs)
				}
			}
			errs <- msg
		}()
	}
	for range 4 {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
}
