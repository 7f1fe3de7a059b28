// Package pipeline holds the generic building blocks of splash's streaming
// encoder: the stages that connect readers, workers and writers, the length
// batcher, and progress and metrics reporting. It knows nothing about
// SPLADE, file formats or runtimes, and imports nothing of the project.
//
// Stages. A Group (NewGroup) runs the goroutines of one pipeline: one
// errgroup, one context cancelled on the first error, Wait returning that
// error once every goroutine has returned. Source, Stage, Map and Sink start
// their goroutines in the Group and connect them by bounded channels: each
// stage owns its output channel, of the capacity it is given, and closes it
// once its last worker returns (after a failure has cancelled the context,
// so a consumer that sees its input closed while the context is live knows
// that everything upstream ended well). Every send watches the context
// (Send, Recv), so a failure anywhere, or the parent's cancellation, stops
// a pipeline even when it is blocked on a full channel. The values in flight
// are bounded by the channel capacities plus what the workers hold (Map: one
// per worker): a slow writer holds the reader back instead of letting
// memory grow. Map does not keep order; a Resequencer puts values numbered
// 0, 1, 2, ... back in order, holding back those that arrive early.
//
// Length batching. PackByLength sorts items by length and packs them
// greedily into batches under a padded-token budget; PackWindow applies it
// to one window, setting aside the items too short to run.
// BatchByLength reads numbered Chunks of items (out of order, put back in
// order with a Resequencer), gathers them into windows, ends a window early
// on a Flush chunk, and emits each window's batches: the same batches on
// every run for the same input, whatever the workers' timing.
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
