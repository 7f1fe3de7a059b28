package shards

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// VocabularyFile is the name of the vocabulary sidecar in an output
// directory: one line per vocabulary entry, "<id>\t<token>\n", ids from 0 in
// order. Tokens are escaped: backslash as \\, tab as \t, newline as \n,
// carriage return as \r, other control bytes and bytes that are not UTF-8 as
// \xHH. Everything else, non-ASCII UTF-8 included, is written as it is.
const VocabularyFile = "_vocabulary.tsv"

// WriteVocabulary writes outDir/_vocabulary.tsv atomically. When the file
// already exists with the same content it is left alone; with different
// content the error wraps ErrVocabularyMismatch (the directory holds shards of
// another model). Two runs writing the same vocabulary at once are harmless.
func WriteVocabulary(outDir string, vocab []string) error {
	var buf bytes.Buffer
	for i, tok := range vocab {
		buf.WriteString(strconv.Itoa(i))
		buf.WriteByte('\t')
		buf.WriteString(escapeToken(tok))
		buf.WriteByte('\n')
	}
	path := filepath.Join(outDir, VocabularyFile)
	old, err := readFileInDir(outDir, VocabularyFile, 1<<30)
	switch {
	case err == nil:
		if bytes.Equal(old, buf.Bytes()) {
			return nil
		}
		return fmt.Errorf("write %s: %w: %s", path, ErrVocabularyMismatch, describeVocabDiff(old, buf.Bytes()))
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeFileAtomic(outDir, VocabularyFile, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
}

func describeVocabDiff(old, cur []byte) string {
	a, b := strings.Split(string(old), "\n"), strings.Split(string(cur), "\n")
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("line %d is %q, want %q", i+1, a[i], b[i])
		}
	}
	return fmt.Sprintf("the file has %d entries, want %d", len(a)-1, len(b)-1)
}

// ReadVocabulary reads a vocabulary file written by WriteVocabulary. The
// file is opened inside its directory: a symbolic link leading out of it is
// refused (ErrUnsafePath).
func ReadVocabulary(path string) ([]string, error) {
	f, err := openInDir(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var vocab []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		id, tok, ok := strings.Cut(line, "\t")
		if !ok || id != strconv.Itoa(len(vocab)) {
			return nil, fmt.Errorf("read %s: line %d: want \"%d<TAB>token\", got %q", path, len(vocab)+1, len(vocab), line)
		}
		t, err := unescapeToken(tok)
		if err != nil {
			return nil, fmt.Errorf("read %s: line %d: %w", path, len(vocab)+1, err)
		}
		vocab = append(vocab, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return vocab, nil
}

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

func unescapeToken(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("token %q ends with a lone backslash", s)
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf("token %q: short \\x escape", s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("token %q: bad \\x escape", s)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("token %q: unknown escape \\%c", s, s[i])
		}
	}
	return b.String(), nil
}
