package job

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/shards"
)

// fakeS3 serves an in-process S3 (gofakes3, in memory) with one bucket and
// points the AWS SDK's default credential chain at dummy keys.
func fakeS3(t *testing.T) func(prefix string) string {
	t.Helper()
	be := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(be).Server())
	t.Cleanup(srv.Close)
	if err := be.CreateBucket("corpus"); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "splash-test", "AWS_SECRET_ACCESS_KEY": "splash-test-secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	return func(prefix string) string {
		return "s3://corpus/" + prefix + "?endpoint=" + url.QueryEscape(srv.URL) + "&use_path_style=true&disable_https=true&region=us-east-1"
	}
}

// TestObjectStorageRoundTrip encodes the Cranfield shards from local files
// into an S3 bucket, from the bucket into a local directory, and from the
// bucket into the bucket, and compares each with a local-to-local run: the
// same documents and vectors, shard for shard, byte for byte where the
// input is the same file. A second run into the bucket skips every shard
// (resume by the remote manifests), and finalize verifies the bucket and
// writes _SUCCESS there.
func TestObjectStorageRoundTrip(t *testing.T) {
	_, glob := cranfieldDocs(t)
	inputs := mustGlob(t, glob)[:2] // two of the four shards: 700 documents
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 31})
	s3 := fakeS3(t)
	ctx := context.Background()

	local := filepath.Join(t.TempDir(), "local")
	if _, err := Run(ctx, baseConfig(model, local, inputs...), quietLog()); err != nil {
		t.Fatal(err)
	}

	// Local inputs -> bucket.
	sum, err := Run(ctx, baseConfig(model, s3("impacts/"), inputs...), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Shards != len(inputs) {
		t.Fatalf("encoded %d shards into the bucket, want %d", sum.Shards, len(inputs))
	}
	fromBucket := filepath.Join(t.TempDir(), "from-bucket")
	download := func(prefix, name, dst string) {
		t.Helper()
		loc, _, err := shards.ParseLocation(s3(prefix))
		if err != nil {
			t.Fatal(err)
		}
		st, err := shards.OpenStore(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Download(ctx, name, dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(fromBucket, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		name := shards.InputBase(in) + ".parquet"
		download("impacts/", name, filepath.Join(fromBucket, name))
		a, _, errA := shards.FileSHA256(filepath.Join(local, name))
		b, _, errB := shards.FileSHA256(filepath.Join(fromBucket, name))
		if errA != nil || errB != nil || a != b {
			t.Errorf("%s in the bucket is not byte-identical to the local run's: %s", name,
				firstRowDifference(t, filepath.Join(local, name), filepath.Join(fromBucket, name)))
		}
	}
	download("impacts/", shards.SuccessFile, filepath.Join(fromBucket, shards.SuccessFile))
	download("impacts/", shards.VocabularyFile, filepath.Join(fromBucket, shards.VocabularyFile))

	again, err := Run(ctx, baseConfig(model, s3("impacts/"), inputs...), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if again.Shards != 0 || again.Skipped != len(inputs) {
		t.Errorf("second run into the bucket encoded %d shards and skipped %d; want 0 and %d", again.Shards, again.Skipped, len(inputs))
	}

	// The corpus in the bucket -> a local directory and -> the bucket.
	loc, _, _ := shards.ParseLocation(s3("docs/"))
	st, err := shards.OpenStore(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, filepath.Base(in), f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	st.Close()
	remoteIn := filepath.Join(t.TempDir(), "remote-in")
	if _, err := Run(ctx, baseConfig(model, remoteIn, s3("docs/")), quietLog()); err != nil {
		t.Fatal(err)
	}
	want := readOutputs(t, local)
	got := readOutputs(t, remoteIn)
	if len(got) != len(want) {
		t.Fatalf("%d documents from the bucket, %d from local files", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || encode.MaxDiff(g.Vec, w.Vec) != 0 || g.NumTokens != w.NumTokens {
			t.Fatalf("document %s differs when read from the bucket", id)
		}
	}
	man, err := shards.ReadManifest(filepath.Join(remoteIn, shards.ManifestName(shards.InputBase(inputs[0]))))
	if err != nil || !strings.HasPrefix(man.Input.Path, "s3://corpus/docs/") {
		t.Errorf("manifest of a bucket input records %q (%v), want its s3:// URL", man.Input.Path, err)
	}
	if _, err := Run(ctx, baseConfig(model, s3("impacts2/"), s3("docs/")), quietLog()); err != nil {
		t.Fatal(err)
	}
	fsum, err := shards.Finalize(ctx, shards.FinalizeConfig{OutputDir: s3("impacts2/"), Inputs: []string{s3("docs/")}, MaxBadFraction: 0.001}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if fsum.Shards != len(inputs) || fsum.Documents != int64(len(want)) {
		t.Errorf("finalize of the bucket: %d shards, %d documents; want %d, %d", fsum.Shards, fsum.Documents, len(inputs), len(want))
	}
}

// TestTwoRunsIntoOneBucket runs two encodes of the same shards into one
// bucket prefix at the same time. Their staging directories are separate,
// so nothing local keeps them apart: both encode every shard and race to
// publish it. Each shard must be committed exactly once (one run counts it
// as encoded, the other as done by another run), both runs must succeed,
// and every shard in the bucket must verify.
func TestTwoRunsIntoOneBucket(t *testing.T) {
	_, glob := cranfieldDocs(t)
	inputs := mustGlob(t, glob)[:2]
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 31})
	s3 := fakeS3(t)
	ctx := context.Background()
	out := s3("race/")
	type result struct {
		sum Summary
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			sum, err := Run(ctx, baseConfig(model, out, inputs...), quietLog())
			results <- result{sum, err}
		}()
	}
	encoded, byOther := 0, 0
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("a run failed: %v", r.err)
		}
		encoded += r.sum.Shards
		byOther += r.sum.ByOther + r.sum.Skipped
	}
	if encoded != len(inputs) {
		t.Errorf("the two runs committed %d shards between them, want each of the %d once (%d counted as done by the other)", encoded, len(inputs), byOther)
	}
	fsum, err := shards.Finalize(ctx, shards.FinalizeConfig{OutputDir: out, MaxBadFraction: 0.001}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if fsum.Shards != len(inputs) || fsum.Duplicates != 0 {
		t.Errorf("finalize: %d shards, %d duplicated ids; want %d and 0", fsum.Shards, fsum.Duplicates, len(inputs))
	}
	t.Logf("committed %d shards, %d found done by the other run", encoded, byOther)
}

// TestIndexedRunsFinalizeInBucket is a Kubernetes Indexed Job with
// --finalize-when-complete writing into a bucket (the fake S3): index 0
// runs alone first and must not finalize (shards of indexes 1 and 2 are
// still to come); indexes 1 and 2 then run at the same time and exactly
// one of them must write _SUCCESS, create-only, recording its index, with
// no splash finalize. A re-run of an index finds _SUCCESS there and leaves
// it alone.
func TestIndexedRunsFinalizeInBucket(t *testing.T) {
	_, glob := cranfieldDocs(t)
	inputs := mustGlob(t, glob)[:3]
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 31})
	s3 := fakeS3(t)
	ctx := context.Background()
	out := s3("indexed/")
	const count = 3
	index := func(i int) (Summary, error) {
		cfg := baseConfig(model, out, inputs...)
		cfg.ShardIndex, cfg.ShardCount, cfg.FinalizeWhenComplete = i, count, true
		cfg.MaxLength = 64 // keeps the test short
		return Run(ctx, cfg, quietLog())
	}
	loc, _, err := shards.ParseLocation(out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := shards.OpenStore(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	sum, err := index(0)
	if err != nil {
		t.Fatalf("index 0: %v", err)
	}
	if has, err := st.HasSuccess(ctx); sum.Finalized || has || err != nil {
		t.Fatalf("index 0 alone: finalized %v, _SUCCESS %v (%v); want neither while indexes 1 and 2 are to come", sum.Finalized, has, err)
	}

	type result struct {
		index int
		sum   Summary
		err   error
	}
	results := make(chan result, 2)
	for _, i := range []int{1, 2} {
		go func() {
			sum, err := index(i)
			results <- result{i, sum, err}
		}()
	}
	finalizer := -1
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("index %d: %v", r.index, r.err)
		}
		if r.sum.Finalized {
			if finalizer >= 0 {
				t.Errorf("indexes %d and %d both finalized", finalizer, r.index)
			}
			finalizer = r.index
		}
	}
	if finalizer < 0 {
		t.Fatal("no index finalized")
	}
	var success shards.FinalizeSummary
	dir := t.TempDir()
	if err := st.Download(ctx, shards.SuccessFile, filepath.Join(dir, shards.SuccessFile)); err != nil {
		t.Fatal(err)
	}
	if err := shards.ReadSuccess(dir, &success); err != nil {
		t.Fatal(err)
	}
	if by := success.FinalizedByIndex; success.FinalizedBy != "splash encode" || by == nil || by.ShardIndex != finalizer || by.ShardCount != count {
		t.Errorf("_SUCCESS says finalized by %q, %+v; want splash encode, index %d of %d", success.FinalizedBy, by, finalizer, count)
	}
	if success.Shards != len(inputs) || success.Documents == 0 || success.Duplicates != 0 {
		t.Errorf("_SUCCESS: %d shards, %d documents, %d duplicated ids; want %d shards, no duplicate", success.Shards, success.Documents, success.Duplicates, len(inputs))
	}

	// A re-run: nothing to encode, _SUCCESS is there and stays as it is.
	again, err := index(0)
	if err != nil || again.Finalized || again.Shards != 0 {
		t.Errorf("re-run of index 0: %v, finalized %v, %d shards encoded; want none", err, again.Finalized, again.Shards)
	}
	var after shards.FinalizeSummary
	if err := st.Download(ctx, shards.SuccessFile, filepath.Join(dir, shards.SuccessFile)); err != nil {
		t.Fatal(err)
	}
	if err := shards.ReadSuccess(dir, &after); err != nil || after.FinishedAt != success.FinishedAt || after.FinalizedByIndex == nil ||
		after.FinalizedByIndex.ShardIndex != finalizer {
		t.Errorf("_SUCCESS changed by the re-run: %+v (%v)", after, err)
	}
	t.Logf("index %d of %d finalized: %d shards, %d documents", finalizer, count, success.Shards, success.Documents)
}
