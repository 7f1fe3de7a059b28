// Package pipeline holds generic building blocks of splash's streaming
// encoder: length-bucketed batching under a token budget, progress
// reporting, and (later) the bounded stages that connect readers, workers
// and writers. It knows nothing about SPLADE and imports nothing of the
// project.
//
// Progress counts committed documents, tokens and shards from any number of
// goroutines and reports them: on a terminal as a progress bar
// (github.com/schollz/progressbar) with documents/s, tokens/s and ETA; else
// (a pipe, CI, a pod's log) as one log/slog line every interval (30 s by
// default) with the fields documents, tokens, shards_done, shards_total,
// elapsed, docs_per_s, tokens_per_s, documents_total, percent, eta, and
// final=true on the last line. Rates are overall rates since Start.
//
// Metrics holds a run's Prometheus metrics (splash_documents_total,
// splash_batch_seconds{device}, splash_build_info, ...) in a registry of its
// own, never the global one. Serve exposes them with the Go runtime and
// process metrics on /metrics, plus /healthz, while a run lasts; Push sends
// the splash_* metrics to a Pushgateway at the end with PUT, so each run
// replaces its group (job plus grouping labels such as shard_index for a
// Kubernetes Indexed Job).
package pipeline
