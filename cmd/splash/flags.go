package main

import (
	"runtime"

	"github.com/spf13/pflag"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/shards"
)

// modelFlags are the flags that encode and `model bench` share about the
// model, its input columns and the ONNX Runtime session, so that both read
// the same documents and run the same session for the same command line.
func modelFlags(f *pflag.FlagSet, maxLength, threads *int, library *string, cols *shards.Columns, session *job.SessionTuning) {
	f.IntVar(maxLength, "max-length", 0, "truncate documents to N tokens, specials included (0: the model's max_position_embeddings, at most 512)")
	f.IntVar(threads, "threads", runtime.NumCPU(), "ONNX Runtime intra-op threads")
	f.StringVar(&cols.ID, "id-column", "id", "input column holding document ids")
	f.StringVar(&cols.Text, "text-column", "text", "input column holding document text")
	f.StringVar(&cols.Title, "title-column", "", "optional input column holding a title, encoded as title + \" \" + text")
	f.BoolVar(&session.DisableMemPattern, "ort-no-mem-pattern", false, "turn off ONNX Runtime's per-shape memory pattern planning")
	f.BoolVar(&session.DisableSpinning, "ort-no-spin", false, "stop ONNX Runtime's intra-op threads from busy-waiting between runs")
	f.StringVar(library, "ort-library", "", "ONNX Runtime shared library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime)")
}
