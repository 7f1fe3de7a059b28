package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/splash-encode/splash/shards"
)

// Input is what ResolveInput found: the shards to export, in order, and the
// vocabulary beside them.
type Input struct {
	Shards []string
	// Vocabulary is the content of _vocabulary.tsv beside the shards; nil
	// when there is none.
	Vocabulary []string
	// Verified reports that every shard was checked against its manifest
	// (always for a directory; for a single file when a manifest names it).
	Verified bool
}

// ResolveInput turns the input of an export into shards:
//
//   - an impact shard file: that shard, verified against its manifest when
//     _manifest.<base>.json is beside it (a shard copied elsewhere without
//     one is taken as it is);
//   - an output directory of splash encode: the shards of its manifests, in
//     the sorted order of their names, each verified (shards.VerifyShard)
//     before anything is written. A directory without manifests, a manifest
//     that does not verify and a shard file without a manifest (an unfinished
//     run) are errors.
//
// The vocabulary is read from _vocabulary.tsv in the shards' directory when
// the file exists. Errors about the input wrap ErrInput; a path that does not
// exist wraps fs.ErrNotExist.
func ResolveInput(ctx context.Context, path string) (Input, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Input{}, err
	}
	var in Input
	dir := path
	if st.IsDir() {
		if in, err = resolveDir(ctx, path); err != nil {
			return Input{}, err
		}
	} else {
		dir = filepath.Dir(path)
		base := shards.InputBase(path)
		m, err := shards.VerifyShard(dir, base)
		switch {
		case err == nil && m.Output.Path == filepath.Base(path):
			in.Verified = true
		case err == nil || errors.Is(err, fs.ErrNotExist):
			// No manifest names this file: take it as it is.
		default:
			return Input{}, fmt.Errorf("%w: %s does not verify against its manifest: %w", ErrInput, path, err)
		}
		in.Shards = []string{path}
	}
	vocab, err := shards.ReadVocabulary(filepath.Join(dir, shards.VocabularyFile))
	switch {
	case err == nil:
		in.Vocabulary = vocab
	case !errors.Is(err, fs.ErrNotExist):
		return Input{}, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return in, nil
}

func resolveDir(ctx context.Context, dir string) (Input, error) {
	bases, err := shards.ListManifests(dir)
	if err != nil {
		return Input{}, err
	}
	if len(bases) == 0 {
		return Input{}, fmt.Errorf("%w: %s holds no manifest (_manifest.*.json): not an output directory of splash encode, or no shard of it is done yet", ErrInput, dir)
	}
	in := Input{Verified: true}
	named := make(map[string]bool, len(bases))
	for _, base := range bases {
		if err := ctx.Err(); err != nil {
			return Input{}, err
		}
		m, err := shards.VerifyShard(dir, base)
		if err != nil {
			return Input{}, fmt.Errorf("%w: shard %s of %s does not verify: %w", ErrInput, base, dir, err)
		}
		in.Shards = append(in.Shards, filepath.Join(dir, m.Output.Path))
		named[m.Output.Path] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Input{}, err
	}
	var orphans []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") || named[name] {
			continue
		}
		if ext := filepath.Ext(name); ext == shards.FormatParquet.Ext() || ext == shards.FormatArrow.Ext() {
			orphans = append(orphans, name)
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		return Input{}, fmt.Errorf("%w: %s: %d shard(s) without a manifest, e.g. %s: the run that wrote them did not finish (run splash encode again to complete it)", ErrInput, dir, len(orphans), orphans[0])
	}
	return in, nil
}

// WriteFile exports the shards (see Write) to the file path, and for
// FormatSeismic the doc ids to path + ".ids". Each is written to a temp file
// in path's directory, synced and renamed into place (the ids first, once
// the export succeeded; the export itself last) with shards.WriteFileAtomic:
// an existing file is replaced only by a complete one, and a failed or
// cancelled export leaves nothing behind.
func WriteFile(ctx context.Context, path string, shardPaths []string, vocab []string, opts Options) (Stats, error) {
	if _, err := opts.validate(); err != nil {
		return Stats{}, err
	}
	var stats Stats
	err := shards.WriteFileAtomic(path, func(out io.Writer) error {
		if opts.Format != FormatSeismic {
			var err error
			stats, err = Write(ctx, out, nil, shardPaths, vocab, opts)
			return err
		}
		return shards.WriteFileAtomic(path+".ids", func(ids io.Writer) error {
			var err error
			stats, err = Write(ctx, out, ids, shardPaths, vocab, opts)
			return err
		})
	})
	return stats, err
}
