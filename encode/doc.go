// Package encode holds the SPLADE domain: documents, batches, sparse vectors,
// the Backend interface that execution engines implement, the pure-Go pooling
// reference and the sparsification rules (threshold, top-k, quantization).
//
// encode imports nothing else of the project; gpu/* implement Backend and
// shards/ consumes SparseVec.
package encode
