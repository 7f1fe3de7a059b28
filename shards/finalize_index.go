package shards

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// FinalizingIndex names the index of an encode run (splash encode
// --shard-count N --finalize-when-complete) that finalized the output; it
// is recorded in _SUCCESS (FinalizeSummary.FinalizedByIndex).
type FinalizingIndex struct {
	ShardIndex int `json:"shard_index"`
	ShardCount int `json:"shard_count"`
	// Host is the machine's host name: the pod's name on Kubernetes.
	Host string `json:"host,omitempty"`
}

// IndexFinalizeState is what FinalizeIfComplete did.
type IndexFinalizeState int

const (
	// FinalizePending: some shards of the run are still to come (another
	// index has not committed them yet): nothing was checked or written.
	FinalizePending IndexFinalizeState = iota
	// FinalizeWritten: every shard was committed, the checks passed and
	// this call wrote _SUCCESS.
	FinalizeWritten
	// FinalizeByOther: every shard was committed but _SUCCESS was there
	// already, or another index wrote it first (create-only): nothing was
	// written.
	FinalizeByOther
)

// IndexFinalization is the result of FinalizeIfComplete.
type IndexFinalization struct {
	State IndexFinalizeState
	// Total is the number of input shards of the whole run; Pending those
	// whose shards are still to come (FinalizePending), with why.
	Total   int
	Pending []PendingShard
	// Summary is what was written into _SUCCESS (FinalizeWritten).
	Summary FinalizeSummary
}

// PendingShard is an input whose shard is not committed yet.
type PendingShard struct {
	Input  string
	Reason string
}

// FinalizeIfComplete is the end of one index of an encode run split
// between several processes (--shard-count), once the index has committed
// its own shards. names are the inputs of the whole run (every index's),
// settings the manifest settings of this run.
//
// It first looks, cheaply (no output is hashed), whether every input's
// shard is committed as the run's plan would find it done: a manifest
// recording this input (size and time, or sha256 when the time changed)
// and these settings, and the output (from a bucket: the object's recorded
// size and sha256) that it names. When some are not, another index is
// still at work (or has failed): FinalizePending, nothing is written.
//
// When all are, it runs the checks of Finalize (every shard verified, the
// same settings, the bad-row budget, ids in more than one shard counted)
// and writes _SUCCESS create-only (a link that fails when the name exists
// in a directory, If-None-Match in a bucket) recording by. Because every
// index commits its shards before it looks, and both a directory and the
// object stores are strongly consistent, the last index to commit always
// sees every shard; of indexes finishing at the same moment exactly one
// writes _SUCCESS, the others get FinalizeByOther. A _SUCCESS already there
// (a re-run in which nothing changed: indexes that redo a shard remove
// _SUCCESS before they start) is FinalizeByOther too, without the checks.
// A failed check is returned as Finalize returns it (encode.ErrSettings,
// encode.ErrBadInput, missing or broken shards).
func (o *Output) FinalizeIfComplete(ctx context.Context, inputs *Inputs, names []string, settings map[string]string, by FinalizingIndex) (IndexFinalization, error) {
	res := IndexFinalization{Total: len(names)}
	for _, in := range names {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		reason, err := o.pendingReason(ctx, inputs, in, settings)
		if err != nil {
			return res, fmt.Errorf("finalize when complete: %w", err)
		}
		if reason != "" {
			res.Pending = append(res.Pending, PendingShard{Input: in, Reason: reason})
		}
	}
	if len(res.Pending) > 0 {
		return res, nil
	}
	has, err := o.hasSuccess(ctx)
	if err != nil {
		return res, fmt.Errorf("finalize when complete: %w", err)
	}
	if has {
		res.State = FinalizeByOther
		return res, nil
	}
	bases := make([]string, len(names))
	for i, in := range names {
		bases[i] = InputBase(in)
	}
	slices.Sort(bases)
	checkDir := o.dir
	if o.store != nil {
		// The shards are downloaded for the duplicate-id check.
		checkDir = filepath.Join(o.dir, "finalize")
		if err := os.MkdirAll(checkDir, 0o755); err != nil {
			return res, fmt.Errorf("finalize when complete: create %s: %w", checkDir, err)
		}
		defer os.RemoveAll(checkDir)
	}
	sum, err := o.checkFinal(ctx, bases, checkDir)
	if err != nil {
		return res, err
	}
	sum.FinalizedBy = "splash encode"
	sum.FinalizedByIndex = &by
	sum.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	o.failpoint(FailpointBeforeSuccess)
	if o.store != nil {
		err = o.store.WriteSuccessOnce(ctx, sum)
	} else {
		err = WriteSuccessOnce(o.dir, sum)
	}
	switch {
	case errors.Is(err, ErrExists):
		res.State = FinalizeByOther
		return res, nil
	case err != nil:
		return res, err
	}
	res.State, res.Summary = FinalizeWritten, sum
	return res, nil
}

// hasSuccess reports whether the output has _SUCCESS.
func (o *Output) hasSuccess(ctx context.Context) (bool, error) {
	if o.store != nil {
		return o.store.HasSuccess(ctx)
	}
	return HasSuccess(o.dir)
}

// pendingReason says why the shard of the input in is not committed for
// this input and these settings (ConflictReason, as a plan decides), or
// returns "" when it is. No output is hashed: a directory's files are
// compared by size, a bucket's objects by the size and sha256 recorded on
// upload; nor is a local input file whose size and time are the recorded
// ones (unchangedFile). Errors are I/O failures other than a missing file.
func (o *Output) pendingReason(ctx context.Context, inputs *Inputs, in string, settings map[string]string) (string, error) {
	base := InputBase(in)
	var m Manifest
	var err error
	if o.store != nil {
		m, err = o.store.ReadManifest(ctx, base)
	} else {
		if err := checkInDir(o.dir, ManifestName(base)); err != nil {
			return "", err
		}
		m, err = ReadManifest(filepath.Join(o.dir, ManifestName(base)))
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no manifest", nil
	case errors.Is(err, ErrInvalidManifest):
		return err.Error(), nil
	case err != nil:
		return "", err
	}
	if _, b, verr := m.validate(); verr != nil || b != base {
		return fmt.Sprintf("the manifest names output %q", m.Output.Path), nil
	}
	if d := DiffSettings(m.Settings, settings); d != "" {
		return "settings differ: " + d, nil // to be re-encoded with --overwrite
	}
	if !unchangedFile(inputs, in, m.Input) {
		cur, err := inputs.Identity(ctx, in)
		if err != nil {
			return "input cannot be read: " + err.Error(), nil // its index fails it
		}
		if r := ConflictReason(m, cur, settings); r != "" {
			return r, nil
		}
	}
	if o.store != nil {
		if err := o.store.VerifyManifest(ctx, m); err != nil {
			if errors.Is(err, ErrMismatch) || errors.Is(err, fs.ErrNotExist) {
				return "output does not verify: " + err.Error(), nil
			}
			return "", err
		}
		return "", nil
	}
	check := func(name string, size int64) (string, error) {
		if err := checkInDir(o.dir, name); err != nil {
			return "", err
		}
		st, err := os.Stat(filepath.Join(o.dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return name + " is missing", nil
		case err != nil:
			return "", err
		case st.Size() != size:
			return fmt.Sprintf("%s has %d bytes, the manifest says %d", name, st.Size(), size), nil
		}
		return "", nil
	}
	if r, err := check(m.Output.Path, m.Output.Size); r != "" || err != nil {
		return r, err
	}
	if m.Rejected != nil {
		return check(m.Rejected.Path, m.Rejected.Size)
	}
	return "", nil
}

// unchangedFile reports whether in is a local file that the manifest
// input recorded, whole, with the recorded size and time: the same input
// as far as a plan goes, without hashing it. Otherwise (an object, a part
// of a file, a touched file) the input's identity must be compared.
func unchangedFile(inputs *Inputs, in string, recorded ManifestInput) bool {
	file := inputs.File(in) // a part of a text input: the whole file
	if recorded.Path != file || recorded.SHA256 == "" || !inputs.samePart(in, recorded.Part) {
		return false
	}
	if _, remote, err := ParseLocation(file); err != nil || remote {
		return false
	}
	st, err := os.Stat(file)
	return err == nil && st.Mode().IsRegular() && st.Size() == recorded.Size && st.ModTime().Equal(recorded.MTime)
}

// WriteSuccessOnce writes _SUCCESS under the prefix as WriteSuccess does,
// but create-only (If-None-Match): when one exists already, nothing is
// written and the error wraps ErrExists. Of concurrent writers exactly one
// succeeds.
func (s *Store) WriteSuccessOnce(ctx context.Context, summary any) error {
	data, err := successJSON(summary)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.url(SuccessFile), err)
	}
	err = s.upload(ctx, SuccessFile, bytesSource(data), int64(len(data)), sha256Hex(data), "application/json", true)
	switch {
	case err == nil:
		return nil
	case s.taken(ctx, SuccessFile, err):
		return fmt.Errorf("write %s: %w", s.url(SuccessFile), ErrExists)
	default:
		return fmt.Errorf("write %s: %w", s.url(SuccessFile), err)
	}
}

// HasSuccess reports whether _SUCCESS exists under the prefix.
func (s *Store) HasSuccess(ctx context.Context) (bool, error) {
	ok, err := s.bucket.Exists(ctx, s.key(SuccessFile))
	if err != nil {
		return false, fmt.Errorf("look for %s: %w", s.url(SuccessFile), err)
	}
	return ok, nil
}
