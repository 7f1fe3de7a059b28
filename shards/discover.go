package shards

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// InputExt is the extension of the files that DiscoverInputs takes from a
// directory.
const InputExt = ".parquet"

// InputBase returns the base name of an input shard, which names its outputs:
// the file name without its last extension ("in/docs-00000.parquet" →
// "docs-00000"), without the whole extension of a text input
// ("corpus.jsonl.gz" → "corpus"), and for a part of a text input the part
// appended ("corpus.jsonl#part00003" → "corpus.part00003").
func InputBase(path string) string {
	if file, k, ok := cutPart(path); ok {
		return fmt.Sprintf("%s.part%05d", InputBase(file), k)
	}
	name := filepath.Base(path)
	lower := strings.ToLower(name)
	for _, e := range textExts {
		if strings.HasSuffix(lower, e.ext) && len(name) > len(e.ext) {
			return name[:len(name)-len(e.ext)]
		}
	}
	return strings.TrimSuffix(name, filepath.Ext(name))
}

// DiscoverInputs expands --input values into the list of input shards. Each
// value is
//
//   - an existing file: taken as it is, whatever its extension;
//   - an existing directory: the *.parquet files and the text inputs
//     (*.jsonl, *.jsonl.gz, *.tsv, *.tsv.gz) directly inside it, sorted
//     by name, leaving out names that start with "_" or "." (sidecar and
//     hidden files, e.g. _SUCCESS or .part.parquet.crc) and subdirectories;
//   - otherwise a glob (filepath.Match syntax: * ? [...] and \ escapes): the
//     files it matches, sorted, leaving out directories and, unless the
//     pattern's last element itself starts with "_" or ".", names that start
//     with "_" or ".".
//
// The lists are concatenated in the order of values; a path seen before (the
// same absolute, cleaned path) is left out, keeping the first. Returned paths
// are cleaned (filepath.Clean). It is an error, naming the value, when a
// value is empty, a path does not exist, a directory holds no *.parquet file
// or a glob matches no file; and, naming both and wrapping ErrBaseCollision,
// when two inputs have the same base name (InputBase), since their outputs
// would collide. An input whose
// base name is empty or starts with "_" or "." is refused too: such names are
// reserved for sidecar and hidden files in the output directory.
func DiscoverInputs(values []string) ([]string, error) {
	if len(values) == 0 {
		return nil, errors.New("no input given")
	}
	var out []string
	seen := map[string]bool{}
	byBase := map[string]string{}
	for _, v := range values {
		if err := CheckLocalPath("--input", v); err != nil {
			return nil, err
		}
		paths, err := expandInput(v)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			key := p
			if abs, err := filepath.Abs(p); err == nil {
				key = abs
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			base := InputBase(p)
			if err := checkBase(base); err != nil {
				return nil, fmt.Errorf("input %s (from %q): %w", p, v, err)
			}
			if prev, dup := byBase[base]; dup {
				return nil, fmt.Errorf("%w: %s and %s have the base name %q, so their outputs would collide (rename one, or encode them into different output directories)", ErrBaseCollision, prev, p, base)
			}
			byBase[base] = p
			out = append(out, p)
		}
	}
	return out, nil
}

// expandInput expands one --input value.
func expandInput(v string) ([]string, error) {
	if v == "" {
		return nil, errors.New(`input "": empty value`)
	}
	st, err := os.Stat(v)
	switch {
	case err == nil && st.IsDir():
		return listInputDir(v)
	case err == nil:
		return []string{filepath.Clean(v)}, nil
	case hasGlobMeta(v):
		return globInputs(v)
	default:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the value is named below
		}
		return nil, fmt.Errorf("input %q: %w", v, err)
	}
}

// hasGlobMeta reports whether v has a character special to filepath.Match.
func hasGlobMeta(v string) bool { return strings.ContainsAny(v, `*?[\`) }

// isSidecarOrHidden reports whether a file name starts with "_" or ".".
func isSidecarOrHidden(name string) bool {
	return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")
}

// isFile reports whether path is (or links to) something other than a
// directory; a dangling link counts as a file, so that opening it fails
// with an error naming it.
func isFile(path string, d fs.DirEntry) bool {
	if d != nil && !d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
		return true
	}
	st, err := os.Stat(path)
	return err != nil || !st.IsDir()
}

func listInputDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !isInputName(name) || isSidecarOrHidden(name) {
			continue
		}
		p := filepath.Join(dir, name)
		if isFile(p, e) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("input %q: the directory holds no *%s, *.jsonl, *.jsonl.gz, *.tsv or *.tsv.gz file (names starting with \"_\" or \".\" are skipped)", dir, InputExt)
	}
	return out, nil
}

func globInputs(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", pattern, err)
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("input %q: no such file or directory, and no file matches it as a pattern", pattern)
	}
	// A pattern that itself starts its last element with "_" or "." asks for
	// such names, as in a shell.
	explicit := isSidecarOrHidden(filepath.Base(pattern))
	var out []string
	skipped := 0
	for _, m := range matches {
		if !explicit && isSidecarOrHidden(filepath.Base(m)) {
			skipped++
			continue
		}
		if !isFile(m, nil) {
			skipped++
			continue
		}
		out = append(out, filepath.Clean(m))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("input %q: matches %d names but no file (directories and names starting with \"_\" or \".\" are skipped)", pattern, skipped)
	}
	slices.Sort(out)
	return out, nil
}
