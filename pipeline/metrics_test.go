package pipeline

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs url with client and parses the text exposition.
func scrape(t *testing.T, client *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: Content-Type %q, want text/plain", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return mfs
}

// only returns the single metric of family name, checking its type.
func only(t *testing.T, mfs map[string]*dto.MetricFamily, name string, typ dto.MetricType) *dto.Metric {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	if mf.GetType() != typ {
		t.Fatalf("metric %s has type %v, want %v", name, mf.GetType(), typ)
	}
	if len(mf.GetMetric()) != 1 {
		t.Fatalf("metric %s has %d series, want 1", name, len(mf.GetMetric()))
	}
	return mf.GetMetric()[0]
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestMetricsServeScrape(t *testing.T) {
	m := NewMetrics("v1.2.3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(srv.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the bound port", srv.Addr())
	}
	base := "http://" + srv.Addr()
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	m.Plan(12, 5000)
	const workers, rounds = 8, 250
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				m.AddDocs(2, 30, 64)
				m.AddBad(1)
				m.AddEmpty(1)
				m.ObserveBatch("cuda:0", 250*time.Millisecond)
				if i%50 == 0 {
					m.ShardDone()
				}
				if i%100 == 0 {
					// A concurrent scrape must not race with the updates.
					resp, err := client.Get(base + "/metrics")
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}
		}()
	}
	wg.Wait()
	m.AddDocs(0, -5, 0) // non-positive counts are ignored, no panic
	m.ObserveBatch("cpu", 2*time.Second)
	success := time.Unix(1_700_000_000, 500_000_000)
	m.Succeeded(success)

	mfs := scrape(t, client, base+"/metrics")
	n := float64(workers * rounds)
	for name, want := range map[string]float64{
		"splash_documents_total":       2 * n,
		"splash_tokens_total":          30 * n,
		"splash_padded_tokens_total":   64 * n,
		"splash_bad_documents_total":   n,
		"splash_empty_documents_total": n,
		"splash_shards_done_total":     float64(workers * 5),
	} {
		if got := only(t, mfs, name, dto.MetricType_COUNTER).GetCounter().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]float64{
		"splash_shards_total":                   12,
		"splash_documents_planned":              5000,
		"splash_last_success_timestamp_seconds": 1_700_000_000.5,
		"splash_build_info":                     1,
	} {
		if got := only(t, mfs, name, dto.MetricType_GAUGE).GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	start := only(t, mfs, "splash_run_start_timestamp_seconds", dto.MetricType_GAUGE).GetGauge().GetValue()
	if now := float64(time.Now().Unix()); start < now-60 || start > now+1 {
		t.Errorf("splash_run_start_timestamp_seconds = %v, want about %v", start, now)
	}
	bi := labels(only(t, mfs, "splash_build_info", dto.MetricType_GAUGE))
	if bi["version"] != "v1.2.3" || bi["go_version"] != runtime.Version() {
		t.Errorf("splash_build_info labels = %v, want version=v1.2.3 go_version=%s", bi, runtime.Version())
	}

	hist, ok := mfs["splash_batch_seconds"]
	if !ok || hist.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("splash_batch_seconds missing or not a histogram: %v", hist)
	}
	byDevice := map[string]*dto.Histogram{}
	for _, s := range hist.GetMetric() {
		byDevice[labels(s)["device"]] = s.GetHistogram()
	}
	if len(byDevice) != 2 {
		t.Fatalf("splash_batch_seconds devices = %v, want cuda:0 and cpu", byDevice)
	}
	if h := byDevice["cuda:0"]; h.GetSampleCount() != uint64(n) || math.Abs(h.GetSampleSum()-0.25*n) > 1e-6 {
		t.Errorf("cuda:0 histogram count=%d sum=%v, want %v and %v", h.GetSampleCount(), h.GetSampleSum(), n, 0.25*n)
	}
	if h := byDevice["cpu"]; h.GetSampleCount() != 1 || h.GetSampleSum() != 2 {
		t.Errorf("cpu histogram count=%d sum=%v, want 1 and 2", h.GetSampleCount(), h.GetSampleSum())
	}
	// The text format lists the +Inf bucket too.
	if b := byDevice["cpu"].GetBucket(); len(b) != len(batchSecondsBuckets)+1 || b[0].GetUpperBound() != 0.001 || !math.IsInf(b[len(b)-1].GetUpperBound(), 1) {
		t.Errorf("cpu histogram buckets %v, want %v and +Inf", b, batchSecondsBuckets)
	} else if b[10].GetCumulativeCount() != 0 || b[11].GetCumulativeCount() != 1 { // 2 s lies in (2.048 s]
		t.Errorf("cpu histogram: 2 s counted in the wrong bucket: %v", b)
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("runtime metric go_goroutines not served")
	}

	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz: %d %q, want 200 ok", resp.StatusCode, body)
	}

	// Concurrent GETs can leave a dialled but never used connection in the
	// client's pool, which would hold the graceful shutdown for its whole
	// grace period; close them so that the shutdown is prompt.
	tr.CloseIdleConnections()
	t0 := time.Now()
	cancel()
	select {
	case <-srv.Done():
		if d := time.Since(t0); d >= MetricsShutdownTimeout {
			t.Errorf("shutdown took %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after cancel")
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("Wait after cancel: %v", err)
	}
	if err := srv.Close(); err != nil { // idempotent after the context stopped it
		t.Errorf("Close after cancel: %v", err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after shutdown: %v, want connection refused", err)
	}
}

func TestMetricsServeClose(t *testing.T) {
	m := NewMetrics("")
	srv, err := m.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mfs := scrape(t, http.DefaultClient, "http://"+srv.Addr()+"/metrics")
	if v := labels(only(t, mfs, "splash_build_info", dto.MetricType_GAUGE))["version"]; v != "unknown" {
		t.Errorf("build_info version = %q, want unknown", v)
	}
	if _, ok := mfs["splash_batch_seconds"]; ok {
		t.Error("splash_batch_seconds served before any batch")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func TestMetricsServeAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = NewMetrics("x").Serve(context.Background(), addr)
	if err == nil {
		t.Fatal("Serve on an address in use succeeded")
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "metrics: listen on "+addr) {
		t.Fatalf("error = %v, want EADDRINUSE naming %s", err, addr)
	}
	if _, err := NewMetrics("x").Serve(context.Background(), ""); err == nil {
		t.Fatal("Serve on an empty address succeeded")
	}
}

// pushed is one request received by the fake Pushgateway.
type pushed struct {
	method, path string
	user, pass   string
	families     map[string]*dto.MetricFamily
	err          error
}

// fakeGateway stands in for a Pushgateway: it decodes each pushed body in
// the format its Content-Type names and answers status.
func fakeGateway(t *testing.T, status int) (*httptest.Server, <-chan pushed) {
	t.Helper()
	got := make(chan pushed, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := pushed{method: r.Method, path: r.URL.EscapedPath(), families: map[string]*dto.MetricFamily{}}
		p.user, p.pass, _ = r.BasicAuth()
		format := expfmt.ResponseFormat(r.Header)
		if format.FormatType() == expfmt.TypeUnknown {
			p.err = errors.New("unknown Content-Type " + r.Header.Get("Content-Type"))
		} else {
			dec := expfmt.NewDecoder(r.Body, format)
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err != nil {
					if !errors.Is(err, io.EOF) {
						p.err = err
					}
					break
				}
				p.families[mf.GetName()] = &mf
			}
		}
		got <- p
		w.WriteHeader(status)
		_, _ = w.Write([]byte("gateway says hi"))
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestMetricsPush(t *testing.T) {
	gw, got := fakeGateway(t, http.StatusOK)
	m := NewMetrics("v9")
	m.AddDocs(41, 900, 1024)
	m.AddDocs(1, 10, 0)
	m.ObserveBatch("cpu", time.Second)
	m.Succeeded(time.Unix(1_800_000_000, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Push(ctx, gw.URL, "splash_nightly", map[string]string{"shard_index": "3"}); err != nil {
		t.Fatal(err)
	}
	p := <-got
	if p.err != nil {
		t.Fatalf("gateway could not decode the push: %v", p.err)
	}
	if p.method != http.MethodPut {
		t.Errorf("method %s, want PUT", p.method)
	}
	if want := "/metrics/job/splash_nightly/shard_index/3"; p.path != want {
		t.Errorf("path %s, want %s", p.path, want)
	}
	if v := only(t, p.families, "splash_documents_total", dto.MetricType_COUNTER).GetCounter().GetValue(); v != 42 {
		t.Errorf("pushed splash_documents_total = %v, want 42", v)
	}
	if v := only(t, p.families, "splash_last_success_timestamp_seconds", dto.MetricType_GAUGE).GetGauge().GetValue(); v != 1_800_000_000 {
		t.Errorf("pushed splash_last_success_timestamp_seconds = %v, want 1.8e9", v)
	}
	if h := only(t, p.families, "splash_batch_seconds", dto.MetricType_HISTOGRAM).GetHistogram(); h.GetSampleCount() != 1 {
		t.Errorf("pushed histogram count = %d, want 1", h.GetSampleCount())
	}
	for name := range p.families {
		if !strings.HasPrefix(name, "splash_") {
			t.Errorf("pushed %s: only splash_* metrics should be pushed", name)
		}
	}

	// Default job, and credentials in the URL become basic auth.
	withUser := strings.Replace(gw.URL, "http://", "http://alice:s3cret@", 1)
	if err := m.Push(ctx, withUser, "", nil); err != nil {
		t.Fatal(err)
	}
	p = <-got
	if p.path != "/metrics/job/"+DefaultPushJob || p.user != "alice" || p.pass != "s3cret" {
		t.Errorf("push with default job: path %s, auth %s:%s", p.path, p.user, p.pass)
	}
}

func TestMetricsPushErrors(t *testing.T) {
	m := NewMetrics("v9")
	ctx := context.Background()

	gw, got := fakeGateway(t, http.StatusInternalServerError)
	withUser := strings.Replace(gw.URL, "http://", "http://bob:hunter2@", 1)
	err := m.Push(ctx, withUser, "j", map[string]string{"shard_index": "0"})
	<-got
	if err == nil {
		t.Fatal("push to a gateway answering 500 succeeded")
	}
	if !strings.Contains(err.Error(), gw.URL) || !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q should name %s and the status", err, gw.URL)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q leaks the password", err)
	}

	if err := m.Push(ctx, gw.URL, "j", map[string]string{"job": "x"}); err == nil || !strings.Contains(err.Error(), gw.URL) {
		t.Errorf("grouping with job: error %v, want one naming %s", err, gw.URL)
	}
	m.ObserveBatch("cpu", time.Millisecond)
	if err := m.Push(ctx, gw.URL, "j", map[string]string{"device": "cpu"}); err == nil || !strings.Contains(err.Error(), "device") {
		t.Errorf("grouping label that a metric carries: error %v, want one naming device", err)
	}
	select {
	case <-got:
		t.Error("an invalid push reached the gateway")
	default:
	}
	if err := m.Push(ctx, "", "j", nil); err == nil {
		t.Error("push with an empty URL succeeded")
	}

	// A gateway that never answers: cancelling the context aborts the push.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	err = m.Push(cctx, hang.URL, "j", nil)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), hang.URL) {
		t.Errorf("cancelled push: error %v, want context.Canceled naming %s", err, hang.URL)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("cancelled push returned after %v", d)
	}

	// A deadline aborts it too.
	dctx, dcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer dcancel()
	if err := m.Push(dctx, hang.URL, "j", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("push past its deadline: error %v, want context.DeadlineExceeded", err)
	}
}

func TestMetricsServeShutdownGrace(t *testing.T) {
	// A client that connects and never sends a request can hold a graceful
	// shutdown (once the server has accepted it); after
	// MetricsShutdownTimeout the server closes it and stops without an error.
	srv, err := NewMetrics("x").Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t0 := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close with a silent client: %v", err)
	}
	if d := time.Since(t0); d > MetricsShutdownTimeout+3*time.Second {
		t.Errorf("Close took %v, want about %v", d, MetricsShutdownTimeout)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("silent client's connection still open after Close")
	}
}
