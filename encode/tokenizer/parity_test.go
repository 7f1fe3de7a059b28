package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// bertPath is bert-base-uncased's tokenizer.json in the repository's test
// data (testdata/tokenizers/, see testdata/README.md), relative to this
// package.
var bertPath = filepath.Join("..", "..", "testdata", "tokenizers", "bert-base-uncased", "tokenizer.json")

const (
	casesPath    = "testdata/cases.jsonl"
	expectedPath = "testdata/expected.jsonl"
)

type testCase struct {
	Text      string `json:"text"`
	MaxLength int    `json:"max_length"`
}

type expectation struct {
	IDs       []int32 `json:"ids"`
	Truncated bool    `json:"truncated"`
}

// loadBert loads the bert-base-uncased tokenizer of the test data.
func loadBert(tb testing.TB) *Tokenizer {
	tb.Helper()
	if _, err := os.Stat(bertPath); err != nil {
		tb.Fatalf("test data missing (%v): the bert-base-uncased tokenizer.json is needed", err)
	}
	tok, err := Load(bertPath)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func readJSONL[T any](tb testing.TB, data []byte, name string) []T {
	tb.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<26)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			tb.Fatalf("%s:%d: %v", name, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return out
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func shorten(s string) string {
	if len(s) > 160 {
		return s[:160] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// compareAll encodes every case and reports mismatches against want.
func compareAll(t *testing.T, tok *Tokenizer, cases []testCase, want []expectation) {
	t.Helper()
	if len(cases) != len(want) {
		t.Fatalf("%d cases but %d expectations: regenerate the golden files (see testdata/README.md)", len(cases), len(want))
	}
	bad, skipped := 0, 0
	for i, c := range cases {
		if tok.ValidateMaxLength(c.MaxLength) != nil {
			// Outside Encode's contract (HF itself is erratic there: it
			// sometimes keeps max_length content ids, sometimes all).
			skipped++
			continue
		}
		got := tok.Encode(c.Text, c.MaxLength)
		if slices.Equal(got.IDs, want[i].IDs) && got.Truncated == want[i].Truncated {
			continue
		}
		bad++
		if bad <= 10 {
			t.Errorf("case %d (max_length %d) %+q:\n got  %v truncated=%v\n want %v truncated=%v",
				i+1, c.MaxLength, shorten(c.Text), got.IDs, got.Truncated, want[i].IDs, want[i].Truncated)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d cases differ from the reference", bad, len(cases)-skipped)
	} else {
		t.Logf("%d of %d cases identical to the reference (%d skipped: max_length below the special tokens)",
			len(cases)-skipped, len(cases)-skipped, skipped)
	}
}

// TestParity requires ids identical to Hugging Face tokenizers (recorded in
// testdata/expected.jsonl) on every case of testdata/cases.jsonl.
func TestParity(t *testing.T) {
	tok := loadBert(t)
	cases := readJSONL[testCase](t, readFile(t, casesPath), casesPath)
	want := readJSONL[expectation](t, readFile(t, expectedPath), expectedPath)
	if len(cases) < 300 {
		t.Errorf("only %d cases, want at least 300", len(cases))
	}
	compareAll(t, tok, cases, want)
}

// TestParityEncodeInto checks that reusing storage gives the same ids.
func TestParityEncodeInto(t *testing.T) {
	tok := loadBert(t)
	cases := readJSONL[testCase](t, readFile(t, casesPath), casesPath)
	want := readJSONL[expectation](t, readFile(t, expectedPath), expectedPath)
	var buf []int32
	for i, c := range cases {
		e := tok.EncodeInto(buf, c.Text, c.MaxLength)
		if !slices.Equal(e.IDs, want[i].IDs) {
			t.Fatalf("case %d %+q: EncodeInto gives %v, want %v", i+1, shorten(c.Text), e.IDs, want[i].IDs)
		}
		buf = e.IDs
	}
}

// referenceAvailable reports why the live reference cannot run, or "".
func referenceAvailable() (string, string) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", "node is not installed"
	}
	if _, err := os.Stat(filepath.Join("..", "..", "node_modules", "tokenizers", "package.json")); err != nil {
		return "", "node_modules/tokenizers is not installed (run scripts/setup.sh)"
	}
	return node, ""
}

// runReference runs scripts/tokenizer-reference.mjs from the repository root.
func runReference(t *testing.T, node string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(node, append([]string{"scripts/tokenizer-reference.mjs"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference script: %v\n%s", err, stderr.String())
	}
	return out
}

// TestReferenceLive re-runs the reference on the committed cases and requires
// the committed expected.jsonl to be what it prints, so a stale golden file
// (or a changed reference) is caught.
func TestReferenceLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running the node reference")
	}
	node, why := referenceAvailable()
	if why != "" {
		t.Skip(why)
	}
	if _, err := os.Stat(bertPath); err != nil {
		t.Fatalf("test data missing: %v", err)
	}
	out := runReference(t, node, filepath.Join("testdata", "tokenizers", "bert-base-uncased", "tokenizer.json"),
		filepath.Join("encode", "tokenizer", casesPath))
	live := readJSONL[expectation](t, out, "reference output")
	committed := readJSONL[expectation](t, readFile(t, expectedPath), expectedPath)
	if len(live) != len(committed) {
		t.Fatalf("reference gives %d lines, expected.jsonl has %d: regenerate it (see testdata/README.md)", len(live), len(committed))
	}
	for i := range live {
		if !slices.Equal(live[i].IDs, committed[i].IDs) || live[i].Truncated != committed[i].Truncated {
			t.Fatalf("expected.jsonl line %d is stale (see testdata/README.md): reference now gives %v (truncated=%v), file has %v (truncated=%v)",
				i+1, live[i].IDs, live[i].Truncated, committed[i].IDs, committed[i].Truncated)
		}
	}
}

// variant is a tokenizer.json derived from bert-base-uncased by replacing
// top-level keys (testdata/variants/NAME.patch.json), with its expectations
// (testdata/variants/NAME.expected.jsonl) on the shared cases.
func variantNames(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob("testdata/variants/*.patch.json")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), ".patch.json"))
	}
	return names
}

func loadVariant(t *testing.T, name string) *Tokenizer {
	t.Helper()
	return loadPatched(t, bertPath, filepath.Join("testdata", "variants", name+".patch.json"))
}

// loadPatched parses the tokenizer.json at path with the top-level keys of
// the JSON object at patch replaced, as scripts/tokenizer-reference.mjs
// does with its PATCH_JSON.
func loadPatched(t testing.TB, path, patch string) *Tokenizer {
	t.Helper()
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(readFile(t, path), &cfg); err != nil {
		t.Fatal(err)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(readFile(t, patch), &p); err != nil {
		t.Fatal(err)
	}
	for k, v := range p {
		cfg[k] = v
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(data)
	if err != nil {
		t.Fatalf("%s patched with %s: %v", path, patch, err)
	}
	return tok
}

// TestParityVariants checks other configurations of the same components
// (cased, accents kept, Sequence normalizers, Whitespace pre-tokenizers,
// added tokens with lstrip/rstrip/single_word/normalized).
func TestParityVariants(t *testing.T) {
	loadBert(t)
	cases := readJSONL[testCase](t, readFile(t, casesPath), casesPath)
	for _, name := range variantNames(t) {
		t.Run(name, func(t *testing.T) {
			tok := loadVariant(t, name)
			path := filepath.Join("testdata", "variants", name+".expected.jsonl")
			want := readJSONL[expectation](t, readFile(t, path), path)
			compareAll(t, tok, cases, want)
		})
	}
}

// TestReferenceLiveVariants is TestReferenceLive for the variants.
func TestReferenceLiveVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running the node reference")
	}
	node, why := referenceAvailable()
	if why != "" {
		t.Skip(why)
	}
	loadBert(t)
	for _, name := range variantNames(t) {
		t.Run(name, func(t *testing.T) {
			out := runReference(t, node, filepath.Join("testdata", "tokenizers", "bert-base-uncased", "tokenizer.json"),
				filepath.Join("encode", "tokenizer", casesPath),
				filepath.Join("encode", "tokenizer", "testdata", "variants", name+".patch.json"))
			path := filepath.Join("testdata", "variants", name+".expected.jsonl")
			if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(readFile(t, path))) {
				t.Fatalf("%s is stale: regenerate it (see testdata/README.md)", path)
			}
		})
	}
}

// TestUnicodeTablesVersion requires tables_hf.go to have been measured on
// the installed reference version (regenerate with
// scripts/tokenizer-unicode-tables.mjs when package.json moves).
func TestUnicodeTablesVersion(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "node_modules", "tokenizers", "package.json"))
	if err != nil {
		t.Skipf("node_modules/tokenizers is not installed: %v", err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatal(err)
	}
	if want := "tokenizers@" + pkg.Version; hfTablesVersion != want {
		t.Errorf("tables_hf.go was measured on %s but %s is installed: regenerate it (see testdata/README.md)", hfTablesVersion, want)
	}
	if want := "tokenizers@" + pkg.Version; hfRegexTablesVersion != want {
		t.Errorf("tables_regex.go was measured on %s but %s is installed: regenerate it (see testdata/README.md)", hfRegexTablesVersion, want)
	}
}
