package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
)

// MetricsNamespace prefixes every metric of a Metrics.
const MetricsNamespace = "splash"

// DefaultPushJob is the Pushgateway job name Push uses when it is given none.
// The job is the grouping key's "job" part; it is never a label of the
// metrics themselves (the Pushgateway rejects pushed metrics that carry one).
const DefaultPushJob = "splash_encode"

// DefaultPushTimeout bounds a Push whose context has no deadline, so that a
// hanging Pushgateway cannot hold up the end of a run.
const DefaultPushTimeout = 30 * time.Second

// MetricsShutdownTimeout is how long a MetricsServer waits for scrapes in
// flight when it stops; connections still open then are closed (that is not
// an error: a client's unused keep-alive connection can hold a graceful
// shutdown for seconds).
const MetricsShutdownTimeout = 2 * time.Second

// batchSecondsBuckets are the buckets of splash_batch_seconds: 1 ms doubling
// up to about 65 s (17 buckets).
var batchSecondsBuckets = prometheus.ExponentialBuckets(0.001, 2, 17)

// Metrics holds the Prometheus metrics of one encode run in a registry of its
// own (nothing is registered globally). All methods are safe for concurrent
// use. Counting methods ignore non-positive counts.
//
// Two registries are kept: Registry holds the splash_* metrics, which Serve
// exposes and Push sends; a second one holds the Go runtime and process
// collectors (go_*, process_*), which only Serve exposes: they describe the
// live process, and a pushed copy would go stale in the Pushgateway.
type Metrics struct {
	registry *prometheus.Registry
	runtime  *prometheus.Registry

	docs, tokens, padded prometheus.Counter
	bad, empty           prometheus.Counter
	batchSeconds         *prometheus.HistogramVec
	shardsDone           prometheus.Counter
	shardsTotal          prometheus.Gauge
	docsPlanned          prometheus.Gauge
	runStart             prometheus.Gauge
	lastSuccess          prometheus.Gauge
}

// NewMetrics returns the metrics of a run of splash at version (empty means
// "unknown"), with splash_run_start_timestamp_seconds set to now and
// splash_build_info{version, go_version} set to 1.
//
// Metrics (all prefixed splash_):
//
//	documents_total                  counter    documents encoded
//	tokens_total                     counter    real (non-padding) tokens encoded
//	padded_tokens_total              counter    tokens including padding
//	bad_documents_total              counter    rejected input rows
//	empty_documents_total            counter    empty documents
//	batch_seconds{device}            histogram  one batch's forward pass time
//	shards_done_total                counter    shards committed
//	shards_total                     gauge      shards this run will encode
//	documents_planned                gauge      documents this run will encode
//	run_start_timestamp_seconds      gauge      Unix time the run started
//	last_success_timestamp_seconds   gauge      Unix time of the last successful end
//	build_info{version,go_version}   gauge      always 1
func NewMetrics(version string) *Metrics {
	if version == "" {
		version = "unknown"
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: MetricsNamespace, Name: name, Help: help})
	}
	m := &Metrics{
		registry:    prometheus.NewRegistry(),
		runtime:     prometheus.NewRegistry(),
		docs:        counter("documents_total", "Documents encoded."),
		tokens:      counter("tokens_total", "Real (non-padding) tokens encoded."),
		padded:      counter("padded_tokens_total", "Tokens encoded including padding."),
		bad:         counter("bad_documents_total", "Input rows rejected as bad."),
		empty:       counter("empty_documents_total", "Empty documents."),
		shardsDone:  counter("shards_done_total", "Shards encoded and committed."),
		shardsTotal: gauge("shards_total", "Shards this run will encode."),
		docsPlanned: gauge("documents_planned", "Documents this run will encode."),
		runStart:    gauge("run_start_timestamp_seconds", "Unix time the run started."),
		lastSuccess: gauge("last_success_timestamp_seconds", "Unix time the run last ended successfully."),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: MetricsNamespace,
			Name:      "batch_seconds",
			Help:      "Forward pass time of one batch, by device.",
			Buckets:   batchSecondsBuckets,
		}, []string{"device"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: MetricsNamespace,
		Name:      "build_info",
		Help:      "Always 1; the labels tell the splash version and the Go version that built it.",
	}, []string{"version", "go_version"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	m.registry.MustRegister(m.docs, m.tokens, m.padded, m.bad, m.empty, m.batchSeconds,
		m.shardsDone, m.shardsTotal, m.docsPlanned, m.runStart, m.lastSuccess, buildInfo)
	m.runtime.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.runStart.Set(unixSeconds(time.Now()))
	return m
}

// The recording methods (AddDocs to Succeeded) do nothing on a nil
// *Metrics, so that code can record unconditionally when metrics are off.

// Registry returns the registry of the splash_* metrics (what Push sends).
// Collectors registered into it are served and pushed with the others.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// AddDocs counts encoded documents, their real tokens and their tokens
// including padding.
func (m *Metrics) AddDocs(docs, tokens, padded int64) {
	if m == nil {
		return
	}
	addCount(m.docs, docs)
	addCount(m.tokens, tokens)
	addCount(m.padded, padded)
}

// AddBad counts rejected input rows.
func (m *Metrics) AddBad(n int64) {
	if m != nil {
		addCount(m.bad, n)
	}
}

// AddEmpty counts empty documents.
func (m *Metrics) AddEmpty(n int64) {
	if m != nil {
		addCount(m.empty, n)
	}
}

// ObserveBatch records one batch's forward pass time on device (e.g. "cpu",
// "cuda:0"; empty means "unknown").
func (m *Metrics) ObserveBatch(device string, d time.Duration) {
	if m == nil {
		return
	}
	if device == "" {
		device = "unknown"
	}
	m.batchSeconds.WithLabelValues(device).Observe(d.Seconds())
}

// ShardDone counts one committed shard.
func (m *Metrics) ShardDone() {
	if m != nil {
		m.shardsDone.Inc()
	}
}

// Plan sets the work this run will do: shards and documents (when resuming,
// only what is left).
func (m *Metrics) Plan(shards int, docs int64) {
	if m == nil {
		return
	}
	m.shardsTotal.Set(float64(shards))
	m.docsPlanned.Set(float64(docs))
}

// Succeeded sets splash_last_success_timestamp_seconds to t; call it once a
// run has ended successfully, before the final Push.
func (m *Metrics) Succeeded(t time.Time) {
	if m != nil {
		m.lastSuccess.Set(unixSeconds(t))
	}
}

func addCount(c prometheus.Counter, n int64) {
	if n > 0 {
		c.Add(float64(n))
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// MetricsServer is the HTTP server that Metrics.Serve started. It stops when
// the context given to Serve is cancelled or when Close is called.
type MetricsServer struct {
	addr string
	srv  *http.Server
	stop chan struct{}
	once sync.Once
	done chan struct{}
	err  error // valid once done is closed
}

// Serve listens on addr (host:port; ":0" or "127.0.0.1:0" picks a free
// port, see MetricsServer.Addr) and serves, in a goroutine:
//
//	/metrics  the splash_* metrics plus the Go runtime and process metrics
//	/healthz  200 "ok"
//
// When ctx is cancelled (or Close is called) the server shuts down
// gracefully, waiting up to MetricsShutdownTimeout for scrapes in flight;
// MetricsServer.Wait and Close wait for that. Only a failure to listen is
// returned here; a later serving error is returned by Wait and Close.
func (m *Metrics) Serve(ctx context.Context, addr string) (*MetricsServer, error) {
	if addr == "" {
		return nil, errors.New("metrics: empty listen address (want host:port, e.g. :9090)")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{m.registry, m.runtime},
		promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s := &MetricsServer{
		addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
		},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(ln) }()
	go func() {
		defer close(s.done)
		select {
		case err := <-served: // Serve failed on its own
			s.err = fmt.Errorf("metrics: serve on %s: %w", s.addr, err)
			return
		case <-ctx.Done():
		case <-s.stop:
		}
		sctx, cancel := context.WithTimeout(context.Background(), MetricsShutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			_ = s.srv.Close() // the grace period is over
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("metrics: serve on %s: %w", s.addr, err)
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on, with the port it was
// given when Serve was called with port 0.
func (s *MetricsServer) Addr() string { return s.addr }

// Done is closed once the server has stopped.
func (s *MetricsServer) Done() <-chan struct{} { return s.done }

// Wait blocks until the server has stopped (the context given to Serve was
// cancelled, or Close was called) and returns its error, if any.
func (s *MetricsServer) Wait() error {
	<-s.done
	return s.err
}

// Close shuts the server down gracefully, waits until it has stopped and
// returns its error, if any. It may be called more than once and together
// with the cancellation of Serve's context.
func (s *MetricsServer) Close() error {
	s.once.Do(func() { close(s.stop) })
	return s.Wait()
}

// Push sends the splash_* metrics (Registry, not the runtime metrics) to the
// Pushgateway at gatewayURL ("http://host:9091", or "host:9091" for plain
// HTTP; credentials in the URL are sent as basic auth and left out of
// errors) under job (DefaultPushJob when empty) and the grouping labels, e.g.
// {"shard_index": "3"} for one pod of a Kubernetes Indexed Job.
//
// Push uses PUT: each push replaces every metric of its group, so a rerun of
// the same job and shard replaces the last run's metrics instead of merging
// with them; give each concurrent pusher its own grouping. The grouping may
// not use "job" nor a label the metrics carry (device, version, go_version).
//
// ctx bounds the push; without a deadline it is bounded by
// DefaultPushTimeout. Errors name the gateway URL.
func (m *Metrics) Push(ctx context.Context, gatewayURL, job string, grouping map[string]string) error {
	if gatewayURL == "" {
		return errors.New("metrics: push: empty Pushgateway URL")
	}
	if job == "" {
		job = DefaultPushJob
	}
	raw := gatewayURL
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("metrics: push: bad Pushgateway URL: %w", err)
	}
	user := u.User
	u.User = nil
	where := u.String()
	if _, ok := grouping["job"]; ok {
		return fmt.Errorf("metrics: push to %s: grouping label \"job\" is reserved: pass the job name as job", where)
	}

	p := push.New(where, job).Gatherer(m.registry).Client(&http.Client{})
	if user != nil {
		pass, _ := user.Password()
		p = p.BasicAuth(user.Username(), pass)
	}
	for name, value := range grouping {
		p = p.Grouping(name, value)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPushTimeout)
		defer cancel()
	}
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("metrics: push to %s (job %q): %w", where, job, err)
	}
	return nil
}
