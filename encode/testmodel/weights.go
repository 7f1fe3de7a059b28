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
	// padTokenID is the id whose word embedding is zero.
	padTokenID = 0
)

// tensorSpec is one float32 initializer, generated row by row.
type tensorSpec struct {
	name string
	dims []int64
	// fill writes row `row` (length = last dim) using r.
	fill func(r *rng, row int, dst []float32)
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

// weightSpecs lists every parameter of the model in state-dict order.
func weightSpecs(cfg Config, vocab int) []tensorSpec {
	h, inter := int64(cfg.Hidden), int64(cfg.Intermediate)
	hf := float64(cfg.Hidden)
	eps := math.Sqrt(residualBudget / float64(2*cfg.Layers))
	specs := []tensorSpec{
		{nameWordEmb, []int64{int64(vocab), h}, unitRowFill(wordStd*math.Sqrt(hf), padTokenID)},
		{namePosEmb, []int64{int64(cfg.MaxPositions), h}, normalFill(0, posStd)},
		{nameTypeEmb, []int64{int64(cfg.TypeVocab), h}, normalFill(0, posStd)},
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
	specs = append(specs, ln(nameEmbLN, 1)...)
	unit := 1 / math.Sqrt(hf)
	for l := 0; l < cfg.Layers; l++ {
		specs = append(specs, dense(layerName(l, "attention.self.query"), h, h, unit)...)
		specs = append(specs, dense(layerName(l, "attention.self.key"), h, h, unit)...)
		specs = append(specs, dense(layerName(l, "attention.self.value"), h, h, unit)...)
		specs = append(specs, dense(layerName(l, "attention.output.dense"), h, h, eps*unit)...)
		specs = append(specs, ln(layerName(l, "attention.output.LayerNorm"), 1)...)
		specs = append(specs, dense(layerName(l, "intermediate.dense"), inter, h, unit)...)
		specs = append(specs, dense(layerName(l, "output.dense"), h, inter,
			eps/math.Sqrt(geluSecondMoment*float64(cfg.Intermediate)))...)
		specs = append(specs, ln(layerName(l, "output.LayerNorm"), 1)...)
	}
	specs = append(specs,
		tensorSpec{nameHeadDense + ".weight", []int64{h, h}, identityFill(headAlpha, headNoise)},
		tensorSpec{nameHeadDense + ".bias", []int64{h}, normalFill(0, headAlpha*biasStd)},
	)
	// LayerNorm output has norm ~sqrt(H); word rows have norm wordStd*sqrt(H):
	// this gain makes <h, E_j> = logitScale*cos(h, E_j).
	specs = append(specs, ln(nameHeadLN, logitScale/(wordStd*hf))...)
	sigma := logitScale / math.Sqrt(hf) // std of a random token's logit
	specs = append(specs, tensorSpec{nameOutBias, []int64{int64(vocab)}, normalFill(-biasSigmas*sigma, biasJitter*sigma)})
	return specs
}
