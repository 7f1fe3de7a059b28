package shards

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/splash-encode/splash/encode"
)

// Failpoints: the moments of the commit protocol a crash test can stop at
// (OutputOptions.Failpoint).
const (
	FailpointRowWritten      = "row-written"      // after each row is handed to a shard writer
	FailpointShardCommitted  = "shard-committed"  // after a shard's data file took its name, before its manifest
	FailpointManifestWritten = "manifest-written" // after a shard's manifest took its name
	FailpointBeforeSuccess   = "before-success"   // after every shard, before _SUCCESS
)

// Observer is told about committed shards and their rejected rows
// (pipeline.Metrics implements it).
type Observer interface {
	ShardDone()
	AddBad(n int64)
}

// OutputOptions configure an Output.
type OutputOptions struct {
	Format Format
	// Columns are read from every input.
	Columns Columns
	// Overwrite re-encodes shards whose manifest records other settings or
	// another input instead of refusing to run.
	Overwrite bool
	// MaxBadFraction fails the run once the rejected input rows exceed this
	// fraction of all input rows of the output's shards: 0 fails on the
	// first rejected row, 1 never.
	MaxBadFraction float64
	// Version is the splash version recorded in manifests.
	Version string
	// Observer, when set, is told about committed shards.
	Observer Observer
	// Failpoint, when set, is called at the named points of the commit
	// protocol (the Failpoint* constants) so that crash tests can kill the
	// process exactly there. Nil in normal runs.
	Failpoint func(name string)
	// Log receives the commit protocol's log lines; nil discards them.
	Log *slog.Logger
}

// Output is where a run's impact shards go, a local directory or a bucket,
// and the one owner of the commit protocol: it takes the run lock, plans
// which shards to encode (resume), reads each input under its shard lock
// (the stream's encode.Source), writes, commits and publishes each shard
// with its dead-letter file and manifest (the stream's encode.Sink), checks
// the complete output (bad-row budget, ids in two shards) and writes
// _SUCCESS.
//
// An output in object storage (s3://, gs://, azblob://, file://) is
// written into a local staging directory with the same protocol; each
// committed shard is then published (data, dead letters, manifest last and
// create-only: the first writer wins) and its local copy removed.
type Output struct {
	name    string // as given
	dir     string // the local directory written: the output, or the staging directory
	opts    OutputOptions
	log     *slog.Logger
	store   *Store // nil for a local directory
	runLock *RunLock
}

// OpenOutput opens the output name, a directory or a URL. Nothing is
// created yet (see Begin).
func OpenOutput(ctx context.Context, name string, opts OutputOptions) (*Output, error) {
	o := &Output{name: name, dir: name, opts: opts, log: opts.Log}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	loc, remote, err := ParseLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w: --output: %w", encode.ErrSettings, err)
	}
	if !remote {
		return o, nil
	}
	st, err := OpenStore(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("%w: --output: %w", encode.ErrSettings, err)
	}
	staging, err := os.MkdirTemp("", "splash-staging-")
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("create a staging directory for %s: %w", name, err)
	}
	o.store, o.dir = st, staging
	if opts.Overwrite {
		o.Close()
		return nil, fmt.Errorf("%w: --overwrite is not supported with an object storage --output yet: delete the shard's manifest (_manifest.NAME.json) under %s instead", encode.ErrSettings, name)
	}
	return o, nil
}

// Remote reports whether the output is in object storage.
func (o *Output) Remote() bool { return o.store != nil }

// Dir is the local directory shards are written to: the output directory,
// or the staging directory of a bucket.
func (o *Output) Dir() string { return o.dir }

// Name is the output as given.
func (o *Output) Name() string { return o.name }

// Close releases the run lock, and removes the staging directory of a
// bucket and closes its store.
func (o *Output) Close() error {
	var errs []error
	if o.runLock != nil {
		errs = append(errs, o.runLock.Unlock())
		o.runLock = nil
	}
	if o.store != nil {
		errs = append(errs, os.RemoveAll(o.dir), o.store.Close())
	}
	return errors.Join(errs...)
}

// SpareInputs refuses settings under which an impact shard would replace
// one of the inputs (output directory = input directory with the same
// format). Inputs sharing a base name are refused earlier, by
// DiscoverSources.
func (o *Output) SpareInputs(inputs []string) error {
	for _, in := range inputs {
		out := filepath.Join(o.dir, InputBase(in)+o.opts.Format.Ext())
		inInfo, err := os.Stat(in)
		if err != nil {
			continue // reported when the input is read
		}
		if outInfo, err := os.Stat(out); err == nil && os.SameFile(inInfo, outInfo) {
			return fmt.Errorf("%w: the impact shard for %s would overwrite the input itself: choose another --output", encode.ErrSettings, in)
		}
	}
	return nil
}

// Begin creates the directory, takes the run lock (removing the temp files
// of killed runs) and writes the vocabulary (and uploads it to a bucket).
func (o *Output) Begin(ctx context.Context, vocab []string) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	runLock, cleaned, err := LockRun(ctx, o.dir)
	if err != nil {
		return err
	}
	o.runLock = runLock
	if len(cleaned) > 0 {
		o.log.Info("removed temp files of killed runs", slog.Int("files", len(cleaned)))
	}
	if err := WriteVocabulary(o.dir, vocab); err != nil {
		return err
	}
	if o.store != nil {
		f, err := os.Open(filepath.Join(o.dir, VocabularyFile))
		if err != nil {
			return fmt.Errorf("upload the vocabulary: %w", err)
		}
		defer f.Close()
		return o.store.Put(ctx, VocabularyFile, f)
	}
	return nil
}

// RemoveSuccess removes _SUCCESS: it no longer holds while shards are redone.
func (o *Output) RemoveSuccess(ctx context.Context) error {
	if err := RemoveSuccess(o.dir); err != nil {
		return err
	}
	if o.store != nil {
		return o.store.RemoveSuccess(ctx)
	}
	return nil
}

// CleanTemp removes the temp files of killed runs when no other run holds
// the output, and logs what it removed.
func (o *Output) CleanTemp() {
	if o.runLock == nil {
		return
	}
	if removed, err := o.runLock.CleanIfAlone(); err != nil {
		o.log.Warn("could not remove temp files", slog.String("error", err.Error()))
	} else if len(removed) > 0 {
		o.log.Info("removed temp files of killed runs", slog.Int("files", len(removed)))
	}
}

// resume decides what to do with a shard (see CheckResume): from the
// directory, or from the bucket, where the remote manifest is compared with
// this input and these settings and then the data object's size and sha256
// (recorded on upload) with the manifest.
func (o *Output) resume(ctx context.Context, base string, input ManifestInput, settings map[string]string) (ResumeDecision, error) {
	if o.store == nil {
		return CheckResume(o.dir, base, input, settings)
	}
	m, err := o.store.ReadManifest(ctx, base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ResumeDecision{State: ResumeTodo, Reason: "no manifest"}, nil
	case errors.Is(err, ErrInvalidManifest):
		return ResumeDecision{State: ResumeBroken, Reason: err.Error()}, nil
	case err != nil:
		return ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	d := ResumeDecision{Manifest: &m}
	if reason := ConflictReason(m, input, settings); reason != "" {
		d.State, d.Reason = ResumeConflict, reason
		return d, nil
	}
	if err := o.store.VerifyManifest(ctx, m); err != nil {
		if errors.Is(err, ErrMismatch) || errors.Is(err, fs.ErrNotExist) {
			d.State, d.Reason = ResumeBroken, "output does not verify: "+err.Error()
			return d, nil
		}
		return ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	d.State = ResumeDone
	d.Reason = fmt.Sprintf("%s verified: %d rows", m.Output.Path, m.Output.Rows)
	return d, nil
}

// publish uploads a shard committed in the staging directory and removes
// the local copy. won is false when another run committed the shard first.
func (o *Output) publish(ctx context.Context, m Manifest, base string) (won bool, err error) {
	won, winner, err := o.store.PublishShard(ctx, o.dir, m)
	if err != nil {
		return false, err
	}
	if !won {
		same := winner != nil && winner.Output.SHA256 == m.Output.SHA256
		o.log.Info("shard committed by another run first", slog.String("shard", base), slog.Bool("same_bytes", same))
	}
	if err := RemoveShard(o.dir, base); err != nil {
		return won, err
	}
	return won, nil
}

// completeShards reads and verifies the remote manifest of every base and
// downloads the data objects into dir (for the duplicate-id check). It
// lists the shards that are missing or do not verify.
func (o *Output) completeShards(ctx context.Context, bases []string, dir string) ([]Manifest, []string, error) {
	var all []Manifest
	var problems []string
	for _, base := range bases {
		m, err := o.store.ReadManifest(ctx, base)
		if err == nil {
			err = o.store.VerifyManifest(ctx, m)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			problems = append(problems, fmt.Sprintf("%s: %v", base, err))
			continue
		}
		if err := o.store.Download(ctx, m.Output.Path, filepath.Join(dir, m.Output.Path)); err != nil {
			return nil, nil, err
		}
		all = append(all, m)
	}
	return all, problems, nil
}

// Complete checks the output once every shard of inputs is done, by this
// run or another: every shard's manifest (read; from a bucket, verified and
// its data downloaded), the bad-row budget over the whole output, and the
// document ids found in more than one shard, which it returns (the first
// 20, and how many there are).
func (o *Output) Complete(ctx context.Context, inputs []string) (dups []DuplicateID, err error) {
	checkDir := o.dir
	var all []Manifest
	if o.store != nil {
		checkDir = filepath.Join(o.dir, "complete")
		if err := os.MkdirAll(checkDir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", checkDir, err)
		}
		bases := make([]string, len(inputs))
		for i, in := range inputs {
			bases[i] = InputBase(in)
		}
		var problems []string
		if all, problems, err = o.completeShards(ctx, bases, checkDir); err != nil {
			return nil, err
		}
		if len(problems) > 0 {
			return nil, fmt.Errorf("%d shard(s) in %s do not verify after the run:\n  %s", len(problems), o.name, strings.Join(problems, "\n  "))
		}
	} else {
		for _, in := range inputs {
			m, err := ReadManifest(filepath.Join(o.dir, ManifestName(InputBase(in))))
			if err != nil {
				return nil, err
			}
			all = append(all, m)
		}
	}
	return checkDirectory(ctx, checkDir, all, o.opts.MaxBadFraction, o.log)
}

// WriteSuccess writes _SUCCESS with the summary (JSON), into the directory
// or the bucket.
func (o *Output) WriteSuccess(ctx context.Context, summary any) error {
	o.failpoint(FailpointBeforeSuccess)
	if o.store != nil {
		return o.store.WriteSuccess(ctx, summary)
	}
	return WriteSuccess(o.dir, summary)
}

func (o *Output) failpoint(name string) {
	if o.opts.Failpoint != nil {
		o.opts.Failpoint(name)
	}
}

// BadBudget enforces a maximum fraction of rejected rows among all input
// rows.
type BadBudget struct {
	MaxFraction float64
	TotalRows   int64
	Rejected    int64
	// Dir names where the dead-letter files are, for the error.
	Dir string
}

// Add counts n more rejected rows and checks the budget.
func (b *BadBudget) Add(n int64) error {
	b.Rejected += n
	return b.Check()
}

// Check fails (ErrBadInput) when the rejected rows exceed the budget.
func (b *BadBudget) Check() error {
	if b.Rejected == 0 || float64(b.Rejected) <= b.MaxFraction*float64(b.TotalRows) {
		return nil
	}
	return fmt.Errorf("%w: %d of %d input rows (%.4g%%) were rejected, more than --max-bad-fraction %g allows: see the dead-letter files %s",
		encode.ErrBadInput, b.Rejected, b.TotalRows, 100*float64(b.Rejected)/float64(max(b.TotalRows, 1)), b.MaxFraction,
		filepath.Join(b.Dir, "_rejected.*.jsonl"))
}

// checkDirectory holds a complete output directory (all is every shard's
// manifest) to the bad-row budget and reports the document ids found in
// more than one shard, logging some of them.
func checkDirectory(ctx context.Context, outDir string, all []Manifest, maxBad float64, log *slog.Logger) ([]DuplicateID, error) {
	total := &BadBudget{MaxFraction: maxBad, Dir: outDir}
	for _, man := range all {
		total.TotalRows += man.Input.Rows
		if man.Rejected != nil {
			total.Rejected += man.Rejected.Rows
		}
	}
	if err := total.Check(); err != nil {
		return nil, err
	}
	dups, err := FindDuplicateIDs(ctx, outDir, all)
	if err != nil {
		return nil, err
	}
	for _, d := range dups[:min(len(dups), 10)] {
		log.Warn("document id in more than one shard (every copy is kept)", slog.String("id", d.ID), slog.Any("outputs", d.Outputs))
	}
	return dups, nil
}
