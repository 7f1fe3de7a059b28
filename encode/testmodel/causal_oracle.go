package testmodel

import (
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

// CausalOracle is an independent float64 implementation of the GPT-2 causal
// LM that GenerateCausal writes. Like Oracle it reads the weights from the
// initializers of model.onnx (never from the seed) and the head count,
// layer count, LayerNorm epsilon and activation from config.json, so
// comparing it with an ONNX runtime checks the graph. Attention is computed
// over the keys j <= i of each query i only (no mask values), which is what
// the model's additive mask amounts to in float32. For a float16 logits
// output (CausalConfig.FP16) the logits are rounded to float16. It holds no
// mutable state: one CausalOracle may serve concurrent calls.
//
// Measured against ONNX Runtime 1.30 on the CPU (gpu/ort's causal tests:
// right-padded batches of real GPT-2 and Mistral token ids, opsets 14, 17,
// 18 and 21, with and without position_ids), logits agree to about 8e-6.
type CausalOracle struct {
	vocab, hidden, heads, maxPos int
	eps                          float64
	fp16                         bool

	wte, wpe []float64 // [rows * hidden], row-major
	layers   []causalOracleLayer
	lnF      layerNormW
	lmHead   []float64 // [vocab * hidden], row-major
}

// conv1DW is GPT-2's Conv1D: y = x W + b with W stored [in, out].
type conv1DW struct {
	w       []float64
	b       []float64
	in, out int
}

type causalOracleLayer struct {
	ln1, ln2       layerNormW
	attn, attnProj conv1DW
	mlpFC, mlpProj conv1DW
}

// LoadCausalOracle reads dir/model.onnx and dir/config.json of a model that
// GenerateCausal wrote.
func LoadCausalOracle(dir string) (*CausalOracle, error) {
	var conf struct {
		ModelType          string  `json:"model_type"`
		NHead              int     `json:"n_head"`
		NLayer             int     `json:"n_layer"`
		LayerNormEpsilon   float64 `json:"layer_norm_epsilon"`
		ActivationFunction string  `json:"activation_function"`
	}
	cpath := filepath.Join(dir, ConfigFile)
	cb, err := os.ReadFile(cpath)
	if err != nil {
		return nil, fmt.Errorf("testmodel: causal oracle: %w", err)
	}
	if err := json.Unmarshal(cb, &conf); err != nil {
		return nil, fmt.Errorf("testmodel: causal oracle: parse %s: %w", cpath, err)
	}
	if conf.ModelType != "gpt2" || conf.ActivationFunction != causalActivation {
		return nil, fmt.Errorf("testmodel: causal oracle: %s: model_type %q with activation %q, want \"gpt2\" with %q",
			cpath, conf.ModelType, conf.ActivationFunction, causalActivation)
	}
	mpath := filepath.Join(dir, ModelFile)
	mb, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("testmodel: causal oracle: %w", err)
	}
	var model onnxpb.ModelProto
	if err := proto.Unmarshal(mb, &model); err != nil {
		return nil, fmt.Errorf("testmodel: causal oracle: parse %s: %w", mpath, err)
	}
	if model.Graph == nil {
		return nil, fmt.Errorf("testmodel: causal oracle: %s has no graph", mpath)
	}
	fp16, err := logitsFloat16(model.Graph)
	if err != nil {
		return nil, fmt.Errorf("testmodel: causal oracle: %s: %w", mpath, err)
	}
	inits := make(map[string]*onnxpb.TensorProto, len(model.Graph.Initializer))
	for _, t := range model.Graph.Initializer {
		inits[t.Name] = t
	}
	r := &weightReader{inits: inits, path: mpath}
	conv := func(prefix string) conv1DW {
		w, dims := r.matrix(prefix + ".weight")
		b, _ := r.vector(prefix + ".bias")
		if r.err != nil {
			return conv1DW{}
		}
		return conv1DW{w: w, b: b, in: dims[0], out: dims[1]}
	}

	o := &CausalOracle{heads: conf.NHead, eps: conf.LayerNormEpsilon, fp16: fp16}
	var dims []int
	o.wte, dims = r.matrix(nameWTE)
	if len(dims) == 2 {
		o.vocab, o.hidden = dims[0], dims[1]
	}
	o.wpe, dims = r.matrix(nameWPE)
	if len(dims) == 2 {
		o.maxPos = dims[0]
	}
	for l := 0; l < conf.NLayer; l++ {
		o.layers = append(o.layers, causalOracleLayer{
			ln1:      r.layerNorm(gpt2Layer(l, "ln_1")),
			attn:     conv(gpt2Layer(l, "attn.c_attn")),
			attnProj: conv(gpt2Layer(l, "attn.c_proj")),
			ln2:      r.layerNorm(gpt2Layer(l, "ln_2")),
			mlpFC:    conv(gpt2Layer(l, "mlp.c_fc")),
			mlpProj:  conv(gpt2Layer(l, "mlp.c_proj")),
		})
	}
	o.lnF = r.layerNorm(nameLNF)
	o.lmHead, dims = r.matrix(nameLMHead)
	if r.err != nil {
		return nil, fmt.Errorf("testmodel: causal oracle: %w", r.err)
	}
	if len(dims) != 2 || dims[0] != o.vocab || dims[1] != o.hidden {
		return nil, fmt.Errorf("testmodel: causal oracle: %s: %s has dims %v, want [%d, %d]", mpath, nameLMHead, dims, o.vocab, o.hidden)
	}
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("testmodel: causal oracle: %s: %w", dir, err)
	}
	return o, nil
}

// check verifies that the shapes fit together, so that the forward pass
// cannot index out of range.
func (o *CausalOracle) check() error {
	h := o.hidden
	switch {
	case o.vocab < 1 || h < 1:
		return fmt.Errorf("bad word embedding shape [%d, %d]", o.vocab, h)
	case o.heads < 1 || h%o.heads != 0:
		return fmt.Errorf("n_head %d does not divide hidden size %d", o.heads, h)
	case !(o.eps > 0):
		return fmt.Errorf("layer_norm_epsilon %v, want > 0", o.eps)
	case len(o.layers) == 0:
		return fmt.Errorf("n_layer is 0")
	case o.maxPos < 1 || len(o.wpe) != o.maxPos*h:
		return fmt.Errorf("position embeddings do not have %d columns", h)
	}
	checkLN := func(ln layerNormW) error {
		if len(ln.gamma) != h || len(ln.beta) != h {
			return fmt.Errorf("LayerNorm parameters of length %d/%d, want %d", len(ln.gamma), len(ln.beta), h)
		}
		return nil
	}
	checkConv := func(c conv1DW, in, out int) error {
		if c.in != in || c.out != out || len(c.b) != out {
			return fmt.Errorf("Conv1D [%d, %d] with %d biases, want [%d, %d]", c.in, c.out, len(c.b), in, out)
		}
		return nil
	}
	errs := []error{checkLN(o.lnF)}
	inter := o.layers[0].mlpFC.out
	for _, ly := range o.layers {
		errs = append(errs, checkLN(ly.ln1), checkLN(ly.ln2),
			checkConv(ly.attn, h, 3*h), checkConv(ly.attnProj, h, h),
			checkConv(ly.mlpFC, h, inter), checkConv(ly.mlpProj, inter, h))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// VocabSize is the number of logits per position.
func (o *CausalOracle) VocabSize() int { return o.vocab }

// Hidden is the hidden size of the model.
func (o *CausalOracle) Hidden() int { return o.hidden }

// MaxLength is the longest sequence the position embeddings allow.
func (o *CausalOracle) MaxLength() int { return o.maxPos }

// Float16Logits reports whether the model's logits output is float16, so
// that Logits and the pooling round the logits to float16.
func (o *CausalOracle) Float16Logits() bool { return o.fp16 }

// Validate reports why Logits would refuse ids (nil when it accepts them).
func (o *CausalOracle) Validate(ids []int32) error {
	return checkSequence("causal oracle", ids, o.vocab, o.maxPos)
}

// Logits returns the LM-head logits [seq][vocab] of one unpadded sequence
// at positions 0..seq-1 (what a right-padded row gives at its unmasked
// positions), as the model outputs them: rounded to float16 for a float16
// model. It returns nil when Validate rejects ids.
func (o *CausalOracle) Logits(ids []int32) [][]float64 {
	return roundLogits(o.Float64Logits(ids), o.fp16)
}

// Float64Logits is Logits without the rounding of a float16 model.
func (o *CausalOracle) Float64Logits(ids []int32) [][]float64 {
	if o.Validate(ids) != nil {
		return nil
	}
	h, seq := o.hidden, len(ids)
	x := make([][]float64, seq)
	for i, id := range ids {
		row := make([]float64, h)
		for k := range row {
			row[k] = o.wte[int(id)*h+k] + o.wpe[i*h+k]
		}
		x[i] = row
	}
	for _, ly := range o.layers {
		a := ly.attnProj.apply(o.causalAttention(o.norm(x, ly.ln1), ly.attn))
		addInto(x, a)
		m := ly.mlpFC.apply(o.norm(x, ly.ln2))
		for _, row := range m {
			for k, v := range row {
				row[k] = geluTanh(v)
			}
		}
		addInto(x, ly.mlpProj.apply(m))
	}
	t := o.norm(x, o.lnF)
	logits := make([][]float64, seq)
	for i := range logits {
		logits[i] = make([]float64, o.vocab)
	}
	o.project(t, logits)
	return logits
}

// Pooled returns the SPLADE vector over every position of one unpadded
// sequence, the naive way, encode.PoolReference: log(1 + relu(z_ij)) at
// each position, then "max" or "sum" over positions, z being what Logits
// returns. It returns nil for another pooling name or for ids that Logits
// rejects.
func (o *CausalOracle) Pooled(ids []int32, pooling string) []float64 {
	return o.PooledFrom(ids, 0, pooling)
}

// PooledFrom is Pooled over positions from..len(ids)-1 only; the model
// still reads the whole sequence (the echo variant of causal encoders
// repeats the text and pools the second copy, whose positions have seen the
// whole text). It returns nil when from is outside [0, len(ids)).
func (o *CausalOracle) PooledFrom(ids []int32, from int, pooling string) []float64 {
	p, err := encode.ParsePooling(pooling)
	if err != nil || from < 0 || from >= len(ids) {
		return nil
	}
	logits := o.Logits(ids)
	if logits == nil {
		return nil
	}
	return encode.PoolReference(logits[from:], nil, p)
}

// norm applies LayerNorm p to every row of x (two-pass mean and biased
// variance), returning new rows.
func (o *CausalOracle) norm(x [][]float64, p layerNormW) [][]float64 {
	out := make([][]float64, len(x))
	for i, row := range x {
		out[i] = layerNormRow(row, p, o.eps)
	}
	return out
}

// causalAttention is causal multi-head self-attention: Q, K and V are the
// three thirds of x c_attn, and query i attends to keys 0..i. It returns
// the concatenated per-head contexts [seq][hidden] (before c_proj).
func (o *CausalOracle) causalAttention(x [][]float64, cAttn conv1DW) [][]float64 {
	qkv := cAttn.apply(x)
	h, seq, d := o.hidden, len(x), o.hidden/o.heads
	scale := 1 / math.Sqrt(float64(d))
	ctx := make([][]float64, seq)
	for i := range ctx {
		ctx[i] = make([]float64, h)
	}
	scores := make([]float64, seq)
	for hd := 0; hd < o.heads; hd++ {
		lo, hi := hd*d, (hd+1)*d
		for i := 0; i < seq; i++ {
			q := qkv[i][lo:hi]
			m := math.Inf(-1)
			for j := 0; j <= i; j++ {
				scores[j] = dot(q, qkv[j][h+lo:h+hi]) * scale
				m = math.Max(m, scores[j])
			}
			var sum float64
			for j := 0; j <= i; j++ {
				scores[j] = math.Exp(scores[j] - m)
				sum += scores[j]
			}
			for j := 0; j <= i; j++ {
				p := scores[j] / sum
				v := qkv[j][2*h+lo : 2*h+hi]
				for c := range v {
					ctx[i][lo+c] += p * v[c]
				}
			}
		}
	}
	return ctx
}

// project sets logits[i][j] = <t_i, lm_head_j>. The vocabulary is split
// among goroutines; each LM head row is read once for all positions.
func (o *CausalOracle) project(t, logits [][]float64) {
	h := o.hidden
	workers := min(runtime.GOMAXPROCS(0), max(1, o.vocab/1024))
	chunk := (o.vocab + workers - 1) / workers
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, o.vocab)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := lo; j < hi; j++ {
				e := o.lmHead[j*h : (j+1)*h]
				for i, ti := range t {
					logits[i][j] = dot(ti, e)
				}
			}
		}()
	}
	wg.Wait()
}

// apply computes x W + b for every row of x.
func (c conv1DW) apply(x [][]float64) [][]float64 {
	y := make([][]float64, len(x))
	for i, xi := range x {
		yi := make([]float64, c.out)
		copy(yi, c.b)
		for k, v := range xi {
			row := c.w[k*c.out : (k+1)*c.out]
			for o, w := range row {
				yi[o] += v * w
			}
		}
		y[i] = yi
	}
	return y
}

// addInto adds a to x, row by row (the residual connection).
func addInto(x, a [][]float64) {
	for i := range x {
		for k, v := range a[i] {
			x[i][k] += v
		}
	}
}

// geluTanh is GPT-2's gelu_new, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}
