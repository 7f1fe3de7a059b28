package search

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/splash-encode/splash/shards"
)

// Collection is a set of impact shards read as one: a single shard file or
// the shards of a splash encode output directory.
type Collection struct {
	// Path is the file or directory given to OpenCollection.
	Path string
	// Files are the shard files, in reading order.
	Files []string
	// Rows is the number of rows of all shards (from their manifests; 0
	// when a file has none).
	Rows int64
	// VocabSize is the splash.vocab_size of the shards (all equal).
	VocabSize int
	// Scale is the splash.scale of the shards (all equal).
	Scale float32
	// Vocabulary is the _vocabulary.parquet of the directory (for a file: beside
	// it), nil when there is none.
	Vocabulary []string
	// VocabularyPath is where Vocabulary was read from.
	VocabularyPath string
}

// OpenCollection resolves path. A directory must be a splash encode output
// directory: its shards are those with a manifest (shards.ListManifests),
// in manifest order, and each must verify (shards.VerifyShard: size, sha256
// and rows). A file is one impact shard; when its directory holds a manifest
// for it, that manifest must verify too. The shards must agree on the
// vocabulary size and the impact scale. Problems with the data wrap
// ErrBadInput.
func OpenCollection(path string) (*Collection, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	out, err := shards.ResolveOutput(context.Background(), path)
	if errors.Is(err, shards.ErrNotOutput) {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if err != nil {
		return nil, fmt.Errorf("list shards of %s: %w", path, err)
	}
	c := &Collection{Path: path, Files: out.Files, Rows: out.Rows}
	for i, f := range c.Files {
		kv, err := shards.ShardMetadata(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		vs, scale, err := vocabAndScale(kv)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadInput, f, err)
		}
		if i == 0 {
			c.VocabSize, c.Scale = vs, scale
			continue
		}
		if vs != c.VocabSize {
			return nil, fmt.Errorf("%w: %s has vocabulary size %d, %s has %d", ErrBadInput, f, vs, c.Files[0], c.VocabSize)
		}
		if scale != c.Scale {
			return nil, fmt.Errorf("%w: %s has impact scale %g, %s has %g: impacts are not comparable", ErrBadInput, f, scale, c.Files[0], c.Scale)
		}
	}
	if out.Vocabulary != nil {
		if len(out.Vocabulary) != c.VocabSize {
			return nil, fmt.Errorf("%w: %s has %d entries, the shards' vocabulary size is %d", ErrBadInput, out.VocabularyPath, len(out.Vocabulary), c.VocabSize)
		}
		c.Vocabulary, c.VocabularyPath = out.Vocabulary, out.VocabularyPath
	}
	return c, nil
}

// vocabAndScale reads the vocabulary size and impact scale of a shard's
// metadata.
func vocabAndScale(kv map[string]string) (int, float32, error) {
	m, err := shards.ParseMetadata(kv)
	if err != nil {
		return 0, 0, err
	}
	if m.VocabSize <= 0 {
		return 0, 0, fmt.Errorf("metadata %s = %q: want a positive integer", shards.MetaVocabSize, kv[shards.MetaVocabSize])
	}
	if !(m.Scale > 0) {
		return 0, 0, fmt.Errorf("metadata %s = %q: want a positive number", shards.MetaScale, kv[shards.MetaScale])
	}
	return m.VocabSize, m.Scale, nil
}

// SameVocabulary checks that queries and documents use one vocabulary: the
// same vocabulary size and, when both have a _vocabulary.parquet, the same
// token for every id. The error (wrapping ErrVocabularyMismatch) names
// the first difference.
func SameVocabulary(docs, queries *Collection) error {
	if docs.VocabSize != queries.VocabSize {
		return fmt.Errorf("%w: documents %s have vocabulary size %d, queries %s have %d",
			ErrVocabularyMismatch, docs.Path, docs.VocabSize, queries.Path, queries.VocabSize)
	}
	if docs.Vocabulary == nil || queries.Vocabulary == nil {
		return nil
	}
	for id := range docs.Vocabulary {
		if docs.Vocabulary[id] != queries.Vocabulary[id] {
			return fmt.Errorf("%w: id %d is %q in %s but %q in %s", ErrVocabularyMismatch,
				id, docs.Vocabulary[id], docs.VocabularyPath, queries.Vocabulary[id], queries.VocabularyPath)
		}
	}
	return nil
}

// Each calls fn for every row of the collection's shards, in order, with
// the shard file and the row's index in it, and stops at the first error or
// when ctx is done.
func (c *Collection) Each(ctx context.Context, fn func(file string, row int64, r shards.Row) error) error {
	for _, f := range c.Files {
		var n int64
		err := shards.ReadShard(f, func(r shards.Row) error {
			if n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			n++
			return fn(f, n-1, r)
		})
		if err != nil {
			if errors.Is(err, shards.ErrInvalidShard) {
				return fmt.Errorf("%w: %w", ErrBadInput, err)
			}
			return err
		}
	}
	return ctx.Err()
}

// Queries calls emit with every row of the collection as a query (its
// doc_id is the query id), in order, after checking its term ids against
// the collection's vocabulary size. An ErrBadInput error from emit is
// returned with the file and row of the query.
func (c *Collection) Queries(ctx context.Context, emit func(Query) error) error {
	return c.Each(ctx, func(file string, row int64, r shards.Row) error {
		if err := checkVec(r.Vec, c.VocabSize); err != nil {
			return fmt.Errorf("%w: %s row %d: query %s: %w", ErrBadInput, file, row, r.DocID, err)
		}
		if err := emit(Query{ID: r.DocID, Vec: r.Vec}); err != nil {
			if errors.Is(err, ErrBadInput) {
				return fmt.Errorf("%s row %d: %w", file, row, err)
			}
			return err
		}
		return nil
	})
}
