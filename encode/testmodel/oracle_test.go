package testmodel

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode"
)

// TestSparsity checks that SPLADE max pooling of the generated models gives
// realistic vectors on real text: 50 Cranfield documents, each must get some
// non-zero terms, the median tens to a few hundred, most of them tokens of
// the document, with moderate logits.
func TestSparsity(t *testing.T) {
	docs := cranfieldSample(t, 50)
	for _, cfg := range []Config{
		{Layers: 1, Hidden: 32, Heads: 2},
		{Layers: 2, Hidden: 64, Heads: 4},
	} {
		o, err := LoadOracle(generate(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		st := sparsityStats(t, o, docs)
		n := st.nnz
		t.Logf("%dx%dx%d on %d Cranfield docs (%v): non-zeros min %d median %d max %d; max |logit| %.1f; "+
			"%.0f%% of non-zeros are document tokens; %.0f%% of document tokens are non-zero",
			cfg.Layers, cfg.Hidden, cfg.Heads, len(docs), time.Since(start).Round(time.Millisecond),
			n[0], n[len(n)/2], n[len(n)-1], st.maxAbs, 100*st.ownShare, 100*st.ownRecall)
		if med := n[len(n)/2]; med < 20 || med > 400 {
			t.Errorf("median non-zeros %d, want 20..400", med)
		}
		if n[0] == 0 {
			t.Errorf("a document got no non-zero term")
		}
		if n[0] == n[len(n)-1] {
			t.Errorf("every document got %d non-zeros", n[0])
		}
		if st.maxAbs > 30 {
			t.Errorf("max |logit| %.1f, want < 30", st.maxAbs)
		}
		if st.ownShare < 0.5 || st.ownRecall < 0.9 {
			t.Errorf("non-zeros unrelated to the documents: share %.2f, recall %.2f", st.ownShare, st.ownRecall)
		}
	}
}

// TestSparsityReport prints the sparsity table of doc.go, including the
// BERT-base-sized model (slow: minutes). Run with SPLASH_TESTMODEL_REPORT=1.
func TestSparsityReport(t *testing.T) {
	if os.Getenv("SPLASH_TESTMODEL_REPORT") == "" {
		t.Skip("set SPLASH_TESTMODEL_REPORT=1 to measure the sparsity of all reference configs")
	}
	docs := cranfieldSample(t, 50)
	for _, cfg := range []Config{
		{Layers: 1, Hidden: 32, Heads: 2},
		{Layers: 2, Hidden: 64, Heads: 4},
		{Layers: 12, Hidden: 768, Heads: 12},
	} {
		start := time.Now()
		dir := generate(t, cfg)
		gen := time.Since(start)
		o, err := LoadOracle(dir)
		if err != nil {
			t.Fatal(err)
		}
		sample := docs
		if cfg.Hidden > 256 {
			sample = docs[:10]
		}
		st := sparsityStats(t, o, sample)
		n := st.nnz
		t.Logf("%dx%dx%d: generated in %v; %d docs: non-zeros min %d median %d max %d; max |logit| %.1f; own share %.2f; own recall %.2f",
			cfg.Layers, cfg.Hidden, cfg.Heads, gen.Round(time.Millisecond), len(sample), n[0], n[len(n)/2], n[len(n)-1], st.maxAbs, st.ownShare, st.ownRecall)
	}
}

func TestOraclePooling(t *testing.T) {
	o, err := LoadOracle(generate(t, Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 11}))
	if err != nil {
		t.Fatal(err)
	}
	ids := []int32{101, 6388, 4812, 1997, 1996, 17001, 1997, 1037, 3358, 1012, 102}
	logits := o.Logits(ids)
	if len(logits) != len(ids) || len(logits[0]) != o.VocabSize() || o.VocabSize() != bertVocab {
		t.Fatalf("logits shape [%d][%d]", len(logits), len(logits[0]))
	}
	maxP, sumP := o.Pooled(ids, "max"), o.Pooled(ids, "sum")
	wantSum := encode.PoolReference(logits, nil, encode.PoolSum)
	var nnz int
	for j := range maxP {
		m := math.Inf(-1)
		for i := range logits {
			m = math.Max(m, logits[i][j])
		}
		s := wantSum[j]
		// Pool first, activate after: exact because relu and log1p are monotone.
		if w := math.Log1p(math.Max(m, 0)); math.Abs(w-maxP[j]) > 1e-12 {
			t.Fatalf("max pooling of term %d: %v, want %v", j, maxP[j], w)
		}
		if math.Abs(s-sumP[j]) > 1e-12 || sumP[j] < maxP[j] {
			t.Fatalf("sum pooling of term %d: %v (max %v), want %v", j, sumP[j], maxP[j], s)
		}
		if maxP[j] > 0 {
			nnz++
		}
	}
	if nnz == 0 {
		t.Errorf("no non-zero term")
	}
	// Pure function: same input, same output.
	again := o.Logits(ids)
	for i := range again {
		for j := range again[i] {
			if again[i][j] != logits[i][j] {
				t.Fatalf("Logits is not deterministic at [%d][%d]", i, j)
			}
		}
	}
	if o.Pooled(ids, "mean") != nil {
		t.Errorf("unknown pooling accepted")
	}
	long := make([]int32, o.MaxLength()+1)
	for _, bad := range [][]int32{nil, {101, -1, 102}, {101, bertVocab, 102}, long} {
		if o.Validate(bad) == nil || o.Logits(bad) != nil || o.Pooled(bad, "max") != nil {
			t.Errorf("ids of length %d accepted", len(bad))
		}
	}
	if o.Logits(long[:o.MaxLength()]) == nil {
		t.Errorf("a sequence of MaxLength tokens was refused")
	}
}

// TestOracleMath checks the building blocks against values computed by hand.
func TestOracleMath(t *testing.T) {
	for x, want := range map[float64]float64{0: 0, 1: 0.8413447460685429, -1: -0.15865525393145707, 3: 2.99595030590511} {
		if got := gelu(x); math.Abs(got-want) > 1e-12 {
			t.Errorf("gelu(%v) = %v, want %v", x, got, want)
		}
	}
	o := &Oracle{eps: 1e-12}
	got := o.layerNorm([]float64{1, 2, 3, 4}, layerNormW{gamma: []float64{1, 1, 2, 1}, beta: []float64{0, 0, 0, 1}})
	// mean 2.5, variance 1.25
	s := math.Sqrt(1.25)
	want := []float64{-1.5 / s, -0.5 / s, 2 * 0.5 / s, 1.5/s + 1}
	for k := range want {
		if math.Abs(got[k]-want[k]) > 1e-12 {
			t.Errorf("layerNorm[%d] = %v, want %v", k, got[k], want[k])
		}
	}
	d := denseW{w: []float64{1, 2, 3, 4, 5, 6}, b: []float64{0.5, -1}, in: 3, out: 2}
	y := d.apply([][]float64{{1, 0, -1}})
	if y[0][0] != -1.5 || y[0][1] != -3 {
		t.Errorf("dense = %v, want [-1.5 -3]", y[0])
	}
	if got := dot([]float64{1, 2, 3, 4, 5}, []float64{5, 4, 3, 2, 1}); got != 35 {
		t.Errorf("dot = %v, want 35", got)
	}
}

// TestOracleSinglePosition checks the whole forward pass on a one-token
// sequence, where attention is the identity on the value vectors: the
// oracle's logits must equal a direct computation from the weights.
func TestOracleSinglePosition(t *testing.T) {
	o, err := LoadOracle(generate(t, Config{Layers: 2, Hidden: 32, Heads: 4, Seed: 5}))
	if err != nil {
		t.Fatal(err)
	}
	const id = 3358
	h := o.hidden
	x := make([]float64, h)
	for k := range x {
		x[k] = o.wordEmb[id*h+k] + o.posEmb[k] + o.typeEmb[k]
	}
	x = o.layerNorm(x, o.embLN)
	vec := func(d denseW, in []float64) []float64 { return d.apply([][]float64{in})[0] }
	add := func(a, b []float64) []float64 {
		out := make([]float64, len(a))
		for k := range a {
			out[k] = a[k] + b[k]
		}
		return out
	}
	for _, ly := range o.layers {
		// softmax over one key is 1: the context is the value vector.
		x = o.layerNorm(add(vec(ly.attnOut, vec(ly.v, x)), x), ly.attnLN)
		in := vec(ly.ffnIn, x)
		for k := range in {
			in[k] = in[k] * 0.5 * math.Erfc(-in[k]/math.Sqrt2)
		}
		x = o.layerNorm(add(vec(ly.ffnOut, in), x), ly.ffnLN)
	}
	tr := vec(o.headDense, x)
	for k := range tr {
		tr[k] = tr[k] * 0.5 * math.Erfc(-tr[k]/math.Sqrt2)
	}
	tr = o.layerNorm(tr, o.headLN)
	got := o.Logits([]int32{id})[0]
	best := 0
	for j := range got {
		var want float64
		for k := 0; k < h; k++ {
			want += tr[k] * o.wordEmb[j*h+k]
		}
		want += o.outBias[j]
		if math.Abs(got[j]-want) > 1e-9 {
			t.Fatalf("logit %d = %v, want %v", j, got[j], want)
		}
		if got[j] > got[best] {
			best = j
		}
	}
	if best != id {
		t.Errorf("the highest logit of token %d is token %d", id, best)
	}
}

func TestLoadOracleErrors(t *testing.T) {
	good := generate(t, Config{Layers: 1, Hidden: 32, Heads: 2})
	model := readFile(t, filepath.Join(good, ModelFile))
	conf := readFile(t, filepath.Join(good, ConfigFile))
	for name, files := range map[string]map[string][]byte{
		"missing model":    {ConfigFile: conf},
		"missing config":   {ModelFile: model},
		"truncated model":  {ModelFile: model[:len(model)/2], ConfigFile: conf},
		"not protobuf":     {ModelFile: []byte("hello, world"), ConfigFile: conf},
		"bad config":       {ModelFile: model, ConfigFile: []byte("{")},
		"heads mismatch":   {ModelFile: model, ConfigFile: []byte(`{"num_attention_heads":5,"num_hidden_layers":1,"layer_norm_eps":1e-12}`)},
		"too many layers":  {ModelFile: model, ConfigFile: []byte(`{"num_attention_heads":2,"num_hidden_layers":2,"layer_norm_eps":1e-12}`)},
		"no layers":        {ModelFile: model, ConfigFile: []byte(`{"num_attention_heads":2,"num_hidden_layers":0,"layer_norm_eps":1e-12}`)},
		"no eps":           {ModelFile: model, ConfigFile: []byte(`{"num_attention_heads":2,"num_hidden_layers":1}`)},
		"empty model file": {ModelFile: nil, ConfigFile: conf},
	} {
		dir := t.TempDir()
		for f, b := range files {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		o, err := LoadOracle(dir)
		if err == nil || o != nil {
			t.Errorf("%s: LoadOracle succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "testmodel: oracle: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}
