package shards

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// VocabularyFile is the name of the vocabulary sidecar in an output
// directory: a Parquet file with the columns id (uint32, not null) and token
// (string, not null), one row per vocabulary entry, ids from 0 in order.
// Tokens are stored as they are in the tokenizer, without escaping. Parquet
// rather than text because no CSV dialect reads every real vocabulary
// (BERT's `"`, id 1000, opens a quoted field in Python's and pandas'
// default CSV readers). Its name starts with "_" so that splash, Spark and
// Hive take it for a sidecar, not a shard; a glob such as out/*.parquet in
// other tools does match it.
const VocabularyFile = "_vocabulary.parquet"

// LegacyVocabularyFile is the vocabulary sidecar that splash wrote before
// VocabularyFile: one line per vocabulary entry, "<id>\t<token>\n", ids from
// 0 in order. Tokens are escaped: backslash as \\, tab as \t, newline as \n,
// carriage return as \r, other control bytes and bytes that are not UTF-8 as
// \xHH. Everything else, non-ASCII UTF-8 included, is written as it is.
// ReadVocabulary still reads it; WriteVocabulary checks an existing one
// against the vocabulary but writes VocabularyFile.
const LegacyVocabularyFile = "_vocabulary.tsv"

// Vocabulary column names (see VocabularyFile).
const (
	VocabColID    = "id"
	VocabColToken = "token"
)

// vocabSchema is the Arrow schema of VocabularyFile.
var vocabSchema = arrow.NewSchema([]arrow.Field{
	{Name: VocabColID, Type: arrow.PrimitiveTypes.Uint32},
	{Name: VocabColToken, Type: arrow.BinaryTypes.String},
}, nil)

// WriteVocabulary writes outDir/_vocabulary.parquet atomically. When the file
// already exists with the same tokens it is left alone; with other tokens the
// error wraps ErrVocabularyMismatch (the directory holds shards of another
// model). An old _vocabulary.tsv (LegacyVocabularyFile) in outDir is checked
// the same way and left in place. Two runs writing the same vocabulary at
// once are harmless.
func WriteVocabulary(outDir string, vocab []string) error {
	path := filepath.Join(outDir, VocabularyFile)
	if old, err := readLegacyVocabulary(outDir, LegacyVocabularyFile); err == nil {
		if d := describeVocabDiff(old, vocab); d != "" {
			return fmt.Errorf("write %s: %w: %s has %s", path, ErrVocabularyMismatch, LegacyVocabularyFile, d)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", path, err)
	}
	old, err := readParquetVocabulary(outDir, VocabularyFile)
	switch {
	case err == nil:
		if d := describeVocabDiff(old, vocab); d != "" {
			return fmt.Errorf("write %s: %w: %s", path, ErrVocabularyMismatch, d)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write %s: %w", path, err)
	}
	data, err := encodeVocabulary(vocab)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeFileAtomic(outDir, VocabularyFile, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// encodeVocabulary returns the bytes of a VocabularyFile holding vocab: one
// zstd-compressed row group, with the Arrow schema stored.
func encodeVocabulary(vocab []string) ([]byte, error) {
	mem := memory.NewGoAllocator()
	ids := array.NewUint32Builder(mem)
	defer ids.Release()
	toks := array.NewStringBuilder(mem)
	defer toks.Release()
	for i, tok := range vocab {
		ids.Append(uint32(i))
		toks.Append(tok)
	}
	idArr, tokArr := ids.NewArray(), toks.NewArray()
	defer idArr.Release()
	defer tokArr.Release()
	rec := array.NewRecord(vocabSchema, []arrow.Array{idArr, tokArr}, int64(len(vocab)))
	defer rec.Release()
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithAllocator(mem),
		parquet.WithMaxRowGroupLength(int64(max(len(vocab), 1))),
	)
	w, err := pqarrow.NewFileWriter(vocabSchema, &buf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	if err != nil {
		return nil, err
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// describeVocabDiff says how the vocabulary old differs from cur; "" when
// they are the same.
func describeVocabDiff(old, cur []string) string {
	for i := 0; i < min(len(old), len(cur)); i++ {
		if old[i] != cur[i] {
			return fmt.Sprintf("id %d is %q, want %q", i, old[i], cur[i])
		}
	}
	if len(old) != len(cur) {
		return fmt.Sprintf("%d entries, want %d", len(old), len(cur))
	}
	return ""
}

// ReadVocabulary reads a vocabulary file: a VocabularyFile (told by its
// Parquet magic bytes) or a LegacyVocabularyFile. When path names a
// VocabularyFile that does not exist, the LegacyVocabularyFile beside it is
// read instead (outputs of older versions); the error of a directory with
// neither wraps fs.ErrNotExist. The file is opened inside its directory: a
// symbolic link leading out of it is refused (ErrUnsafePath).
func ReadVocabulary(path string) ([]string, error) {
	vocab, _, err := readVocabularyAt(path)
	return vocab, err
}

// FindVocabulary reads the vocabulary of the output directory dir, as
// ReadVocabulary(dir/_vocabulary.parquet) does, and returns the path of the
// file it read.
func FindVocabulary(dir string) (vocab []string, path string, err error) {
	return readVocabularyAt(filepath.Join(dir, VocabularyFile))
}

func readVocabularyAt(path string) ([]string, string, error) {
	dir, name := filepath.Dir(path), filepath.Base(path)
	vocab, err := readVocabularyFile(dir, name)
	if err != nil && name == VocabularyFile && errors.Is(err, fs.ErrNotExist) {
		legacy := filepath.Join(dir, LegacyVocabularyFile)
		if v, lerr := readVocabularyFile(dir, LegacyVocabularyFile); !errors.Is(lerr, fs.ErrNotExist) {
			return v, legacy, wrapRead(legacy, lerr)
		}
	}
	return vocab, path, wrapRead(path, err)
}

func wrapRead(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("read %s: %w", path, err)
}

// readVocabularyFile reads dir/name in either format.
func readVocabularyFile(dir, name string) ([]string, error) {
	f, err := openInDir(dir, name)
	if err != nil {
		return nil, err
	}
	var magic [4]byte
	n, err := io.ReadFull(f, magic[:])
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n == 4 && string(magic[:]) == "PAR1" {
		return readParquetVocabulary(dir, name)
	}
	return readLegacyVocabulary(dir, name)
}

// readParquetVocabulary reads dir/name as a VocabularyFile, checking its
// columns and that the ids count from 0.
func readParquetVocabulary(dir, name string) ([]string, error) {
	f, err := openInDir(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return nil, fmt.Errorf("not a vocabulary Parquet file: %w", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	sc, err := fr.Schema()
	if err != nil {
		return nil, err
	}
	if len(sc.Fields()) != 2 || sc.Field(0).Name != VocabColID || sc.Field(1).Name != VocabColToken ||
		!arrow.TypeEqual(sc.Field(0).Type, arrow.PrimitiveTypes.Uint32) || !arrow.TypeEqual(sc.Field(1).Type, arrow.BinaryTypes.String) {
		return nil, fmt.Errorf("want the columns %s uint32, %s string; the file has %s", VocabColID, VocabColToken, sc)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	vocab := make([]string, 0, tbl.NumRows())
	idCol, tokCol := tbl.Column(0).Data().Chunks(), tbl.Column(1).Data().Chunks()
	if len(idCol) != len(tokCol) {
		return nil, fmt.Errorf("the id and token columns are chunked differently")
	}
	for c := range idCol {
		ids, toks := idCol[c].(*array.Uint32), tokCol[c].(*array.String)
		for i := 0; i < ids.Len(); i++ {
			if ids.IsNull(i) || toks.IsNull(i) {
				return nil, fmt.Errorf("row %d: null %s or %s", len(vocab), VocabColID, VocabColToken)
			}
			if int64(ids.Value(i)) != int64(len(vocab)) {
				return nil, fmt.Errorf("row %d: %s %d, want %d (ids count from 0, in order)", len(vocab), VocabColID, ids.Value(i), len(vocab))
			}
			vocab = append(vocab, strings.Clone(toks.Value(i)))
		}
	}
	return vocab, nil
}

// readLegacyVocabulary reads dir/name as a LegacyVocabularyFile.
func readLegacyVocabulary(dir, name string) ([]string, error) {
	f, err := openInDir(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var vocab []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		id, tok, ok := strings.Cut(line, "\t")
		if !ok || id != strconv.Itoa(len(vocab)) {
			return nil, fmt.Errorf("line %d: want \"%d<TAB>token\", got %q", len(vocab)+1, len(vocab), line)
		}
		t, err := unescapeToken(tok)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", len(vocab)+1, err)
		}
		vocab = append(vocab, t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vocab, nil
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
