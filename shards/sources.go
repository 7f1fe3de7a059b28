package shards

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/splash-encode/splash/encode"
)

// Inputs are a run's input shards, local files or objects in object
// storage (s3://, gs://, azblob://, file://), by the names the run records
// them under: the path, or the object's URL.
type Inputs struct {
	// Names lists the inputs in order.
	Names  []string
	remote map[string]remoteInput
	stores []*Store
}

// remoteInput is an input object and the store that holds it.
type remoteInput struct {
	store *Store
	obj   RemoteObject
}

// DiscoverSources expands --input values: local ones with
// DiscoverInputs, URLs by listing their prefix. Two inputs with one
// base name are refused (their outputs would collide), across both kinds.
func DiscoverSources(ctx context.Context, values []string) (*Inputs, error) {
	set := &Inputs{remote: map[string]remoteInput{}}
	var local []string
	for _, v := range values {
		loc, remote, err := ParseLocation(v)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("%w: --input: %w", encode.ErrSettings, err)
		}
		if !remote {
			local = append(local, v)
			continue
		}
		st, err := OpenStore(ctx, loc)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("%w: --input: %w", encode.ErrSettings, err)
		}
		set.stores = append(set.stores, st)
		objs, err := st.ListInputs(ctx)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("%w: %w", encode.ErrBadInput, err)
		}
		for _, o := range objs {
			name := loc.ObjectURL(o.Key)
			if _, dup := set.remote[name]; dup {
				continue
			}
			set.remote[name] = remoteInput{store: st, obj: o}
			set.Names = append(set.Names, name)
		}
	}
	if len(local) > 0 {
		paths, err := DiscoverInputs(local)
		if err != nil {
			set.Close()
			if errors.Is(err, ErrBaseCollision) {
				return nil, fmt.Errorf("%w: %w", encode.ErrSettings, err)
			}
			return nil, fmt.Errorf("%w: %w", encode.ErrBadInput, err)
		}
		set.Names = append(set.Names, paths...)
	}
	byBase := map[string]string{}
	for _, n := range set.Names {
		b := InputBase(n)
		if prev, dup := byBase[b]; dup {
			set.Close()
			return nil, fmt.Errorf("%w: %w: inputs %s and %s both have base name %q", encode.ErrSettings, ErrBaseCollision, prev, n, b)
		}
		byBase[b] = n
	}
	return set, nil
}

// Close closes the stores.
func (s *Inputs) Close() {
	for _, st := range s.stores {
		_ = st.Close()
	}
}

// Identity is what the manifest records of an input: a file's size, time
// and sha256; an object's size and time (hashing it would mean reading it
// whole once more: a changed object is told by its size or time).
func (s *Inputs) Identity(name string) (ManifestInput, error) {
	if r, ok := s.remote[name]; ok {
		return ManifestInput{Path: name, Size: r.obj.Size, MTime: r.obj.ModTime.UTC()}, nil
	}
	st, err := os.Stat(name)
	if err != nil {
		return ManifestInput{}, fmt.Errorf("%w: input %s: %w", encode.ErrBadInput, name, err)
	}
	sum, size, err := FileSHA256(name)
	if err != nil {
		return ManifestInput{}, err
	}
	return ManifestInput{Path: name, Size: size, MTime: st.ModTime().UTC(), SHA256: sum}, nil
}

// Open opens an input for reading.
func (s *Inputs) Open(ctx context.Context, name string, cols Columns) (*InputReader, error) {
	if r, ok := s.remote[name]; ok {
		return r.store.OpenInput(ctx, r.obj.Key, cols)
	}
	return OpenInput(name, cols)
}
