package testmodel

import (
	"fmt"
	"math"
)

// Weight distribution. doc.go explains why these values give SPLADE vectors
// with realistic sparsity.
const (
	// wordStd is the per-component scale of the word embeddings: every row
	// (except the padding row, which is zero as in Hugging Face) is a random
	// direction of norm wordStd*sqrt(Hidden).
	wordStd = 0.05
	// posStd is the standard deviation of position and token-type embeddings:
	// ten times below the word signal, so that the embedding output stays
	// close to the direction of its token's embedding.
	posStd = 0.005
	// biasStd is the standard deviation of the dense-layer biases.
	biasStd = 0.02
	// lnJitter is the relative jitter of LayerNorm gains around 1 (and the
	// standard deviation of LayerNorm biases).
	lnJitter = 0.02
	// residualBudget is the total squared relative norm that all attention and
	// feed-forward sublayers together add to the residual stream; each of the
	// 2*Layers sublayers gets an equal share (depth-scaled output projections).
	residualBudget = 0.15
	// geluSecondMoment is E[gelu(x)^2] for x ~ N(0, 1), used to scale the
	// feed-forward output projection.
	geluSecondMoment = 0.4252
	// headAlpha scales the MLM transform dense layer, headAlpha*(I + noise):
	// small inputs keep the GELU close to linear, so the transform preserves
	// the direction of the hidden state.
	headAlpha = 0.2
	// headNoise is the relative noise added to that identity.
	headNoise = 0.1
	// logitScale makes logit_j ~= logitScale*cos(h, E_j) + bias_j.
	logitScale = 12.0
	// biasSigmas puts the output bias that many standard deviations of a
	// random token's logit (logitScale/sqrt(Hidden)) below zero.
	biasSigmas = 4.25
	// biasJitter is the per-token jitter of the output bias, in the same units.
	biasJitter = 0.25
	// padTokenID is the id whose word embedding is zero (BERT, DistilBERT).
	padTokenID = 0
	// robertaPadID is RoBERTa's padding id (<pad>, pad_token_id and the
	// padding_idx of its word and position embeddings).
	robertaPadID = 1
)

// tensorSpec is one float32 initializer, generated row by row.
type tensorSpec struct {
	name string
	dims []int64
	// fill writes row `row` (length = last dim) using r.
	fill func(r *rng, row int, dst []float32)
}

// optimumMatMulBase numbers the onnx::MatMul_<n> initializers of a
// Config.OptimumNames model (torch.onnx numbers them after the graph's
// values; any fixed numbering does here).
const optimumMatMulBase = 1000

// optimumMatMulNames maps the Hugging Face name of every dense weight that
// an optimum export stores pre-transposed under a made-up name (every
// nn.Linear: the encoder's and the MLM head transform's) to that name,
// onnx::MatMul_<n>, numbered in state-dict order.
func optimumMatMulNames(cfg Config) map[string]string {
	n := archNamesOf(cfg.Arch)
	var prefixes []string
	for l := 0; l < cfg.Layers; l++ {
		for _, part := range []layerPart{partQuery, partKey, partValue, partAttnOut, partFFNIn, partFFNOut} {
			prefixes = append(prefixes, n.layer(l, part))
		}
	}
	prefixes = append(prefixes, n.headDense)
	names := make(map[string]string, len(prefixes))
	for i, p := range prefixes {
		names[p+".weight"] = fmt.Sprintf("onnx::MatMul_%d", optimumMatMulBase+i)
	}
	return names
}

func (s tensorSpec) rowLen() int { return int(s.dims[len(s.dims)-1]) }

func (s tensorSpec) numRows() int {
	n := 1
	for _, d := range s.dims[:len(s.dims)-1] {
		n *= int(d)
	}
	return n
}

func (s tensorSpec) numel() int { return s.numRows() * s.rowLen() }

func normalFill(mean, std float64) func(*rng, int, []float32) {
	return func(r *rng, _ int, dst []float32) {
		for k := range dst {
			dst[k] = float32(mean + std*r.normal())
		}
	}
}

// uniformFill draws from U(-a, a) with a = sqrt(3)*std (standard deviation
// std), the family of PyTorch's default nn.Linear initialisation; it is also
// several times cheaper than a normal draw, which matters for the 85M dense
// weights of a BERT-base-sized model.
func uniformFill(std float64) func(*rng, int, []float32) {
	a := math.Sqrt(3) * std
	return func(r *rng, _ int, dst []float32) {
		for k := range dst {
			dst[k] = float32(a * (2*r.uniform() - 1))
		}
	}
}

// unitRowFill fills each row with a random direction of the given norm; the
// row padRow (if >= 0) is zero.
func unitRowFill(norm float64, padRow int) func(*rng, int, []float32) {
	return func(r *rng, row int, dst []float32) {
		if row == padRow {
			clear(dst)
			return
		}
		v := make([]float64, len(dst))
		var ss float64
		for k := range v {
			v[k] = r.normal()
			ss += v[k] * v[k]
		}
		scale := norm / math.Sqrt(ss)
		for k := range v {
			dst[k] = float32(v[k] * scale)
		}
	}
}

// zeroRow wraps fill so that row padRow is zero.
func zeroRow(padRow int, fill func(*rng, int, []float32)) func(*rng, int, []float32) {
	return func(r *rng, row int, dst []float32) {
		if row == padRow {
			clear(dst)
			return
		}
		fill(r, row, dst)
	}
}

// identityFill fills a square [out, in] matrix with alpha*(I + noise*N/sqrt(n)).
func identityFill(alpha, noise float64) func(*rng, int, []float32) {
	return func(r *rng, row int, dst []float32) {
		sd := noise / math.Sqrt(float64(len(dst)))
		for k := range dst {
			v := sd * r.normal()
			if k == row {
				v++
			}
			dst[k] = float32(alpha * v)
		}
	}
}

// Hugging Face parameter names (BertForMaskedLM state dict). Dense weights
// keep the PyTorch layout [out, in]; the graph transposes them.
const (
	nameWordEmb   = "bert.embeddings.word_embeddings.weight"
	namePosEmb    = "bert.embeddings.position_embeddings.weight"
	nameTypeEmb   = "bert.embeddings.token_type_embeddings.weight"
	nameEmbLN     = "bert.embeddings.LayerNorm"
	nameHeadDense = "cls.predictions.transform.dense"
	nameHeadLN    = "cls.predictions.transform.LayerNorm"
	nameOutBias   = "cls.predictions.bias"
)

func layerName(l int, suffix string) string {
	return fmt.Sprintf("bert.encoder.layer.%d.%s", l, suffix)
}

// layerPart is one parameterised module of an encoder layer.
type layerPart int

const (
	partQuery   layerPart = iota // attention query projection
	partKey                      // attention key projection
	partValue                    // attention value projection
	partAttnOut                  // attention output projection
	partAttnLN                   // LayerNorm after attention
	partFFNIn                    // feed-forward input dense
	partFFNOut                   // feed-forward output dense
	partFFNLN                    // LayerNorm after the feed-forward
	numLayerParts
)

// archNames are the initializer names (Hugging Face state dict names) of
// an architecture's parameters. Dense and LayerNorm names are prefixes of
// ".weight" and ".bias".
type archNames struct {
	wordEmb, posEmb string
	typeEmb         string // "": no token type embeddings
	embLN           string
	layerFmt        string                // fmt pattern of a layer's prefix, with the layer index
	parts           [numLayerParts]string // suffix of each part after the layer prefix
	headDense       string                // MLM head transform dense
	headLN          string                // MLM head LayerNorm
	outBias         string                // bias of the decoder tied to wordEmb
}

// layer returns the name prefix of a part of layer l.
func (n archNames) layer(l int, part layerPart) string {
	return fmt.Sprintf(n.layerFmt, l) + "." + n.parts[part]
}

var bertParts = [numLayerParts]string{
	"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
	"attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm",
}

// archNamesOf returns the parameter names of arch (a defaulted Config.Arch).
func archNamesOf(arch Arch) archNames {
	switch arch {
	case ArchDistilBERT:
		return archNames{
			wordEmb:  "distilbert.embeddings.word_embeddings.weight",
			posEmb:   "distilbert.embeddings.position_embeddings.weight",
			embLN:    "distilbert.embeddings.LayerNorm",
			layerFmt: "distilbert.transformer.layer.%d",
			parts: [numLayerParts]string{
				"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
				"sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm",
			},
			headDense: "vocab_transform",
			headLN:    "vocab_layer_norm",
			outBias:   "vocab_projector.bias",
		}
	case ArchRoBERTa:
		return archNames{
			wordEmb:   "roberta.embeddings.word_embeddings.weight",
			posEmb:    "roberta.embeddings.position_embeddings.weight",
			typeEmb:   "roberta.embeddings.token_type_embeddings.weight",
			embLN:     "roberta.embeddings.LayerNorm",
			layerFmt:  "roberta.encoder.layer.%d",
			parts:     bertParts,
			headDense: "lm_head.dense",
			headLN:    "lm_head.layer_norm",
			outBias:   "lm_head.bias",
		}
	}
	return archNames{
		wordEmb: nameWordEmb, posEmb: namePosEmb, typeEmb: nameTypeEmb, embLN: nameEmbLN,
		layerFmt: "bert.encoder.layer.%d", parts: bertParts,
		headDense: nameHeadDense, headLN: nameHeadLN, outBias: nameOutBias,
	}
}

// padID is the id of the padding token of arch: its word embedding row is
// zero, as Hugging Face initialises padding_idx (0 for BERT and DistilBERT,
// whose tokenizer's [PAD] is 0; 1 for RoBERTa's <pad>).
func padID(arch Arch) int {
	if arch == ArchRoBERTa {
		return robertaPadID
	}
	return padTokenID
}

// positionRows is the number of position embeddings: MaxPositions, plus
// RoBERTa's offset (padding id + 1) before the first position.
func positionRows(cfg Config) int {
	if cfg.Arch == ArchRoBERTa {
		return cfg.MaxPositions + robertaPadID + 1
	}
	return cfg.MaxPositions
}

// weightSpecs lists every parameter of the model in state-dict order.
func weightSpecs(cfg Config, vocab int) []tensorSpec {
	n := archNamesOf(cfg.Arch)
	h, inter := int64(cfg.Hidden), int64(cfg.Intermediate)
	hf := float64(cfg.Hidden)
	eps := math.Sqrt(residualBudget / float64(2*cfg.Layers))
	pos := normalFill(0, posStd)
	if cfg.Arch == ArchRoBERTa {
		// RoBERTa's position embeddings have padding_idx too (row 1, the
		// position of every padding token): zero, as Hugging Face initialises it.
		pos = zeroRow(robertaPadID, pos)
	}
	specs := []tensorSpec{
		{n.wordEmb, []int64{int64(vocab), h}, unitRowFill(wordStd*math.Sqrt(hf), padID(cfg.Arch))},
		{n.posEmb, []int64{int64(positionRows(cfg)), h}, pos},
	}
	if n.typeEmb != "" {
		specs = append(specs, tensorSpec{n.typeEmb, []int64{int64(cfg.TypeVocab), h}, normalFill(0, posStd)})
	}
	ln := func(prefix string, gain float64) []tensorSpec {
		return []tensorSpec{
			{prefix + ".weight", []int64{h}, normalFill(gain, gain*lnJitter)},
			{prefix + ".bias", []int64{h}, normalFill(0, gain*lnJitter)},
		}
	}
	dense := func(prefix string, out, in int64, std float64) []tensorSpec {
		return []tensorSpec{
			{prefix + ".weight", []int64{out, in}, uniformFill(std)},
			{prefix + ".bias", []int64{out}, normalFill(0, biasStd)},
		}
	}
	specs = append(specs, ln(n.embLN, 1)...)
	unit := 1 / math.Sqrt(hf)
	for l := 0; l < cfg.Layers; l++ {
		specs = append(specs, dense(n.layer(l, partQuery), h, h, unit)...)
		specs = append(specs, dense(n.layer(l, partKey), h, h, unit)...)
		specs = append(specs, dense(n.layer(l, partValue), h, h, unit)...)
		specs = append(specs, dense(n.layer(l, partAttnOut), h, h, eps*unit)...)
		specs = append(specs, ln(n.layer(l, partAttnLN), 1)...)
		specs = append(specs, dense(n.layer(l, partFFNIn), inter, h, unit)...)
		specs = append(specs, dense(n.layer(l, partFFNOut), h, inter,
			eps/math.Sqrt(geluSecondMoment*float64(cfg.Intermediate)))...)
		specs = append(specs, ln(n.layer(l, partFFNLN), 1)...)
	}
	specs = append(specs,
		tensorSpec{n.headDense + ".weight", []int64{h, h}, identityFill(headAlpha, headNoise)},
		tensorSpec{n.headDense + ".bias", []int64{h}, normalFill(0, headAlpha*biasStd)},
	)
	// LayerNorm output has norm ~sqrt(H); word rows have norm wordStd*sqrt(H):
	// this gain makes <h, E_j> = logitScale*cos(h, E_j).
	specs = append(specs, ln(n.headLN, logitScale/(wordStd*hf))...)
	sigma := logitScale / math.Sqrt(hf) // std of a random token's logit
	specs = append(specs, tensorSpec{n.outBias, []int64{int64(vocab)}, normalFill(-biasSigmas*sigma, biasJitter*sigma)})
	return specs
}
