package shards

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ResumeState is what a run should do with one input shard, given what an
// earlier run left in the output directory.
type ResumeState int

const (
	// ResumeTodo: the shard has no manifest (never encoded, or interrupted
	// before its commit): encode it. A leftover output without a manifest is
	// replaced by the new one.
	ResumeTodo ResumeState = iota
	// ResumeDone: the manifest verifies (the output has the recorded size,
	// sha256 and row count) and records the same input identity and the
	// same settings: skip the shard.
	ResumeDone
	// ResumeConflict: a manifest exists but records another input (size or
	// sha256) or other settings: the output is valid but is not what this
	// run would write. Refuse, unless told to overwrite (then RemoveShard
	// and encode it).
	ResumeConflict
	// ResumeBroken: a manifest exists but cannot be read, or it records this
	// input and these settings but its output does not verify (missing,
	// truncated, modified): RemoveShard and encode it again.
	ResumeBroken
)

// String returns "todo", "done", "conflict" or "broken".
func (s ResumeState) String() string {
	switch s {
	case ResumeTodo:
		return "todo"
	case ResumeDone:
		return "done"
	case ResumeConflict:
		return "conflict"
	case ResumeBroken:
		return "broken"
	default:
		return fmt.Sprintf("ResumeState(%d)", int(s))
	}
}

// ResumeDecision is the result of CheckResume.
type ResumeDecision struct {
	State ResumeState
	// Reason says why, for people: e.g. "settings differ: top_k 0 → 10" or
	// "input changed: sha256 ab12cd34ef56… → 0123456789ab…".
	Reason string
	// Manifest is the manifest found, when it could be read; nil otherwise.
	Manifest *Manifest
}

// CheckResume decides what a run should do with the input shard whose
// outputs have base name base in outDir (see ResumeState). input is the
// input's identity as the run would record it and settings the settings
// map it would write into the manifest.
//
// The input counts as the same when its size and sha256 equal the
// manifest's; the path and the modification time do not matter (a copied
// or touched file is the same input). Only when one of the two sides has no
// sha256 is the modification time compared instead. Settings are compared
// key by key, a missing key differing from any value, the empty string
// included. Conflicts are looked for before the output is verified, so a
// conflict costs no hashing; verifying re-hashes the output.
//
// An I/O error other than a missing file (permissions, a failing disk) is
// returned as an error rather than a decision: deleting and redoing would
// not help. So is a manifest or output that is a symbolic link leading out
// of outDir (ErrUnsafePath): it is not read through.
func CheckResume(outDir, base string, input ManifestInput, settings map[string]string) (ResumeDecision, error) {
	if err := checkBase(base); err != nil {
		return ResumeDecision{}, fmt.Errorf("check resume in %s: %w", outDir, err)
	}
	if err := checkInDir(outDir, ManifestName(base)); err != nil {
		return ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	mpath := filepath.Join(outDir, ManifestName(base))
	m, err := ReadManifest(mpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason := "no manifest"
		if left := existingOutputs(outDir, base); len(left) > 0 {
			reason += fmt.Sprintf(" (%s, left by an interrupted run, will be replaced)", strings.Join(left, ", "))
		}
		return ResumeDecision{State: ResumeTodo, Reason: reason}, nil
	case errors.Is(err, ErrInvalidManifest):
		return ResumeDecision{State: ResumeBroken, Reason: err.Error()}, nil
	case err != nil:
		return ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	d := ResumeDecision{Manifest: &m}
	if _, b, _ := m.validate(); b != base {
		d.State = ResumeBroken
		d.Reason = fmt.Sprintf("manifest %s names output %q, want %s.parquet or %s.arrow", mpath, m.Output.Path, base, base)
		return d, nil
	}
	if reason := ConflictReason(m, input, settings); reason != "" {
		d.State, d.Reason = ResumeConflict, reason
		return d, nil
	}
	if err := checkInDir(outDir, m.Output.Path); err != nil {
		return ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	if err := VerifyManifest(outDir, m); err != nil {
		if errors.Is(err, ErrMismatch) || errors.Is(err, ErrInvalidShard) ||
			errors.Is(err, ErrInvalidManifest) || errors.Is(err, fs.ErrNotExist) {
			d.State = ResumeBroken
			d.Reason = "output does not verify: " + err.Error()
			return d, nil
		}
		return ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	d.State = ResumeDone
	d.Reason = fmt.Sprintf("%s verified: %d rows, sha256 %s", m.Output.Path, m.Output.Rows, short(m.Output.SHA256))
	return d, nil
}

// ConflictReason says how the manifest m records another input or other
// settings than input and settings ("input changed: ...; settings differ:
// ..."), or returns "" when it records the same: the test of
// ResumeConflict, for outputs in a directory (CheckResume) and in object
// storage alike.
func ConflictReason(m Manifest, input ManifestInput, settings map[string]string) string {
	var diffs []string
	if s := diffInput(m.Input, input); s != "" {
		diffs = append(diffs, "input changed: "+s)
	}
	if s := DiffSettings(m.Settings, settings); s != "" {
		diffs = append(diffs, "settings differ: "+s)
	}
	return strings.Join(diffs, "; ")
}

// checkInDir returns an error wrapping ErrUnsafePath when dir/name is a
// symbolic link that leads outside dir; nil otherwise, a missing name or
// any other failure included (the read that follows reports those).
func checkInDir(dir, name string) error {
	r, err := openRoot(dir)
	if err != nil {
		return nil
	}
	defer r.Close()
	if _, err := r.Stat(name); err != nil {
		if err := rootError(r, name, err); errors.Is(err, ErrUnsafePath) {
			return err
		}
	}
	return nil
}

// existingOutputs lists the output names of base that exist in outDir.
func existingOutputs(outDir, base string) []string {
	r, err := openRoot(outDir)
	if err != nil {
		return nil
	}
	defer r.Close()
	var names []string
	for _, f := range []Format{FormatParquet, FormatArrow} {
		name := base + f.Ext()
		if _, err := r.Lstat(name); err == nil {
			names = append(names, name)
		}
	}
	return names
}

// diffInput describes how the input identity cur differs from the recorded
// one, or returns "" when it is the same input.
func diffInput(old, cur ManifestInput) string {
	var diffs []string
	if old.Size != cur.Size {
		diffs = append(diffs, fmt.Sprintf("size %d → %d bytes", old.Size, cur.Size))
	}
	if po, pc := old.Part, cur.Part; (po == nil) != (pc == nil) || po != nil && (po.Index != pc.Index || po.Count != pc.Count || po.Offset != pc.Offset || po.End != pc.End) {
		diffs = append(diffs, fmt.Sprintf("part %s → %s (another --part-size?)", describePart(po), describePart(pc)))
	}
	switch {
	case old.SHA256 != "" && cur.SHA256 != "":
		if old.SHA256 != cur.SHA256 {
			diffs = append(diffs, fmt.Sprintf("sha256 %s → %s", short(old.SHA256), short(cur.SHA256)))
		}
	case len(diffs) == 0 && !old.MTime.Equal(cur.MTime):
		// Without both hashes the modification time is all there is.
		diffs = append(diffs, fmt.Sprintf("mtime %s → %s (no sha256 to compare)",
			old.MTime.UTC().Format(time.RFC3339Nano), cur.MTime.UTC().Format(time.RFC3339Nano)))
	}
	return strings.Join(diffs, ", ")
}

// describePart describes a part for a Reason.
func describePart(p *ManifestPart) string {
	if p == nil {
		return "(whole input)"
	}
	return fmt.Sprintf("%d of %d, bytes %d-%d", p.Index, p.Count, p.Offset, p.End)
}

// DiffSettings describes the settings whose values differ, sorted by key, or
// returns "" when the maps are equal (nil and empty are equal).
func DiffSettings(old, cur map[string]string) string {
	keys := slices.Sorted(maps.Keys(old))
	for k := range cur {
		if _, ok := old[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var diffs []string
	for _, k := range keys {
		ov, inOld := old[k]
		cv, inCur := cur[k]
		if inOld == inCur && ov == cv {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s %s → %s", k, settingValue(ov, inOld), settingValue(cv, inCur)))
	}
	return strings.Join(diffs, ", ")
}

// settingValue formats a setting for a Reason: sha256s shortened, odd
// strings quoted, a missing key as (unset).
func settingValue(v string, present bool) string {
	switch {
	case !present:
		return "(unset)"
	case isSHA256(v):
		return short(v)
	case v == "" || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return strconv.Quote(v)
	default:
		return v
	}
}

// short abbreviates a hex digest for messages.
func short(sum string) string {
	if len(sum) <= 12 {
		return sum
	}
	return sum[:12] + "…"
}

// RemoveShard removes what an earlier run committed for the shard with base
// name base in outDir, before the shard is encoded again: first _SUCCESS
// (the directory is no longer complete), then the manifest (the commit
// marker), then the outputs of either format. The directory is fsynced
// after the manifest is gone and again at the end, so that a crash part way
// never leaves a manifest whose output is missing. Names that do not exist
// are fine; other failures are returned, naming the file.
func RemoveShard(outDir, base string) error {
	if err := checkBase(base); err != nil {
		return fmt.Errorf("remove shard in %s: %w", outDir, err)
	}
	r, err := openRoot(outDir)
	if err != nil {
		return fmt.Errorf("remove shard %s: %w", base, err)
	}
	defer r.Close()
	removed, err := removeNames(r, SuccessFile, ManifestName(base))
	if err != nil {
		return err
	}
	if removed {
		if err := syncRoot(r); err != nil {
			return fmt.Errorf("remove shard %s: %w", base, err)
		}
	}
	removed, err = removeNames(r, base+FormatParquet.Ext(), base+FormatArrow.Ext(), RejectedName(base))
	if err != nil {
		return err
	}
	if removed {
		if err := syncRoot(r); err != nil {
			return fmt.Errorf("remove shard %s: %w", base, err)
		}
	}
	return nil
}

// removeNames removes each name from the directory of r, in order (a
// symbolic link is removed, never followed); missing names are skipped. It
// reports whether it removed anything.
func removeNames(r *os.Root, names ...string) (bool, error) {
	removed := false
	for _, name := range names {
		p := filepath.Join(r.Name(), name)
		err := r.Remove(name)
		switch {
		case err == nil:
			removed = true
		case errors.Is(err, fs.ErrNotExist):
		default:
			return removed, fmt.Errorf("remove %s: %w", p, rootError(r, name, err))
		}
	}
	return removed, nil
}

// CleanTemp removes the temp files (names starting with "_tmp.") that
// crashed runs left in outDir and returns their names, sorted. With
// olderThan > 0 only files last modified at least that long ago are
// removed, which spares a file that another process is writing right now
// (a writer touches its temp file with every buffer it flushes); with
// olderThan <= 0 every temp file goes. A file that vanishes meanwhile is
// not an error. Failures to remove are joined into the error, each naming
// its file; the names removed until then are still returned.
func CleanTemp(outDir string, olderThan time.Duration) ([]string, error) {
	r, err := openRoot(outDir)
	if err != nil {
		return nil, fmt.Errorf("clean temp files: %w", err)
	}
	defer r.Close()
	d, err := r.Open(".")
	if err != nil {
		return nil, fmt.Errorf("clean temp files: %w", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("clean temp files in %s: %w", outDir, err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	now := time.Now()
	var removed []string
	var errs []error
	for _, e := range entries {
		if !IsTempName(e.Name()) || e.IsDir() {
			continue
		}
		p := filepath.Join(outDir, e.Name())
		if olderThan > 0 {
			info, err := r.Lstat(e.Name())
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("clean temp file %s: %w", p, err))
				continue
			}
			if now.Sub(info.ModTime()) < olderThan {
				continue
			}
		}
		if err := r.Remove(e.Name()); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("clean temp file: %w", rootError(r, e.Name(), err)))
			}
			continue
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		if err := syncRoot(r); err != nil {
			errs = append(errs, fmt.Errorf("clean temp files: %w", err))
		}
	}
	return removed, errors.Join(errs...)
}
