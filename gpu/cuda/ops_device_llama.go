package cuda

import (
	"fmt"
	"math"

	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// The Llama-family methods of DeviceOps: the shape checks of ops_llama.go,
// then a launch of a llama.cu kernel (kernels.LlamaPTX) or a cuBLAS
// strided batched GEMM, on the Ops' stream. Launch geometry: the
// grid-stride kernels (embed, gqa-scatter, rope, swiglu) take
// elementBlock threads and gridFor blocks; the row kernels (rmsnorm,
// causal softmax) one block of rowBlock threads per row, the block size
// whose reduction order the twins mirror.

// loadLlamaModule loads kernels.LlamaPTX into ctx and adds the entries of
// kernels.LlamaEntries instantiated for dt to fns. The caller owns the
// module (Unload on Close).
func loadLlamaModule(ctx *sys.Context, dt kernels.DType, fns map[string]sys.Function) (*sys.Module, error) {
	m, err := ctx.LoadModule(kernels.LlamaPTX)
	if err != nil {
		return nil, fmt.Errorf("cuda: loading the Llama-family kernels (llama.ptx): %w", err)
	}
	for _, e := range kernels.LlamaEntries() {
		name := kernels.Entry(e, dt)
		f, err := m.Function(name)
		if err != nil {
			return nil, fmt.Errorf("cuda: llama.ptx: %w (unload: %v)", err, m.Unload())
		}
		fns[name] = f
	}
	return m, nil
}

// launchLlama is launch for a llama.cu kernel, with an error naming the
// missing module load when NewDeviceOps did not load it.
func (o *DeviceOps) launchLlama(name string, grid, block [3]uint32, args ...any) error {
	if _, ok := o.fns[kernels.Entry(name, o.dt)]; !ok {
		return fmt.Errorf("cuda: kernel %s: the Llama-family kernels (kernels.LlamaPTX) are not loaded (loadLlamaModule)", kernels.Entry(name, o.dt))
	}
	return o.launch(name, true, grid, block, args...)
}

// rowGrid is the grid of a block-per-row kernel over rows rows.
func rowGrid(op string, rows int) ([3]uint32, error) {
	if rows <= 0 || rows > math.MaxInt32 {
		return [3]uint32{}, fmt.Errorf("cuda: %s: %d rows do not fit one grid (1 to 2^31-1 blocks)", op, rows)
	}
	return [3]uint32{uint32(rows), 1, 1}, nil
}

func (o *DeviceOps) Embed(tokens, h int, ids, word, out Buf) error {
	if err := checkEmbedOp(tokens, h, ids, word, out); err != nil {
		return err
	}
	return o.launchLlama(kernels.EntryEmbed, gridFor(tokens*h), [3]uint32{elementBlock, 1, 1},
		ptr(ids), ptr(word), ptr(out), i32(tokens), i32(h))
}

func (o *DeviceOps) ResidualRMSNorm(tokens, h int, y, residual, gamma Buf, eps float32, sum, out Buf) error {
	if err := checkResidualRMSNormOp(tokens, h, y, residual, gamma, sum, out); err != nil {
		return err
	}
	if !(eps >= 0) || math.IsInf(float64(eps), 1) {
		return fmt.Errorf("cuda: residual-rmsnorm: eps %v must be a finite number >= 0", eps)
	}
	grid, err := rowGrid("residual-rmsnorm", tokens)
	if err != nil {
		return err
	}
	return o.launchLlama(kernels.EntryResidualRMSNorm, grid, [3]uint32{rowBlock, 1, 1},
		ptr(y), ptr(residual), ptr(gamma), ptr(sum), ptr(out), i32(tokens), i32(h), eps)
}

func (o *DeviceOps) GQAScatter(b, heads, kv, d, l int, qkv, offsets, q, k, v Buf) error {
	if err := checkGQAScatterOp(b, heads, kv, d, l, qkv, offsets, q, k, v); err != nil {
		return err
	}
	return o.launchLlama(kernels.EntryGQAScatter, gridFor(b*l*(heads+2*kv)*d), [3]uint32{elementBlock, 1, 1},
		ptr(qkv), ptr(offsets), ptr(q), ptr(k), ptr(v), i32(b), i32(heads), i32(kv), i32(d), i32(l))
}

func (o *DeviceOps) RoPE(b, heads, d, l int, x, offsets, invFreq Buf, positionOffset int32) error {
	if err := checkRoPEOp(b, heads, d, l, x, offsets, invFreq, positionOffset); err != nil {
		return err
	}
	if f, ok := invFreq.(*devBuf); !ok || f.size != 4 {
		return fmt.Errorf("cuda: rope: invFreq must be a float32 Vector of DeviceOps, not %T", invFreq)
	}
	return o.launchLlama(kernels.EntryRoPE, gridFor(b*heads*l*(d/2)), [3]uint32{elementBlock, 1, 1},
		ptr(x), ptr(offsets), ptr(invFreq), i32(b), i32(heads), i32(d), i32(l), positionOffset)
}

func (o *DeviceOps) CausalSoftmax(b, heads, l int, s, offsets Buf) error {
	if err := checkCausalSoftmaxOp(b, heads, l, s, offsets); err != nil {
		return err
	}
	grid, err := rowGrid("causal-softmax", b*heads*l)
	if err != nil {
		return err
	}
	return o.launchLlama(kernels.EntryCausalSoftmax, grid, [3]uint32{rowBlock, 1, 1},
		ptr(s), ptr(offsets), i32(b), i32(heads), i32(l))
}

func (o *DeviceOps) SwiGLU(tokens, inter int, gateUp, out Buf) error {
	if err := checkSwiGLUOp(tokens, inter, gateUp, out); err != nil {
		return err
	}
	return o.launchLlama(kernels.EntrySwiGLU, gridFor(tokens*inter), [3]uint32{elementBlock, 1, 1},
		ptr(gateUp), ptr(out), i32(tokens), i32(inter))
}

// ScoresGrouped: row-major s_i[m][n] = alpha·q_i·k_iᵀ is, column-major,
// s_iᵀ[n×m] = k_i[n×d]·q_iᵀ: A = k (d×n as stored, transposed), B = q
// (d×m as stored), as Scores with m query rows.
func (o *DeviceOps) ScoresGrouped(batch, m, n, d int, alpha float32, q, k, s Buf) error {
	if err := checkScoresGroupedOp(batch, m, n, d, q, k, s); err != nil {
		return err
	}
	t := o.dataType()
	return o.blas.GemmStridedBatchedEx(sys.OpT, sys.OpN, n, m, d, alpha,
		ptr(k), t, d, int64(n)*int64(d), ptr(q), t, d, int64(m)*int64(d), 0, ptr(s), t, n, int64(m)*int64(n), batch, o.compute)
}

// ContextGrouped: row-major c_i[m][d] = p_i[m][n]·v_i[n][d] is c_iᵀ[d×m] =
// v_iᵀ[d×n]·p_iᵀ[n×m], both already column-major as stored.
func (o *DeviceOps) ContextGrouped(batch, m, n, d int, p, v, c Buf) error {
	if err := checkContextGroupedOp(batch, m, n, d, p, v, c); err != nil {
		return err
	}
	t := o.dataType()
	return o.blas.GemmStridedBatchedEx(sys.OpN, sys.OpN, d, m, n, 1,
		ptr(v), t, d, int64(n)*int64(d), ptr(p), t, n, int64(m)*int64(n), 0, ptr(c), t, d, int64(m)*int64(d), batch, o.compute)
}
