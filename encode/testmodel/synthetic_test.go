package testmodel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/splash-encode/splash/encode/tokenizer"
)

// synthLoad writes the synthetic tokenizer.json to a temporary directory and
// loads it with encode/tokenizer; it returns the tokenizer and the file path.
func synthLoad(t *testing.T) (*tokenizer.Tokenizer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), TokenizerFile)
	if err := os.WriteFile(path, SyntheticTokenizerJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatalf("synthetic tokenizer.json does not load: %v", err)
	}
	return tok, path
}

func TestSyntheticTokenizerLoads(t *testing.T) {
	tok, _ := synthLoad(t)
	js := SyntheticTokenizerJSON()
	if !bytes.Equal(js, SyntheticTokenizerJSON()) {
		t.Error("two calls of SyntheticTokenizerJSON give different bytes")
	}
	if !json.Valid(js) {
		t.Fatal("SyntheticTokenizerJSON is not valid JSON")
	}
	if got := tok.VocabSize(); got != SyntheticVocabSize {
		t.Errorf("tokenizer VocabSize = %d, want %d", got, SyntheticVocabSize)
	}
	if got, err := VocabSize(js); err != nil || got != SyntheticVocabSize {
		t.Errorf("testmodel.VocabSize = %d, %v; want %d", got, err, SyntheticVocabSize)
	}

	// Every entry is distinct (a duplicate key would silently lose an id) and
	// the file maps it to its index.
	vocab := syntheticVocab()
	if len(vocab) != SyntheticVocabSize {
		t.Fatalf("syntheticVocab has %d entries, want %d", len(vocab), SyntheticVocabSize)
	}
	var parsed struct {
		Model struct {
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(js, &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Model.Vocab) != SyntheticVocabSize {
		t.Errorf("model.vocab has %d distinct entries, want %d", len(parsed.Model.Vocab), SyntheticVocabSize)
	}
	if got := tok.Vocab(); !slices.Equal(got, vocab) {
		t.Error("tokenizer Vocab() differs from syntheticVocab()")
	}

	for tokStr, want := range map[string]int32{"[PAD]": synthPadID, "[UNK]": synthUnkID, "[CLS]": synthCLSID,
		"[SEP]": synthSEPID, "[MASK]": synthMaskID} {
		if id, ok := tok.TokenID(tokStr); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tokStr, id, ok, want)
		}
	}
	if tok.PadID() != synthPadID || tok.UnkID() != synthUnkID || tok.NumSpecialTokens() != 2 || tok.FileMaxLength() != 0 {
		t.Errorf("PadID %d UnkID %d NumSpecialTokens %d FileMaxLength %d; want 0 1 2 0",
			tok.PadID(), tok.UnkID(), tok.NumSpecialTokens(), tok.FileMaxLength())
	}

	// WordPiece splits of the kinds the corpus relies on.
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"The house", []string{"[CLS]", "the", "house", "[SEP]"}},
		{"Café, ÜBER!", []string{"[CLS]", "c", "##a", "##fe", ",", "u", "##ber", "!", "[SEP]"}},
		{"walked quickly", []string{"[CLS]", "walked", "quickly", "[SEP]"}},
		{"governments kalorin", []string{"[CLS]", "government", "##s", "k", "##al", "##ori", "##n", "[SEP]"}},
		{"straße 🙂 中国", []string{"[CLS]", "[UNK]", "[UNK]", "中", "国", "[SEP]"}},
		{"1984", []string{"[CLS]", "1", "##9", "##8", "##4", "[SEP]"}},
		{"", []string{"[CLS]", "[SEP]"}},
	} {
		got := synthTokens(vocab, tok.Encode(tc.text, 0).IDs)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}

	// On the corpus: mostly whole words, a fair share of ## pieces, a few
	// [UNK], every id in range.
	var total, pieces, unk, words int
	used := make(map[int32]bool)
	for _, doc := range SyntheticCorpus(200, 1) {
		words += len(strings.Fields(doc))
		for _, id := range tok.Encode(doc, 0).IDs {
			if id < 0 || int(id) >= SyntheticVocabSize {
				t.Fatalf("id %d outside the vocabulary", id)
			}
			used[id] = true
			total++
			switch {
			case id == synthUnkID:
				unk++
			case strings.HasPrefix(vocab[id], "##"):
				pieces++
			}
		}
	}
	t.Logf("corpus: %d tokens (%.2f per word), %.1f%% ## pieces, %.2f%% [UNK], %d distinct ids",
		total, float64(total)/float64(words), 100*float64(pieces)/float64(total), 100*float64(unk)/float64(total), len(used))
	if f := float64(pieces) / float64(total); f < 0.05 || f > 0.40 {
		t.Errorf("%.1f%% of the tokens are ## pieces, want 5%%..40%%", 100*f)
	}
	if f := float64(unk) / float64(total); unk == 0 || f > 0.05 {
		t.Errorf("%d [UNK] (%.2f%%), want some and at most 5%%", unk, 100*f)
	}
	if len(used) < SyntheticVocabSize/2 {
		t.Errorf("the corpus uses %d distinct ids, want at least half the vocabulary", len(used))
	}
}

func synthTokens(vocab []string, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = vocab[id]
	}
	return out
}

func TestSyntheticCorpus(t *testing.T) {
	const n = 200
	docs := SyntheticCorpus(n, 1)
	if len(docs) != n {
		t.Fatalf("%d documents, want %d", len(docs), n)
	}
	if !slices.Equal(docs, SyntheticCorpus(n, 1)) {
		t.Error("two calls with the same seed differ")
	}
	if !slices.Equal(docs[:60], SyntheticCorpus(60, 1)) {
		t.Error("SyntheticCorpus(60, 1) is not a prefix of SyntheticCorpus(200, 1)")
	}
	other := SyntheticCorpus(n, 2)
	same := 0
	for i := range docs {
		if docs[i] == other[i] {
			same++
		}
	}
	if same > n/10 {
		t.Errorf("seeds 1 and 2 give %d identical documents", same)
	}
	if SyntheticCorpus(0, 1) != nil || SyntheticCorpus(-1, 1) != nil {
		t.Error("SyntheticCorpus(n <= 0) is not empty")
	}

	tok, _ := synthLoad(t)
	var blank, trunc512, trunc64, short, medium, long int
	lengths := make([]int, 0, n)
	joined := strings.Join(docs, "\n")
	for i, doc := range docs {
		if !utf8.ValidString(doc) {
			t.Errorf("document %d is not valid UTF-8", i)
		}
		words := len(strings.Fields(doc))
		lengths = append(lengths, words)
		switch {
		case strings.TrimSpace(doc) == "":
			blank++
			if e := tok.Encode(doc, 512); len(e.IDs) != 2 {
				t.Errorf("blank document %d %q encodes to %v, want [CLS] [SEP]", i, doc, e.IDs)
			}
			continue
		case words < 50:
			short++
		case words <= 300:
			medium++
		default:
			long++
		}
		e := tok.Encode(doc, 512)
		if e.Truncated {
			trunc512++
			if len(e.IDs) != 512 {
				t.Errorf("document %d: truncated to %d ids, want 512", i, len(e.IDs))
			}
		}
		if tok.Encode(doc, 64).Truncated {
			trunc64++
		}
	}
	sort.Ints(lengths)
	t.Logf("%d documents: %d blank, %d under 50 words, %d of 50..300, %d over 300; words min %d median %d max %d; "+
		"truncated at 512: %d, at 64: %d", n, blank, short, medium, long, lengths[0], lengths[n/2], lengths[n-1], trunc512, trunc64)
	if blank < n/synthBlock || blank > n/20 {
		t.Errorf("%d blank documents, want %d..%d", blank, n/synthBlock, n/20)
	}
	if !slices.Contains(docs, "") {
		t.Error("no empty document")
	}
	if trunc512 < n/synthBlock || trunc512 > n/4 {
		t.Errorf("%d documents truncated at 512 tokens, want %d..%d", trunc512, n/synthBlock, n/4)
	}
	if short < 3 {
		t.Errorf("%d non-blank documents under 50 words, want at least 3", short)
	}
	if medium < n*6/10 {
		t.Errorf("%d documents of 50..300 words, want most", medium)
	}
	if lengths[n-1] < 550 || lengths[n-1] > 800 {
		t.Errorf("longest document has %d words, want 550..800", lengths[n-1])
	}

	// The mixture of characters the encoders must survive.
	for _, tc := range []struct {
		what string
		ok   func(rune) bool
	}{
		{"upper case", unicode.IsUpper},
		{"digit", unicode.IsDigit},
		{"punctuation", unicode.IsPunct},
		{"CJK ideograph", func(r rune) bool { return unicode.Is(unicode.Han, r) }},
		{"accented letter", func(r rune) bool { return strings.ContainsRune("éüñ", r) }},
		{"line break", func(r rune) bool { return r == '\n' }},
	} {
		if strings.IndexFunc(joined, tc.ok) < 0 {
			t.Errorf("no %s in the corpus", tc.what)
		}
	}
}

// synthReference returns the node binary for scripts/tokenizer-reference.mjs,
// or skips the test with the reason it cannot run.
func synthReference(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not running the node reference")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join("..", "..", "node_modules", "tokenizers", "package.json")); err != nil {
		t.Skip("node_modules/tokenizers is not installed (run scripts/setup.sh)")
	}
	return node
}

// TestSyntheticTokenizerReference requires encode/tokenizer to give the ids
// and truncation flags of Hugging Face tokenizers (the npm package, through
// scripts/tokenizer-reference.mjs) on the synthetic tokenizer and corpus.
func TestSyntheticTokenizerReference(t *testing.T) {
	node := synthReference(t)
	tok, tokPath := synthLoad(t)

	type testCase struct {
		Text      string `json:"text"`
		MaxLength int    `json:"max_length"`
	}
	// Every document at three lengths, then every kind of blank document
	// (only some of them fall in the first 200).
	var cases []testCase
	for _, doc := range append(SyntheticCorpus(200, 1), synthBlank[:]...) {
		for _, ml := range []int{512, 64, 0} {
			cases = append(cases, testCase{doc, ml})
		}
	}
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, c := range cases {
		if err := enc.Encode(c); err != nil {
			t.Fatal(err)
		}
	}
	casesPath := filepath.Join(t.TempDir(), "cases.jsonl")
	if err := os.WriteFile(casesPath, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(node, "scripts/tokenizer-reference.mjs", tokPath, casesPath)
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference script: %v\n%s", err, stderr.String())
	}
	type expectation struct {
		IDs       []int32 `json:"ids"`
		Truncated bool    `json:"truncated"`
	}
	var want []expectation
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		var e expectation
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("reference output line %d: %v", len(want)+1, err)
		}
		want = append(want, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(cases) {
		t.Fatalf("reference gives %d lines for %d cases", len(want), len(cases))
	}

	bad, truncated := 0, 0
	for i, c := range cases {
		got := tok.Encode(c.Text, c.MaxLength)
		if want[i].Truncated {
			truncated++
		}
		if slices.Equal(got.IDs, want[i].IDs) && got.Truncated == want[i].Truncated {
			continue
		}
		bad++
		if bad <= 5 {
			t.Errorf("document %d, max_length %d:\n got  %v truncated=%v\n want %v truncated=%v",
				i/3, c.MaxLength, got.IDs, got.Truncated, want[i].IDs, want[i].Truncated)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d cases differ from Hugging Face tokenizers", bad, len(cases))
	} else {
		t.Logf("%d cases identical to Hugging Face tokenizers (%d truncated)", len(cases), truncated)
	}
}

// TestSyntheticGenerate generates a tiny model from the synthetic tokenizer
// and runs the oracle on a synthetic document.
func TestSyntheticGenerate(t *testing.T) {
	tok, tokPath := synthLoad(t)
	dir := filepath.Join(t.TempDir(), "model")
	if err := Generate(dir, Config{Layers: 1, Hidden: 32, Heads: 2}, tokPath); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, TokenizerFile)); !bytes.Equal(got, SyntheticTokenizerJSON()) {
		t.Error("the model's tokenizer.json is not the synthetic one")
	}
	var conf struct {
		VocabSize int `json:"vocab_size"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, ConfigFile)), &conf); err != nil {
		t.Fatal(err)
	}
	if conf.VocabSize != tok.VocabSize() {
		t.Errorf("config.json vocab_size %d, tokenizer %d", conf.VocabSize, tok.VocabSize())
	}
	o, err := LoadOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.VocabSize() != SyntheticVocabSize {
		t.Errorf("oracle vocab %d, want %d", o.VocabSize(), SyntheticVocabSize)
	}
	var doc string
	for _, d := range SyntheticCorpus(20, 1) {
		if n := len(strings.Fields(d)); n >= 20 && n <= 80 {
			doc = d
			break
		}
	}
	ids := tok.Encode(doc, 512).IDs
	v := o.Pooled(ids, "max")
	if v == nil {
		t.Fatalf("oracle refuses the ids of %q", doc)
	}
	nz := 0
	for _, x := range v {
		if x > 0 {
			nz++
		}
	}
	for _, id := range ids {
		if v[id] <= 0 {
			t.Errorf("token %d of the document has weight %g, want > 0", id, v[id])
		}
	}
	t.Logf("%d tokens, %d non-zero terms", len(ids), nz)
}
