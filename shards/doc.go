// Package shards reads input document shards and writes, commits and
// verifies SPLADE impact shards.
//
// # Input
//
// DiscoverInputs expands --input values (files of any extension, directories
// of *.parquet files, globs) into a list of input shards, without
// duplicates, and refuses two inputs with the same base name (InputBase),
// whose outputs would collide.
//
// OpenInput opens one Parquet file of documents (github.com/parquet-go/parquet-go)
// and InputReader.Next streams it row group by row group, reading only the
// pages of the id, text and optional title columns. The id may be a string or
// an integer (returned in decimal); text and title are strings. A null text
// reads as empty; with a title column the document text is
// title + " " + text. Problems with the file (not Parquet, truncated, a
// missing or mistyped column) wrap ErrInvalidInput and name the file, row
// group, row and column; a problem with one row is a *RowError, which a
// handler installed with InputReader.OnRowError may skip. Every call into
// the Parquet reader runs under recover(): corrupt files have made Go Parquet
// readers panic, and such a panic becomes an error here.
//
// # Impact shards (schema version 1)
//
// One output per input shard, named after it, <base>.parquet (default:
// zstd-compressed Parquet with the Arrow schema stored in the file) or
// <base>.arrow (Arrow IPC file format), written with
// github.com/apache/arrow-go/v18:
//
//	doc_id      string, not null          the input id
//	term_ids    list<uint32>, not null    vocabulary ids, strictly ascending
//	weights     list<float32>             SPLADE weights, aligned, each > 0
//	impacts     list<uint16>              round(weight * scale), aligned
//	num_tokens  int32                     tokens the model saw, specials included
//	truncated   bool                      longer than max_length
//
// List elements are named "element" and are not nullable. An empty document
// is a row with three empty (non-null) lists. The key-value metadata (of the
// Parquet file and of the Arrow schema) holds the Meta* keys: schema version,
// splash version, model and tokenizer sha256, vocabulary size, max_length,
// pooling, min_weight, top_k, scale, and the source shard's path, size and
// sha256; see Metadata.
//
// # Sidecar files
//
// Names starting with "_" in an output directory are never shards:
//
//	_vocabulary.parquet      columns id (uint32) and token (string), one row per vocabulary id,
//	                         written once per directory (WriteVocabulary); older outputs
//	                         have _vocabulary.tsv (id<TAB>token lines) instead
//	_manifest.<base>.json    the commit marker of <base>.parquet or <base>.arrow (WriteManifest)
//	_SUCCESS                 JSON summary, written once every shard of a run is done (WriteSuccess)
//	_tmp.<name>.<random>     a file being written; left behind only by a crash (CleanTemp)
//
// # Commit protocol
//
// A Writer writes to a temp file (_tmp.*) in the output directory and
// hashes the bytes as they go. Commit writes the footer, fsyncs the file,
// renames it to its final name (or, with WriterOptions.NoClobber, links it
// there only if the name is free, so that the first of two writers wins),
// fsyncs the directory and returns the output's row count, size and sha256.
// The caller then writes the manifest (rows, size and sha256 of the output,
// identity of the input, settings) the same way: temp, fsync, rename, fsync
// directory. Nothing half-written ever carries a final name, and a shard
// counts as done only when its manifest exists and VerifyManifest (which
// re-hashes the output and counts its rows) accepts it; VerifyShard does both
// steps.
//
// # Resume
//
// CheckResume tells a run what to do with each input shard, from what an
// earlier run left: ResumeTodo (no manifest: encode it; an output without a
// manifest is an interrupted commit and gets replaced), ResumeDone (the
// manifest verifies and records the same input, by size and sha256, and the
// same settings: skip it), ResumeConflict (the manifest records another
// input or other settings: refuse unless told to overwrite) or ResumeBroken
// (the manifest is unreadable or its output does not verify: encode it
// again). The decision's Reason names what differs, e.g.
// "settings differ: top_k 0 → 10". Before re-encoding, RemoveShard removes
// _SUCCESS, then the manifest, then the outputs, so that no manifest ever
// outlives its output. CleanTemp removes the temp files of crashed runs,
// sparing those younger than a given age (a writer may still be at work).
// WriteSuccess writes _SUCCESS, atomically like every other file, once
// every shard is done.
//
// # The committer
//
// Output puts these pieces together for a run, in a local directory or a
// bucket (a local staging directory, each committed shard then published
// create-only: the first writer wins). OpenOutput, then Begin (run lock,
// vocabulary), Plan (resume decisions for every input found by
// DiscoverSources), Encode (an Encoding: encode.Source that reads each
// shard under its lock with dead letters for rejected rows, and
// encode.Sink that writes, commits, writes the manifest and publishes),
// Complete (the bad-row budget over the whole output, FindDuplicateIDs)
// and WriteSuccess. Finalize does the last three for an output that several
// processes encoded.
//
// The packages beside it read impact shards for their users: export (the
// index builders' formats), ciff, search (exact retrieval, TREC runs), trec
// (run and qrels files, metrics), stats and report.
//
// Arrow memory comes from WriterOptions.Allocator and is released by Commit
// and Abort. Nothing in this package keeps global mutable state.
package shards
