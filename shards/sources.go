package shards

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/splash-encode/splash/encode"
)

// Inputs are a run's input shards, local files or objects in object
// storage (s3://, gs://, azblob://, file://), by the names the run records
// them under: the path, or the object's URL. A text input larger than the
// part size is several inputs, one per part (PartName).
type Inputs struct {
	// Names lists the inputs in order.
	Names  []string
	remote map[string]remoteInput
	text   map[string]textInput // by name: the text inputs and their parts
	scans  map[string]textScan  // by file: what hashing a text input found
	stores []*Store
}

// SourceOptions are the settings of input discovery.
type SourceOptions struct {
	// PartSize cuts plain (not gzipped) text inputs larger than it into
	// parts of PartSize bytes, each encoded into its own output shard (0:
	// DefaultPartSize). It must be the same for every run, index and
	// finalize of one output.
	PartSize int64
}

// Part sizes of text inputs.
const (
	DefaultPartSize int64 = 256 << 20
	MinPartSize     int64 = 64 << 10
)

// remoteInput is an input object and the store that holds it.
type remoteInput struct {
	store *Store
	obj   RemoteObject
}

// textInput is a text input, or one part of one.
type textInput struct {
	file     string       // the whole input's name (path or URL)
	remote   *remoteInput // nil for a local file
	kind     TextKind
	gz       bool
	size     int64 // of the whole file
	part     int   // index of the part; 0 when not cut
	parts    int   // number of parts; 0 when not cut
	partSize int64
	start    int64 // byte range of the part in the file
	end      int64
}

// PartName names part k of the text input file: "corpus.jsonl#part00003".
// Its outputs have the base name "corpus.part00003" (InputBase).
func PartName(file string, k int) string { return fmt.Sprintf("%s#part%05d", file, k) }

// cutPart splits a PartName into the file and the part index.
func cutPart(name string) (file string, k int, ok bool) {
	i := strings.LastIndex(name, "#part")
	if i < 0 {
		return "", 0, false
	}
	digits := name[i+len("#part"):]
	if len(digits) < 5 || strings.Trim(digits, "0123456789") != "" {
		return "", 0, false
	}
	k, err := strconv.Atoi(digits)
	if err != nil {
		return "", 0, false
	}
	if _, _, text := TextInputKind(name[:i]); !text {
		return "", 0, false
	}
	return name[:i], k, true
}

// DiscoverSources expands --input values: local ones with
// DiscoverInputs, URLs by listing their prefix; text inputs larger than
// the part size become their parts. Two inputs with one base name are
// refused (their outputs would collide), across both kinds.
func DiscoverSources(ctx context.Context, values []string, opts SourceOptions) (*Inputs, error) {
	partSize := opts.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize {
		return nil, fmt.Errorf("%w: part size %d bytes: want at least %d (64 KiB)", encode.ErrSettings, partSize, MinPartSize)
	}
	set := &Inputs{remote: map[string]remoteInput{}, text: map[string]textInput{}, scans: map[string]textScan{}}
	addText := func(name string, size int64, remote *remoteInput) {
		kind, gz, ok := TextInputKind(name)
		if !ok {
			set.Names = append(set.Names, name)
			return
		}
		t := textInput{file: name, remote: remote, kind: kind, gz: gz, size: size, end: size}
		if gz || size <= partSize {
			set.text[name] = t
			set.Names = append(set.Names, name)
			return
		}
		t.parts, t.partSize = int((size+partSize-1)/partSize), partSize
		for k := range t.parts {
			p := t
			p.part, p.start, p.end = k, int64(k)*partSize, min(int64(k+1)*partSize, size)
			n := PartName(name, k)
			set.text[n] = p
			set.Names = append(set.Names, n)
		}
	}
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
			ri := remoteInput{store: st, obj: o}
			set.remote[name] = ri
			addText(name, o.Size, &ri)
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
		for _, p := range paths {
			var size int64
			if st, err := os.Stat(p); err == nil {
				size = st.Size()
			} // else opening it fails later, naming it
			addText(p, size, nil)
		}
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

// File is the name of the file or object that holds the input name: name
// itself, or for a part of a text input the whole input's name.
func (s *Inputs) File(name string) string {
	if t, ok := s.text[name]; ok {
		return t.file
	}
	return name
}

// samePart reports whether the part of input name is the one recorded
// (byte range and count; nil for an input not cut into parts).
func (s *Inputs) samePart(name string, recorded *ManifestPart) bool {
	t, ok := s.text[name]
	if !ok || t.parts == 0 {
		return recorded == nil
	}
	return recorded != nil && recorded.Index == t.part && recorded.Count == t.parts && recorded.Offset == t.start && recorded.End == t.end
}

// Identity is what the manifest records of an input: a file's size, time
// and sha256; an object's size and time (hashing it would mean reading it
// whole once more: a changed object is told by its size or time). A text
// input is read whole once (hashed, its lines counted), objects too; a
// part records its byte range and first line as well.
func (s *Inputs) Identity(ctx context.Context, name string) (ManifestInput, error) {
	if t, ok := s.text[name]; ok {
		return s.textIdentity(ctx, name, t)
	}
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

// textIdentity is Identity of a text input or part.
func (s *Inputs) textIdentity(ctx context.Context, name string, t textInput) (ManifestInput, error) {
	id := ManifestInput{Path: t.file}
	if t.remote != nil {
		id.MTime = t.remote.obj.ModTime.UTC()
	} else {
		st, err := os.Stat(t.file)
		if err != nil {
			return ManifestInput{}, fmt.Errorf("%w: input %s: %w", encode.ErrBadInput, t.file, err)
		}
		id.MTime = st.ModTime().UTC()
	}
	sc, err := s.scan(ctx, t)
	if err != nil {
		return ManifestInput{}, err
	}
	id.Size, id.SHA256 = sc.size, sc.sha256
	if t.parts > 0 {
		spec := s.partSpec(t, sc)
		id.Part = &ManifestPart{Index: t.part, Count: t.parts, Offset: t.start, End: t.end, FirstLine: spec.firstLine + 1}
	}
	return id, nil
}

// scan reads the whole text input of t once per run (cached by file).
func (s *Inputs) scan(ctx context.Context, t textInput) (textScan, error) {
	if sc, ok := s.scans[t.file]; ok {
		return sc, nil
	}
	var bounds []int64 // where parts 1, 2, ... start
	for k := 1; k < t.parts; k++ {
		bounds = append(bounds, int64(k)*t.partSize)
	}
	rc, err := s.opener(t)(ctx, 0)
	if err != nil {
		return textScan{}, fmt.Errorf("%w: input %s: %w", encode.ErrBadInput, t.file, err)
	}
	defer rc.Close()
	sc, err := scanText(ctx, rc, t.gz, bounds)
	if err != nil {
		return textScan{}, fmt.Errorf("read input %s: %w", t.file, err)
	}
	if sc.size != t.size {
		return textScan{}, fmt.Errorf("read input %s: %w: %d bytes read, %d listed: the file changes while it is read", t.file, ErrInvalidInput, sc.size, t.size)
	}
	s.scans[t.file] = sc
	return sc, nil
}

// partSpec is what a TextReader of t reads, given the scan of its file.
func (s *Inputs) partSpec(t textInput, sc textScan) textPartSpec {
	spec := textPartSpec{path: t.file, kind: t.kind, gz: t.gz, start: t.start, end: t.end}
	total := sc.linesBefore[len(sc.linesBefore)-1]
	if t.parts == 0 {
		spec.lines = total
		return spec
	}
	if t.part > 0 {
		spec.firstLine = sc.linesBefore[t.part-1]
	}
	last := total
	if t.part+1 < t.parts {
		last = sc.linesBefore[t.part]
	}
	spec.lines = last - spec.firstLine
	return spec
}

// opener returns the opener of t's file.
func (s *Inputs) opener(t textInput) textOpener {
	if t.remote != nil {
		r := t.remote
		return func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			return r.store.OpenRange(ctx, r.obj, offset)
		}
	}
	return func(ctx context.Context, offset int64) (io.ReadCloser, error) {
		f, err := os.Open(t.file)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err == nil && st.Size() != t.size {
			err = fmt.Errorf("%w: %d bytes now, %d when the run started: the file changed", ErrInvalidInput, st.Size(), t.size)
		}
		if err == nil && offset > 0 {
			_, err = f.Seek(offset, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

// Open opens an input for reading.
func (s *Inputs) Open(ctx context.Context, name string, cols Columns) (DocReader, error) {
	if t, ok := s.text[name]; ok {
		sc, err := s.scan(ctx, t)
		if err != nil {
			return nil, err
		}
		return openText(ctx, s.opener(t), s.partSpec(t, sc), cols)
	}
	if r, ok := s.remote[name]; ok {
		return r.store.OpenInput(ctx, r.obj.Key, cols)
	}
	return OpenInput(name, cols)
}
