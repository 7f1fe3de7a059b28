package shards

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/fileblob"  // file://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	_ "gocloud.dev/blob/memblob"   // mem://
	_ "gocloud.dev/blob/s3blob"    // s3://
	"gocloud.dev/gcerrors"
)

// Object storage. Inputs and outputs may live in a bucket (s3://, gs://,
// azblob://; file:// and mem:// for tests) instead of a file system.
// Credentials come only from the SDKs' default chains (environment
// variables, shared profiles, instance or workload roles): URLs carrying
// credentials are refused.
//
// Object stores have no rename, so the commit protocol of §5 becomes: the
// shard is encoded and committed in a local directory as usual, then
// PublishShard uploads its data object, then its dead-letter file, then its
// manifest, each with a create-only condition (If-None-Match: * on S3). An
// object appears whole when its upload completes, never in part; an upload
// that fails or whose context is cancelled leaves nothing. The manifest is
// still the commit marker, and the first manifest written wins.

// ErrShardBusy is returned by PublishShard when the shard's data object
// exists with other content, no manifest commits it and it is recent:
// another run is uploading the same shard. Retry later.
var ErrShardBusy = errors.New("another run is uploading the shard; retry later")

// ErrBadLocation marks a storage URL that cannot be used.
var ErrBadLocation = errors.New("bad storage location")

// DefaultStaleAfter is the default Store.StaleAfter.
const DefaultStaleAfter = 15 * time.Minute

// metaSHA256 is the metadata key of the sha256 (lower-case hex) that
// PublishShard sets on the objects it uploads.
const metaSHA256 = "sha256"

// Location is a parsed storage URL.
type Location struct {
	// Raw is the string given to ParseLocation.
	Raw string
	// BucketURL opens the bucket with gocloud.dev/blob: scheme, bucket and
	// the query (driver options such as region or endpoint), no path; for
	// file:// the directory.
	BucketURL string
	// Prefix is the key prefix inside the bucket, without a leading "/",
	// with repeated slashes collapsed, and with a trailing "/" if the URL
	// had one ("" for the bucket's root and for file://).
	Prefix string
}

// credentialParams are query parameters that would take credentials (or
// key material) from the URL; they are refused.
var credentialParams = []string{"access_id", "private_key_path", "secret_key_path", "sas_token", "access_key", "secret_key", "session_token"}

// ParseLocation parses an --input or --output value. remote is false for a
// plain path (returned as Location{Raw: s}, nil error); for a URL
// (scheme://...) it is true and the URL is checked:
//
//	s3://bucket/some/prefix/?region=x → BucketURL "s3://bucket?region=x", Prefix "some/prefix/"
//	gs://bucket/p, azblob://container/p, mem://bucket/p   likewise
//	file:///abs/dir                   → BucketURL "file:///abs/dir", Prefix ""
//
// Errors wrap ErrBadLocation: an unknown scheme, a missing bucket, "." or
// ".." in the prefix, a relative file:// URL, user information or a query
// parameter that carries credentials.
func ParseLocation(s string) (loc Location, remote bool, err error) {
	i := strings.Index(s, "://")
	if i <= 0 || strings.ContainsAny(s[:i], "/\\*?[") {
		return Location{Raw: s}, false, nil
	}
	bad := func(format string, args ...any) (Location, bool, error) {
		return Location{}, true, fmt.Errorf("%w: %s: %s", ErrBadLocation, s, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("%v", err)
	}
	if u.User != nil {
		return bad("credentials in the URL are refused; they come from the SDK's default chain (environment, profile, instance role)")
	}
	if u.Fragment != "" || u.Opaque != "" {
		return bad("unexpected %q", "#"+u.Fragment+u.Opaque)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for _, p := range credentialParams {
		if q.Has(p) {
			return bad("query parameter %q is refused: credentials come from the SDK's default chain (environment, profile, instance role), never from the URL", p)
		}
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "s3", "gs", "azblob", "mem":
		if u.Host == "" && scheme != "mem" {
			return bad("no bucket name (want %s://BUCKET/PREFIX)", scheme)
		}
		prefix, err := cleanPrefix(u.Path)
		if err != nil {
			return bad("%v", err)
		}
		bu := &url.URL{Scheme: scheme, Host: u.Host, RawQuery: u.RawQuery}
		return Location{Raw: s, BucketURL: bu.String(), Prefix: prefix}, true, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("a file URL takes an absolute path: file:///DIR")
		}
		if !strings.HasPrefix(u.Path, "/") {
			return bad("a file URL takes an absolute path: file:///DIR")
		}
		bu := &url.URL{Scheme: "file", Path: path.Clean(u.Path), RawQuery: u.RawQuery}
		return Location{Raw: s, BucketURL: bu.String()}, true, nil
	default:
		return bad("unsupported scheme %q (want s3, gs, azblob, file or mem)", u.Scheme)
	}
}

// cleanPrefix normalises the path of a bucket URL into a key prefix.
func cleanPrefix(p string) (string, error) {
	trailing := strings.HasSuffix(p, "/")
	var segs []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			continue
		case ".", "..":
			return "", fmt.Errorf("%q in the path", seg)
		}
		if strings.ContainsRune(seg, 0) {
			return "", errors.New("NUL in the path")
		}
		segs = append(segs, seg)
	}
	prefix := strings.Join(segs, "/")
	if trailing && prefix != "" {
		prefix += "/"
	}
	return prefix, nil
}

// ObjectURL names the object with the given key (the whole key in the
// bucket, prefix included) for messages and manifests: scheme, bucket and
// key, without the query ("s3://bucket/some/prefix/docs.parquet").
func (l Location) ObjectURL(key string) string {
	u, err := url.Parse(l.BucketURL)
	if err != nil {
		return l.BucketURL + "/" + key
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/") + "/" + key
}

// dir is the prefix as a "directory": with a trailing "/" unless empty.
func (l Location) dir() string {
	if l.Prefix == "" || strings.HasSuffix(l.Prefix, "/") {
		return l.Prefix
	}
	return l.Prefix + "/"
}

// Store reads inputs from, or publishes outputs to, one location of an
// object store. Its methods are safe for concurrent use; set the fields
// before the first call.
type Store struct {
	loc    Location
	bucket *blob.Bucket

	// StaleAfter is how old a data object without a manifest must be for
	// PublishShard to take it for the leftover of a killed run and replace
	// it; younger, it is another run's upload (ErrShardBusy). Zero means
	// DefaultStaleAfter.
	StaleAfter time.Duration
	// PartSize is the upload buffer (and multipart part) size in bytes;
	// zero leaves the driver's default.
	PartSize int

	now func() time.Time // time.Now; tests move it

	// Block cache of OpenInput; zero takes storeBlockSize and
	// storeCacheBlocks (tests make them small).
	readBlockSize   int64
	readCacheBlocks int
}

// OpenStore opens the bucket of loc. Close it when done.
func OpenStore(ctx context.Context, loc Location) (*Store, error) {
	if loc.BucketURL == "" {
		return nil, fmt.Errorf("open %s: %w: not an object storage URL", loc.Raw, ErrBadLocation)
	}
	b, err := blob.OpenBucket(ctx, loc.BucketURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", loc.Raw, err)
	}
	return &Store{loc: loc, bucket: b, now: time.Now}, nil
}

// Close closes the bucket.
func (s *Store) Close() error {
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.loc.Raw, err)
	}
	return nil
}

// Location returns the location the store was opened on.
func (s *Store) Location() Location { return s.loc }

// key is the key of name (a plain name) under the prefix.
func (s *Store) key(name string) string { return s.loc.dir() + name }

// url names the object of name under the prefix, for messages.
func (s *Store) url(name string) string { return s.loc.ObjectURL(s.key(name)) }

func (s *Store) staleAfter() time.Duration {
	if s.StaleAfter > 0 {
		return s.StaleAfter
	}
	return DefaultStaleAfter
}

// notExist makes a NotFound error of the store also wrap fs.ErrNotExist.
func notExist(err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return err
}

// RemoteObject is an input object found by ListInputs.
type RemoteObject struct {
	Key     string // the whole key in the bucket
	Base    string // InputBase of the key's last segment: names the outputs
	Size    int64
	ModTime time.Time
}

// ListInputs lists the input objects of the location: when the prefix does
// not end in "/" and is the key of an object, that object alone; otherwise
// the *.parquet objects directly under the prefix (as under a directory:
// not those further down), leaving out names that start with "_" or ".",
// sorted by key. It is an error when there is none.
func (s *Store) ListInputs(ctx context.Context) ([]RemoteObject, error) {
	p := s.loc.Prefix
	if p != "" && !strings.HasSuffix(p, "/") {
		a, err := s.bucket.Attributes(ctx, p)
		if err == nil {
			base := InputBase(path.Base(p))
			if err := checkBase(base); err != nil {
				return nil, fmt.Errorf("input %s: %w", s.loc.Raw, err)
			}
			return []RemoteObject{{Key: p, Base: base, Size: a.Size, ModTime: a.ModTime}}, nil
		}
		if gcerrors.Code(err) != gcerrors.NotFound {
			return nil, fmt.Errorf("input %s: %w", s.loc.Raw, err)
		}
		p += "/"
	}
	var out []RemoteObject
	it := s.bucket.List(&blob.ListOptions{Prefix: p, Delimiter: "/"})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.loc.Raw, err)
		}
		name := strings.TrimPrefix(o.Key, p)
		if o.IsDir || name == "" || strings.Contains(name, "/") ||
			!isInputName(name) || isSidecarOrHidden(name) {
			continue
		}
		out = append(out, RemoteObject{Key: o.Key, Base: InputBase(name), Size: o.Size, ModTime: o.ModTime})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("input %s: no *%s, *.jsonl, *.jsonl.gz, *.tsv or *.tsv.gz object under the prefix (names starting with \"_\" or \".\" are skipped)", s.loc.Raw, InputExt)
	}
	slices.SortFunc(out, func(a, b RemoteObject) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// OpenInput opens the Parquet object with the given key (as RemoteObject.Key)
// for reading, as the package-level OpenInput does for a file. The object
// is read with range requests through a small block cache; ctx bounds every
// request of the reader's life (the reader is bound to ctx, unlike one of a
// file). A failed request is an I/O error, not ErrInvalidInput; an object
// that changes while it is read is an error too.
func (s *Store) OpenInput(ctx context.Context, key string, cols Columns) (*InputReader, error) {
	u := s.loc.ObjectURL(key)
	a, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", u, notExist(err))
	}
	ra := newBlockReaderAt(ctx, s.bucket, key, u, a.Size, a.ModTime)
	if s.readBlockSize > 0 {
		ra.blockSize = s.readBlockSize
	}
	if s.readCacheBlocks > 0 {
		ra.maxBlocks = s.readCacheBlocks
	}
	return openInput(ra, a.Size, u, cols)
}

// ReadManifest reads and checks the manifest of the shard with base name
// base, as the package-level ReadManifest. An error wrapping
// fs.ErrNotExist means there is none; ErrInvalidManifest, that it does not
// parse or check.
func (s *Store) ReadManifest(ctx context.Context, base string) (Manifest, error) {
	if err := checkBase(base); err != nil {
		return Manifest{}, fmt.Errorf("read manifest in %s: %w", s.loc.Raw, err)
	}
	name := ManifestName(base)
	data, err := s.readAll(ctx, name, maxManifestSize)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", s.url(name), err)
	}
	m, err := parseManifestSafely(data)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", s.url(name), err)
	}
	return m, nil
}

// readAll reads the object of name, failing past limit bytes.
func (s *Store) readAll(ctx context.Context, name string, limit int64) ([]byte, error) {
	r, err := s.bucket.NewReader(ctx, s.key(name), nil)
	if err != nil {
		return nil, notExist(err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidManifest, limit)
	}
	return data, nil
}

// VerifyManifest checks that the data object named by m.Output (and the
// dead-letter object named by m.Rejected, if any) exists under the prefix
// with the manifest's size and with the sha256 metadata that PublishShard
// set on it. The bytes are not re-hashed. Mismatches wrap ErrMismatch; a
// missing object wraps fs.ErrNotExist.
func (s *Store) VerifyManifest(ctx context.Context, m Manifest) error {
	if _, _, err := m.Output.validate(); err != nil {
		return fmt.Errorf("verify in %s: %w", s.loc.Raw, err)
	}
	if err := s.verifyObject(ctx, m.Output.Path, m.Output.Size, m.Output.SHA256); err != nil {
		return err
	}
	if r := m.Rejected; r != nil {
		if err := checkName(r.Path); err != nil {
			return fmt.Errorf("verify in %s: %w", s.loc.Raw, err)
		}
		return s.verifyObject(ctx, r.Path, r.Size, r.SHA256)
	}
	return nil
}

func (s *Store) verifyObject(ctx context.Context, name string, size int64, sum string) error {
	a, err := s.bucket.Attributes(ctx, s.key(name))
	if err != nil {
		return fmt.Errorf("verify %s: %w", s.url(name), notExist(err))
	}
	if a.Size != size {
		return fmt.Errorf("verify %s: %w: size %d, manifest says %d", s.url(name), ErrMismatch, a.Size, size)
	}
	if got := a.Metadata[metaSHA256]; got != sum {
		return fmt.Errorf("verify %s: %w: sha256 metadata %q, manifest says %s", s.url(name), ErrMismatch, got, sum)
	}
	return nil
}

// PublishShard publishes a shard committed in the local directory localDir
// (its output m.Output.Path, its dead-letter file m.Rejected.Path if any
// and its manifest, which must record m's output and dead-letter file):
//
//  1. the data object, create-only, with metadata sha256. If it exists with
//     the same sha256 and size (an earlier attempt, or another run with the
//     same bytes) that is fine. With other content: if a manifest exists the
//     shard is taken (won false, winner that manifest); if none and the
//     object is older than StaleAfter, it is the leftover of a killed run
//     and is replaced (once); if none and it is recent, the error wraps
//     ErrShardBusy.
//  2. the dead-letter object, likewise, except that without a manifest
//     other content is simply replaced (the data object is already ours).
//  3. the manifest, create-only: the commit. won is true when this call
//     wrote it. When one exists already, won is false and winner is the
//     remote manifest (same Output.SHA256: done by another run or an earlier
//     attempt with the same bytes; different: another run won).
//
// Local bytes are hashed while they are uploaded; if they differ from the
// manifest the upload is aborted (ErrMismatch) and leaves nothing. A failed
// or cancelled upload leaves nothing visible under its key. Objects of a
// lost or failed publish may stay (they are replaced, or ignored, because
// no manifest names them).
func (s *Store) PublishShard(ctx context.Context, localDir string, m Manifest) (won bool, winner *Manifest, err error) {
	_, base, err := m.Output.validate()
	if err != nil {
		return false, nil, fmt.Errorf("publish from %s: %w", localDir, err)
	}
	mname := ManifestName(base)
	mdata, err := readFileInDir(localDir, mname, maxManifestSize)
	if err != nil {
		return false, nil, fmt.Errorf("publish %s: %w", filepath.Join(localDir, mname), err)
	}
	local, err := parseManifestSafely(mdata)
	if err != nil {
		return false, nil, fmt.Errorf("publish %s: %w", filepath.Join(localDir, mname), err)
	}
	if local.Output != m.Output || (local.Rejected == nil) != (m.Rejected == nil) ||
		(m.Rejected != nil && *local.Rejected != *m.Rejected) {
		return false, nil, fmt.Errorf("publish %s: %w: the local manifest records another output or dead-letter file than the one to publish", filepath.Join(localDir, mname), ErrMismatch)
	}

	// 1. The data object.
	if w, err := s.putShardObject(ctx, localDir, m.Output.Path, m.Output.Size, m.Output.SHA256, base, true); err != nil || w != nil {
		return false, w, err
	}
	// 2. The dead-letter object.
	if r := m.Rejected; r != nil {
		if err := checkName(r.Path); err != nil {
			return false, nil, fmt.Errorf("publish from %s: %w", localDir, err)
		}
		if w, err := s.putShardObject(ctx, localDir, r.Path, r.Size, r.SHA256, base, false); err != nil || w != nil {
			return false, w, err
		}
	}
	// The data object could have been replaced since step 1 only by a run
	// that took it for a stale leftover; look again before committing.
	if err := s.verifyObject(ctx, m.Output.Path, m.Output.Size, m.Output.SHA256); err != nil {
		return false, nil, fmt.Errorf("publish: %w", err)
	}
	// 3. The manifest, last.
	err = s.upload(ctx, mname, bytesSource(mdata), int64(len(mdata)), sha256Hex(mdata), "application/json", true)
	if err == nil {
		return true, nil, nil
	}
	if !s.taken(ctx, mname, err) {
		return false, nil, fmt.Errorf("publish %s: %w", s.url(mname), err)
	}
	remote, rerr := s.ReadManifest(ctx, base)
	if rerr != nil {
		return false, nil, fmt.Errorf("publish %s: exists but: %w", s.url(mname), rerr)
	}
	return false, &remote, nil
}

// putShardObject uploads localDir/name create-only (see PublishShard). A
// non-nil winner means another run's manifest commits the shard.
func (s *Store) putShardObject(ctx context.Context, localDir, name string, size int64, sum, base string, data bool) (winner *Manifest, err error) {
	u := s.url(name)
	for attempt := 0; ; attempt++ {
		err := s.upload(ctx, name, fileSource(localDir, name), size, sum, "application/octet-stream", true)
		if err == nil {
			return nil, nil
		}
		if !s.taken(ctx, name, err) {
			return nil, fmt.Errorf("publish %s: %w", u, err)
		}
		a, aerr := s.bucket.Attributes(ctx, s.key(name))
		if gcerrors.Code(aerr) == gcerrors.NotFound && attempt == 0 {
			continue // removed meanwhile
		}
		if aerr != nil {
			return nil, fmt.Errorf("publish %s: %w", u, aerr)
		}
		other := a.Metadata[metaSHA256]
		if other == sum && a.Size == size {
			return nil, nil // the same bytes
		}
		w, merr := s.ReadManifest(ctx, base)
		switch {
		case merr == nil:
			return &w, nil
		case !errors.Is(merr, fs.ErrNotExist):
			return nil, fmt.Errorf("publish %s: %w", u, merr)
		}
		age := s.now().Sub(a.ModTime)
		if data && (age < s.staleAfter() || attempt > 0) {
			return nil, fmt.Errorf("publish %s: %w: it exists with other content (size %d, sha256 %q), written %s ago, and no manifest commits it",
				u, ErrShardBusy, a.Size, other, age.Round(time.Second))
		}
		if attempt > 0 {
			return nil, fmt.Errorf("publish %s: exists with other content (size %d, sha256 %q) after being replaced", u, a.Size, other)
		}
		// A leftover of a killed run (data), or a dead-letter file that no
		// manifest commits: replace it.
		if err := s.bucket.Delete(ctx, s.key(name)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return nil, fmt.Errorf("publish %s: remove the leftover: %w", u, err)
		}
	}
}

// taken reports whether a create-only upload of name failed because the
// object exists: the store said so (FailedPrecondition), or the upload
// failed otherwise (a lost response, a conflict of two conditional writes)
// and the object exists now. A cancelled ctx is never taken.
func (s *Store) taken(ctx context.Context, name string, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrMismatch) {
		return false
	}
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return true
	}
	ok, xerr := s.bucket.Exists(ctx, s.key(name))
	return xerr == nil && ok
}

// source opens what an upload reads.
type source func() (io.ReadCloser, error)

func fileSource(dir, name string) source {
	return func() (io.ReadCloser, error) { return openInDir(dir, name) }
}

func bytesSource(b []byte) source {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil }
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// upload writes the object of name from src, with metadata sha256 = sum.
// The bytes are hashed on the way; if they are not size bytes with that
// sha256 the write is aborted (ErrMismatch). On any failure the writer's
// context is cancelled before Close, which aborts the write: nothing
// becomes visible.
func (s *Store) upload(ctx context.Context, name string, src source, size int64, sum, contentType string, ifNotExist bool) (err error) {
	rc, err := src()
	if err != nil {
		return err
	}
	defer rc.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, s.key(name), &blob.WriterOptions{
		ContentType: contentType,
		Metadata:    map[string]string{metaSHA256: sum},
		IfNotExist:  ifNotExist,
		BufferSize:  s.PartSize,
	})
	if err != nil {
		return err
	}
	vr := &verifyingReader{r: rc, h: sha256.New(), size: size, sum: sum, name: name}
	_, err = io.Copy(w, vr)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return s.failed(ctx, name, err, w.Close())
	}
	if err := w.Close(); err != nil {
		return s.failed(ctx, name, err, nil)
	}
	return nil
}

// failed cleans up after a failed upload of name: werr is the failure,
// cerr what closing the writer said. A multipart upload left in progress
// is aborted. When ctx is done the error wraps ctx.Err() (the drivers do
// not always keep it in the chain).
func (s *Store) failed(ctx context.Context, name string, werr, cerr error) error {
	err := werr
	if cerr != nil && !errors.Is(err, ErrMismatch) {
		err = fmt.Errorf("%w (closing the writer: %v)", err, cerr)
	}
	if aerr := s.abortMultipart(ctx, s.key(name), cerr); aerr != nil {
		err = fmt.Errorf("%w; %v", err, aerr)
	}
	if aerr := s.abortMultipart(ctx, s.key(name), werr); aerr != nil {
		err = fmt.Errorf("%w; %v", err, aerr)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// verifyingReader hashes what it reads and, at the end, fails instead of
// returning io.EOF when the bytes are not the expected ones.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64
	sum  string
	name string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		return n, fmt.Errorf("%w: %s: more than %d bytes", ErrMismatch, v.name, v.size)
	}
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); v.n != v.size || got != v.sum {
			return n, fmt.Errorf("%w: local %s: size %d sha256 %s, manifest says %d and %s", ErrMismatch, v.name, v.n, got, v.size, v.sum)
		}
	}
	return n, err
}

// Put writes the object name (a plain name under the prefix, e.g. the
// vocabulary file) from r, replacing any object of that name. It appears
// whole or not at all; cancelling ctx aborts it.
func (s *Store) Put(ctx context.Context, name string, r io.Reader) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("put in %s: %w", s.loc.Raw, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, s.key(name), &blob.WriterOptions{ContentType: "application/octet-stream", BufferSize: s.PartSize})
	if err != nil {
		return fmt.Errorf("put %s: %w", s.url(name), err)
	}
	_, err = io.Copy(w, r)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return fmt.Errorf("put %s: %w", s.url(name), s.failed(ctx, name, err, w.Close()))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("put %s: %w", s.url(name), s.failed(ctx, name, err, nil))
	}
	return nil
}

// WriteSuccess writes _SUCCESS under the prefix holding summary as
// indented JSON (nil writes {}), as the package-level WriteSuccess.
func (s *Store) WriteSuccess(ctx context.Context, summary any) error {
	data := []byte("{}")
	if summary != nil {
		var err error
		if data, err = json.MarshalIndent(summary, "", "  "); err != nil {
			return fmt.Errorf("write %s: %w", s.url(SuccessFile), err)
		}
	}
	data = append(data, '\n')
	return s.Put(ctx, SuccessFile, strings.NewReader(string(data)))
}

// RemoveSuccess removes _SUCCESS under the prefix, if there is one.
func (s *Store) RemoveSuccess(ctx context.Context) error {
	if err := s.bucket.Delete(ctx, s.key(SuccessFile)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("remove %s: %w", s.url(SuccessFile), err)
	}
	return nil
}

// Download copies the object name (a plain name under the prefix) to
// localPath atomically: into a temp file in its directory, fsync, rename.
// A missing object gives an error wrapping fs.ErrNotExist.
func (s *Store) Download(ctx context.Context, name, localPath string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("download from %s: %w", s.loc.Raw, err)
	}
	r, err := s.bucket.NewReader(ctx, s.key(name), nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", s.url(name), notExist(err))
	}
	defer r.Close()
	err = writeFileAtomic(filepath.Dir(localPath), filepath.Base(localPath), func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("download %s: %w", s.url(name), err)
	}
	return nil
}

// ListManifests returns the base names of the shards that have a manifest
// directly under the prefix, sorted.
func (s *Store) ListManifests(ctx context.Context) ([]string, error) {
	dir := s.loc.dir()
	it := s.bucket.List(&blob.ListOptions{Prefix: dir + "_manifest.", Delimiter: "/"})
	var bases []string
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list manifests in %s: %w", s.loc.Raw, err)
		}
		if o.IsDir {
			continue
		}
		name := strings.TrimPrefix(o.Key, dir)
		base, ok := strings.CutPrefix(name, "_manifest.")
		if !ok {
			continue
		}
		if base, ok = strings.CutSuffix(base, ".json"); !ok || checkBase(base) != nil || ManifestName(base) != name {
			continue
		}
		bases = append(bases, base)
	}
	slices.Sort(bases)
	return bases, nil
}
