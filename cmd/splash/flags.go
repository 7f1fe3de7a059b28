package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/shards"
)

// modelFlags are the flags that encode and `model bench` share about the
// model, its input columns and the ONNX Runtime session, so that both read
// the same documents and run the same session for the same command line.
func modelFlags(f *pflag.FlagSet, maxLength, threads *int, library *string, cols *shards.Columns, session *gpu.SessionTuning) {
	f.IntVar(maxLength, "max-length", 0, "truncate documents to N tokens, specials included (0: the model's max_position_embeddings, at most 512)")
	f.IntVar(threads, "threads", runtime.GOMAXPROCS(0), "ONNX Runtime intra-op threads; the default is runtime.GOMAXPROCS(0), the CPUs this process may use (container CPU limits included)")
	f.StringVar(&cols.ID, "id-column", "id", "input column holding document ids (JSON Lines and TSV with a header: by default the field \"id\", else BEIR's \"_id\")")
	f.StringVar(&cols.Text, "text-column", "text", "input column holding document text (JSON Lines and TSV with a header: by default the field \"text\", else Pyserini's \"contents\")")
	f.StringVar(&cols.Title, "title-column", "", "optional input column holding a title, encoded as title + \" \" + text (JSON Lines and TSV with a header: by default the field \"title\" when there is one, as in BEIR)")
	f.BoolVar(&session.DisableMemPattern, "ort-no-mem-pattern", false, "turn off ONNX Runtime's per-shape memory pattern planning")
	f.BoolVar(&session.DisableSpinning, "ort-no-spin", false, "stop ONNX Runtime's intra-op threads from busy-waiting between runs")
	f.StringVar(library, "ort-library", "", "ONNX Runtime shared library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime)")
}

// hardwareFlags are the flags that choose and configure the device: encode,
// model bench and selftest share them.
type hardwareFlags struct {
	device, provider  string
	engine, precision string
	attention         string
	memLimitMiB       uint64
	trtFP16, tf32     bool
	trtCacheDir       string
}

func (h *hardwareFlags) register(f *pflag.FlagSet, defaultDevice string) {
	f.StringVar(&h.device, "device", defaultDevice, "where the model runs: cpu, cuda (every visible GPU, one worker each), cuda:N (GPU N), or auto (the GPUs when the NVIDIA driver and cuBLAS load, else the CPU: a warning when a GPU was found but cannot be used, an info line when there is none)")
	f.StringVar(&h.engine, "engine", gpu.EngineAuto, "what runs the model: auto (splash's CUDA engine on GPUs, ONNX Runtime on the CPU), cuda (splash's CUDA engine, GPUs only), or ort (ONNX Runtime everywhere; on GPUs it needs a GPU build of ONNX Runtime)")
	f.StringVar(&h.attention, "attention", "", "attention of Llama- and Mistral-shaped models on splash's CUDA engine: causal (as pretrained, the default) or bidirectional (CSPLADE's variant: no causal mask); ONNX Runtime runs the attention its graph was exported with")
	f.StringVar(&h.precision, "precision", "", "the CUDA engine's arithmetic: fp32 (matches the CPU to 1e-4), tf32, bf16, fp16 (default: bf16 on GPUs with bf16 tensor cores, else fp16) or fp8 (compute capability 9.0 and later: E4M3 weight GEMMs with per-tensor scales, bf16 elsewhere); fp32 accumulation and fp32 LayerNorm, softmax and pooling in every mode")
	f.StringVar(&h.provider, "provider", "cuda", "ONNX Runtime's GPU execution provider (--engine ort): cuda, or tensorrt (TensorRT, with CUDA for the nodes it does not take)")
	f.Uint64Var(&h.memLimitMiB, "gpu-mem-limit", 0, "bound each GPU session's memory arena to N MiB (0: the device's memory)")
	f.BoolVar(&h.tf32, "gpu-tf32", false, "let the CUDA provider use TF32 for fp32 models (several times faster on Ampere and newer; vectors differ from the CPU's by about 1e-3)")
	f.BoolVar(&h.trtFP16, "trt-fp16", false, "let TensorRT run layers in float16 (faster; vectors differ from fp32 ones by fp16 rounding)")
	f.StringVar(&h.trtCacheDir, "trt-cache-dir", "", "keep TensorRT's built engines in DIR, so that later runs skip the engine build")
}

// hardware resolves the flags into the device selection and the GPU
// settings of opts (Provider and GPU; the other fields are left alone);
// maxBatch bounds TensorRT's input shapes (0: unbounded).
func (h *hardwareFlags) hardware(maxBatch int, opts *gpu.Options) (gpu.Selection, error) {
	sel, err := gpu.ParseDevice(h.device)
	if err != nil {
		return gpu.Selection{}, usageErrorf("%v", err)
	}
	switch h.provider {
	case "cuda", "tensorrt":
	default:
		return gpu.Selection{}, usageErrorf("--provider %q: want cuda or tensorrt", h.provider)
	}
	switch h.engine {
	case gpu.EngineAuto, gpu.EngineCUDA, gpu.EngineORT:
	default:
		return gpu.Selection{}, usageErrorf("--engine %q: want auto, cuda or ort", h.engine)
	}
	switch h.precision {
	case "", "fp32", "tf32", "bf16", "fp16", "fp8":
	default:
		return gpu.Selection{}, usageErrorf("--precision %q: want fp32, tf32, bf16, fp16 or fp8", h.precision)
	}
	if sel.Kind == gpu.CPU && (h.engine == gpu.EngineCUDA || h.precision != "") {
		return gpu.Selection{}, usageErrorf("--engine cuda and --precision configure splash's CUDA engine: they need --device cuda, cuda:N or auto")
	}
	if h.engine == gpu.EngineORT && h.precision != "" {
		return gpu.Selection{}, usageErrorf("--precision configures splash's CUDA engine: ONNX Runtime (--engine ort) runs the model's own precision")
	}
	if sel.Kind == gpu.CPU && (h.provider != "cuda" || h.trtFP16 || h.trtCacheDir != "" || h.memLimitMiB != 0 || h.tf32) {
		return gpu.Selection{}, usageErrorf("--provider, --gpu-* and --trt-* configure GPUs: they need --device cuda, cuda:N or auto")
	}
	switch h.attention {
	case "", "causal", "bidirectional":
	default:
		return gpu.Selection{}, usageErrorf("--attention %q: want causal or bidirectional", h.attention)
	}
	if h.attention != "" && (sel.Kind == gpu.CPU || h.engine == gpu.EngineORT) {
		return gpu.Selection{}, usageErrorf("--attention applies to splash's CUDA engine: it needs --device cuda, cuda:N or auto and not --engine ort (ONNX Runtime runs the attention the graph was exported with)")
	}
	if h.provider != "tensorrt" && (h.trtFP16 || h.trtCacheDir != "") {
		return gpu.Selection{}, usageErrorf("--trt-fp16 and --trt-cache-dir need --provider tensorrt")
	}
	opts.Provider = h.provider
	opts.Engine, opts.Precision, opts.Attention = h.engine, h.precision, h.attention
	opts.GPU = gpu.GPUOptions{
		MemLimit: h.memLimitMiB << 20, AllowTF32: h.tf32, TensorRTFP16: h.trtFP16, TensorRTCacheDir: h.trtCacheDir, MaxBatch: maxBatch,
	}
	return sel, nil
}

// completionIndexEnv is set by Kubernetes in every pod of an Indexed Job.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

// resolveShardIndex takes --shard-index when given, else
// $JOB_COMPLETION_INDEX, and checks it against --shard-count.
func resolveShardIndex(cmd *cobra.Command, flagValue, count int) (int, error) {
	if count < 1 {
		return 0, usageErrorf("--shard-count %d: must be at least 1", count)
	}
	index := flagValue
	from := "--shard-index"
	if !cmd.Flags().Changed("shard-index") {
		v, ok := os.LookupEnv(completionIndexEnv)
		if !ok {
			if count > 1 {
				return 0, usageErrorf("--shard-count %d needs --shard-index or $%s", count, completionIndexEnv)
			}
			return 0, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, usageErrorf("$%s=%q is not a number", completionIndexEnv, v)
		}
		index, from = n, "$"+completionIndexEnv
	}
	if index < 0 || index >= count {
		return 0, usageErrorf("%s %d: must be from 0 to %d (--shard-count %d minus one)", from, index, count-1, count)
	}
	return index, nil
}

// byteSize is a flag of a size in bytes, written as a number with an
// optional unit: B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB
// (powers of 1000), e.g. "256MiB".
type byteSize struct{ n *int64 }

func (b byteSize) String() string {
	if b.n == nil {
		return ""
	}
	v := *b.n
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v != 0 && v%u.size == 0 {
			return strconv.FormatInt(v/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b byteSize) Set(s string) error {
	units := []struct {
		name string
		size int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.name); ok {
			num, mult = strings.TrimSpace(rest), u.size
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || (mult > 1 && v > (1<<62)/mult) {
		return fmt.Errorf("%q: want a size in bytes such as 268435456, 256MiB or 1GiB", s)
	}
	*b.n = v * mult
	return nil
}

func (b byteSize) Type() string { return "size" }

// partSizeFlag registers --part-size, which encode and finalize share.
func partSizeFlag(f *pflag.FlagSet, n *int64) {
	*n = shards.DefaultPartSize
	f.Var(byteSize{n}, "part-size", "cut plain .jsonl and .tsv inputs larger than this into parts, each encoded into its own shard NAME.partNNNNN (so that one large file resumes part by part and spreads over --shard-count indexes); at least 64KiB; finalize must be given the same value as encode")
}
