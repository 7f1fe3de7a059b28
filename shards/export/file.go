package export

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	// Vocabulary is the content of _vocabulary.parquet beside the shards; nil
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
// The vocabulary is read from _vocabulary.parquet in the shards' directory when
// the file exists. Errors about the input wrap ErrInput; a path that does not
// exist wraps fs.ErrNotExist.
func ResolveInput(ctx context.Context, path string) (Input, error) {
	out, err := shards.ResolveOutput(ctx, path)
	if errors.Is(err, shards.ErrNotOutput) {
		return Input{}, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if err != nil {
		return Input{}, err
	}
	if out.IsDir {
		if err := checkNoOrphans(path, out.Files); err != nil {
			return Input{}, err
		}
	}
	return Input{Shards: out.Files, Vocabulary: out.Vocabulary, Verified: out.Verified}, nil
}

// checkNoOrphans refuses a directory holding impact shards that no manifest
// names (listed: the ones that do): an unfinished run.
func checkNoOrphans(dir string, listed []string) error {
	named := make(map[string]bool, len(listed))
	for _, f := range listed {
		named[filepath.Base(f)] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
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
		return fmt.Errorf("%w: %s: %d shard(s) without a manifest, e.g. %s: the run that wrote them did not finish (run splash encode again to complete it)", ErrInput, dir, len(orphans), orphans[0])
	}
	return nil
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
