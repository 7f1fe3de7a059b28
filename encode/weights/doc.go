// Package weights reads the float32 tensors of a masked-LM checkpoint
// (BERT, DistilBERT, RoBERTa) by their Hugging Face state-dict names, for
// engines that run the model themselves.
//
// Open takes a model directory and reads model.safetensors when there is
// one (the file of a Hugging Face model page), else the initializers of
// its ONNX file (model.onnx or onnx/model.onnx, as encode.ModelFile finds
// it, or the file WithONNXFile names). Both give the same names and
// layouts: Checkpoint.Float32("bert.encoder.layer.0.attention.self.query.weight")
// is the [out, in] matrix PyTorch holds, whichever file it comes from.
// F16 and BF16 tensors convert to float32 exactly.
//
// # ONNX
//
// The ONNX file is scanned, not loaded: Open reads the graph's nodes and
// the headers of its initializers; Float32 reads one initializer's data.
// Initializers may be FLOAT, FLOAT16 or BFLOAT16, their data in raw_data,
// in float_data (FLOAT) or int32_data (FLOAT16 and BFLOAT16, one value's
// 16 bits per int32, as the ONNX specification stores them), or external
// (data_location EXTERNAL: the external_data keys location, a path
// relative to the model's directory that must stay inside it, offset and
// length, as optimum writes model.onnx_data for models over 2 GB).
//
// Exports name most dense weights after constants that torch.onnx folded:
// nn.Linear's x W^T + b becomes MatMul(x, onnx::MatMul_1234) followed by an
// Add with the bias, which keeps its name (…query.bias), and the folded
// weight is stored transposed, [in, out]. The graph binds them back: for
// an Add whose inputs are an initializer P.bias and the output of a MatMul
// whose second input is a 2-D initializer W without a state-dict name (no
// dot, or a "::" in it), W transposed is exposed as P.weight; likewise
// Gemm(x, W, P.bias) (transposed unless transB). The masked-LM decoders,
// whose bias is the head's (cls.predictions.bias, lm_head.bias), bind to
// cls.predictions.decoder.weight and lm_head.decoder.weight. An initializer
// that has the name already wins (the generated test models keep P.weight
// under its name and transpose it with a Transpose node: it is read as
// is). Names lists the bound names and the state-dict-like names of float
// initializers, not the anonymous ones (which Float32 still reads by their
// own names, untransposed).
//
// # Tied weights
//
// Hugging Face checkpoints omit the decoder weight tied to the word
// embeddings (cls.predictions.decoder.weight, lm_head.decoder.weight,
// vocab_projector.weight) and its bias duplicate (cls.predictions.decoder.bias,
// lm_head.decoder.bias); ONNX exports usually do too. Using the word
// embeddings in their place is the caller's business: Has tells whether a
// name is there, and Float32's error for a missing name wraps ErrMissing.
//
// Errors name the file and the tensor; those about a file's content wrap
// encode.ErrBadModel.
package weights
