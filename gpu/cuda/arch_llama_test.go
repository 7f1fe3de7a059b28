package cuda

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
)

// Configs as on the model pages (config.json of meta-llama/Meta-Llama-3-8B,
// meta-llama/Llama-3.1-8B and mistralai/Mistral-7B-v0.1).
const (
	llama3Config = `{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
	  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
	  "intermediate_size": 14336, "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 32,
	  "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
	  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0",
	  "use_cache": true, "vocab_size": 128256}`
	llama31Config = `{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
	  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
	  "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
	  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
	  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
	  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.43.0.dev0",
	  "use_cache": true, "vocab_size": 128256}`
	mistralConfig = `{"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
	  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
	  "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
	  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false,
	  "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000}`
)

func TestParseLlamaArch(t *testing.T) {
	a, err := ParseArch([]byte(llama3Config))
	if err != nil {
		t.Fatal(err)
	}
	want := Arch{Family: FamilyLlama, Vocab: 128256, Hidden: 4096, Heads: 32, Layers: 32, Intermediate: 14336,
		MaxPositions: 8192, Eps: 1e-5, KVHeads: 8, Rope: Rope{Theta: 500000}}
	if a != want {
		t.Errorf("Llama 3 8B:\n got %+v\nwant %+v", a, want)
	}
	if a.HeadDim() != 128 || a.KV() != 8 || a.MaxTokens() != 8192 {
		t.Errorf("Llama 3 8B: head dim %d, kv %d, max tokens %d", a.HeadDim(), a.KV(), a.MaxTokens())
	}
	a, err = ParseArch([]byte(llama31Config))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Rope{Theta: 500000, Type: RopeLlama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMax: 8192}); a.Rope != want || a.MaxPositions != 131072 {
		t.Errorf("Llama 3.1 8B: rope %+v, max positions %d", a.Rope, a.MaxPositions)
	}
	a, err = ParseArch([]byte(mistralConfig))
	if err != nil {
		t.Fatal(err)
	}
	if a.Family != FamilyMistral || a.SlidingWindow != 4096 || a.MaxTokens() != 4096 || a.Rope.Theta != 10000 || a.Vocab != 32000 {
		t.Errorf("Mistral 7B: %+v (max tokens %d)", a, a.MaxTokens())
	}
	// Defaults: no num_key_value_heads (= heads), no rope_theta (10000),
	// no rms_norm_eps (1e-6), tied embeddings; a null sliding window; an
	// explicit head_dim that is not hidden/heads.
	small := `{"model_type": "mistral", "vocab_size": 100, "hidden_size": 48, "intermediate_size": 64, "num_hidden_layers": 1,
	  "num_attention_heads": 4, "head_dim": 16, "max_position_embeddings": 64, "tie_word_embeddings": true, "sliding_window": null}`
	a, err = ParseArch([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	if a.KV() != 4 || a.Rope.Theta != 10000 || a.Eps != 1e-6 || !a.TiedEmbeddings || a.SlidingWindow != 0 || a.HeadDim() != 16 || a.MaxTokens() != 64 {
		t.Errorf("defaults: %+v", a)
	}

	for _, c := range []struct{ config, want string }{
		{strings.Replace(llama3Config, `"silu"`, `"gelu"`, 1), `hidden_act is "gelu"`},
		{strings.Replace(llama3Config, `"attention_bias": false`, `"attention_bias": true`, 1), "attention_bias is true"},
		{strings.Replace(llama31Config, `"mlp_bias": false`, `"mlp_bias": true`, 1), "mlp_bias is true"},
		{strings.Replace(llama3Config, `"num_key_value_heads": 8`, `"num_key_value_heads": 5`, 1), "num_key_value_heads is 5"},
		{strings.Replace(llama3Config, `"num_key_value_heads": 8`, `"num_key_value_heads": 0`, 1), "num_key_value_heads is 0"},
		{strings.Replace(llama3Config, `"LlamaForCausalLM"`, `"LlamaForSequenceClassification"`, 1), "architectures is"},
		{strings.Replace(llama3Config, `"rms_norm_eps": 1e-05`, `"rms_norm_eps": -1`, 1), "rms_norm_eps is -1"},
		{strings.Replace(llama3Config, `"rope_theta": 500000.0`, `"rope_theta": 0`, 1), "rope_theta is 0"},
		{strings.Replace(llama3Config, `"vocab_size": 128256`, `"vocab_size": 0`, 1), "vocab_size is 0"},
		{strings.Replace(llama3Config, `"hidden_size": 4096,`, ``, 1), "hidden_size is missing"},
		{strings.Replace(llama3Config, `"rope_scaling": null`, `"rope_scaling": {"type": "linear", "factor": 2.0}`, 1), `rope_scaling.rope_type is "linear"`},
		{strings.Replace(llama3Config, `"rope_scaling": null`, `"rope_scaling": {"rope_type": "yarn", "factor": 4.0}`, 1), `rope_scaling.rope_type is "yarn"`},
		{strings.Replace(llama3Config, `"rope_scaling": null`, `"rope_scaling": {"factor": 4.0}`, 1), "rope_scaling has no rope_type"},
		{strings.Replace(llama31Config, `"low_freq_factor": 1.0, `, ``, 1), "rope_scaling.low_freq_factor is missing"},
		{strings.Replace(llama31Config, `"factor": 8.0`, `"factor": -8.0`, 1), "rope_scaling.factor is -8"},
		{strings.Replace(llama31Config, `"original_max_position_embeddings": 8192`, `"original_max_position_embeddings": 0`, 1), "rope_scaling.original_max_position_embeddings is 0"},
		{strings.Replace(llama31Config, `"high_freq_factor": 4.0`, `"high_freq_factor": 0.5`, 1), "high_freq_factor 0.5 is not above low_freq_factor 1"},
		{strings.Replace(mistralConfig, `"sliding_window": 4096`, `"sliding_window": 0`, 1), "sliding_window is 0"},
		{strings.Replace(mistralConfig, `"sliding_window": 4096`, `"sliding_window": "all"`, 1), `sliding_window is "all"`},
		{strings.Replace(small, `"head_dim": 16`, `"head_dim": 15`, 1), "head_dim is 15"},
		{strings.Replace(strings.Replace(small, `"head_dim": 16,`, ``, 1), `"num_attention_heads": 4`, `"num_attention_heads": 5`, 1),
			"hidden size 48 is not a multiple of the 5 attention heads"},
	} {
		_, err := ParseArch([]byte(c.config))
		if !errors.Is(err, encode.ErrBadModel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one wrapping ErrBadModel and saying %q", err, c.want)
		}
	}
}

// invFreqReference is transformers' _compute_default_rope_parameters and
// _compute_llama3_parameters in float64, written from their source.
func invFreqReference(a Arch) []float64 {
	d := a.HeadDim()
	out := make([]float64, d/2)
	for j := range out {
		out[j] = 1 / math.Pow(a.Rope.Theta, float64(2*j)/float64(d))
	}
	if a.Rope.Type != RopeLlama3 {
		return out
	}
	r := a.Rope
	old := float64(r.OriginalMax)
	lowWavelen, highWavelen := old/r.LowFreqFactor, old/r.HighFreqFactor
	for j, f := range out {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < highWavelen: // high frequencies: unchanged
		case wavelen > lowWavelen: // low frequencies: divided by factor
			out[j] = f / r.Factor
		default:
			smooth := (old/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			out[j] = (1-smooth)*f/r.Factor + smooth*f
		}
	}
	return out
}

// TestInvFreq checks the rotary frequencies in float32 against the float64
// reference, for Llama 3 (no scaling), Llama 3.1 (llama3 scaling, which
// reaches all three regimes at head_dim 128) and Mistral.
func TestInvFreq(t *testing.T) {
	for _, c := range []struct {
		name, config string
		regimes      bool
	}{{"llama3", llama3Config, false}, {"llama3.1", llama31Config, true}, {"mistral", mistralConfig, false}} {
		a, err := ParseArch([]byte(c.config))
		if err != nil {
			t.Fatal(err)
		}
		got, want := a.InvFreq(), invFreqReference(a)
		if len(got) != 64 {
			t.Fatalf("%s: %d frequencies, want 64", c.name, len(got))
		}
		unscaled, scaled, smoothed := 0, 0, 0
		base := Arch{Hidden: a.Hidden, Heads: a.Heads, Rope: Rope{Theta: a.Rope.Theta}}
		plain := invFreqReference(base)
		for j := range got {
			if rel := math.Abs(float64(got[j])-want[j]) / want[j]; rel > 2e-6 {
				t.Errorf("%s: inv_freq[%d] = %g, want %g (relative error %.2g)", c.name, j, got[j], want[j], rel)
			}
			switch ratio := want[j] / plain[j]; {
			case ratio == 1:
				unscaled++
			case math.Abs(ratio-1/a.Rope.Factor) < 1e-12:
				scaled++
			default:
				smoothed++
			}
		}
		if c.regimes && (unscaled == 0 || scaled == 0 || smoothed == 0) {
			t.Errorf("%s: %d unscaled, %d scaled, %d smoothed frequencies: the test does not reach every regime", c.name, unscaled, scaled, smoothed)
		}
		if got[0] != 1 {
			t.Errorf("%s: inv_freq[0] = %g, want 1", c.name, got[0])
		}
	}
}
