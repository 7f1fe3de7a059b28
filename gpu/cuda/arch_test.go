package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/kernels"
)

func TestParseArch(t *testing.T) {
	// bert-base-uncased's config.json, as on its model page.
	bert := `{"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false,
	  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
	  "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
	  "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
	  "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522}`
	a, err := ParseArch([]byte(bert))
	if err != nil {
		t.Fatal(err)
	}
	if a != bertBase.withEps(1e-12) {
		t.Errorf("bert-base: %+v", a)
	}
	// distilbert-base-uncased.
	distil := `{"activation": "gelu", "architectures": ["DistilBertForMaskedLM"], "dim": 768, "dropout": 0.1,
	  "hidden_dim": 3072, "max_position_embeddings": 512, "model_type": "distilbert", "n_heads": 12, "n_layers": 6,
	  "pad_token_id": 0, "sinusoidal_pos_embds": false, "tie_weights_": true, "vocab_size": 30522}`
	if a, err = ParseArch([]byte(distil)); err != nil || a.Family != FamilyDistilBERT || a.Layers != 6 || a.TypeVocab != 0 || a.Hidden != 768 {
		t.Errorf("distilbert: %+v %v", a, err)
	}
	// roberta-base: positions from padding_idx + 1 = 2, 514 rows.
	roberta := `{"architectures": ["RobertaForMaskedLM"], "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu_new",
	  "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
	  "model_type": "roberta", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1,
	  "vocab_size": 50265}`
	if a, err = ParseArch([]byte(roberta)); err != nil || a.PositionOffset != 2 || a.MaxTokens() != 512 || a.Act != kernels.GELUTanh ||
		a.HeadAct != kernels.GELUExact || a.Eps != 1e-5 {
		t.Errorf("roberta: %+v %v", a, err)
	}
	for _, c := range []struct{ config, want string }{
		{`{"model_type": "gpt2", "hidden_size": 4096}`, `model_type is "gpt2"`},
		{`{"model_type": "llama", "hidden_size": 4096}`, "vocab_size is missing"},
		{strings.Replace(bert, `"hidden_act": "gelu"`, `"hidden_act": "relu"`, 1), `hidden_act is "relu"`},
		{strings.Replace(bert, `"absolute"`, `"relative_key"`, 1), `position_embedding_type is "relative_key"`},
		{strings.Replace(bert, `"num_attention_heads": 12`, `"num_attention_heads": 7`, 1), "hidden size 768 is not a multiple of the 7 attention heads"},
		{strings.Replace(bert, `"vocab_size": 30522`, `"vocab_size": 0`, 1), "vocab_size is 0"},
		{strings.Replace(bert, `"hidden_size": 768,`, ``, 1), "hidden_size is missing"},
		{`{"model_type": "bert",`, "parse"},
	} {
		_, err := ParseArch([]byte(c.config))
		if !errors.Is(err, encode.ErrBadModel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one wrapping ErrBadModel and saying %q", err, c.want)
		}
	}
}

func (a Arch) withEps(eps float32) Arch { a.Eps = eps; return a }
