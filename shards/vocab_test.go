package shards

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestVocabularyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	vocab := []string{"[PAD]", "[unused0]", "##ing", "tab\there", "new\nline", `back\slash`, "cr\r", "bell\x07", `"`, "é", "日本", "", `\t literal`, "\x7f", "a,b"}
	if err := WriteVocabulary(dir, vocab); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, VocabularyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "PAR1") || !strings.HasSuffix(string(data), "PAR1") {
		t.Fatalf("%s is not a Parquet file: %.40q", path, data)
	}
	got, err := ReadVocabulary(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, vocab) {
		t.Errorf("read back %q, want %q", got, vocab)
	}
	got, at, err := FindVocabulary(dir)
	if err != nil || at != path || !slices.Equal(got, vocab) {
		t.Errorf("FindVocabulary: %q at %s, %v", got, at, err)
	}
	// Same vocabulary again: left alone. A different one: refused.
	st1, _ := os.Stat(path)
	if err := WriteVocabulary(dir, vocab); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(path); !st2.ModTime().Equal(st1.ModTime()) || !os.SameFile(st1, st2) {
		t.Error("identical vocabulary was rewritten")
	}
	other := slices.Clone(vocab)
	other[2] = "##ed"
	err = WriteVocabulary(dir, other)
	if !errors.Is(err, ErrVocabularyMismatch) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `id 2 is "##ing", want "##ed"`) {
		t.Errorf("different vocabulary: %v", err)
	}
	if err := WriteVocabulary(dir, vocab[:5]); !errors.Is(err, ErrVocabularyMismatch) || !strings.Contains(err.Error(), "15 entries, want 5") {
		t.Errorf("shorter vocabulary: %v", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{VocabularyFile}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestVocabularyEmptyAndDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	vocab := []string{"[PAD]", "x", "##y"}
	for _, d := range []string{a, b} {
		if err := WriteVocabulary(d, vocab); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(filepath.Join(a, VocabularyFile))
	db, _ := os.ReadFile(filepath.Join(b, VocabularyFile))
	if string(da) != string(db) {
		t.Error("the same vocabulary gave two different files")
	}
	e := t.TempDir()
	if err := WriteVocabulary(e, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadVocabulary(filepath.Join(e, VocabularyFile)); err != nil || len(got) != 0 {
		t.Errorf("empty vocabulary read back as %q, %v", got, err)
	}
}

// writeLegacyVocabulary writes dir/_vocabulary.tsv as splash did before
// _vocabulary.parquet.
func writeLegacyVocabulary(t *testing.T, dir string, vocab []string) string {
	t.Helper()
	var b strings.Builder
	for i, tok := range vocab {
		fmt.Fprintf(&b, "%d\t%s\n", i, escapeToken(tok))
	}
	p := filepath.Join(dir, LegacyVocabularyFile)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLegacyVocabulary reads the _vocabulary.tsv of an older output where
// _vocabulary.parquet is asked for, and checks it when a run adds the new
// file to that directory.
func TestLegacyVocabulary(t *testing.T) {
	dir := t.TempDir()
	vocab := []string{"[PAD]", "tab\there", `back\slash`, "bad\xffutf8", `"`, "日本"}
	legacy := writeLegacyVocabulary(t, dir, vocab)
	data, _ := os.ReadFile(legacy)
	if lines := strings.Split(string(data), "\n"); lines[1] != `1	tab\there` || lines[2] != `2	back\\slash` || lines[3] != `3	bad\xffutf8` {
		t.Errorf("legacy escaping:\n%s", data)
	}
	got, err := ReadVocabulary(filepath.Join(dir, VocabularyFile))
	if err != nil || !slices.Equal(got, vocab) {
		t.Fatalf("ReadVocabulary with only the TSV: %q, %v", got, err)
	}
	if _, at, err := FindVocabulary(dir); err != nil || at != legacy {
		t.Errorf("FindVocabulary read %s, %v; want %s", at, err, legacy)
	}
	other := slices.Clone(vocab)
	other[5] = "x"
	if err := WriteVocabulary(dir, other); !errors.Is(err, ErrVocabularyMismatch) || !strings.Contains(err.Error(), LegacyVocabularyFile) {
		t.Errorf("vocabulary unlike the TSV: %v", err)
	}
	if err := WriteVocabulary(dir, vocab); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{VocabularyFile, LegacyVocabularyFile}) {
		t.Errorf("directory holds %v", names)
	}
	if _, at, err := FindVocabulary(dir); err != nil || at != filepath.Join(dir, VocabularyFile) {
		t.Errorf("with both files FindVocabulary read %s, %v", at, err)
	}
	// Neither file: an error that wraps fs.ErrNotExist.
	if _, err := ReadVocabulary(filepath.Join(t.TempDir(), VocabularyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no vocabulary: %v", err)
	}
}

func TestReadVocabularyErrors(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"skipped id":   "0\ta\n2\tb\n",
		"no tab":       "0 a\n",
		"bad escape":   "0\ta\\q\n",
		"lone slash":   "0\ta\\\n",
		"short hex":    "0\ta\\x4\n",
		"bad hex":      "0\t\\xzz\n",
		"not a number": "x\ta\n",
		"bad parquet":  "PAR1 but nothing after",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadVocabulary(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	// A shard is a Parquet file but not a vocabulary.
	out := writeShard(t, dir, "docs", FormatParquet, testRows(3, 4), WriterOptions{})
	if _, err := ReadVocabulary(out.Path); err == nil || !strings.Contains(err.Error(), "want the columns id uint32, token string") {
		t.Errorf("a shard read as a vocabulary: %v", err)
	}
}

// escapeToken escapes a token of LegacyVocabularyFile.
func escapeToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		case c < utf8.RuneSelf:
			b.WriteByte(c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
			continue
		}
		i++
	}
	return b.String()
}

func TestEscapeTokenRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", "\\", "\\\\x41", "\x00\x01\x1f", "\xc3", "\xc3\xa9", "\t\n\r", "\U0001F600"} {
		e := escapeToken(s)
		if strings.ContainsAny(e, "\t\n\r") {
			t.Errorf("escapeToken(%q) = %q keeps a separator", s, e)
		}
		u, err := unescapeToken(e)
		if err != nil || u != s {
			t.Errorf("unescape(escape(%q)) = %q, %v", s, u, err)
		}
	}
}
