package shards

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotOutput marks a path whose impact shards cannot be read as an output
// of splash encode: a directory without manifests, a shard that does not
// verify against its manifest, an unreadable vocabulary file.
var ErrNotOutput = errors.New("not a verified impact shard output")

// OutputShards are the impact shards a path names (ResolveOutput).
type OutputShards struct {
	// Dir is the output directory (for a file: the directory it is in);
	// IsDir reports that the path was the directory.
	Dir   string
	IsDir bool
	// Files are the shard files: a directory's in the sorted order of their
	// manifests, or the one file.
	Files []string
	// Rows is the number of rows of all shards, from their manifests (0 for
	// a file that no manifest names).
	Rows int64
	// Verified reports that every shard was checked against its manifest:
	// always for a directory; for a file, when a manifest names it.
	Verified bool
	// Vocabulary is Dir's _vocabulary.parquet (or the _vocabulary.tsv of an
	// older output), nil when there is none.
	Vocabulary     []string
	VocabularyPath string
}

// ResolveOutput turns a path given to a reader of impact shards (export,
// search) into shards:
//
//   - a directory must be an output directory of splash encode: its shards
//     are those of its manifests (ListManifests), each verified
//     (VerifyShard: size, sha256, rows) before anything is read;
//   - a file is one impact shard, verified against its manifest when
//     _manifest.<base>.json beside it names it (a shard copied elsewhere
//     without one is taken as it is).
//
// The vocabulary is read from _vocabulary.parquet beside the shards when it
// exists (from the _vocabulary.tsv of an older output when that exists). Problems with the data wrap ErrNotOutput; failing to stat path or
// to list its directory are returned as they are.
func ResolveOutput(ctx context.Context, path string) (OutputShards, error) {
	st, err := os.Stat(path)
	if err != nil {
		return OutputShards{}, err
	}
	out := OutputShards{Dir: path, IsDir: st.IsDir()}
	if st.IsDir() {
		bases, err := ListManifests(path)
		if err != nil {
			return OutputShards{}, err
		}
		if len(bases) == 0 {
			return OutputShards{}, fmt.Errorf("%w: %s holds no manifest: there is no impact shard manifest (_manifest.*.json) in it, so it is not an output directory of splash encode, or no shard of it is done yet", ErrNotOutput, path)
		}
		out.Verified = true
		for _, base := range bases {
			if err := ctx.Err(); err != nil {
				return OutputShards{}, err
			}
			m, err := VerifyShard(path, base)
			if err != nil {
				return OutputShards{}, fmt.Errorf("%w: shard %s of %s does not verify: %w", ErrNotOutput, base, path, err)
			}
			out.Files = append(out.Files, filepath.Join(path, m.Output.Path))
			out.Rows += m.Output.Rows
		}
	} else {
		out.Dir = filepath.Dir(path)
		m, err := VerifyShard(out.Dir, InputBase(path))
		switch {
		case err == nil && m.Output.Path == filepath.Base(path):
			out.Verified, out.Rows = true, m.Output.Rows
		case err == nil || errors.Is(err, fs.ErrNotExist):
			// No manifest names this file (a bare shard, or a manifest of
			// another file with the same base name): read it as it is.
		default:
			return OutputShards{}, fmt.Errorf("%w: %s does not verify against its manifest: %w", ErrNotOutput, path, err)
		}
		out.Files = []string{path}
	}
	vocab, vpath, err := FindVocabulary(out.Dir)
	switch {
	case err == nil:
		out.Vocabulary, out.VocabularyPath = vocab, vpath
	case !errors.Is(err, fs.ErrNotExist):
		return OutputShards{}, fmt.Errorf("%w: %w", ErrNotOutput, err)
	}
	return out, nil
}
