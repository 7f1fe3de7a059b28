package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// cranfieldShards returns the Cranfield document shards of the repository's
// test data (testdata/cranfield).
func cranfieldShards(t *testing.T) []string {
	t.Helper()
	m, _ := filepath.Glob(cranfieldDocs)
	if len(m) == 0 {
		t.Fatalf("no Cranfield shards at %s", cranfieldDocs)
	}
	return m
}

// genTinyModel generates a one-layer test model with the bert-base-uncased
// vocabulary.
func genTinyModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if out, code, err := runCLI(t, "", "model", "gen-test", "--output", dir, "--layers", "1", "--hidden", "32", "--heads", "2",
		"--tokenizer", sharedBert); code != exitOK {
		t.Fatalf("gen-test: exit %d (%v)\n%s", code, err, out)
	}
	return dir
}

// TestEncodePushesMetrics runs `splash encode --pushgateway URL` (one index
// of two) against an in-process stand-in for the Pushgateway and checks
// what arrives: a PUT to the job's and index's group with the documents,
// tokens, shards and the success time of the run.
func TestEncodePushesMetrics(t *testing.T) {
	requireORT(t)
	inputs := cranfieldShards(t)
	var (
		mu     sync.Mutex
		method string
		path   string
		body   []byte
		ctype  string
	)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		method, path, ctype = r.Method, r.URL.Path, r.Header.Get("Content-Type")
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()
	modelDir := genTinyModel(t)
	out := filepath.Join(t.TempDir(), "out")
	stdout, code, err := runCLI(t, "", "encode", "--model", modelDir, "--input", strings.Join(inputs[:2], ","), "--output", out,
		"--title-column", "title", "--shard-count", "2", "--shard-index", "1", "--pushgateway", gw.URL)
	if code != exitOK {
		t.Fatalf("encode: exit %d (%v)\n%s", code, err, stdout)
	}
	mu.Lock()
	defer mu.Unlock()
	if method != http.MethodPut || path != "/metrics/job/splash_encode/shard_index/1" {
		t.Fatalf("pushed %s %s, want PUT /metrics/job/splash_encode/shard_index/1", method, path)
	}
	families := map[string]float64{}
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
	if !strings.Contains(ctype, "protobuf") {
		dec = expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeTextPlain))
	}
	for {
		mf := new(dto.MetricFamily)
		if err := dec.Decode(mf); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("decode the pushed metrics (%s): %v", ctype, err)
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				families[mf.GetName()] += m.Counter.GetValue()
			case m.Gauge != nil:
				families[mf.GetName()] += m.Gauge.GetValue()
			case m.Histogram != nil:
				families[mf.GetName()+"_count"] += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	// Index 1 of 2 encodes the second shard by base name: docs-00001.
	if families["splash_documents_total"] != 350 || families["splash_shards_done_total"] != 1 || families["splash_shards_total"] != 1 {
		t.Errorf("pushed documents %v, shards done %v of %v; want 350, 1 of 1", families["splash_documents_total"],
			families["splash_shards_done_total"], families["splash_shards_total"])
	}
	if families["splash_tokens_total"] <= families["splash_documents_total"] || families["splash_padded_tokens_total"] < families["splash_tokens_total"] {
		t.Errorf("tokens %v, padded %v", families["splash_tokens_total"], families["splash_padded_tokens_total"])
	}
	if families["splash_batch_seconds_count"] == 0 || families["splash_last_success_timestamp_seconds"] == 0 {
		t.Errorf("batches observed %v, last success %v", families["splash_batch_seconds_count"], families["splash_last_success_timestamp_seconds"])
	}
}

func TestEncodeMetricsAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, code, err := runCLI(t, "", "encode", "--model", t.TempDir(), "--input", "x.parquet", "--output", t.TempDir(), "--metrics-addr", l.Addr().String())
	if code == exitOK || err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("exit %d, error %v; want a failure naming the address", code, err)
	}
}
