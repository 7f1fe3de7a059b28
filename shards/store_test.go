package shards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in        string
		remote    bool
		bucketURL string
		prefix    string
		object    string // ObjectURL("k")
	}{
		{in: "/data/out", remote: false},
		{in: "relative/dir", remote: false},
		{in: "in/*.parquet", remote: false},
		{in: "weird/a://b", remote: false},
		{in: "s3://bucket/some/prefix/?region=x&endpoint=http%3A%2F%2Fh%3A9", remote: true,
			bucketURL: "s3://bucket?region=x&endpoint=http%3A%2F%2Fh%3A9", prefix: "some/prefix/", object: "s3://bucket/k"},
		{in: "s3://bucket/some//prefix", remote: true, bucketURL: "s3://bucket", prefix: "some/prefix", object: "s3://bucket/k"},
		{in: "s3://bucket", remote: true, bucketURL: "s3://bucket", prefix: "", object: "s3://bucket/k"},
		{in: "s3://bucket/", remote: true, bucketURL: "s3://bucket", prefix: "", object: "s3://bucket/k"},
		{in: "S3://bucket//a/b.parquet", remote: true, bucketURL: "s3://bucket", prefix: "a/b.parquet", object: "s3://bucket/k"},
		{in: "gs://b/x/y/", remote: true, bucketURL: "gs://b", prefix: "x/y/", object: "gs://b/k"},
		{in: "azblob://container/out?domain=blob.core.example", remote: true,
			bucketURL: "azblob://container?domain=blob.core.example", prefix: "out", object: "azblob://container/k"},
		{in: "mem://", remote: true, bucketURL: "mem:", prefix: "", object: "mem:///k"},
		{in: "mem://b/p/", remote: true, bucketURL: "mem://b", prefix: "p/", object: "mem://b/k"},
		{in: "file:///abs/dir", remote: true, bucketURL: "file:///abs/dir", prefix: "", object: "file:///abs/dir/k"},
		{in: "file:///abs/dir/?create_dir=1", remote: true, bucketURL: "file:///abs/dir?create_dir=1", prefix: "", object: "file:///abs/dir/k"},
		{in: "file://localhost/abs/../dir", remote: true, bucketURL: "file:///dir", prefix: "", object: "file:///dir/k"},
	}
	for _, tt := range tests {
		loc, remote, err := ParseLocation(tt.in)
		if err != nil {
			t.Errorf("ParseLocation(%q): %v", tt.in, err)
			continue
		}
		if remote != tt.remote || loc.Raw != tt.in || loc.BucketURL != tt.bucketURL || loc.Prefix != tt.prefix {
			t.Errorf("ParseLocation(%q) = %+v, %v; want bucket %q prefix %q remote %v", tt.in, loc, remote, tt.bucketURL, tt.prefix, tt.remote)
		}
		if remote {
			if got := loc.ObjectURL("k"); got != tt.object {
				t.Errorf("ParseLocation(%q).ObjectURL(k) = %q, want %q", tt.in, got, tt.object)
			}
		}
	}
	for _, bad := range []string{
		"s3://",
		"s3:///prefix",
		"s3://bucket/a/../b",
		"s3://bucket/./b",
		"s3://AKIA:secret@bucket/x",
		"gs://b/x?access_id=me&private_key_path=/k.pem",
		"file:///d?secret_key_path=/k",
		"file://relative/dir",
		"http://example.com/x",
		"ftp://host/x",
		"s3://bucket/x#frag",
	} {
		_, remote, err := ParseLocation(bad)
		if err == nil || !remote || !errors.Is(err, ErrBadLocation) {
			t.Errorf("ParseLocation(%q): remote %v, err %v; want an ErrBadLocation", bad, remote, err)
		}
	}
}

// fakeS3 is an in-process S3 (gofakes3, memory backend) with a bucket
// "test" and the environment of the AWS default credential chain set to
// dummy values.
type fakeS3 struct {
	srv     *httptest.Server
	backend *s3mem.Backend
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	be := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(be).Server())
	t.Cleanup(srv.Close)
	if err := be.CreateBucket("test"); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_ACCESS_KEY_ID", "splash-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "splash-test-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return &fakeS3{srv: srv, backend: be}
}

// url is the s3:// URL of prefix in the fake's bucket.
func (f *fakeS3) url(prefix string) string {
	return "s3://test/" + prefix + "?endpoint=" + url.QueryEscape(f.srv.URL) + "&use_path_style=true&disable_https=true&region=us-east-1"
}

func (f *fakeS3) open(t *testing.T, prefix string) *Store {
	t.Helper()
	loc, remote, err := ParseLocation(f.url(prefix))
	if err != nil || !remote {
		t.Fatalf("ParseLocation: %v, %v", remote, err)
	}
	s, err := OpenStore(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func writeObject(t *testing.T, s *Store, key string, data []byte, meta map[string]string) {
	t.Helper()
	if err := s.bucket.WriteAll(context.Background(), key, data, &blob.WriterOptions{ContentType: "application/octet-stream", Metadata: meta}); err != nil {
		t.Fatal(err)
	}
}

// keys lists every key in the bucket of s.
func keys(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	it := s.bucket.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Key)
	}
}

func TestStoreListInputs(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	s := f.open(t, "")
	for _, k := range []string{
		"in/b.parquet", "in/a.parquet", "in/c.parquet", "in/_SUCCESS", "in/_x.parquet", "in/.hidden.parquet",
		"in/notes.txt", "in/sub/d.parquet", "in2/e.parquet", "inx.parquet",
	} {
		writeObject(t, s, k, []byte("x"+k), nil)
	}
	for _, prefix := range []string{"in/", "in", "/in//"} {
		got, err := f.open(t, prefix).ListInputs(ctx)
		if err != nil {
			t.Fatalf("%s: %v", prefix, err)
		}
		var names []string
		for _, o := range got {
			names = append(names, o.Key+"="+o.Base)
			if o.Size != int64(len("x"+o.Key)) || o.ModTime.IsZero() {
				t.Errorf("%s: %+v", prefix, o)
			}
		}
		if want := []string{"in/a.parquet=a", "in/b.parquet=b", "in/c.parquet=c"}; !slices.Equal(names, want) {
			t.Errorf("ListInputs(%q) = %v, want %v", prefix, names, want)
		}
	}
	got, err := f.open(t, "in/sub/d.parquet").ListInputs(ctx)
	if err != nil || len(got) != 1 || got[0].Key != "in/sub/d.parquet" || got[0].Base != "d" {
		t.Errorf("single object: %+v, %v", got, err)
	}
	for _, prefix := range []string{"nothing/", "in/sub/d.parq", "in/notes.txt/"} {
		if got, err := f.open(t, prefix).ListInputs(ctx); err == nil {
			t.Errorf("ListInputs(%q) = %+v, want an error", prefix, got)
		}
	}
}

type storeDoc struct {
	ID    string  `parquet:"id"`
	Title *string `parquet:"title,optional"`
	Text  *string `parquet:"text,optional"`
	Extra string  `parquet:"extra"`
}

func TestStoreOpenInput(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	var rows []storeDoc
	for i := range 3000 {
		text := strings.Repeat(fmt.Sprintf("word%d ", rng.IntN(1000)), 1+rng.IntN(40))
		d := storeDoc{ID: fmt.Sprintf("doc-%05d", i), Text: &text, Extra: strings.Repeat("e", rng.IntN(300))}
		if i%7 == 0 {
			d.Title = ptr(fmt.Sprintf("title %d", i))
		}
		rows = append(rows, d)
	}
	local := filepath.Join(dir, "docs.parquet")
	writeParquet(t, local, rows, parquet.MaxRowsPerRowGroup(500), parquet.PageBufferSize(4096))
	data, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	s := f.open(t, "corpus/")
	writeObject(t, s, "corpus/docs.parquet", data, nil)
	s.readBlockSize, s.readCacheBlocks = 16<<10, 3 // many blocks, few cached

	cols := Columns{Title: "title"}
	lr, err := OpenInput(local, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	want := readAll(t, lr, 97)

	objs, err := s.ListInputs(ctx)
	if err != nil || len(objs) != 1 {
		t.Fatalf("ListInputs: %v, %v", objs, err)
	}
	rr, err := s.OpenInput(ctx, objs[0].Key, cols)
	if err != nil {
		t.Fatal(err)
	}
	if rr.NumRowGroups() != 6 || rr.NumRows() != 3000 {
		t.Fatalf("%d row groups, %d rows; want 6 and 3000", rr.NumRowGroups(), rr.NumRows())
	}
	if rr.Path() != "s3://test/corpus/docs.parquet" {
		t.Errorf("Path %q", rr.Path())
	}
	got := readAll(t, rr, 97)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("remote read differs from the local one: %d docs vs %d", len(got), len(want))
	}
	if err := rr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rr.Close(); err != nil {
		t.Fatal(err)
	}

	// Missing object, not Parquet.
	if _, err := s.OpenInput(ctx, "corpus/missing.parquet", cols); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing object: %v", err)
	}
	writeObject(t, s, "corpus/junk.parquet", bytes.Repeat([]byte("junk"), 100), nil)
	if _, err := s.OpenInput(ctx, "corpus/junk.parquet", cols); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("junk object: %v, want ErrInvalidInput", err)
	}

	// The store goes away while reading: an I/O error, not bad data.
	rr, err = s.OpenInput(ctx, "corpus/docs.parquet", cols)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	if _, err := rr.Next(ctx, 10); err != nil {
		t.Fatal(err)
	}
	f.srv.Close()
	var rerr error
	for rerr == nil {
		_, rerr = rr.Next(ctx, 500)
	}
	if errors.Is(rerr, ErrInvalidInput) || !errors.Is(rerr, syscall.EIO) || rerr == io.EOF {
		t.Errorf("read with the store gone: %v; want an I/O error, not ErrInvalidInput", rerr)
	}
}

func TestStoreBlockReaderAt(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	s := f.open(t, "")
	data := make([]byte, 100_003)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	writeObject(t, s, "blob", data, nil)
	a, err := s.bucket.Attributes(ctx, "blob")
	if err != nil {
		t.Fatal(err)
	}
	ra := newBlockReaderAt(ctx, s.bucket, "blob", "s3://test/blob", a.Size, a.ModTime)
	ra.blockSize, ra.maxBlocks = 4096, 4
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 200 {
				off := rng.Int64N(int64(len(data)) + 10)
				p := make([]byte, rng.IntN(9000))
				n, err := ra.ReadAt(p, off)
				end := min(off+int64(len(p)), int64(len(data)))
				wantN := int(max(0, end-off))
				if n != wantN || (n < len(p)) != (err == io.EOF) || (err != nil && err != io.EOF) {
					t.Errorf("ReadAt(%d bytes, %d) = %d, %v; want %d", len(p), off, n, err, wantN)
					return
				}
				if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d bytes, %d): wrong bytes", len(p), off)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Sequential reads hit the cache.
	ra2 := newBlockReaderAt(ctx, s.bucket, "blob", "s3://test/blob", a.Size, a.ModTime)
	ra2.blockSize = 4096
	buf := make([]byte, 100)
	for off := int64(0); off < int64(len(data)); off += 100 {
		ra2.ReadAt(buf, off)
	}
	if want := (len(data) + 4095) / 4096; ra2.requests != want {
		t.Errorf("%d range requests for a sequential read, want %d", ra2.requests, want)
	}
	// A changed object is noticed.
	writeObject(t, s, "blob", data[:5000], nil)
	ra3 := newBlockReaderAt(ctx, s.bucket, "blob", "s3://test/blob", a.Size, a.ModTime)
	if _, err := ra3.ReadAt(buf, 0); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("read of a changed object: %v", err)
	}
}

// localShard commits a shard with a dead-letter file in a new directory
// and returns the directory and the manifest.
func localShard(t *testing.T, base string, rows int, rejected bool) (string, Manifest) {
	t.Helper()
	dir := t.TempDir()
	m := committedShard(t, dir, base, FormatParquet, rows)
	if rejected {
		w, err := NewRejectedWriter(dir, base)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(Rejected{Input: "in/" + base + ".parquet", Row: 3, Reason: RejectNullID, Detail: fmt.Sprintf("null id (%d)", rows)}); err != nil {
			t.Fatal(err)
		}
		if m.Rejected, err = w.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
	}
	return dir, m
}

func TestStorePublishShard(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	s := f.open(t, "out/run1")
	dir, m := localShard(t, "docs", 40, true)

	if _, err := s.ReadManifest(ctx, "docs"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadManifest before publishing: %v", err)
	}
	won, winner, err := s.PublishShard(ctx, dir, m)
	if err != nil || !won || winner != nil {
		t.Fatalf("publish: %v, %v, %v", won, winner, err)
	}
	got, err := s.ReadManifest(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if got.Output != m.Output || *got.Rejected != *m.Rejected {
		t.Fatalf("remote manifest %+v, want %+v", got, m)
	}
	if err := s.VerifyManifest(ctx, got); err != nil {
		t.Fatal(err)
	}
	localM, _ := os.ReadFile(filepath.Join(dir, ManifestName("docs")))
	remoteM, err := s.bucket.ReadAll(ctx, "out/run1/"+ManifestName("docs"))
	if err != nil || !bytes.Equal(localM, remoteM) {
		t.Fatalf("remote manifest bytes differ from the local ones (%v)", err)
	}
	localData, _ := os.ReadFile(filepath.Join(dir, m.Output.Path))
	remoteData, err := s.bucket.ReadAll(ctx, "out/run1/docs.parquet")
	if err != nil || !bytes.Equal(localData, remoteData) {
		t.Fatalf("remote data differ from the local ones (%v)", err)
	}
	if bases, err := s.ListManifests(ctx); err != nil || !slices.Equal(bases, []string{"docs"}) {
		t.Fatalf("ListManifests: %v, %v", bases, err)
	}
	before := keys(t, s)
	wantKeys := []string{"out/run1/_manifest.docs.json", "out/run1/_rejected.docs.jsonl", "out/run1/docs.parquet"}
	if !slices.Equal(before, wantKeys) {
		t.Fatalf("keys %v, want %v", before, wantKeys)
	}

	// Again: idempotent.
	won, winner, err = s.PublishShard(ctx, dir, m)
	if err != nil || won || winner == nil || winner.Output != m.Output {
		t.Fatalf("publish again: %v, %+v, %v", won, winner, err)
	}
	if again, _ := s.bucket.ReadAll(ctx, "out/run1/"+ManifestName("docs")); !bytes.Equal(again, remoteM) {
		t.Fatal("the manifest changed")
	}

	// Another writer, other bytes: loses to the manifest.
	dir2, m2 := localShard(t, "docs", 41, false)
	won, winner, err = s.PublishShard(ctx, dir2, m2)
	if err != nil || won || winner == nil || winner.Output != m.Output {
		t.Fatalf("publish other bytes: %v, %+v, %v", won, winner, err)
	}
	if err := s.VerifyManifest(ctx, got); err != nil {
		t.Fatalf("the first shard no longer verifies: %v", err)
	}
	if after := keys(t, s); !slices.Equal(after, before) {
		t.Fatalf("keys %v, want %v", after, before)
	}

	// VerifyManifest notices a replaced or missing object.
	writeObject(t, s, "out/run1/docs.parquet", localData[:len(localData)-1], map[string]string{"sha256": m.Output.SHA256})
	if err := s.VerifyManifest(ctx, got); !errors.Is(err, ErrMismatch) {
		t.Errorf("truncated object: %v", err)
	}
	writeObject(t, s, "out/run1/docs.parquet", localData, map[string]string{"sha256": strings.Repeat("0", 64)})
	if err := s.VerifyManifest(ctx, got); !errors.Is(err, ErrMismatch) {
		t.Errorf("other sha256: %v", err)
	}
	writeObject(t, s, "out/run1/docs.parquet", localData, map[string]string{"sha256": m.Output.SHA256})
	if err := s.bucket.Delete(ctx, "out/run1/"+RejectedName("docs")); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyManifest(ctx, got); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dead-letter object: %v", err)
	}

	// An unparsable manifest.
	writeObject(t, s, "out/run1/"+ManifestName("bad"), []byte(`{"schema_version": 1, "x": 2}`), nil)
	if _, err := s.ReadManifest(ctx, "bad"); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("bad manifest: %v", err)
	}
	if _, err := s.ReadManifest(ctx, "../x"); err == nil {
		t.Error("ReadManifest(../x) accepted")
	}
}

func TestStorePublishLeftovers(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	s := f.open(t, "out")
	dir, m := localShard(t, "docs", 30, true)
	orphan := []byte("half of another run's shard")
	writeObject(t, s, "out/docs.parquet", orphan, map[string]string{"sha256": sha256Hex(orphan)})

	// Fresh: another run is uploading it.
	won, winner, err := s.PublishShard(ctx, dir, m)
	if !errors.Is(err, ErrShardBusy) || won || winner != nil {
		t.Fatalf("fresh leftover: %v, %v, %v; want ErrShardBusy", won, winner, err)
	}
	if ok, _ := s.bucket.Exists(ctx, "out/"+ManifestName("docs")); ok {
		t.Fatal("a manifest was written")
	}
	if d, _ := s.bucket.ReadAll(ctx, "out/docs.parquet"); !bytes.Equal(d, orphan) {
		t.Fatal("the fresh object was replaced")
	}

	// Stale: replaced.
	s.now = func() time.Time { return time.Now().Add(DefaultStaleAfter + time.Minute) }
	won, _, err = s.PublishShard(ctx, dir, m)
	if err != nil || !won {
		t.Fatalf("stale leftover: %v, %v", won, err)
	}
	rm, err := s.ReadManifest(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyManifest(ctx, rm); err != nil {
		t.Fatal(err)
	}

	// A leftover dead-letter file without manifest is replaced at once.
	s2 := f.open(t, "out2")
	writeObject(t, s2, "out2/"+RejectedName("docs"), []byte("old"), nil)
	if won, _, err := s2.PublishShard(ctx, dir, m); err != nil || !won {
		t.Fatalf("leftover dead-letter file: %v, %v", won, err)
	}
	if rm, err := s2.ReadManifest(ctx, "docs"); err != nil || s2.VerifyManifest(ctx, rm) != nil {
		t.Fatalf("after replacing the dead-letter file: %v, %v", err, s2.VerifyManifest(ctx, rm))
	}

	// Local bytes that differ from the manifest are refused, leaving nothing.
	s3 := f.open(t, "out3")
	bad := m
	bad.Output.SHA256 = strings.Repeat("ab", 32)
	if err := WriteManifest(dir, bad); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s3.PublishShard(ctx, dir, bad); !errors.Is(err, ErrMismatch) {
		t.Fatalf("local bytes differing from the manifest: %v", err)
	}
	if ks := keys(t, s3); slices.ContainsFunc(ks, func(k string) bool { return strings.HasPrefix(k, "out3/") }) {
		t.Fatalf("left %v", ks)
	}
	// A local manifest that does not record m.
	if _, _, err := s3.PublishShard(ctx, dir, m); !errors.Is(err, ErrMismatch) {
		t.Fatalf("local manifest of other content: %v", err)
	}
}

// cancellingReader cancels after n bytes have been read, and goes on.
type cancellingReader struct {
	r      io.Reader
	n      int64
	cancel func()
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 && c.cancel != nil {
		c.cancel()
		c.cancel = nil
		time.Sleep(50 * time.Millisecond) // let the cancellation reach the requests in flight
	}
	return n, err
}

func TestStoreCancelledUpload(t *testing.T) {
	f := newFakeS3(t)
	data := make([]byte, 24<<20)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := sha256Hex(data)
	for _, tt := range []struct {
		name     string
		size     int
		partSize int
		after    int64
	}{
		{"single-part", 1 << 20, 0, 300 << 10},
		// The transfer manager reads 16 MiB before it starts a multipart
		// upload: cancel once some parts are on their way.
		{"multipart", 24 << 20, 5 << 20, 18 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := f.open(t, "cancel-"+tt.name)
			s.PartSize = tt.partSize
			d := data[:tt.size]
			s1 := sha256Hex(d)
			if tt.size == len(data) {
				s1 = sum
			}
			for _, ifNotExist := range []bool{true, false} {
				ctx, cancel := context.WithCancel(context.Background())
				src := func() (io.ReadCloser, error) {
					return io.NopCloser(&cancellingReader{r: bytes.NewReader(d), n: tt.after, cancel: cancel}), nil
				}
				err := s.upload(ctx, "docs.parquet", src, int64(len(d)), s1, "application/octet-stream", ifNotExist)
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Errorf("upload (if not exist %v) cancelled after %d bytes: %v", ifNotExist, tt.after, err)
				}
				// Put (a plain overwrite) too.
				ctx, cancel = context.WithCancel(context.Background())
				err = s.Put(ctx, "_vocabulary.tsv", &cancellingReader{r: bytes.NewReader(d), n: tt.after, cancel: cancel})
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Put cancelled after %d bytes: %v", tt.after, err)
				}
			}
			if ks := keys(t, s); slices.ContainsFunc(ks, func(k string) bool { return strings.HasPrefix(k, "cancel-"+tt.name) }) {
				t.Fatalf("a cancelled upload left %v", ks)
			}
			var client *s3.Client
			if !s.bucket.As(&client) {
				t.Fatal("not an S3 bucket")
			}
			mu, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("test")})
			switch {
			case err != nil && tt.partSize == 0 && strings.Contains(err.Error(), "NoSuchUpload"):
				// gofakes3: no multipart upload was ever started in the bucket.
			case err != nil:
				t.Fatalf("no multipart upload was started? %v", err)
			case len(mu.Uploads) != 0:
				t.Errorf("%d multipart uploads left in progress", len(mu.Uploads))
			}

			// The same upload, not cancelled, goes through (multipart
			// included) and gives the whole object.
			src := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(d)), nil }
			if err := s.upload(context.Background(), "docs.parquet", src, int64(len(d)), s1, "application/octet-stream", true); err != nil {
				t.Fatal(err)
			}
			if err := s.verifyObject(context.Background(), "docs.parquet", int64(len(d)), s1); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.bucket.ReadAll(context.Background(), s.key("docs.parquet")); !bytes.Equal(got, d) {
				t.Fatal("uploaded bytes differ")
			}
		})
	}
}

func TestStoreConcurrentPublish(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	dirA, mA := localShard(t, "docs", 25, true)
	dirB, mB := localShard(t, "docs", 26, true)
	for _, tt := range []struct {
		name string
		dirs []string
		ms   []Manifest
	}{
		{"same-bytes", []string{dirA, dirA, dirA, dirA}, []Manifest{mA, mA, mA, mA}},
		{"other-bytes", []string{dirA, dirB, dirA, dirB}, []Manifest{mA, mB, mA, mB}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for round := range 5 {
				prefix := fmt.Sprintf("%s-%d/", tt.name, round)
				var wg sync.WaitGroup
				type result struct {
					won    bool
					winner *Manifest
					err    error
				}
				results := make([]result, len(tt.dirs))
				start := make(chan struct{})
				for i := range tt.dirs {
					s := f.open(t, prefix)
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						won, winner, err := s.PublishShard(ctx, tt.dirs[i], tt.ms[i])
						results[i] = result{won, winner, err}
					}()
				}
				close(start)
				wg.Wait()
				s := f.open(t, prefix)
				rm, err := s.ReadManifest(ctx, "docs")
				if err != nil {
					t.Fatal(err)
				}
				if err := s.VerifyManifest(ctx, rm); err != nil {
					t.Fatalf("the manifest does not verify: %v", err)
				}
				wins := 0
				for i, r := range results {
					switch {
					case r.won:
						wins++
						if rm.Output != tt.ms[i].Output {
							t.Errorf("writer %d won but the manifest records %+v", i, rm.Output)
						}
					case r.err != nil:
						if !errors.Is(r.err, ErrShardBusy) || rm.Output == tt.ms[i].Output {
							t.Errorf("writer %d: %v", i, r.err)
						}
					case r.winner == nil || r.winner.Output != rm.Output:
						t.Errorf("writer %d lost, winner %+v", i, r.winner)
					}
				}
				if wins != 1 {
					t.Errorf("%d writers won", wins)
				}
				if bases, err := s.ListManifests(ctx); err != nil || !slices.Equal(bases, []string{"docs"}) {
					t.Errorf("ListManifests: %v, %v", bases, err)
				}
			}
		})
	}
}

func TestStoreSidecars(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	s := f.open(t, "out")
	if err := s.Put(ctx, VocabularyFile, strings.NewReader("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, VocabularyFile, strings.NewReader("c\n")); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "v.tsv")
	if err := s.Download(ctx, VocabularyFile, local); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(local); string(b) != "c\n" {
		t.Fatalf("downloaded %q", b)
	}
	if err := s.Download(ctx, "missing", local); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("download of a missing object: %v", err)
	}
	if err := s.Put(ctx, "../x", strings.NewReader("")); err == nil {
		t.Fatal("Put(../x) accepted")
	}
	if err := s.WriteSuccess(ctx, map[string]int{"shards": 3}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.bucket.ReadAll(ctx, "out/_SUCCESS"); string(b) != "{\n  \"shards\": 3\n}\n" {
		t.Fatalf("_SUCCESS %q", b)
	}
	if err := s.RemoveSuccess(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSuccess(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.bucket.Exists(ctx, "out/_SUCCESS"); ok {
		t.Fatal("_SUCCESS still there")
	}
	if bases, err := s.ListManifests(ctx); err != nil || len(bases) != 0 {
		t.Fatalf("ListManifests of an empty prefix: %v, %v", bases, err)
	}
}

// The protocol does not depend on S3: memblob and fileblob behave alike.
func TestStorePublishOtherDrivers(t *testing.T) {
	ctx := context.Background()
	dir, m := localShard(t, "docs", 20, true)
	dir2, m2 := localShard(t, "docs", 21, false)
	for _, raw := range []string{"mem://b/out/", "file://" + t.TempDir() + "?create_dir=1"} {
		loc, _, err := ParseLocation(raw)
		if err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if won, _, err := s.PublishShard(ctx, dir, m); err != nil || !won {
			t.Fatalf("%s: %v, %v", raw, won, err)
		}
		if won, w, err := s.PublishShard(ctx, dir, m); err != nil || won || w == nil {
			t.Fatalf("%s again: %v, %v", raw, won, err)
		}
		if won, w, err := s.PublishShard(ctx, dir2, m2); err != nil || won || w == nil || w.Output != m.Output {
			t.Fatalf("%s other bytes: %v, %v", raw, won, err)
		}
		rm, err := s.ReadManifest(ctx, "docs")
		if err != nil || s.VerifyManifest(ctx, rm) != nil {
			t.Fatalf("%s: %v, %v", raw, err, s.VerifyManifest(ctx, rm))
		}
		// A cancelled upload leaves nothing.
		cctx, cancel := context.WithCancel(ctx)
		data := bytes.Repeat([]byte("x"), 1<<20)
		err = s.Put(cctx, "big", &cancellingReader{r: bytes.NewReader(data), n: 100 << 10, cancel: cancel})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: cancelled Put: %v", raw, err)
		}
		if ok, _ := s.bucket.Exists(ctx, s.key("big")); ok {
			t.Errorf("%s: a cancelled Put left the object", raw)
		}
	}
}
