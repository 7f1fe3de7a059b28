package shards

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVocabularyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	vocab := []string{"[PAD]", "[unused0]", "##ing", "tab\there", "new\nline", `back\slash`, "cr\r", "bell\x07", "bad\xffutf8", "é", "日本", "", `\t literal`, "\x7f"}
	if err := WriteVocabulary(dir, vocab); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, VocabularyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(vocab) {
		t.Fatalf("%d lines for %d tokens:\n%s", len(lines), len(vocab), data)
	}
	for _, l := range lines {
		if strings.Count(l, "\t") != 1 || strings.ContainsAny(l, "\r\x07\x7f") {
			t.Errorf("line %q is not id<TAB>escaped token", l)
		}
	}
	if lines[3] != `3	tab\there` || lines[5] != `5	back\\slash` || lines[8] != `8	bad\xffutf8` || lines[10] != "10	日本" {
		t.Errorf("escaping:\n%s", data)
	}
	got, err := ReadVocabulary(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, vocab) {
		t.Errorf("read back %q, want %q", got, vocab)
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
	if !errors.Is(err, ErrVocabularyMismatch) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("different vocabulary: %v", err)
	}
	if err := WriteVocabulary(dir, vocab[:5]); !errors.Is(err, ErrVocabularyMismatch) {
		t.Errorf("shorter vocabulary: %v", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{VocabularyFile}) {
		t.Errorf("directory holds %v", names)
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
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadVocabulary(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
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
