package cuda

import (
	"errors"
	"fmt"
	"math"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu/cuda/sys"
)

// DefaultHeadChunk is the number of tokens whose logits the head computes
// at once: the decoder GEMM writes a [chunk][vocabulary] block, pooling
// folds it into the documents' rows, and the next chunk reuses the block,
// so no [tokens][vocabulary] tensor is ever whole in memory.
const DefaultHeadChunk = 4096

// deviceLayer is one encoder layer's parameters on an Ops.
type deviceLayer struct {
	qkvW, qkvB, oW, oB, ln1G, ln1B, f1W, f1B, f2W, f2B, ln2G, ln2B Buf
}

// Net is a model's parameters (a BERT-family masked LM, or a Llama- or
// Mistral-family decoder) uploaded to an Ops, ready to run.
type Net struct {
	ops                  Ops
	arch                 Arch
	word, pos, typ       Buf // typ nil without token types
	embG, embB           Buf
	layers               []deviceLayer
	headW, headB         Buf
	headG, headBeta      Buf
	decoder, decoderBias Buf
	decoderTied          bool
	headChunk            int
	// Decoders (forward_llama.go): the layers, the final norm, the rotary
	// inverse frequencies and the attention (causal or bidirectional).
	blocks    []deviceBlock
	finalNorm Buf
	invFreq   Buf
	attention Attention
	bufs      []Buf          // every upload, for Close
	ws        map[string]Buf // batch buffers kept between batches (scratch)
}

// NewNet uploads w to ops. headChunk bounds the tokens of one decoder
// GEMM (DefaultHeadChunk when <= 0).
func NewNet(ops Ops, w *Weights, headChunk int) (n *Net, err error) {
	if w.Arch.Family.Decoder() {
		if len(w.Blocks) != w.Arch.Layers {
			return nil, fmt.Errorf("cuda engine: %d decoder layers bound, the config says %d", len(w.Blocks), w.Arch.Layers)
		}
		return newDecoderNet(ops, w.Arch, headChunk, w.Word, w.Decoder, w.Tied, w.FinalNorm, func(l int) (DecoderLayer, error) {
			return w.Blocks[l], nil
		})
	}
	if headChunk <= 0 {
		headChunk = DefaultHeadChunk
	}
	n = &Net{ops: ops, arch: w.Arch, headChunk: headChunk, decoderTied: w.Tied}
	defer func() {
		if err != nil {
			n.Close()
			n = nil
		}
	}()
	matrix := func(d []float32) Buf {
		if err != nil {
			return nil
		}
		var b Buf
		b, err = ops.Matrix(d)
		n.bufs = append(n.bufs, b)
		return b
	}
	vector := func(d []float32) Buf {
		if err != nil {
			return nil
		}
		var b Buf
		b, err = ops.Vector(d)
		n.bufs = append(n.bufs, b)
		return b
	}
	n.word, n.pos = matrix(w.Word), matrix(w.Position)
	if w.TokenType != nil {
		n.typ = matrix(w.TokenType)
	}
	n.embG, n.embB = vector(w.EmbLN.Gamma), vector(w.EmbLN.Beta)
	for _, l := range w.Layers {
		n.layers = append(n.layers, deviceLayer{
			qkvW: matrix(l.QKV.W), qkvB: vector(l.QKV.B),
			oW: matrix(l.AttnO.W), oB: vector(l.AttnO.B),
			ln1G: vector(l.AttnLN.Gamma), ln1B: vector(l.AttnLN.Beta),
			f1W: matrix(l.FFNIn.W), f1B: vector(l.FFNIn.B),
			f2W: matrix(l.FFNOut.W), f2B: vector(l.FFNOut.B),
			ln2G: vector(l.FFNLN.Gamma), ln2B: vector(l.FFNLN.Beta),
		})
	}
	n.headW, n.headB = matrix(w.HeadDense.W), vector(w.HeadDense.B)
	n.headG, n.headBeta = vector(w.HeadLN.Gamma), vector(w.HeadLN.Beta)
	if w.Tied {
		n.decoder = n.word
	} else {
		n.decoder = matrix(w.Decoder)
	}
	n.decoderBias = vector(w.DecoderBias)
	return n, err
}

// scratch returns the workspace buffer name with at least size elements
// (a slice of exactly size), allocating it with f, or growing it, first.
func (n *Net) scratch(name string, f func(int) (Buf, error), size int) (Buf, error) {
	if b, ok := n.ws[name]; ok {
		if b.Len() >= size {
			return n.ops.Slice(b, 0, size), nil
		}
		delete(n.ws, name)
		if err := n.ops.Free(b); err != nil {
			return nil, err
		}
	}
	b, err := f(size)
	if err != nil {
		return nil, err
	}
	if n.ws == nil {
		n.ws = map[string]Buf{}
	}
	n.ws[name] = b
	return n.ops.Slice(b, 0, size), nil
}

// releaseWorkspace frees the batch buffers that scratch keeps.
func (n *Net) releaseWorkspace() error {
	var errs []error
	for name, b := range n.ws {
		errs = append(errs, n.ops.Free(b))
		delete(n.ws, name)
	}
	return errors.Join(errs...)
}

// Share returns a Net that runs on ops with n's parameters, which must
// be usable from ops (two DeviceOps of one device context, or TwinOps). It
// has its own batch buffers; its Close frees those only, and n must
// outlive it.
func (n *Net) Share(ops Ops) *Net {
	shared := *n
	shared.ops, shared.bufs, shared.ws = ops, nil, nil
	return &shared
}

// Close frees the uploaded parameters and the workspace.
func (n *Net) Close() error {
	errs := []error{n.releaseWorkspace()}
	for _, b := range n.bufs {
		if b != nil {
			errs = append(errs, n.ops.Free(b))
		}
	}
	n.bufs = nil
	return errors.Join(errs...)
}

// Arch is the network's architecture.
func (n *Net) Arch() Arch { return n.arch }

// Input is one batch for Net.Forward: documents as token ids (real tokens
// only, no padding), with optional token types and the first position that
// pooling reads in each document.
type Input struct {
	Docs     [][]int32
	Types    [][]int32 // nil: all 0
	PoolFrom []int     // nil: 0 for every document
}

// InputFromBatch unpacks an encode.Batch: each row's real tokens are its
// unmasked prefix (encode.NewBatch pads at the end); PoolMask, when set,
// must be a suffix of that prefix (SetPoolFrom).
func InputFromBatch(b *encode.Batch) (Input, error) {
	in := Input{Docs: make([][]int32, b.Size), Types: make([][]int32, b.Size)}
	if b.PoolMask != nil {
		in.PoolFrom = make([]int, b.Size)
	}
	for r := 0; r < b.Size; r++ {
		row := r * b.SeqLen
		n := 0
		for n < b.SeqLen && b.AttentionMask[row+n] != 0 {
			n++
		}
		for p := n; p < b.SeqLen; p++ {
			if b.AttentionMask[row+p] != 0 {
				return Input{}, fmt.Errorf("cuda engine: row %d: attention mask has a gap at position %d (padding must come last)", r, n)
			}
		}
		ids, types := make([]int32, n), make([]int32, n)
		for p := 0; p < n; p++ {
			ids[p], types[p] = int32(b.InputIDs[row+p]), int32(b.TokenTypeIDs[row+p])
		}
		in.Docs[r], in.Types[r] = ids, types
		if b.PoolMask != nil {
			from := n
			for p := 0; p < n; p++ {
				if b.PoolMask[row+p] != 0 {
					from = p
					break
				}
			}
			for p := from; p < n; p++ {
				if b.PoolMask[row+p] == 0 {
					return Input{}, fmt.Errorf("cuda engine: row %d: pool mask is not a suffix of the tokens (position %d)", r, p)
				}
			}
			in.PoolFrom[r] = from
		}
	}
	return in, nil
}

// packed is an Input flattened for the kernels.
type packed struct {
	ids, pos, types, tokenDoc []int32
	offsets                   []int32 // [B+1]
	maxLen                    int
}

func (n *Net) pack(in Input) (packed, error) {
	a := n.arch
	var p packed
	p.offsets = make([]int32, len(in.Docs)+1)
	total := 0
	for d, doc := range in.Docs {
		if len(doc) == 0 {
			return p, fmt.Errorf("%w: document %d of the batch has no tokens", encode.ErrBadInput, d)
		}
		if len(doc) > a.MaxTokens() {
			return p, fmt.Errorf("%w: document %d of the batch has %d tokens, the model takes at most %d", encode.ErrBadInput, d, len(doc), a.MaxTokens())
		}
		total += len(doc)
		if total > math.MaxInt32 {
			return p, fmt.Errorf("%w: the batch has more than 2^31 tokens", encode.ErrBadInput)
		}
		p.offsets[d+1] = int32(total)
		p.maxLen = max(p.maxLen, len(doc))
	}
	p.ids, p.pos, p.tokenDoc = make([]int32, 0, total), make([]int32, 0, total), make([]int32, 0, total)
	if a.TypeVocab > 0 {
		p.types = make([]int32, 0, total)
	}
	for d, doc := range in.Docs {
		from := 0
		if in.PoolFrom != nil {
			from = in.PoolFrom[d]
		}
		for i, id := range doc {
			if id < 0 || int(id) >= a.Vocab {
				return p, fmt.Errorf("%w: document %d, token %d: id %d is outside the vocabulary of %d", encode.ErrBadInput, d, i, id, a.Vocab)
			}
			p.ids = append(p.ids, id)
			p.pos = append(p.pos, int32(i+a.PositionOffset))
			doc := int32(d)
			if i < from {
				doc = -1
			}
			p.tokenDoc = append(p.tokenDoc, doc)
			if p.types != nil {
				t := int32(0)
				if in.Types != nil && in.Types[d] != nil {
					t = in.Types[d][i]
				}
				if t < 0 || int(t) >= a.TypeVocab {
					return p, fmt.Errorf("%w: document %d, token %d: token type %d, the model has %d", encode.ErrBadInput, d, i, t, a.TypeVocab)
				}
				p.types = append(p.types, t)
			}
		}
	}
	return p, nil
}

// Forward runs the masked LM on in and writes the pooled SPLADE rows
// (log1p(relu) of the logits, reduced by pooling over the pooled positions)
// into out, [len(in.Docs)][Vocab] row-major.
func (n *Net) Forward(in Input, pooling encode.Pooling, out []float32) error {
	if len(out) < len(in.Docs)*n.arch.Vocab {
		return fmt.Errorf("cuda engine: output of %d values for %d documents of %d", len(out), len(in.Docs), n.arch.Vocab)
	}
	return n.forward(in, pooling, func(pooled Buf, b int) error {
		if err := n.ops.Download(out[:b*n.arch.Vocab], pooled); err != nil {
			return fmt.Errorf("cuda engine: download: %w", err)
		}
		return nil
	})
}

// ForwardSparse runs the masked LM on in like Forward and fills dst with
// every positive pooled weight of each document, made sparse where the
// pooled rows are (on the GPU for DeviceOps): only the CSR reaches the
// host.
func (n *Net) ForwardSparse(in Input, pooling encode.Pooling, dst *encode.CSR) error {
	dst.Reset()
	return n.forward(in, pooling, func(pooled Buf, b int) error {
		offsets, terms, weights, err := n.ops.SparsifyRows(pooled, b, n.arch.Vocab)
		if err != nil {
			return fmt.Errorf("cuda engine: sparsify: %w", err)
		}
		dst.Offsets, dst.Terms, dst.Weights = offsets, terms, weights
		return nil
	})
}

// forward runs the model on in and hands the pooled rows, still on the
// Ops' device, to done before it frees the batch's buffers. The packing,
// the workspace and the chunked head are shared by both families; the
// layers are bertBody's or decoderBody's (forward_llama.go).
func (n *Net) forward(in Input, pooling encode.Pooling, done func(pooled Buf, b int) error) (err error) {
	a, ops := n.arch, n.ops
	if len(in.Docs) == 0 {
		return nil
	}
	if pooling != encode.PoolMax && pooling != encode.PoolSum {
		return fmt.Errorf("%w: pooling %q", encode.ErrSettings, pooling)
	}
	p, err := n.pack(in)
	if err != nil {
		return err
	}
	b, t, l := len(in.Docs), len(p.ids), p.maxLen
	chunk := min(n.headChunk, t)

	// The batch's buffers come from the workspace, which keeps them for the
	// next batch: allocating and freeing device memory per batch would
	// cost time and, for cuMemFree, a device-wide synchronization. After
	// an out-of-memory failure the workspace is released, so the retry of
	// a smaller batch starts from free memory.
	defer func() {
		if err != nil && errors.Is(err, sys.ErrOutOfMemory) {
			err = errors.Join(err, n.releaseWorkspace())
		}
	}()
	ws := &workspace{n: n}
	bt := batchBufs{b: b, t: t, l: l, p: p}
	bt.ids, bt.tokenDoc, bt.offsets = ws.ints("ids", p.ids), ws.ints("tokenDoc", p.tokenDoc), ws.ints("offsets", p.offsets)
	z := ws.alloc("z", ops.Activations, chunk*a.Vocab)
	pooled := ws.alloc("pooled", ops.Floats, b*a.Vocab)
	if ws.err != nil {
		return fmt.Errorf("cuda engine: batch of %d documents, %d tokens, longest %d: %w", b, t, l, ws.err)
	}
	// body leaves the final hidden states, [t][Hidden], in hs; headBias is
	// the decoder's bias (nil for decoder-only families).
	var hs, headBias Buf
	if a.Family.Decoder() {
		hs, err = n.decoderBody(ws, bt)
	} else {
		hs, headBias, err = n.bertBody(ws, bt)
	}
	if err != nil {
		return err
	}
	step := func(name string, e error) {
		if err == nil && e != nil {
			err = fmt.Errorf("cuda engine: %s: %w", name, e)
		}
	}
	h := a.Hidden
	sum := pooling == encode.PoolSum
	init := float32(math.Inf(-1))
	if sum {
		init = 0
	}
	step("pooled init", ops.Fill(pooled, b*a.Vocab, init))
	for r := 0; r < t && err == nil; r += chunk {
		rows := min(chunk, t-r)
		step("decoder", ops.LinearT(rows, a.Vocab, h, ops.Slice(hs, r*h, rows*h), n.decoder, z))
		step("pooling", ops.PoolChunk(rows, a.Vocab, sum, z, headBias, ops.Slice(bt.tokenDoc, r, rows), pooled))
	}
	if !sum {
		step("activation", ops.ActivateMax(b*a.Vocab, pooled))
	}
	if err != nil {
		return err
	}
	return done(pooled, b)
}

// batchBufs are one batch's shapes and index buffers.
type batchBufs struct {
	b, t, l                int // documents, tokens, longest document
	p                      packed
	ids, tokenDoc, offsets Buf
}

// workspace hands out the batch's buffers from Net.scratch, keeping the
// first error.
type workspace struct {
	n   *Net
	err error
}

func (w *workspace) alloc(name string, f func(int) (Buf, error), size int) Buf {
	if w.err != nil {
		return nil
	}
	var x Buf
	x, w.err = w.n.scratch(name, f, size)
	return x
}

func (w *workspace) ints(name string, v []int32) Buf {
	x := w.alloc(name, w.n.ops.Ints, max(len(v), 1))
	if w.err == nil && len(v) > 0 {
		w.err = w.n.ops.SetInts(x, v)
	}
	return x
}

// steps runs a forward pass's kernels in order, keeping the first error
// wrapped with the name of the step that failed.
type steps struct{ err error }

func (s *steps) do(name string, e error) {
	if s.err == nil && e != nil {
		s.err = fmt.Errorf("cuda engine: %s: %w", name, e)
	}
}

// bertBody runs a BERT-family masked LM's embeddings, encoder layers and
// MLM head transform, and returns the transformed hidden states and the
// decoder's bias.
func (n *Net) bertBody(ws *workspace, bt batchBufs) (hs, bias Buf, err error) {
	a, ops := n.arch, n.ops
	b, t, l := bt.b, bt.t, bt.l
	h, heads, d := a.Hidden, a.Heads, a.HeadDim()
	pos := ws.ints("pos", bt.p.pos)
	var types Buf
	if bt.p.types != nil {
		types = ws.ints("types", bt.p.types)
	}
	x := ws.alloc("x", ops.Activations, t*h)
	y := ws.alloc("y", ops.Activations, t*max(3*h, a.Intermediate))
	c := ws.alloc("c", ops.Activations, t*h)
	q := ws.alloc("q", ops.Activations, b*heads*l*d)
	k := ws.alloc("k", ops.Activations, b*heads*l*d)
	v := ws.alloc("v", ops.Activations, b*heads*l*d)
	s := ws.alloc("s", ops.Activations, b*heads*l*l)
	if ws.err != nil {
		return nil, nil, fmt.Errorf("cuda engine: batch of %d documents, %d tokens, longest %d: %w", b, t, l, ws.err)
	}
	ids, offsets := bt.ids, bt.offsets
	var st steps
	step := st.do
	step("embeddings", ops.EmbedLN(t, h, ids, pos, types, n.word, n.pos, n.typ, n.embG, n.embB, a.Eps, x))
	scale := float32(1 / math.Sqrt(float64(d)))
	for i, ly := range n.layers {
		if st.err != nil {
			break
		}
		name := func(s string) string { return fmt.Sprintf("layer %d: %s", i, s) }
		step(name("qkv"), ops.LinearT(t, 3*h, h, x, ly.qkvW, y))
		step(name("qkv scatter"), ops.QKVScatter(b, heads, d, l, y, ly.qkvB, offsets, q, k, v))
		step(name("scores"), ops.Scores(b*heads, l, d, scale, q, k, s))
		step(name("softmax"), ops.MaskedSoftmax(b, heads, l, s, offsets))
		step(name("context"), ops.Context(b*heads, l, d, s, v, q)) // q is free again: the context goes there
		step(name("gather"), ops.AttnGather(b, heads, d, l, q, offsets, c))
		step(name("attention output"), ops.LinearT(t, h, h, c, ly.oW, y))
		step(name("attention LayerNorm"), ops.BiasResidualLN(t, h, y, ly.oB, x, ly.ln1G, ly.ln1B, a.Eps, x))
		step(name("intermediate"), ops.LinearT(t, a.Intermediate, h, x, ly.f1W, y))
		step(name("activation"), ops.BiasGELU(t, a.Intermediate, y, ly.f1B, a.Act))
		step(name("output"), ops.LinearT(t, h, a.Intermediate, y, ly.f2W, c))
		step(name("output LayerNorm"), ops.BiasResidualLN(t, h, c, ly.f2B, x, ly.ln2G, ly.ln2B, a.Eps, x))
	}
	step("head transform", ops.LinearT(t, h, h, x, n.headW, c))
	step("head activation", ops.BiasGELU(t, h, c, n.headB, a.HeadAct))
	step("head LayerNorm", ops.BiasResidualLN(t, h, c, nil, nil, n.headG, n.headBeta, a.Eps, c))
	return c, n.decoderBias, st.err
}

// ModelFLOPsPerToken is the arithmetic of one token of a document of l
// tokens (two FLOPs per multiply-add): per layer the QKV, attention output
// and feed-forward GEMMs (2·(4H² + 2HI)) and attention itself (2·2·l·H:
// scores and context), then the head's transform (2H²) and decoder (2HV).
// Elementwise kernels are not counted. It is the numerator of the
// engine's TFLOP/s, as GPU benchmarks count model FLOPs.
func ModelFLOPsPerToken(a Arch, l int) float64 {
	h, i, v := float64(a.Hidden), float64(a.Intermediate), float64(a.Vocab)
	if a.Family.Decoder() {
		// Per layer: QKV 2·H·(heads+2kv)·d, attention output 2·heads·d·H,
		// gate and up 2·2·H·I, down 2·I·H, scores and context 2·2·l·heads·d
		// (all l keys counted, as for the bidirectional mask); then the LM
		// head 2HV. No head transform.
		qd, kvd := float64(a.Heads*a.HeadDim()), float64(a.KV()*a.HeadDim())
		layer := 2*h*(qd+2*kvd) + 2*qd*h + 6*h*i + 4*float64(l)*qd
		return float64(a.Layers)*layer + 2*h*v
	}
	layer := 2*(4*h*h+2*h*i) + 4*float64(l)*h
	return float64(a.Layers)*layer + 2*h*h + 2*h*v
}
