package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/splash-encode/splash/encode/safetensors"
	"github.com/splash-encode/splash/encode/testmodel"
)

func newModelCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Model utilities",
		Example: `  splash model gen-test --output /tmp/model --tokenizer testdata/tokenizers/bert-base-uncased/tokenizer.json
  splash model bench --device cpu --model /tmp/model --input corpus/part-0.parquet`,
	}
	cmd.AddCommand(newGenTestCommand(), newModelBenchCommand())
	return cmd
}

func newGenTestCommand() *cobra.Command {
	var out, tokenizerPath, arch string
	var cfg testmodel.Config
	var positionIDs bool
	var stDType string
	var llama llamaFlags
	cmd := &cobra.Command{
		Use:   "gen-test --output DIR [--arch bert|distilbert|roberta|causal|llama|mistral] [--layers N --hidden H --heads A --seed S]",
		Short: "Write a small test model (BERT, DistilBERT, RoBERTa, causal LM, Llama or Mistral) with random weights",
		Long: `gen-test writes a model directory laid out like an optimum export
(model.onnx with output logits; tokenizer.json; config.json). Its weights are
random and deterministic: it exercises the real architecture and vocabulary,
but its vectors mean nothing.

--arch bert (default; inputs input_ids, attention_mask, token_type_ids),
distilbert and roberta (inputs input_ids, attention_mask) are masked-LMs as
optimum --task fill-mask exports them; causal is a GPT-2 style decoder with
its LM head (inputs input_ids, attention_mask, and position_ids with
--position-ids, as Llama/Mistral exports declare). The vocabulary is
--tokenizer, by default testdata/tokenizers/NAME/tokenizer.json of the
checkout that holds the working directory: bert-base-uncased for bert and
distilbert, gpt2 for causal, mistral-7b for llama and mistral, and for
roberta a RoBERTa tokenizer built from gpt2's (<s> $A </s>, ids shifted by
the four specials).

--arch llama and mistral write a LlamaForCausalLM or MistralForCausalLM
(RMSNorm, rotary embeddings, grouped-query attention with --kv-heads, SwiGLU
MLP of --intermediate, default 3 x hidden): config.json under Hugging Face's
names, the weights as safetensors (model.safetensors, or --shards N files
with model.safetensors.index.json; --safetensors-dtype F32, BF16 or F16, the
ONNX holding the same rounded values) and model.onnx (inputs input_ids,
attention_mask, position_ids; output logits; no past key values) unless
--no-onnx. --rope-theta sets rope_theta (default 10000); --rope-scaling
llama3 adds Llama 3.1's rescaling (factor 8, low 1, high 4, original 8192,
or --rope-original N); --tied ties the LM head to the embeddings; --vocab N
pads the vocabulary to N ids (Llama 3: 128256); --bidirectional writes the
graph without the causal mask.`,
		Example: `  # A 2-layer BERT with random weights and the demo vocabulary
  splash model gen-test --output /tmp/model --tokenizer testdata/tokenizers/bert-base-uncased/tokenizer.json

  # A causal LM with position_ids, 4 layers, hidden size 128
  splash model gen-test --output /tmp/causal --arch causal --position-ids \
    --layers 4 --hidden 128 --heads 4 --tokenizer gpt2/tokenizer.json

  # A Llama-3.1-shaped model: GQA (8 heads, 2 KV heads), llama3 rope scaling,
  # a 128,256-id vocabulary, bf16 weights in 3 safetensors shards
  splash model gen-test --output /tmp/llama --arch llama --layers 2 --hidden 128 \
    --heads 8 --kv-heads 2 --rope-theta 500000 --rope-scaling llama3 \
    --vocab 128256 --safetensors-dtype BF16 --shards 3

  # A Mistral-shaped model with one KV head and a tied LM head
  splash model gen-test --output /tmp/mistral --arch mistral --heads 4 --kv-heads 1 \
    --rope-theta 1e6 --tied`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("--output is required (see %s --help)", cmd.CommandPath())
			}
			vocabName := map[string]string{"bert": "bert-base-uncased", "distilbert": "bert-base-uncased", "roberta": "gpt2", "causal": "gpt2",
				"llama": "mistral-7b", "mistral": "mistral-7b"}[arch]
			if vocabName == "" {
				return usageErrorf("--arch %q: want bert, distilbert, roberta, causal, llama or mistral", arch)
			}
			isLlama := arch == "llama" || arch == "mistral"
			if err := llama.check(cmd, isLlama); err != nil {
				return err
			}
			if positionIDs && arch != "causal" {
				return usageErrorf("--position-ids applies to --arch causal only")
			}
			if arch == "causal" && (cfg.SafeTensors || cfg.SkipONNX || cfg.OptimumNames) {
				return usageErrorf("--safetensors, --no-onnx and --optimum-names apply to the masked-LMs (bert, distilbert, roberta) and llama/mistral")
			}
			if isLlama && cfg.OptimumNames {
				return usageErrorf("--optimum-names applies to the masked-LMs (bert, distilbert, roberta)")
			}
			if tokenizerPath == "" {
				p, err := findTestdataTokenizer(vocabName)
				if err != nil {
					return err
				}
				tokenizerPath = p
				if arch == "roberta" {
					if tokenizerPath, err = writeRobertaTokenizer(p); err != nil {
						return err
					}
					defer os.RemoveAll(filepath.Dir(tokenizerPath))
				}
			}
			var err error
			switch arch {
			case "llama", "mistral":
				lc := testmodel.LlamaConfig{
					Family: arch, Layers: cfg.Layers, Hidden: cfg.Hidden, Heads: cfg.Heads, KVHeads: llama.kvHeads,
					Intermediate: cfg.Intermediate, RopeTheta: llama.ropeTheta, Tied: llama.tied, Vocab: llama.vocab,
					Seed: cfg.Seed, Opset: cfg.Opset, Shards: llama.shards, SafeTensorsDType: safetensors.DType(stDType),
					SkipONNX: cfg.SkipONNX, Bidirectional: llama.bidirectional,
				}
				if llama.ropeScaling == "llama3" {
					s := testmodel.Llama31RopeScaling()
					if llama.ropeOriginal > 0 {
						s.OriginalMaxPositions = llama.ropeOriginal
					}
					lc.RopeScaling = &s
				}
				err = testmodel.GenerateLlama(out, lc, tokenizerPath)
			case "causal":
				err = testmodel.GenerateCausal(out, testmodel.CausalConfig{
					Layers: cfg.Layers, Hidden: cfg.Hidden, Heads: cfg.Heads, Intermediate: cfg.Intermediate,
					Seed: cfg.Seed, Opset: cfg.Opset, PositionIDs: positionIDs,
				}, tokenizerPath)
			default:
				cfg.Arch = testmodel.Arch(arch)
				cfg.SafeTensorsDType = safetensors.DType(stDType)
				err = testmodel.Generate(out, cfg, tokenizerPath)
			}
			if err != nil {
				return err
			}
			log, _ := newLogger(cmd)
			log.Info("wrote test model (random weights, not a trained model)", slog.String("dir", out),
				slog.Int("layers", cfg.Layers), slog.Int("hidden", cfg.Hidden), slog.Int("heads", cfg.Heads),
				slog.Uint64("seed", cfg.Seed), slog.String("tokenizer", tokenizerPath))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "output", "", "output model directory (required; --out, its former name, still works)")
	f.StringVar(&out, "out", "", "output model directory")
	_ = f.MarkDeprecated("out", "use --output")
	f.StringVar(&arch, "arch", "bert", "architecture: bert, distilbert, roberta (masked-LMs), causal (GPT-2 decoder with LM head), llama or mistral")
	f.BoolVar(&positionIDs, "position-ids", false, "causal: declare a position_ids input")
	f.StringVar(&tokenizerPath, "tokenizer", "", "tokenizer.json of the vocabulary (default: from testdata/tokenizers of the checkout, see above)")
	f.IntVar(&cfg.Layers, "layers", 2, "transformer layers")
	f.IntVar(&cfg.Hidden, "hidden", 64, "hidden size")
	f.IntVar(&cfg.Heads, "heads", 4, "attention heads")
	f.IntVar(&cfg.Intermediate, "intermediate", 0, "feed-forward size (0: 4 x hidden; llama, mistral: 3 x hidden)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "weight seed")
	f.IntVar(&cfg.Opset, "opset", 14, "ONNX opset (14 or 18)")
	f.BoolVar(&cfg.SafeTensors, "safetensors", false, "masked-LMs: also write model.safetensors (Hugging Face names, tied decoder omitted), which splash's CUDA engine and PyTorch read")
	f.StringVar(&stDType, "safetensors-dtype", "F32", "dtype of model.safetensors: F32, F16 or BF16 (llama, mistral: the ONNX holds the same rounded values)")
	f.BoolVar(&cfg.SkipONNX, "no-onnx", false, "with --safetensors (masked-LMs) or llama/mistral: write no model.onnx (a GPU-only model; the CPU path needs the ONNX file)")
	llama.register(f)
	f.BoolVar(&cfg.OptimumNames, "optimum-names", false, "masked-LMs: name the dense weights onnx::MatMul_N, stored transposed, as optimum exports do")
	return cmd
}

// llamaFlags are gen-test's flags for --arch llama and mistral.
type llamaFlags struct {
	kvHeads       int
	ropeTheta     float64
	ropeScaling   string
	ropeOriginal  int
	tied          bool
	vocab         int
	shards        int
	bidirectional bool
}

func (l *llamaFlags) register(f *pflag.FlagSet) {
	f.IntVar(&l.kvHeads, "kv-heads", 0, "llama/mistral: key/value heads (num_key_value_heads), dividing --heads (0: --heads)")
	f.Float64Var(&l.ropeTheta, "rope-theta", 0, "llama/mistral: rope_theta (0: 10000)")
	f.StringVar(&l.ropeScaling, "rope-scaling", "", "llama/mistral: rope_scaling: llama3 (Llama 3.1: factor 8, low 1, high 4, original 8192) or empty")
	f.IntVar(&l.ropeOriginal, "rope-original", 0, "with --rope-scaling llama3: original_max_position_embeddings (0: 8192)")
	f.BoolVar(&l.tied, "tied", false, "llama/mistral: tie the LM head to the word embeddings")
	f.IntVar(&l.vocab, "vocab", 0, "llama/mistral: vocab_size; larger than the tokenizer's, the model and the written tokenizer.json get the extra ids (a few reachable from text: testmodel.HighIDToken) (0: the tokenizer's)")
	f.IntVar(&l.shards, "shards", 1, "llama/mistral: safetensors files (> 1: model-0000k-of-0000n.safetensors + model.safetensors.index.json)")
	f.BoolVar(&l.bidirectional, "bidirectional", false, "llama/mistral: ONNX graph without the causal mask (bidirectional attention)")
}

// check refuses the llama flags for other architectures and bad values.
func (l *llamaFlags) check(cmd *cobra.Command, isLlama bool) error {
	if !isLlama {
		for _, name := range []string{"kv-heads", "rope-theta", "rope-scaling", "rope-original", "tied", "vocab", "shards", "bidirectional"} {
			if cmd.Flags().Changed(name) {
				return usageErrorf("--%s applies to --arch llama and mistral only", name)
			}
		}
		return nil
	}
	if l.ropeScaling != "" && l.ropeScaling != "llama3" {
		return usageErrorf("--rope-scaling %q: want llama3 (or leave it out)", l.ropeScaling)
	}
	if l.ropeOriginal != 0 && l.ropeScaling == "" {
		return usageErrorf("--rope-original applies with --rope-scaling llama3")
	}
	return nil
}

// writeRobertaTokenizer builds a RoBERTa tokenizer.json from GPT-2's into a
// temp directory and returns its path.
func writeRobertaTokenizer(gpt2 string) (string, error) {
	data, err := os.ReadFile(gpt2)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", gpt2, err)
	}
	rob, err := testmodel.RobertaTokenizerJSON(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", gpt2, err)
	}
	dir, err := os.MkdirTemp("", "splash-roberta-tokenizer-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(path, rob, 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return path, nil
}

// findTestdataTokenizer looks for testdata/tokenizers/NAME/tokenizer.json
// (the test data of a splash checkout) in the working directory or any of
// its parents.
func findTestdataTokenizer(name string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	rel := filepath.Join("testdata", "tokenizers", name, "tokenizer.json")
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", usageErrorf("no %s found in %s or its parents (not in a splash checkout): pass --tokenizer PATH to a tokenizer.json", rel, wd)
}
