package shards

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/encodetest"
	"github.com/splash-encode/splash/encode/testmodel"
)

// These tests run the commit protocol (Output: plan, read under locks,
// write, dead letters, commit, manifest, _SUCCESS) inside the encoding
// stream with a fake backend and small Parquet inputs written here: they
// need neither ONNX Runtime nor data files.

// commitFixture is an input directory of three shards and a fake model.
type commitFixture struct {
	inputs []string
	texts  map[string]string // id → text of the rows that are not rejected
	model  *encode.Model
}

func newCommitFixture(t *testing.T) commitFixture {
	t.Helper()
	dir := t.TempDir()
	texts := testmodel.SyntheticCorpus(90, 12)
	f := commitFixture{texts: map[string]string{}}
	for s := 0; s < 3; s++ {
		var rows []docOptional
		for d := 0; d < 30; d++ {
			id := fmt.Sprintf("s%d-%02d", s, d)
			rows = append(rows, docOptional{ID: ptr(id), Text: ptr(texts[s*30+d])})
			f.texts[id] = texts[s*30+d]
		}
		if s == 1 {
			// A repeated id and a null id: both go to the dead-letter file.
			rows = append(rows, docOptional{ID: ptr("s1-03"), Text: ptr("again")}, docOptional{ID: nil, Text: ptr("no id")})
		}
		path := filepath.Join(dir, fmt.Sprintf("docs-%d.parquet", s))
		writeParquet(t, path, rows)
		f.inputs = append(f.inputs, path)
	}
	f.model = encodetest.Model(t, &encodetest.Backend{}, 48)
	return f
}

// run encodes the fixture into out with the commit protocol, as splash
// encode does, and returns the output's result.
func (f commitFixture) run(ctx context.Context, t *testing.T, out string, opts OutputOptions) (*Plan, EncodeResult, error) {
	t.Helper()
	sources, err := DiscoverSources(ctx, f.inputs, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sources.Close()
	opts.Columns = Columns{ID: "id", Text: "text"}
	o, err := OpenOutput(ctx, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Begin(ctx, f.model.Tokenizer.Vocab()); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{"model_sha256": f.model.ModelSHA256}
	p, err := o.Plan(ctx, sources, sources.Names, settings, Metadata{VocabSize: f.model.Tokenizer.VocabSize(), MaxLength: f.model.MaxLength, Pooling: "max", Scale: 100})
	if err != nil {
		t.Fatal(err)
	}
	enc := o.Encode(p, false)
	cfg := encode.StreamConfig{
		Options: encode.EncodeOptions{BatchTokens: 512, MaxBatch: 8, Sparsify: encode.DefaultSparsifyOptions()},
		Shards:  len(p.Tasks), Window: 16,
	}
	_, err = encode.Stream(ctx, f.model, cfg, enc, enc)
	enc.Close()
	if err != nil {
		return p, enc.Result(), err
	}
	if _, err := o.Complete(ctx, sources.Names); err != nil {
		return p, enc.Result(), err
	}
	return p, enc.Result(), o.WriteSuccess(ctx, map[string]int{"shards": len(sources.Names)})
}

// TestEncodingCommitsEveryShard: every shard is committed with a manifest
// that verifies, rows in input order with each document's own vector, the
// rejected rows in the dead-letter file; a second run finds every shard
// done.
func TestEncodingCommitsEveryShard(t *testing.T) {
	f := newCommitFixture(t)
	out := t.TempDir()
	var points []string
	_, res, err := f.run(context.Background(), t, out, OutputOptions{Format: FormatParquet, MaxBadFraction: 0.1,
		Failpoint: func(name string) { points = append(points, name) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Encoded != 3 || res.Rejected != 2 || len(res.Failed) != 0 {
		t.Fatalf("result %+v: want 3 shards encoded, 2 rows rejected", res)
	}
	for s, in := range f.inputs {
		base := InputBase(in)
		m, err := VerifyShard(out, base)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		err = ReadShard(filepath.Join(out, m.Output.Path), func(r Row) error {
			want := encodetest.Expected(f.model, f.texts[r.DocID], encode.DefaultSparsifyOptions())
			if !slices.Equal(r.Vec.Terms, want.Vec.Terms) || !slices.Equal(r.Vec.Weights, want.Vec.Weights) || r.NumTokens != want.NumTokens {
				return fmt.Errorf("row %s: got %v, want %v", r.DocID, r.Vec, want.Vec)
			}
			ids = append(ids, r.DocID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 30 || !slices.IsSorted(ids) || ids[0] != fmt.Sprintf("s%d-00", s) {
			t.Errorf("%s: %d rows %v, want 30 in input order", base, len(ids), ids)
		}
		if want := int64(30); m.Output.Rows != want || m.Stats == nil || m.Stats.Documents != want {
			t.Errorf("%s: manifest rows %d, stats %+v", base, m.Output.Rows, m.Stats)
		}
		if s == 1 {
			if m.Rejected == nil || m.Rejected.Rows != 2 || m.Input.Rows != 32 {
				t.Errorf("%s: rejected %+v, input rows %d; want 2 of 32", base, m.Rejected, m.Input.Rows)
			}
			data, err := os.ReadFile(filepath.Join(out, RejectedName(base)))
			if err != nil || !strings.Contains(string(data), `"s1-03"`) || !strings.Contains(string(data), RejectDuplicateID) {
				t.Errorf("dead-letter file: %s (%v)", data, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(out, SuccessFile)); err != nil {
		t.Error(err)
	}
	want := []string{FailpointShardCommitted, FailpointManifestWritten}
	if n := strings.Count(strings.Join(points, " "), FailpointRowWritten); n != 90 || !slices.Contains(points, want[0]) || points[len(points)-1] != FailpointBeforeSuccess {
		t.Errorf("failpoints: %d rows written, %v", n, points[len(points)-4:])
	}

	p, res, err := f.run(context.Background(), t, out, OutputOptions{Format: FormatParquet, MaxBadFraction: 0.1})
	if err != nil || p.Skipped != 3 || len(p.Tasks) != 0 || res.Encoded != 0 {
		t.Fatalf("re-run: %v, plan %+v, result %+v; want every shard skipped", err, p, res)
	}
}

// TestEncodingBadRowBudget: rejected rows beyond --max-bad-fraction fail
// the run once the shard holding them is committed, so its dead-letter file
// is there to read.
func TestEncodingBadRowBudget(t *testing.T) {
	f := newCommitFixture(t)
	out := t.TempDir()
	_, _, err := f.run(context.Background(), t, out, OutputOptions{Format: FormatParquet, MaxBadFraction: 0})
	if !errors.Is(err, encode.ErrBadInput) || !strings.Contains(err.Error(), "--max-bad-fraction") {
		t.Fatalf("error %v, want the bad-row budget exceeded", err)
	}
	if _, err := os.Stat(filepath.Join(out, RejectedName(InputBase(f.inputs[1])))); err != nil {
		t.Errorf("dead-letter file of the failing shard: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, SuccessFile)); err == nil {
		t.Error("_SUCCESS written by a failed run")
	}
}

// TestEncodingCancelledLeavesNothingLookingDone: a run cancelled in the
// middle commits no half shard: every manifest left verifies, and no shard
// file exists without one.
func TestEncodingCancelledLeavesNothingLookingDone(t *testing.T) {
	f := newCommitFixture(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	rows := 0
	_, _, err := f.run(ctx, t, out, OutputOptions{Format: FormatParquet, MaxBadFraction: 0.1, Failpoint: func(name string) {
		if name == FailpointRowWritten {
			if rows++; rows == 40 {
				cancel()
			}
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if IsTempName(name) {
			t.Errorf("temp file %s left behind", name)
		}
		if base, ok := strings.CutSuffix(name, ".parquet"); ok && name != VocabularyFile {
			if _, err := VerifyShard(out, base); err != nil {
				t.Errorf("%s without a verified manifest: %v", name, err)
			}
		}
	}
}

// TestEncodingUnreadableShardFailsAlone: an input that is not Parquet
// fails alone at planning; the others are committed.
func TestEncodingUnreadableShardFailsAlone(t *testing.T) {
	f := newCommitFixture(t)
	bad := filepath.Join(filepath.Dir(f.inputs[0]), "docs-9.parquet")
	if err := os.WriteFile(bad, []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.inputs = append(f.inputs, bad)
	out := t.TempDir()
	sources, err := DiscoverSources(context.Background(), f.inputs, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sources.Close()
	p, res, err := f.run(context.Background(), t, out, OutputOptions{Format: FormatParquet, MaxBadFraction: 0.1})
	if len(p.Failed) != 1 || p.Failed[0].Input != bad || !errors.Is(p.Failed[0].Err, encode.ErrBadInput) || res.Encoded != 3 {
		t.Fatalf("plan failures %+v, result %+v; want %s failed alone", p.Failed, res, bad)
	}
	// Complete needs every shard: the failed one has none.
	if err == nil {
		t.Error("the run completed without the unreadable shard")
	}
}
