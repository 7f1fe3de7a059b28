// Package testmodel generates small SPLADE test models and holds the float64
// reference forward pass (the oracle) that checks them.
//
// No trained SPLADE weights can be downloaded where splash is developed and
// tested, so the project builds its own models: the real BERT masked-LM
// architecture (Hugging Face BertForMaskedLM), the real bert-base-uncased
// vocabulary, and deterministic random weights. The weights are random: a
// generated model is not a trained model and its vectors have no retrieval
// quality. What it does have is the shape of the real computation and
// realistic SPLADE sparsity, which is what encoders, pooling, sparsification
// and writers need for their tests.
//
// # Model directory
//
// Generate writes what an optimum `fill-mask` export holds:
//
//   - model.onnx: inputs input_ids, attention_mask and token_type_ids (int64
//     [batch_size, sequence_length], symbolic dims), output logits (float32
//     [batch_size, sequence_length, vocab]; float16 with Config.FP16).
//     Default domain only, opset 14 by default (14..21 accepted).
//   - tokenizer.json: a byte-for-byte copy of the given file; its vocabulary
//     ("model.vocab" and "added_tokens", max id + 1) fixes the vocab size
//     (30522 for bert-base-uncased).
//   - config.json: a BertConfig (architectures ["BertForMaskedLM"],
//     model_type "bert", sizes, layer_norm_eps 1e-12, hidden_act "gelu",
//     pad_token_id 0) plus "splash_test_model" with the seed, the opset,
//     "logits_dtype": "float16" for a Config.FP16 model, and the note
//     "random weights, not a trained model".
//   - model.safetensors, with Config.SafeTensors: what save_pretrained
//     writes, every weight under its state-dict name in PyTorch's layout
//     (dense weights [out, in]), metadata {"format": "pt"}, without the
//     tied decoder weight and the decoder bias duplicate
//     (cls.predictions.decoder.{weight,bias}, lm_head.decoder.{weight,bias},
//     vocab_projector.weight), so exactly the weight initializers of
//     model.onnx with the same float32 values; in Config.SafeTensorsDType
//     F16 or BF16 they are rounded to nearest even (the oracle reads
//     model.onnx, so it does not see that rounding). config.json then also
//     has torch_dtype, and splash_test_model "safetensors_dtype". It is
//     streamed tensor by tensor (encode/safetensors' Writer).
//     Config.SkipONNX leaves model.onnx out (a safetensors-only BERT-base
//     checkpoint for checks that need no ONNX). Generate removes a
//     model.safetensors or model.onnx an earlier run left in the directory
//     when this one does not write it.
//
// Every file is written to a temporary name, fsynced and renamed. model.onnx
// is streamed: the graph is marshalled with the protobuf library and each
// weight is appended as a TensorProto whose raw_data is little-endian
// float32, so a BERT-base-sized model (12 x 768, 110M parameters, 440 MB)
// takes about 1.5 s on two cores and no second copy of the weights in memory. Models
// over the 2 GiB protobuf limit are refused (external data is not written).
//
// # Graph
//
// The graph is what torch.onnx produces for BertForMaskedLM at opset 14,
// without constant folding:
//
//   - embeddings: Gather(word_embeddings, input_ids) + Gather(token_type_embeddings,
//     token_type_ids) + Gather(position_embeddings, position ids), the
//     position ids 0..seq-1 computed in the graph (Shape -> Gather -> Range ->
//     Unsqueeze), then LayerNorm;
//   - extended attention mask: (1 - Cast(Unsqueeze(attention_mask, [1, 2]))) *
//     -10000, added to the scores of every layer (the original Hugging Face
//     constant; unlike float32 min it stays finite in fp16);
//   - per layer: Q, K, V = x W^T + b, Reshape to heads and Transpose,
//     MatMul / sqrt(head_dim) + mask, Softmax(axis -1), MatMul with V,
//     Transpose and Reshape back, output dense, residual Add, LayerNorm;
//     feed-forward dense, exact GELU x * 0.5 * (1 + erf(x / sqrt 2)), dense,
//     residual Add, LayerNorm;
//   - MLM head: dense, GELU, LayerNorm, then the decoder tied to the word
//     embeddings, MatMul(x, Transpose(word_embeddings)) + cls.predictions.bias;
//   - with Config.FP16, a final Cast of these float32 logits to float16 (round
//     half to even), the float16 output of a mixed-precision export. Weights
//     and all other arithmetic stay float32: the oracle then reproduces the
//     output exactly up to the rounding of logits that lie within float32
//     error of a float16 rounding boundary. (ONNX Runtime 1.30's CPU provider
//     has no float16 kernels for MatMul, Add, Mul, Div, Pow, Sqrt, Erf,
//     Softmax or ReduceMean on x86-64: a graph in float16 throughout would
//     run there only through Casts to float32 that ONNX Runtime inserts
//     around each such node, which no float64 oracle could follow exactly.)
//
// LayerNorm is decomposed as torch.onnx does (ReduceMean, Sub, Pow, ReduceMean,
// Add eps, Sqrt, Div, Mul, Add). At opset 18 and later ReduceMean takes its
// axes as an int64 input, before that as an attribute. Operators used:
// Add, Cast, Div, Erf, Gather, MatMul, Mul, Pow, Range, ReduceMean, Reshape,
// Shape, Softmax, Sqrt, Sub, Transpose, Unsqueeze.
//
// Initializers carry the names and layouts of the PyTorch state dict
// (bert.embeddings.word_embeddings.weight [vocab, hidden],
// bert.encoder.layer.N.attention.self.query.weight [out, in], ...,
// cls.predictions.bias [vocab]); dense weights pass through a Transpose node,
// which ONNX Runtime folds at load time. The word embedding matrix is stored
// once, shared by the input Gather and the decoder.
//
// With Config.OptimumNames the dense layers are exported as torch.onnx
// does with constant folding (optimum's exports): Add(P.bias, MatMul(x,
// onnx::MatMul_<n>)), the weight an initializer stored pre-transposed
// [in, out] under a made-up name, no Transpose node, for every nn.Linear
// (the encoder's and the MLM head transform's); the biases, embeddings,
// LayerNorms and the tied decoder keep their names and form. config.json's
// splash_test_model says "optimum_names": true. LoadOracle binds such
// weights back to their names through the graph (its own reading, not
// encode/weights').
//
// # Architectures
//
// Config.Arch picks the Hugging Face class whose optimum fill-mask export
// Generate imitates; ArchBERT (BertForMaskedLM) is the default and is what
// the sections above describe. The other two keep BERT's weight
// distribution (below), so their SPLADE vectors are as sparse:
//
//   - ArchDistilBERT (DistilBertForMaskedLM; tokenizer bert-base-uncased):
//     inputs input_ids and attention_mask only; embeddings word + position
//     (0..seq-1) + LayerNorm, no token types; per layer attention with
//     q_lin/k_lin/v_lin (queries divided by sqrt(head_dim) before the
//     product; padding keys set to float32 min by Where, DistilBERT's
//     masked_fill), out_lin, residual, sa_layer_norm, then ffn.lin1, GELU,
//     ffn.lin2, residual, output_layer_norm (post-LN like BERT); head
//     vocab_transform, GELU, vocab_layer_norm, vocab_projector (weight tied to
//     the word embeddings, bias vocab_projector.bias). LayerNorm eps 1e-12.
//     Initializers: distilbert.embeddings.{word_embeddings,position_embeddings}.weight,
//     distilbert.embeddings.LayerNorm.*, distilbert.transformer.layer.N.{attention.q_lin,
//     attention.k_lin, attention.v_lin, attention.out_lin, sa_layer_norm, ffn.lin1,
//     ffn.lin2, output_layer_norm}.*, vocab_transform.*, vocab_layer_norm.*,
//     vocab_projector.bias. config.json is a DistilBertConfig (dim,
//     hidden_dim, n_layers, n_heads, max_position_embeddings, activation
//     "gelu", pad_token_id 0).
//   - ArchRoBERTa (RobertaForMaskedLM; tokenizer RobertaTokenizerJSON of
//     GPT-2's): inputs input_ids and attention_mask only; position ids
//     computed in the graph from input_ids like Hugging Face's
//     create_position_ids_from_input_ids: mask = (input_ids != 1) (Equal,
//     Not, Cast), positions = CumSum(mask, axis 1) * mask + 1, so tokens
//     count from 2 whatever padding precedes them and padding tokens get 1;
//     the position table has MaxPositions + 2 rows (max_position_embeddings
//     514 for 512; Oracle.MaxLength gives the usable 512), its row 1 and the
//     <pad> word row are zero (padding_idx); one token type row, added to
//     every position (all-zero token types); BERT's encoder; head
//     lm_head.dense, GELU, lm_head.layer_norm, decoder tied to the word
//     embeddings + lm_head.bias. LayerNorm eps 1e-5. Initializers: BERT's
//     with "roberta." for "bert." and lm_head.{dense,layer_norm}.*,
//     lm_head.bias. config.json is a RobertaConfig (bos/pad/eos 0/1/2,
//     type_vocab_size 1, layer_norm_eps 1e-5). Operators added to BERT's:
//     Equal, Not, CumSum (DistilBERT: Equal, Where).
//
// RobertaTokenizerJSON builds the RoBERTa tokenizer.json from GPT-2's:
// <s> <pad> </s> <unk> at 0..3, GPT-2's tokens moved up by 4 (without
// <|endoftext|>), <mask> last (50260), GPT-2's merges, ByteLevel
// pre-tokenizer and decoder, RobertaProcessing <s> $A </s>: roberta-base's
// layout on GPT-2's vocabulary (roberta-base orders the same tokens as
// fairseq did and has 50265 ids).
//
// # Weights and why they give realistic sparsity
//
// SPLADE keeps term j of a document when some position i has a positive
// logit z_ij; a random BERT would give thousands of terms or none. The
// weights are drawn so that each position's final hidden state points close
// to its own token's word embedding, and the logits are a scaled cosine:
//
//	z_ij ~= 12 * cos(h_i, E_j) + b_j,   b_j ~= -4.25 * 12/sqrt(H)   (H = hidden size)
//
// The weights that achieve this:
//
//   - Word embeddings are random directions of norm 0.05*sqrt(H) (the [PAD]
//     row is zero, as Hugging Face initialises padding_idx); position and
//     token-type embeddings have standard deviation 0.005, so the embedding
//     LayerNorm output stays within a few degrees of the token's direction.
//   - Q, K, V and the feed-forward input have unit gain (standard deviation
//     1/sqrt(fan_in)); the attention and feed-forward output projections are
//     depth-scaled so that all 2*Layers sublayers together add a squared
//     relative norm of 0.15 to the residual stream. Each position's final
//     hidden state therefore keeps a cosine of about 0.91 with its token's
//     embedding (measured: mean 0.91 at H = 32, 64 and 768; lowest 0.78),
//     plus a smaller mixture of its context.
//   - The MLM transform dense is 0.2 * (I + 0.1*noise): small inputs keep the
//     GELU almost linear, so the transform keeps the direction; the head
//     LayerNorm gain 12/(0.05*H) turns <h, E_j> into 12*cos(h, E_j).
//   - The output bias is 4.25 standard deviations of a random token's logit
//     (12/sqrt(H)) below zero, with a 0.25-sigma per-token jitter.
//
// A position's own token then has logit ~12*0.9 - 4.25*12/sqrt(H) (about +2
// at H=32, +9 at H=768): every distinct token of a document is a non-zero
// term. An unrelated token needs cos(h_i, E_j) above 4.25/sqrt(H), which
// about 30522 * P(N(0,1) > 4.25) ~= 0.3 vocabulary entries reach per hidden
// direction (fewer at small H, where cosines of random directions have
// lighter tails): these are the "expansion" terms, mostly the embedding-space
// neighbours of the document's tokens. Logits stay within about +-20.
//
// Measured with the oracle (TestSparsityReport; seed 0; Cranfield documents
// spread over the collection, tokenized by encode/tokenizer with max_length
// 512, mean 197 tokens):
//
//	config (layers x hidden x heads)  docs  non-zeros min / median / max  doc tokens among them  max |logit|
//	1 x 32 x 2                          50      41 / 103 / 195                    96%                 19.3
//	2 x 64 x 4                          50      45 / 120 / 224                    82%                 14.6
//	12 x 768 x 12                       10     117 / 165 / 290                    65%                  9.4
//
// In all of them every distinct token of every document is a non-zero term.
// An empty text ([CLS] [SEP]) gets 2 or 3 terms.
//
// Remaining weights: dense biases N(0, 0.02^2); LayerNorm gains 1 + N(0, 0.02^2)
// and biases N(0, 0.02^2) (scaled by the gain in the head); dense weights
// are uniform with the stated standard deviation (the family of PyTorch's
// default nn.Linear initialisation, and cheap to draw), the rest normal.
//
// # Determinism
//
// Every tensor row has its own generator: splitmix64 seeded from the model
// seed, the tensor name and the row index, with Box-Muller for normal
// deviates. No global random state is used, values do not depend on the
// number of goroutines that fill a tensor, and the same Config gives a
// byte-identical model.onnx on a given GOARCH (the last bit of a float32 may
// differ between architectures whose math functions or FMA fusion differ).
//
// # Oracle
//
// Oracle is an independent, plainly written float64 forward pass of the same
// model: it reads the weights from model.onnx's initializers and the
// architecture (model_type), head count, LayerNorm epsilon and (RoBERTa)
// padding id from config.json, never from the seed, so comparing it with
// ONNX Runtime checks the graph. It takes one unpadded sequence; for RoBERTa
// its positions are those of create_position_ids_from_input_ids
// (PositionIDs: 2..L+1 without <pad> tokens in the text), which a padded
// batch row gets too wherever its padding lies. DistilBERT and RoBERTa
// models agree with ONNX Runtime 1.30 (CPU, through gpu/ort) to about 1e-5
// on logits near 40 and 2e-6 on SPLADE weights (right- and, for RoBERTa,
// left-padded batches of Cranfield documents). Pooled computes SPLADE
// "max" and "sum" pooling the naive way (log(1 + relu(z)) at every position,
// then the reduction). Measured against ONNX Runtime 1.30 on the CPU, logits
// agree to about 5e-6 (opsets 14, 17, 18 and 21; 1, 2, 3 and 12 layers;
// padded batches of real documents up to 512 tokens). For a model whose
// logits output is float16 (Config.FP16; LoadOracle reads the output's type
// from model.onnx) Logits and Pooled round each float64 logit to float16,
// ties to even (RoundToFloat16), as the model's final Cast does;
// Float64Logits gives the logits before that rounding.
//
// GenerateCausal writes a decoder-only causal LM instead (GPT-2 style, its
// LM head over the tokenizer's whole vocabulary, optionally a position_ids
// input as Llama and Mistral exports declare), and CausalOracle is its
// float64 forward pass, with PooledFrom for the echo variant's pooling of
// the second copy of a text.
//
// GenerateLlama writes a Llama- or Mistral-shaped decoder (RMSNorm, rotary
// positions with optional llama3 scaling, grouped-query attention, SwiGLU,
// tied or untied LM head, vocabularies beyond 65,535 ids) as an optimum
// text-generation ONNX without past key values and as Hugging Face
// safetensors (one file or shards with model.safetensors.index.json)
// holding the same weights; LlamaOracle is its float64 forward pass from
// config.json and the safetensors alone, causal or bidirectional, with
// PooledFrom for echo.
package testmodel
