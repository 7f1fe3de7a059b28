package cuda

import (
	"errors"
	"fmt"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/kernels"
)

// ErrDoesNotFit is wrapped by MemoryPlan.Check's refusal: the model and the
// smallest batch do not fit the device's free memory.
var ErrDoesNotFit = errors.New("the model does not fit the GPU's free memory")

// MemoryPlan is the device memory a model needs, computed from its
// architecture before anything is uploaded.
type MemoryPlan struct {
	// Weights are the parameters: matrices (embeddings, projections, the
	// LM head when untied) in the storage type, vectors (biases, norms,
	// the rotary frequencies) in float32.
	Weights uint64
	// Workspace is the batch buffers of one lane for a batch of Tokens
	// tokens in documents of MaxLen tokens (activations, attention scores,
	// one logits chunk, the pooled rows, the index arrays).
	Workspace uint64
	Lanes     int
	// Reserve is left for cuBLAS's workspace, the driver and
	// fragmentation.
	Reserve uint64
	// Tokens and MaxLen are the batch the workspace is sized for.
	Tokens, MaxLen int
	// FP8 is what --precision fp8 adds (WithFP8): the E4M3 copies of the
	// layers' weight matrices (one byte a value), and per lane the
	// cuBLASLt workspace and the quantized activations of the widest GEMM
	// input. 0 in other precisions.
	FP8 uint64
}

// WithFP8 adds to p what --precision fp8 needs besides the bf16 model.
func (p MemoryPlan) WithFP8(a Arch) MemoryPlan {
	h, inter, layers := uint64(a.Hidden), uint64(a.Intermediate), uint64(a.Layers)
	var layerValues uint64
	if a.Family.Decoder() {
		qd, kvd := uint64(a.Heads*a.HeadDim()), uint64(a.KV()*a.HeadDim())
		layerValues = layers * ((qd+2*kvd)*h + h*qd + 2*inter*h + h*inter)
	} else {
		layerValues = layers*(4*h*h+2*h*inter) + h*h
	}
	perLane := uint64(fp8Workspace) + uint64(p.Tokens)*max(h, inter) + 64
	p.FP8 = layerValues + uint64(p.Lanes)*perLane
	return p
}

// Total is the memory the plan needs: the weights once, a workspace per
// lane, and the reserve.
func (p MemoryPlan) Total() uint64 {
	return p.Weights + uint64(p.Lanes)*p.Workspace + p.Reserve + p.FP8
}

// gib formats bytes in GiB.
func gib(b uint64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }

// Check refuses a plan that needs more than free bytes, with an error that
// gives the figures and wraps ErrDoesNotFit and encode.ErrSettings (a
// smaller precision, max length or another GPU is the way out).
func (p MemoryPlan) Check(free uint64) error {
	if p.Total() <= free {
		return nil
	}
	fp8 := ""
	if p.FP8 > 0 {
		fp8 = " + fp8 weights and buffers " + gib(p.FP8)
	}
	return fmt.Errorf("%w: %w: model %s + workspace %s (%d lanes × %s for batches of %d tokens, documents of %d)%s + reserve %s = %s; the GPU has %s free",
		encode.ErrSettings, ErrDoesNotFit, gib(p.Weights), gib(uint64(p.Lanes)*p.Workspace), p.Lanes, gib(p.Workspace),
		p.Tokens, p.MaxLen, fp8, gib(p.Reserve), gib(p.Total()), gib(free))
}

// PlanMemory plans the memory of model a stored as dt, with lanes
// workspaces for the smallest batch budget BatchTokens gives
// (max(2048, maxLen) tokens of documents of maxLen tokens) and logits
// chunks of chunk tokens. tied says whether the LM head is the word
// embedding matrix (stored once); decoders take it from a.TiedEmbeddings.
func PlanMemory(a Arch, tied bool, dt kernels.DType, maxLen, chunk, lanes int) MemoryPlan {
	tokens := max(minBatchTokens, maxLen)
	p := MemoryPlan{Lanes: lanes, Reserve: memoryReserve, Tokens: tokens, MaxLen: maxLen}
	p.Weights = WeightBytes(a, tied, dt)
	p.Workspace = WorkspaceBytes(a, dt, tokens, maxLen, chunk)
	return p
}

// WeightBytes is the device memory of a's parameters stored as dt (see
// MemoryPlan.Weights).
func WeightBytes(a Arch, tied bool, dt kernels.DType) uint64 {
	h, v, inter, layers := uint64(a.Hidden), uint64(a.Vocab), uint64(a.Intermediate), uint64(a.Layers)
	var matrix, vector uint64
	if a.Family.Decoder() {
		qd, kvd := uint64(a.Heads*a.HeadDim()), uint64(a.KV()*a.HeadDim())
		matrix = v*h + layers*((qd+2*kvd)*h+h*qd+2*inter*h+h*inter)
		if !a.TiedEmbeddings {
			matrix += v * h
		}
		vector = layers*2*h + h + uint64(a.HeadDim()/2)
	} else {
		matrix = v*h + uint64(a.MaxPositions)*h + uint64(a.TypeVocab)*h + layers*(4*h*h+2*h*inter) + h*h
		if !tied {
			matrix += v * h
		}
		vector = 2*h + layers*(3*h+h+inter+h+4*h) + h + 2*h + v
	}
	return matrix*uint64(dt.Size()) + 4*vector
}

// WorkspaceBytes is the device memory of one lane's batch buffers for a
// batch of tokens tokens in documents of maxLen tokens (padding included),
// as Net.forward allocates them: the activations and attention scores in
// dt (BytesPerToken), one logits chunk of chunk tokens, and the pooled
// rows of the batch's documents (float32).
func WorkspaceBytes(a Arch, dt kernels.DType, tokens, maxLen, chunk int) uint64 {
	docs := uint64(max(tokens/max(maxLen, 1), 1))
	act := uint64(tokens) * uint64(activationsPerToken(a, maxLen)) * uint64(dt.Size())
	ints := uint64(tokens) * 16
	return act + ints + uint64(min(chunk, tokens))*uint64(a.Vocab)*uint64(dt.Size()) + 4*docs*uint64(a.Vocab)
}

// activationsPerToken is the values per batch token of a forward pass's
// activation buffers, for a longest document of maxLen tokens. BERT
// family: x and c (2·H), y (max(3H, I)), the padded Q, K and V (3·H), the
// scores (heads·maxLen). Decoders: x and xn (2·H), y (max((heads+2kv)·d,
// 2I, H)), c (max(heads·d, I)), Q (heads·d), K and V (2·kv·d), the scores
// (heads·maxLen).
func activationsPerToken(a Arch, maxLen int) int {
	h := a.Hidden
	if !a.Family.Decoder() {
		return 2*h + max(3*h, a.Intermediate) + 3*h + a.Heads*maxLen
	}
	qd, kvd := a.Heads*a.HeadDim(), a.KV()*a.HeadDim()
	return 2*h + max(qd+2*kvd, 2*a.Intermediate, h) + max(qd, a.Intermediate) + qd + 2*kvd + a.Heads*maxLen
}
