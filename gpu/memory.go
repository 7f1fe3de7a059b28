package gpu

// ModelShape is what the device memory estimate needs to know of a
// BERT-style masked LM (config.json's vocab_size, hidden_size,
// num_hidden_layers, num_attention_heads, intermediate_size) and of the run.
type ModelShape struct {
	Vocab, Hidden, Heads, Intermediate int
	// MaxLength is the longest sequence a batch holds.
	MaxLength int
	// WeightBytes is the size of the model's weights (its .onnx file).
	WeightBytes uint64
}

// Batch token budgets BatchTokens chooses between.
const (
	MinBatchTokens = 2048
	MaxBatchTokens = 1 << 16
)

// withDefaults fills unknown dimensions with BERT-base's.
func (s ModelShape) withDefaults() ModelShape {
	if s.Vocab <= 0 {
		s.Vocab = 30522
	}
	if s.Hidden <= 0 {
		s.Hidden = 768
	}
	if s.Heads <= 0 {
		s.Heads = 12
	}
	if s.Intermediate <= 0 {
		s.Intermediate = 4 * s.Hidden
	}
	if s.MaxLength <= 0 {
		s.MaxLength = 512
	}
	return s
}

// BytesPerToken estimates the peak device memory per batch token (documents
// × longest length) of a forward pass with splash's pooling in float32.
// ONNX Runtime frees each layer's intermediates before the next layer, so
// the peak is one layer's working set or the head's, not their sum:
//
//   - the head: the [tokens × vocab] logits, the masked logits that the max
//     is taken over, and a third tensor of that size for the planner's
//     reuse slack (3·V);
//   - one encoder layer: the hidden states, Q, K, V, attention context and
//     output, residuals and layer norms (12·H), the feed-forward
//     intermediate and its activation (2·I), and the attention scores and
//     their softmax (2·heads·T per token of a sequence of length T).
func (s ModelShape) BytesPerToken() uint64 {
	s = s.withDefaults()
	head := 3 * s.Vocab
	layer := 12*s.Hidden + 2*s.Intermediate + 2*s.Heads*s.MaxLength
	return 4 * uint64(max(head, layer)+2*s.Hidden)
}

// BatchTokens chooses the batch token budget for a device with free bytes
// of free memory before the model is loaded: half of what the weights leave
// (the other half is headroom for the CUDA context, cuDNN/cuBLAS
// workspaces and the arena's fragmentation), divided by BytesPerToken,
// within [max(MinBatchTokens, MaxLength), MaxBatchTokens]. Larger batches
// than that bring nothing: a batch of 64k tokens already keeps an H100
// busy for tens of milliseconds. free == 0 (unknown) gives the minimum.
// Estimates can be wrong; the encoder splits a batch that runs out of
// memory and retries (encode.SplitOnOOM), so a wrong guess costs time,
// never documents.
func BatchTokens(free uint64, s ModelShape) int {
	s = s.withDefaults()
	floor := max(MinBatchTokens, s.MaxLength)
	weights := s.WeightBytes + s.WeightBytes/5
	if free <= weights {
		return floor
	}
	n := (free - weights) / 2 / s.BytesPerToken()
	return int(min(max(n, uint64(floor)), MaxBatchTokens))
}
