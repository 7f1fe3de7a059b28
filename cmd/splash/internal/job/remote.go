package job

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/splash-encode/splash/shards"
)

// inputSet is the run's input shards, local files or objects in object
// storage (s3://, gs://, azblob://, file://), by the names the run records
// them under: the path, or the object's URL.
type inputSet struct {
	names  []string
	remote map[string]remoteInput
	stores []*shards.Store
}

// remoteInput is an input object and the store that holds it.
type remoteInput struct {
	store *shards.Store
	obj   shards.RemoteObject
}

// discoverInputs expands --input values: local ones with
// shards.DiscoverInputs, URLs by listing their prefix. Two inputs with one
// base name are refused (their outputs would collide), across both kinds.
func discoverInputs(ctx context.Context, values []string) (*inputSet, error) {
	set := &inputSet{remote: map[string]remoteInput{}}
	var local []string
	for _, v := range values {
		loc, remote, err := shards.ParseLocation(v)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("%w: --input: %w", ErrSettings, err)
		}
		if !remote {
			local = append(local, v)
			continue
		}
		st, err := shards.OpenStore(ctx, loc)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("%w: --input: %w", ErrSettings, err)
		}
		set.stores = append(set.stores, st)
		objs, err := st.ListInputs(ctx)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		for _, o := range objs {
			name := loc.ObjectURL(o.Key)
			if _, dup := set.remote[name]; dup {
				continue
			}
			set.remote[name] = remoteInput{store: st, obj: o}
			set.names = append(set.names, name)
		}
	}
	if len(local) > 0 {
		paths, err := shards.DiscoverInputs(local)
		if err != nil {
			set.Close()
			if errors.Is(err, shards.ErrBaseCollision) {
				return nil, fmt.Errorf("%w: %w", ErrSettings, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		set.names = append(set.names, paths...)
	}
	byBase := map[string]string{}
	for _, n := range set.names {
		b := shards.InputBase(n)
		if prev, dup := byBase[b]; dup {
			set.Close()
			return nil, fmt.Errorf("%w: %w: inputs %s and %s both have base name %q", ErrSettings, shards.ErrBaseCollision, prev, n, b)
		}
		byBase[b] = n
	}
	return set, nil
}

// Close closes the stores.
func (s *inputSet) Close() {
	for _, st := range s.stores {
		_ = st.Close()
	}
}

// identity is what the manifest records of an input: a file's size, time
// and sha256; an object's size and time (hashing it would mean reading it
// whole once more: a changed object is told by its size or time).
func (s *inputSet) identity(name string) (shards.ManifestInput, error) {
	if r, ok := s.remote[name]; ok {
		return shards.ManifestInput{Path: name, Size: r.obj.Size, MTime: r.obj.ModTime.UTC()}, nil
	}
	st, err := os.Stat(name)
	if err != nil {
		return shards.ManifestInput{}, fmt.Errorf("%w: input %s: %w", ErrBadInput, name, err)
	}
	sum, size, err := shards.FileSHA256(name)
	if err != nil {
		return shards.ManifestInput{}, err
	}
	return shards.ManifestInput{Path: name, Size: size, MTime: st.ModTime().UTC(), SHA256: sum}, nil
}

// open opens an input for reading.
func (s *inputSet) open(ctx context.Context, name string, cols shards.Columns) (*shards.InputReader, error) {
	if r, ok := s.remote[name]; ok {
		return r.store.OpenInput(ctx, r.obj.Key, cols)
	}
	return shards.OpenInput(name, cols)
}

// remoteOutput is an --output in object storage. The run writes each shard
// into a local staging directory with the usual commit protocol, then
// publishes it (data, dead letters, manifest last and create-only: the
// first writer wins) and removes the local copy.
type remoteOutput struct {
	store   *shards.Store
	staging string
}

// openRemoteOutput opens out when it is a URL; nil, nil for a local path.
func openRemoteOutput(ctx context.Context, out string) (*remoteOutput, error) {
	loc, remote, err := shards.ParseLocation(out)
	if err != nil {
		return nil, fmt.Errorf("%w: --output: %w", ErrSettings, err)
	}
	if !remote {
		return nil, nil
	}
	st, err := shards.OpenStore(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("%w: --output: %w", ErrSettings, err)
	}
	staging, err := os.MkdirTemp("", "splash-staging-")
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("create a staging directory for %s: %w", out, err)
	}
	return &remoteOutput{store: st, staging: staging}, nil
}

// Close removes the staging directory and closes the store.
func (r *remoteOutput) Close() error {
	return errors.Join(os.RemoveAll(r.staging), r.store.Close())
}

// resume decides what to do with a shard whose output is in object
// storage, as shards.CheckResume does for a directory: the remote manifest
// against this input and these settings, then the data object's size and
// sha256 (recorded on upload) against the manifest.
func (r *remoteOutput) resume(ctx context.Context, base string, input shards.ManifestInput, settings map[string]string) (shards.ResumeDecision, error) {
	m, err := r.store.ReadManifest(ctx, base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return shards.ResumeDecision{State: shards.ResumeTodo, Reason: "no manifest"}, nil
	case errors.Is(err, shards.ErrInvalidManifest):
		return shards.ResumeDecision{State: shards.ResumeBroken, Reason: err.Error()}, nil
	case err != nil:
		return shards.ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	d := shards.ResumeDecision{Manifest: &m}
	if reason := shards.ConflictReason(m, input, settings); reason != "" {
		d.State, d.Reason = shards.ResumeConflict, reason
		return d, nil
	}
	if err := r.store.VerifyManifest(ctx, m); err != nil {
		if errors.Is(err, shards.ErrMismatch) || errors.Is(err, fs.ErrNotExist) {
			d.State, d.Reason = shards.ResumeBroken, "output does not verify: "+err.Error()
			return d, nil
		}
		return shards.ResumeDecision{}, fmt.Errorf("check resume: %w", err)
	}
	d.State = shards.ResumeDone
	d.Reason = fmt.Sprintf("%s verified: %d rows", m.Output.Path, m.Output.Rows)
	return d, nil
}

// checkResume dispatches to the remote or the local resume check.
func checkResume(ctx context.Context, cfg Config, base string, input shards.ManifestInput, settings map[string]string) (shards.ResumeDecision, error) {
	if cfg.remote != nil {
		return cfg.remote.resume(ctx, base, input, settings)
	}
	return shards.CheckResume(cfg.OutputDir, base, input, settings)
}

// publish uploads a shard committed in the staging directory and removes
// the local copy. won is false when another run committed the shard first.
func (r *remoteOutput) publish(ctx context.Context, m shards.Manifest, base string, log *slog.Logger) (won bool, err error) {
	won, winner, err := r.store.PublishShard(ctx, r.staging, m)
	if err != nil {
		return false, err
	}
	if !won {
		same := winner != nil && winner.Output.SHA256 == m.Output.SHA256
		log.Info("shard committed by another run first", slog.String("shard", base), slog.Bool("same_bytes", same))
	}
	if err := shards.RemoveShard(r.staging, base); err != nil {
		return won, err
	}
	return won, nil
}

// putVocabulary uploads the staging directory's vocabulary file.
func (r *remoteOutput) putVocabulary(ctx context.Context) error {
	f, err := os.Open(filepath.Join(r.staging, shards.VocabularyFile))
	if err != nil {
		return fmt.Errorf("upload the vocabulary: %w", err)
	}
	defer f.Close()
	return r.store.Put(ctx, shards.VocabularyFile, f)
}

// completeShards reads and verifies the remote manifest of every base and
// downloads the data objects into dir (for the duplicate-id check). It
// lists the shards that are missing or do not verify.
func (r *remoteOutput) completeShards(ctx context.Context, bases []string, dir string) ([]shards.Manifest, []string, error) {
	var all []shards.Manifest
	var problems []string
	for _, base := range bases {
		m, err := r.store.ReadManifest(ctx, base)
		if err == nil {
			err = r.store.VerifyManifest(ctx, m)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			problems = append(problems, fmt.Sprintf("%s: %v", base, err))
			continue
		}
		if err := r.store.Download(ctx, m.Output.Path, filepath.Join(dir, m.Output.Path)); err != nil {
			return nil, nil, err
		}
		all = append(all, m)
	}
	return all, problems, nil
}
