package testmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
)

// Oracle is an independent float64 implementation of the masked-LMs that
// Generate writes (BERT, DistilBERT, RoBERTa). It reads the architecture
// (model_type), the head count, the padding id and the LayerNorm epsilon
// from a model directory's config.json and the weights from the
// initializers of its model.onnx (not from the seed), so comparing it with
// an ONNX runtime checks the graph that Generate built. For a model whose
// logits output is float16 (Config.FP16) the logits are rounded to float16
// as the model's final Cast does; the model's declared output type says
// which. It holds no mutable state: one Oracle may serve concurrent calls.
type Oracle struct {
	arch                                Arch
	vocab, hidden, heads, inter, maxPos int // maxPos: rows of the position table
	padID                               int // RoBERTa: padding_idx of the positions
	eps                                 float64
	fp16                                bool // logits output is float16

	wordEmb, posEmb, typeEmb []float64 // [rows * hidden], row-major; typeEmb nil for DistilBERT
	embLN                    layerNormW
	layers                   []oracleLayer
	headDense                denseW
	headLN                   layerNormW
	outBias                  []float64 // [vocab]
}

// denseW is a PyTorch Linear: y = W x + b with W stored [out, in].
type denseW struct {
	w       []float64
	b       []float64
	in, out int
}

type layerNormW struct{ gamma, beta []float64 }

type oracleLayer struct {
	q, k, v, attnOut denseW
	attnLN           layerNormW
	ffnIn, ffnOut    denseW
	ffnLN            layerNormW
}

// LoadOracle reads dir/model.onnx and dir/config.json. config.json's
// model_type ("bert" when absent, "distilbert" or "roberta") selects the
// architecture; the type of model.onnx's logits output (float or float16)
// decides whether Logits rounds to float16. Dense weights stored
// pre-transposed under made-up names (Config.OptimumNames, optimum's
// onnx::MatMul_N) are found through the graph.
func LoadOracle(dir string) (*Oracle, error) {
	var conf struct {
		ModelType         string  `json:"model_type"`
		NumAttentionHeads int     `json:"num_attention_heads"`
		NumHiddenLayers   int     `json:"num_hidden_layers"`
		LayerNormEps      float64 `json:"layer_norm_eps"`
		NHeads            int     `json:"n_heads"`  // DistilBERT
		NLayers           int     `json:"n_layers"` // DistilBERT
		PadTokenID        *int    `json:"pad_token_id"`
	}
	cpath := filepath.Join(dir, ConfigFile)
	cb, err := os.ReadFile(cpath)
	if err != nil {
		return nil, fmt.Errorf("testmodel: oracle: %w", err)
	}
	if err := json.Unmarshal(cb, &conf); err != nil {
		return nil, fmt.Errorf("testmodel: oracle: parse %s: %w", cpath, err)
	}
	o := &Oracle{arch: ArchBERT, heads: conf.NumAttentionHeads, eps: conf.LayerNormEps}
	layers := conf.NumHiddenLayers
	switch Arch(conf.ModelType) {
	case "", ArchBERT:
	case ArchDistilBERT:
		// DistilBERT's LayerNorms have eps 1e-12 in the code, not in the config.
		o.arch, o.heads, layers, o.eps = ArchDistilBERT, conf.NHeads, conf.NLayers, layerNormEps
	case ArchRoBERTa:
		o.arch = ArchRoBERTa
		if conf.PadTokenID == nil {
			return nil, fmt.Errorf("testmodel: oracle: %s: a roberta config needs pad_token_id (the padding_idx of the positions)", cpath)
		}
		o.padID = *conf.PadTokenID
	default:
		return nil, fmt.Errorf("testmodel: oracle: %s: model_type %q, want %q, %q or %q", cpath, conf.ModelType, ArchBERT, ArchDistilBERT, ArchRoBERTa)
	}
	mpath := filepath.Join(dir, ModelFile)
	mb, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("testmodel: oracle: %w", err)
	}
	var model onnxpb.ModelProto
	if err := proto.Unmarshal(mb, &model); err != nil {
		return nil, fmt.Errorf("testmodel: oracle: parse %s: %w", mpath, err)
	}
	if model.Graph == nil {
		return nil, fmt.Errorf("testmodel: oracle: %s has no graph", mpath)
	}
	if o.fp16, err = logitsFloat16(model.Graph); err != nil {
		return nil, fmt.Errorf("testmodel: oracle: %s: %w", mpath, err)
	}
	inits := make(map[string]*onnxpb.TensorProto, len(model.Graph.Initializer))
	for _, t := range model.Graph.Initializer {
		inits[t.Name] = t
	}
	if err := bindTransposedWeights(model.Graph, inits); err != nil {
		return nil, fmt.Errorf("testmodel: oracle: %s: %w", mpath, err)
	}
	r := &weightReader{inits: inits, path: mpath}

	n := archNamesOf(o.arch)
	var dims []int
	o.wordEmb, dims = r.matrix(n.wordEmb)
	if len(dims) == 2 {
		o.vocab, o.hidden = dims[0], dims[1]
	}
	o.posEmb, dims = r.matrix(n.posEmb)
	if len(dims) == 2 {
		o.maxPos = dims[0]
	}
	if n.typeEmb != "" {
		o.typeEmb, _ = r.matrix(n.typeEmb)
	}
	o.embLN = r.layerNorm(n.embLN)
	for l := 0; l < layers; l++ {
		var ly oracleLayer
		ly.q = r.dense(n.layer(l, partQuery))
		ly.k = r.dense(n.layer(l, partKey))
		ly.v = r.dense(n.layer(l, partValue))
		ly.attnOut = r.dense(n.layer(l, partAttnOut))
		ly.attnLN = r.layerNorm(n.layer(l, partAttnLN))
		ly.ffnIn = r.dense(n.layer(l, partFFNIn))
		ly.ffnOut = r.dense(n.layer(l, partFFNOut))
		ly.ffnLN = r.layerNorm(n.layer(l, partFFNLN))
		o.layers = append(o.layers, ly)
	}
	o.headDense = r.dense(n.headDense)
	o.headLN = r.layerNorm(n.headLN)
	o.outBias, _ = r.vector(n.outBias)
	if r.err != nil {
		return nil, fmt.Errorf("testmodel: oracle: %w", r.err)
	}
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("testmodel: oracle: %s: %w", dir, err)
	}
	if len(o.layers) > 0 {
		o.inter = o.layers[0].ffnIn.out
	}
	return o, nil
}

// logitsFloat16 reports whether the graph's logits output is float16 (false
// for float); other types and a missing output are errors.
func logitsFloat16(g *onnxpb.GraphProto) (bool, error) {
	for _, out := range g.Output {
		if out.GetName() != OutputLogits {
			continue
		}
		switch elem := onnxpb.TensorProto_DataType(out.GetType().GetTensorType().GetElemType()); elem {
		case onnxpb.TensorProto_FLOAT:
			return false, nil
		case onnxpb.TensorProto_FLOAT16:
			return true, nil
		default:
			return false, fmt.Errorf("output %q is %v, want float or float16", OutputLogits, elem)
		}
	}
	return false, fmt.Errorf("no output %q", OutputLogits)
}

// check verifies that the shapes fit together, so that the forward pass
// cannot index out of range.
func (o *Oracle) check() error {
	h := o.hidden
	switch {
	case o.vocab < 1 || h < 1:
		return fmt.Errorf("bad word embedding shape [%d, %d]", o.vocab, h)
	case o.heads < 1 || h%o.heads != 0:
		return fmt.Errorf("num_attention_heads %d does not divide hidden size %d", o.heads, h)
	case !(o.eps > 0):
		return fmt.Errorf("layer_norm_eps %v, want > 0", o.eps)
	case len(o.layers) == 0:
		return fmt.Errorf("num_hidden_layers is 0")
	case o.maxPos < 1 || len(o.posEmb) != o.maxPos*h:
		return fmt.Errorf("position embeddings do not have %d columns", h)
	case o.arch != ArchDistilBERT && (len(o.typeEmb) < h || len(o.typeEmb)%h != 0):
		return fmt.Errorf("token type embeddings do not have %d columns", h)
	case len(o.outBias) != o.vocab:
		return fmt.Errorf("%s has %d values, want %d", archNamesOf(o.arch).outBias, len(o.outBias), o.vocab)
	case o.arch == ArchRoBERTa && (o.padID < 0 || o.padID >= o.vocab):
		return fmt.Errorf("pad_token_id %d outside the vocabulary [0, %d)", o.padID, o.vocab)
	case o.MaxLength() < 1:
		return fmt.Errorf("%d position embeddings leave no usable position", o.maxPos)
	}
	checkLN := func(ln layerNormW) error {
		if len(ln.gamma) != h || len(ln.beta) != h {
			return fmt.Errorf("LayerNorm parameters of length %d/%d, want %d", len(ln.gamma), len(ln.beta), h)
		}
		return nil
	}
	checkDense := func(d denseW, in, out int) error {
		if d.in != in || d.out != out || len(d.b) != out {
			return fmt.Errorf("dense layer [%d, %d] with %d biases, want [%d, %d]", d.out, d.in, len(d.b), out, in)
		}
		return nil
	}
	errs := []error{checkLN(o.embLN), checkLN(o.headLN), checkDense(o.headDense, h, h)}
	inter := o.layers[0].ffnIn.out
	for _, ly := range o.layers {
		errs = append(errs,
			checkDense(ly.q, h, h), checkDense(ly.k, h, h), checkDense(ly.v, h, h),
			checkDense(ly.attnOut, h, h), checkLN(ly.attnLN),
			checkDense(ly.ffnIn, h, inter), checkDense(ly.ffnOut, inter, h), checkLN(ly.ffnLN))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// weightReader decodes float32 initializers into float64, remembering the
// first error.
type weightReader struct {
	inits map[string]*onnxpb.TensorProto
	path  string
	err   error
}

func (r *weightReader) tensor(name string) ([]float64, []int) {
	if r.err != nil {
		return nil, nil
	}
	t, ok := r.inits[name]
	if !ok {
		r.err = fmt.Errorf("%s: no initializer %q", r.path, name)
		return nil, nil
	}
	if t.DataType != int32(onnxpb.TensorProto_FLOAT) {
		r.err = fmt.Errorf("%s: initializer %q has data type %d, want float", r.path, name, t.DataType)
		return nil, nil
	}
	n := 1
	dims := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		if d < 0 || (d > 0 && n > math.MaxInt32/int(d)) {
			r.err = fmt.Errorf("%s: initializer %q has bad dims %v", r.path, name, t.Dims)
			return nil, nil
		}
		dims[i] = int(d)
		n *= int(d)
	}
	out := make([]float64, n)
	switch {
	case len(t.RawData) == 4*n:
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:])))
		}
	case len(t.RawData) == 0 && len(t.FloatData) == n:
		for i, v := range t.FloatData {
			out[i] = float64(v)
		}
	default:
		r.err = fmt.Errorf("%s: initializer %q: data does not match dims %v", r.path, name, t.Dims)
		return nil, nil
	}
	return out, dims
}

func (r *weightReader) matrix(name string) ([]float64, []int) {
	v, dims := r.tensor(name)
	if r.err == nil && len(dims) != 2 {
		r.err = fmt.Errorf("%s: initializer %q has dims %v, want 2", r.path, name, dims)
	}
	return v, dims
}

func (r *weightReader) vector(name string) ([]float64, []int) {
	v, dims := r.tensor(name)
	if r.err == nil && len(dims) != 1 {
		r.err = fmt.Errorf("%s: initializer %q has dims %v, want 1", r.path, name, dims)
	}
	return v, dims
}

func (r *weightReader) dense(prefix string) denseW {
	w, dims := r.matrix(prefix + ".weight")
	b, _ := r.vector(prefix + ".bias")
	if r.err != nil {
		return denseW{}
	}
	return denseW{w: w, b: b, out: dims[0], in: dims[1]}
}

func (r *weightReader) layerNorm(prefix string) layerNormW {
	g, _ := r.vector(prefix + ".weight")
	b, _ := r.vector(prefix + ".bias")
	return layerNormW{gamma: g, beta: b}
}

// VocabSize is the number of logits per position.
func (o *Oracle) VocabSize() int { return o.vocab }

// Hidden is the hidden size of the model.
func (o *Oracle) Hidden() int { return o.hidden }

// Float16Logits reports whether the model's logits output is float16, so
// that Logits and Pooled round the logits to float16.
func (o *Oracle) Float16Logits() bool { return o.fp16 }

// Arch is the architecture the oracle computes (config.json's model_type).
func (o *Oracle) Arch() Arch { return o.arch }

// MaxLength is the longest sequence the position embeddings allow: their
// number for BERT and DistilBERT; for RoBERTa max_position_embeddings -
// padding_idx - 1 (512 for roberta-base's 514), since its positions start
// at padding_idx + 1 (2).
func (o *Oracle) MaxLength() int {
	if o.arch == ArchRoBERTa {
		return o.maxPos - o.padID - 1
	}
	return o.maxPos
}

// PositionIDs returns the position ids the model uses for ids: 0..L-1 for
// BERT and DistilBERT; for RoBERTa those of Hugging Face's
// create_position_ids_from_input_ids, padding_idx for a padding token and
// padding_idx + (number of non-padding tokens up to and including this one)
// for every other token, so 2..L+1 for a sequence without padding tokens.
func (o *Oracle) PositionIDs(ids []int32) []int {
	pos := make([]int, len(ids))
	count := 0
	for i, id := range ids {
		switch {
		case o.arch != ArchRoBERTa:
			pos[i] = i
		case int(id) == o.padID:
			pos[i] = o.padID
		default:
			count++
			pos[i] = o.padID + count
		}
	}
	return pos
}

// Validate reports why Logits would refuse ids (nil when it accepts them).
func (o *Oracle) Validate(ids []int32) error {
	return checkSequence("oracle", ids, o.vocab, o.MaxLength())
}

// Logits returns the masked-LM logits [seq][vocab] of one unpadded sequence
// (attention mask all ones, token types 0, positions PositionIDs(ids)), as
// the model outputs them: for a
// float16 model (Float16Logits) each float64 logit rounded to the nearest
// float16, ties to even. It returns nil when Validate rejects ids.
func (o *Oracle) Logits(ids []int32) [][]float64 {
	return roundLogits(o.Float64Logits(ids), o.fp16)
}

// Float64Logits is Logits without the rounding to float16 of a float16
// model: the float64 logits before the model's final Cast. For a float32
// model it is the same as Logits.
func (o *Oracle) Float64Logits(ids []int32) [][]float64 {
	if o.Validate(ids) != nil {
		return nil
	}
	h := o.hidden
	seq := len(ids)

	// Embeddings: word + token type 0 (none for DistilBERT) + position,
	// then LayerNorm.
	x := make([][]float64, seq)
	for i, p := range o.PositionIDs(ids) {
		row := make([]float64, h)
		for k := 0; k < h; k++ {
			if o.typeEmb != nil {
				row[k] = o.wordEmb[int(ids[i])*h+k] + o.typeEmb[k] + o.posEmb[p*h+k]
			} else {
				row[k] = o.wordEmb[int(ids[i])*h+k] + o.posEmb[p*h+k]
			}
		}
		x[i] = o.layerNorm(row, o.embLN)
	}

	for _, ly := range o.layers {
		// Self-attention, post-LayerNorm residual.
		ctx := o.attention(x, ly)
		attn := ly.attnOut.apply(ctx)
		for i := range x {
			for k := range attn[i] {
				attn[i][k] += x[i][k]
			}
			x[i] = o.layerNorm(attn[i], ly.attnLN)
		}
		// Feed-forward with exact GELU.
		inter := ly.ffnIn.apply(x)
		for i := range inter {
			for k, v := range inter[i] {
				inter[i][k] = gelu(v)
			}
		}
		out := ly.ffnOut.apply(inter)
		for i := range x {
			for k := range out[i] {
				out[i][k] += x[i][k]
			}
			x[i] = o.layerNorm(out[i], ly.ffnLN)
		}
	}

	// MLM head transform.
	t := o.headDense.apply(x)
	for i := range t {
		for k, v := range t[i] {
			t[i][k] = gelu(v)
		}
		t[i] = o.layerNorm(t[i], o.headLN)
	}

	// Decoder tied to the word embeddings: logits[i][j] = <t_i, E_j> + bias_j.
	logits := make([][]float64, seq)
	for i := range logits {
		logits[i] = make([]float64, o.vocab)
	}
	o.project(t, logits)
	return logits
}

// project sets logits[i][j] = <t_i, E_j> + bias_j, the decoder tied to the
// word embeddings. Positions are split among goroutines in groups of four;
// each group walks the vocabulary once and computes its four dot products
// with every word embedding row together (register blocking: each row is
// loaded once per four positions).
func (o *Oracle) project(t, logits [][]float64) {
	h, seq := o.hidden, len(t)
	groups := (seq + 3) / 4
	workers := min(runtime.GOMAXPROCS(0), groups)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := w; g < groups; g += workers {
				i0 := 4 * g
				if seq-i0 < 4 {
					for i := i0; i < seq; i++ {
						for j := range o.vocab {
							logits[i][j] = dot(t[i], o.wordEmb[j*h:(j+1)*h]) + o.outBias[j]
						}
					}
					continue
				}
				t0, t1, t2, t3 := t[i0][:h], t[i0+1][:h], t[i0+2][:h], t[i0+3][:h]
				l0, l1, l2, l3 := logits[i0], logits[i0+1], logits[i0+2], logits[i0+3]
				for j := range o.vocab {
					e := o.wordEmb[j*h : (j+1)*h]
					var s0, s1, s2, s3 float64
					for k, ek := range e {
						s0 += ek * t0[k]
						s1 += ek * t1[k]
						s2 += ek * t2[k]
						s3 += ek * t3[k]
					}
					b := o.outBias[j]
					l0[j], l1[j], l2[j], l3[j] = s0+b, s1+b, s2+b, s3+b
				}
			}
		}()
	}
	wg.Wait()
}

// Pooled returns the SPLADE vector of one unpadded sequence the naive way,
// encode.PoolReference: log(1 + relu(z_ij)) at every position, then "max"
// or "sum" over positions, z being what Logits returns (rounded to float16
// for a float16 model). It returns nil for another pooling name or for ids
// that Logits rejects.
func (o *Oracle) Pooled(ids []int32, pooling string) []float64 {
	p, err := encode.ParsePooling(pooling)
	if err != nil {
		return nil
	}
	return encode.PoolReference(o.Logits(ids), nil, p)
}

// RoundToFloat16 returns the float16 value nearest to x, ties to even, as a
// float64: what a Cast to FLOAT16 does (IEEE 754 binary16: 10 fraction bits,
// exponents -14..15, subnormals down to 2^-24). Magnitudes from 65520 (the
// midpoint between 65504, the largest finite float16, and 2^16) up become
// infinite; NaN and infinities are returned as they are, zeros keep their
// sign.
func RoundToFloat16(x float64) float64 {
	a := math.Abs(x)
	switch {
	case math.IsNaN(x) || a == 0 || math.IsInf(x, 0):
		return x
	case a >= 65520:
		return math.Copysign(math.Inf(1), x)
	}
	_, e := math.Frexp(a) // a = f * 2^e with f in [0.5, 1)
	exp := max(e-1, -14)  // subnormals share the exponent of the smallest normal
	ulp := math.Ldexp(1, exp-10)
	// a/ulp and the product are exact: ulp is a power of two and the
	// quotient is below 2^11.
	return math.Copysign(math.RoundToEven(a/ulp)*ulp, x)
}

// attention is multi-head self-attention without padding: it returns the
// concatenated per-head contexts [seq][hidden] (before the output dense).
func (o *Oracle) attention(x [][]float64, ly oracleLayer) [][]float64 {
	q, k, v := ly.q.apply(x), ly.k.apply(x), ly.v.apply(x)
	seq, d := len(x), o.hidden/o.heads
	scale := 1 / math.Sqrt(float64(d))
	ctx := make([][]float64, seq)
	for i := range ctx {
		ctx[i] = make([]float64, o.hidden)
	}
	scores := make([]float64, seq)
	for hd := 0; hd < o.heads; hd++ {
		lo, hi := hd*d, (hd+1)*d
		for i := 0; i < seq; i++ {
			m := math.Inf(-1)
			for j := 0; j < seq; j++ {
				scores[j] = dot(q[i][lo:hi], k[j][lo:hi]) * scale
				m = math.Max(m, scores[j])
			}
			var sum float64
			for j := range scores {
				scores[j] = math.Exp(scores[j] - m)
				sum += scores[j]
			}
			for j := 0; j < seq; j++ {
				p := scores[j] / sum
				for c := lo; c < hi; c++ {
					ctx[i][c] += p * v[j][c]
				}
			}
		}
	}
	return ctx
}

// layerNorm returns gamma * (x - mean) / sqrt(var + eps) + beta.
func (o *Oracle) layerNorm(x []float64, p layerNormW) []float64 { return layerNormRow(x, p, o.eps) }

// layerNormRow returns gamma * (x - mean) / sqrt(var + eps) + beta, with
// the mean and the (biased) variance computed in two passes.
func layerNormRow(x []float64, p layerNormW, eps float64) []float64 {
	n := float64(len(x))
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= n
	var variance float64
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= n
	inv := 1 / math.Sqrt(variance+eps)
	out := make([]float64, len(x))
	for k, v := range x {
		out[k] = (v-mean)*inv*p.gamma[k] + p.beta[k]
	}
	return out
}

// apply computes W x + b for every row of x.
func (d denseW) apply(x [][]float64) [][]float64 {
	y := make([][]float64, len(x))
	for i, xi := range x {
		yi := make([]float64, d.out)
		for o := 0; o < d.out; o++ {
			yi[o] = dot(d.w[o*d.in:(o+1)*d.in], xi) + d.b[o]
		}
		y[i] = yi
	}
	return y
}

// gelu is the exact GELU, x * Phi(x).
func gelu(x float64) float64 {
	return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
}

// dot is the inner product of two equally long vectors.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}
