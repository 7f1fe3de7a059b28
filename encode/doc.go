// Package encode holds the SPLADE domain and the one encoding stream.
//
// The domain: documents (Doc), the model description read from a model
// directory (LoadModel: tokenizer.json, config.json and
// tokenizer_config.json for the max length and the model's shape, the
// model file's identity; bag-of-tokens "models" with IDF weights),
// long-document windows (LongDocs, Model.Prepare), padded batches (Batch),
// the Backend interface that execution engines implement (package gpu's
// registry opens them), the pure-Go pooling reference (PoolReference, the
// oracle of every fast path) and sparsification (threshold, top-k,
// quantization, combining windows).
//
// The stream (Stream) is built from package pipeline's stages: a Source
// feeds documents shard by shard, tokenizer workers prepare them, the
// length batcher packs them under a token budget, encoder workers run the
// backends, the sparsifier prunes, and the writer restores each shard's
// input order and hands every document to a Sink, then tells it when a
// shard is complete. `splash encode` (package shards' Output as source and
// sink), `splash model bench` (documents in memory, DiscardSink) and
// `splash selftest` (a generated corpus, EncodeTexts) all run it.
//
// encode imports only its tokenizer and package pipeline; gpu/* implement
// Backend and shards/ implements Source and Sink.
package encode
