package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/safetensors"
)

// LlamaOracle is an independent float64 implementation of Hugging Face's
// LlamaForCausalLM and MistralForCausalLM, for the models GenerateLlama
// writes (and any checkpoint of the same shape). It reads config.json and
// the safetensors weights (model.safetensors, or the shards that
// model.safetensors.index.json lists; F32, BF16 and F16 converted exactly),
// never model.onnx nor the seed, and computes the rotary frequencies
// (llama3 rescaling included) itself in float64: comparing it with ONNX
// Runtime on model.onnx checks the graph and its weights, and comparing it
// with the CUDA engine checks the engine. Positions are 0..n-1 (what a
// right-padded row gives at its real tokens). It holds no mutable state:
// one LlamaOracle may serve concurrent calls.
type LlamaOracle struct {
	family                        string
	vocab, hidden, heads, kvHeads int
	headDim, inter, layerCount    int
	maxPos                        int
	eps                           float64
	invFreq                       []float64 // [headDim/2]
	embed                         []float64 // [vocab][hidden]
	lmHead                        []float64 // [vocab][hidden]; == embed when tied
	norm                          []float64
	layers                        []llamaOracleLayer
	tied                          bool
	ropeTheta                     float64
	ropeFactor, ropeLow, ropeHigh float64 // llama3 scaling; ropeFactor 0: none
	ropeOriginal                  float64
}

// linearW is nn.Linear's weight [out][in], row-major, without bias.
type linearW struct {
	w       []float64
	out, in int
}

type llamaOracleLayer struct {
	inputNorm, postNorm []float64
	q, k, v, o          linearW
	gate, up, down      linearW
}

// llamaConfigFile is the part of config.json the oracle reads.
type llamaConfigFile struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	VocabSize             int             `json:"vocab_size"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	HiddenAct             string          `json:"hidden_act"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RMSNormEps            float64         `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	AttentionBias         bool            `json:"attention_bias"`
	MLPBias               bool            `json:"mlp_bias"`
	SlidingWindow         *int            `json:"sliding_window"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
}

// LoadLlamaOracle reads dir/config.json and the safetensors weights of a
// Llama- or Mistral-shaped model. It refuses, naming the field, what it
// does not compute: another architecture, hidden_act other than silu,
// attention or MLP biases, a sliding window, rope_scaling other than
// llama3.
func LoadLlamaOracle(dir string) (*LlamaOracle, error) {
	o, err := loadLlamaOracle(dir)
	if err != nil {
		return nil, fmt.Errorf("testmodel: llama oracle: %s: %w", dir, err)
	}
	return o, nil
}

func loadLlamaOracle(dir string) (*LlamaOracle, error) {
	cb, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	var c llamaConfigFile
	if err := json.Unmarshal(cb, &c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ConfigFile, err)
	}
	o := &LlamaOracle{
		family: llamaFamilyOf(c.ModelType), vocab: c.VocabSize, hidden: c.HiddenSize, heads: c.NumAttentionHeads,
		inter: c.IntermediateSize, layerCount: c.NumHiddenLayers, maxPos: c.MaxPositionEmbeddings, eps: c.RMSNormEps,
		ropeTheta: 10000, // transformers' default (tie_word_embeddings defaults to false)
	}
	if o.family == "" || len(c.Architectures) != 1 || llamaFamilyOf(c.Architectures[0]) != o.family {
		return nil, fmt.Errorf("%s: model_type %q with architectures %v, want llama with LlamaForCausalLM or mistral with MistralForCausalLM",
			ConfigFile, c.ModelType, c.Architectures)
	}
	o.kvHeads = o.heads
	if c.NumKeyValueHeads != nil {
		o.kvHeads = *c.NumKeyValueHeads
	}
	if o.heads > 0 {
		o.headDim = o.hidden / o.heads
	}
	if c.HeadDim != nil {
		o.headDim = *c.HeadDim
	}
	if c.RopeTheta != nil {
		o.ropeTheta = *c.RopeTheta
	}
	if c.TieWordEmbeddings != nil {
		o.tied = *c.TieWordEmbeddings
	}
	switch {
	case c.HiddenAct != "silu":
		return nil, fmt.Errorf("%s: hidden_act %q, want \"silu\"", ConfigFile, c.HiddenAct)
	case c.AttentionBias:
		return nil, fmt.Errorf("%s: attention_bias true is not computed", ConfigFile)
	case c.MLPBias:
		return nil, fmt.Errorf("%s: mlp_bias true is not computed", ConfigFile)
	case c.SlidingWindow != nil:
		return nil, fmt.Errorf("%s: sliding_window %d is not computed (want null)", ConfigFile, *c.SlidingWindow)
	case o.vocab < 1 || o.hidden < 1 || o.layerCount < 1 || o.inter < 1 || o.maxPos < 1:
		return nil, fmt.Errorf("%s: vocab_size %d, hidden_size %d, num_hidden_layers %d, intermediate_size %d, max_position_embeddings %d: want all >= 1",
			ConfigFile, o.vocab, o.hidden, o.layerCount, o.inter, o.maxPos)
	case o.heads < 1 || o.kvHeads < 1 || o.heads%o.kvHeads != 0:
		return nil, fmt.Errorf("%s: num_key_value_heads %d does not divide num_attention_heads %d", ConfigFile, o.kvHeads, o.heads)
	case o.headDim < 2 || o.headDim%2 != 0:
		return nil, fmt.Errorf("%s: head_dim %d, want even and >= 2", ConfigFile, o.headDim)
	case !(o.eps > 0):
		return nil, fmt.Errorf("%s: rms_norm_eps %v, want > 0", ConfigFile, o.eps)
	case !(o.ropeTheta > 0):
		return nil, fmt.Errorf("%s: rope_theta %v, want > 0", ConfigFile, o.ropeTheta)
	}
	if err := o.readRopeScaling(c.RopeScaling); err != nil {
		return nil, err
	}
	o.invFreq = o.computeInvFreq()

	st, err := openLlamaSafeTensors(dir)
	if err != nil {
		return nil, err
	}
	defer st.close()
	h, qd, kvd := o.hidden, o.heads*o.headDim, o.kvHeads*o.headDim
	lin := func(name string, out, in int) linearW {
		return linearW{w: st.read(name, out, in), out: out, in: in}
	}
	o.embed = st.read(llamaNameEmbed, o.vocab, h)
	for l := 0; l < o.layerCount; l++ {
		o.layers = append(o.layers, llamaOracleLayer{
			inputNorm: st.read(llamaLayer(l, "input_layernorm.weight"), h),
			postNorm:  st.read(llamaLayer(l, "post_attention_layernorm.weight"), h),
			q:         lin(llamaLayer(l, "self_attn.q_proj.weight"), qd, h),
			k:         lin(llamaLayer(l, "self_attn.k_proj.weight"), kvd, h),
			v:         lin(llamaLayer(l, "self_attn.v_proj.weight"), kvd, h),
			o:         lin(llamaLayer(l, "self_attn.o_proj.weight"), h, qd),
			gate:      lin(llamaLayer(l, "mlp.gate_proj.weight"), o.inter, h),
			up:        lin(llamaLayer(l, "mlp.up_proj.weight"), o.inter, h),
			down:      lin(llamaLayer(l, "mlp.down_proj.weight"), h, o.inter),
		})
	}
	o.norm = st.read(llamaNameNorm, h)
	if o.tied {
		o.lmHead = o.embed
	} else {
		o.lmHead = st.read(llamaNameLMHead, o.vocab, h)
	}
	if st.err != nil {
		return nil, st.err
	}
	return o, nil
}

// readRopeScaling accepts null or a llama3 rope_scaling.
func (o *LlamaOracle) readRopeScaling(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s struct {
		RopeType             string   `json:"rope_type"`
		Type                 string   `json:"type"` // the older name
		Factor               *float64 `json:"factor"`
		LowFreqFactor        *float64 `json:"low_freq_factor"`
		HighFreqFactor       *float64 `json:"high_freq_factor"`
		OriginalMaxPositions *float64 `json:"original_max_position_embeddings"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("%s: rope_scaling: %w", ConfigFile, err)
	}
	kind := s.RopeType
	if kind == "" {
		kind = s.Type
	}
	if kind != "llama3" {
		return fmt.Errorf("%s: rope_scaling.rope_type %q is not computed (want llama3 or null)", ConfigFile, kind)
	}
	if s.Factor == nil || s.LowFreqFactor == nil || s.HighFreqFactor == nil || s.OriginalMaxPositions == nil {
		return fmt.Errorf("%s: rope_scaling llama3 needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings", ConfigFile)
	}
	o.ropeFactor, o.ropeLow, o.ropeHigh, o.ropeOriginal = *s.Factor, *s.LowFreqFactor, *s.HighFreqFactor, *s.OriginalMaxPositions
	if !(o.ropeFactor > 0) || !(o.ropeLow > 0) || !(o.ropeHigh > o.ropeLow) || !(o.ropeOriginal > 0) {
		return fmt.Errorf("%s: rope_scaling %s: want factor > 0, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0",
			ConfigFile, raw)
	}
	return nil
}

// computeInvFreq returns the rotary frequencies in float64: theta^(-2j/d),
// then, with llama3 scaling, by wavelength 2 pi / f: below
// original/high_freq_factor unchanged, above original/low_freq_factor
// divided by factor, in between the interpolation
// (1 - s) f/factor + s f with s = (original/wavelength - low) / (high - low).
func (o *LlamaOracle) computeInvFreq() []float64 {
	d := o.headDim
	out := make([]float64, d/2)
	for j := range out {
		f := math.Exp(-float64(2*j) / float64(d) * math.Log(o.ropeTheta))
		if o.ropeFactor > 0 {
			wavelength := 2 * math.Pi / f
			switch {
			case wavelength < o.ropeOriginal/o.ropeHigh:
			case wavelength > o.ropeOriginal/o.ropeLow:
				f /= o.ropeFactor
			default:
				s := (o.ropeOriginal/wavelength - o.ropeLow) / (o.ropeHigh - o.ropeLow)
				f = (1-s)*f/o.ropeFactor + s*f
			}
		}
		out[j] = f
	}
	return out
}

// llamaSafeTensors reads tensors from model.safetensors or the shards of
// model.safetensors.index.json, remembering the first error.
type llamaSafeTensors struct {
	files  map[string]*safetensors.File // by file name
	byName map[string]string            // tensor -> file name
	err    error
}

func openLlamaSafeTensors(dir string) (*llamaSafeTensors, error) {
	st := &llamaSafeTensors{files: map[string]*safetensors.File{}, byName: map[string]string{}}
	ib, err := os.ReadFile(filepath.Join(dir, SafeTensorsIndexFile))
	switch {
	case err == nil:
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(ib, &index); err != nil {
			return nil, fmt.Errorf("parse %s: %w", SafeTensorsIndexFile, err)
		}
		if len(index.WeightMap) == 0 {
			return nil, fmt.Errorf("%s: empty weight_map", SafeTensorsIndexFile)
		}
		st.byName = index.WeightMap
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	var names []string
	if len(st.byName) == 0 {
		names = []string{SafeTensorsFile}
	} else {
		seen := map[string]bool{}
		for _, f := range st.byName {
			if !seen[f] {
				seen[f] = true
				names = append(names, f)
			}
		}
		sort.Strings(names)
	}
	for _, name := range names {
		if filepath.Base(name) != name {
			st.close()
			return nil, fmt.Errorf("%s names %q, not a file beside it", SafeTensorsIndexFile, name)
		}
		f, err := safetensors.Open(filepath.Join(dir, name))
		if err != nil {
			st.close()
			return nil, err
		}
		st.files[name] = f
		if len(names) == 1 && len(st.byName) == 0 {
			for _, t := range f.Names() {
				st.byName[t] = name
			}
		}
	}
	return st, nil
}

// read returns tensor name as float64, checking its shape against dims.
func (st *llamaSafeTensors) read(name string, dims ...int) []float64 {
	if st.err != nil {
		return nil
	}
	file, ok := st.byName[name]
	if !ok {
		st.err = fmt.Errorf("no tensor %s in the safetensors weights", name)
		return nil
	}
	vals, shape, err := st.files[file].Float32(name)
	if err != nil {
		st.err = err
		return nil
	}
	if len(shape) != len(dims) {
		st.err = fmt.Errorf("%s: tensor %s has shape %v, want %v", file, name, shape, dims)
		return nil
	}
	for i := range dims {
		if shape[i] != dims[i] {
			st.err = fmt.Errorf("%s: tensor %s has shape %v, want %v", file, name, shape, dims)
			return nil
		}
	}
	out := make([]float64, len(vals))
	for i, v := range vals {
		out[i] = float64(v)
	}
	return out
}

func (st *llamaSafeTensors) close() {
	for _, f := range st.files {
		_ = f.Close()
	}
}

// Family is config.json's model_type: FamilyLlama or FamilyMistral.
func (o *LlamaOracle) Family() string { return o.family }

// VocabSize is the number of logits per position (vocab_size).
func (o *LlamaOracle) VocabSize() int { return o.vocab }

// Hidden is the hidden size of the model.
func (o *LlamaOracle) Hidden() int { return o.hidden }

// MaxLength is the longest sequence the oracle accepts
// (max_position_embeddings).
func (o *LlamaOracle) MaxLength() int { return o.maxPos }

// Validate reports why Logits would refuse ids (nil when it accepts them).
func (o *LlamaOracle) Validate(ids []int32) error {
	return checkSequence("llama oracle", ids, o.vocab, o.maxPos)
}

// Logits returns the LM-head logits [seq][vocab] of one unpadded sequence
// at positions 0..seq-1, with causal attention (query i sees keys j <= i)
// or, with bidirectional, every key. It returns nil when Validate rejects
// ids.
func (o *LlamaOracle) Logits(ids []int32, bidirectional bool) [][]float64 {
	if o.Validate(ids) != nil {
		return nil
	}
	h, n := o.hidden, len(ids)
	x := make([][]float64, n)
	for i, id := range ids {
		x[i] = append([]float64(nil), o.embed[int(id)*h:(int(id)+1)*h]...)
	}
	for _, ly := range o.layers {
		a := ly.o.apply(o.attention(rmsNormRows(x, ly.inputNorm, o.eps), ly, bidirectional))
		addInto(x, a)
		t := rmsNormRows(x, ly.postNorm, o.eps)
		gate, up := ly.gate.apply(t), ly.up.apply(t)
		for i := range gate {
			for k, g := range gate[i] {
				gate[i][k] = g / (1 + math.Exp(-g)) * up[i][k] // silu(gate) * up
			}
		}
		addInto(x, ly.down.apply(gate))
	}
	t := rmsNormRows(x, o.norm, o.eps)
	logits := make([][]float64, n)
	for i := range logits {
		logits[i] = make([]float64, o.vocab)
	}
	o.project(t, logits)
	return logits
}

// Pooled is PooledFrom(ids, 0, pooling, bidirectional).
func (o *LlamaOracle) Pooled(ids []int32, pooling string, bidirectional bool) []float64 {
	return o.PooledFrom(ids, 0, pooling, bidirectional)
}

// PooledFrom returns the SPLADE vector of one unpadded sequence over
// positions from..len(ids)-1 (the model reads the whole sequence):
// log(1 + relu(z)) of the logits z, then "max" or "sum" over those
// positions (encode.PoolReference). With --echo the input is the text
// twice and from is the first position of the second copy. It returns nil
// for another pooling name, ids that Logits rejects or from outside
// [0, len(ids)).
func (o *LlamaOracle) PooledFrom(ids []int32, from int, pooling string, bidirectional bool) []float64 {
	p, err := encode.ParsePooling(pooling)
	if err != nil || from < 0 || from >= len(ids) {
		return nil
	}
	logits := o.Logits(ids, bidirectional)
	if logits == nil {
		return nil
	}
	return encode.PoolReference(logits[from:], nil, p)
}

// rmsNormRows is LlamaRMSNorm of every row: x / sqrt(mean(x^2) + eps) * w.
func rmsNormRows(x [][]float64, w []float64, eps float64) [][]float64 {
	out := make([][]float64, len(x))
	for i, row := range x {
		var ss float64
		for _, v := range row {
			ss += v * v
		}
		r := 1 / math.Sqrt(ss/float64(len(row))+eps)
		o := make([]float64, len(row))
		for k, v := range row {
			o[k] = w[k] * (v * r)
		}
		out[i] = o
	}
	return out
}

// rotate applies the rotary embedding of position p to one head vector in
// place (HF rotate_half: the pairs are (j, j + d/2)).
func (o *LlamaOracle) rotate(v []float64, p int) {
	half := len(v) / 2
	for j := 0; j < half; j++ {
		s, c := math.Sincos(float64(p) * o.invFreq[j])
		a, b := v[j], v[j+half]
		v[j], v[j+half] = a*c-b*s, b*c+a*s
	}
}

// attention is grouped-query self-attention with rotary embeddings: query
// head hq reads key/value head hq / (heads/kvHeads). It returns the
// concatenated per-head contexts [seq][heads*headDim] (before o_proj).
func (o *LlamaOracle) attention(x [][]float64, ly llamaOracleLayer, bidirectional bool) [][]float64 {
	q, k, v := ly.q.apply(x), ly.k.apply(x), ly.v.apply(x)
	n, d := len(x), o.headDim
	for i := 0; i < n; i++ {
		for hd := 0; hd < o.heads; hd++ {
			o.rotate(q[i][hd*d:(hd+1)*d], i)
		}
		for hd := 0; hd < o.kvHeads; hd++ {
			o.rotate(k[i][hd*d:(hd+1)*d], i)
		}
	}
	group := o.heads / o.kvHeads
	scale := 1 / math.Sqrt(float64(d))
	ctx := make([][]float64, n)
	for i := range ctx {
		ctx[i] = make([]float64, o.heads*d)
	}
	scores := make([]float64, n)
	for hq := 0; hq < o.heads; hq++ {
		kv := hq / group
		for i := 0; i < n; i++ {
			last := i
			if bidirectional {
				last = n - 1
			}
			qi := q[i][hq*d : (hq+1)*d]
			m := math.Inf(-1)
			for j := 0; j <= last; j++ {
				scores[j] = dot(qi, k[j][kv*d:(kv+1)*d]) * scale
				m = math.Max(m, scores[j])
			}
			var sum float64
			for j := 0; j <= last; j++ {
				scores[j] = math.Exp(scores[j] - m)
				sum += scores[j]
			}
			out := ctx[i][hq*d : (hq+1)*d]
			for j := 0; j <= last; j++ {
				p := scores[j] / sum
				for c, vv := range v[j][kv*d : (kv+1)*d] {
					out[c] += p * vv
				}
			}
		}
	}
	return ctx
}

// apply computes x W^T for every row of x.
func (l linearW) apply(x [][]float64) [][]float64 {
	y := make([][]float64, len(x))
	for i, xi := range x {
		yi := make([]float64, l.out)
		for r := range yi {
			yi[r] = dot(xi, l.w[r*l.in:(r+1)*l.in])
		}
		y[i] = yi
	}
	return y
}

// project sets logits[i][j] = <t_i, lm_head_j>, the vocabulary split among
// goroutines.
func (o *LlamaOracle) project(t, logits [][]float64) {
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
