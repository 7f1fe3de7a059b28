package cuda

import (
	"fmt"
	"math"
)

// The shape checks of the Llama-family Ops methods, called by both
// TwinOps (ops_twin_llama.go) and DeviceOps (ops_device_llama.go) before
// they touch a buffer: dimensions within the kernels' int32 arguments and
// buffers at least as long as the shapes need. What only the twins can see
// (the contents of offsets and ids) the twins check themselves.

// llamaDims reports a dimension outside [1, 2^31).
func llamaDims(op string, names []string, dims ...int) error {
	for i, d := range dims {
		if d <= 0 || d > math.MaxInt32 {
			return fmt.Errorf("%s: %s=%d must be in [1, 2^31)", op, names[i], d)
		}
	}
	return nil
}

// product returns the product of dims, or an error when it passes 2^62
// (no buffer is that long; the check keeps the multiplication from
// wrapping).
func product(op string, dims ...int) (int, error) {
	p := 1
	for _, d := range dims {
		if d != 0 && p > (1<<62)/d {
			return 0, fmt.Errorf("%s: shape %v is too large", op, dims)
		}
		p *= d
	}
	return p, nil
}

// needBuf reports a nil buffer, or one shorter than n elements.
func needBuf(op, name string, b Buf, n int) error {
	switch {
	case b == nil:
		return fmt.Errorf("%s: %s is nil, want %d values", op, name, n)
	case b.Len() < n:
		return fmt.Errorf("%s: %s has %d values, want at least %d", op, name, b.Len(), n)
	}
	return nil
}

// needBufs checks bufs (named by names, in order) against n.
func needBufs(op string, n int, names []string, bufs ...Buf) error {
	for i, b := range bufs {
		if err := needBuf(op, names[i], b, n); err != nil {
			return err
		}
	}
	return nil
}

func checkEmbedOp(tokens, h int, ids, word, out Buf) error {
	const op = "embed"
	if err := llamaDims(op, []string{"tokens", "h"}, tokens, h); err != nil {
		return err
	}
	n, err := product(op, tokens, h)
	if err != nil {
		return err
	}
	if err := needBuf(op, "ids", ids, tokens); err != nil {
		return err
	}
	if err := needBuf(op, "word", word, h); err != nil {
		return err
	}
	return needBuf(op, "out", out, n)
}

func checkResidualRMSNormOp(tokens, h int, y, residual, gamma, sum, out Buf) error {
	const op = "residual-rmsnorm"
	if err := llamaDims(op, []string{"tokens", "h"}, tokens, h); err != nil {
		return err
	}
	n, err := product(op, tokens, h)
	if err != nil {
		return err
	}
	if err := needBufs(op, n, []string{"residual", "out"}, residual, out); err != nil {
		return err
	}
	if y != nil {
		if err := needBuf(op, "y", y, n); err != nil {
			return err
		}
	}
	if sum != nil {
		if err := needBuf(op, "sum", sum, n); err != nil {
			return err
		}
	}
	return needBuf(op, "gamma", gamma, h)
}

func checkGQAScatterOp(b, heads, kv, d, l int, qkv, offsets, q, k, v Buf) error {
	const op = "gqa-scatter"
	if err := llamaDims(op, []string{"b", "heads", "kv", "d", "l"}, b, heads, kv, d, l); err != nil {
		return err
	}
	if heads%kv != 0 {
		return fmt.Errorf("%s: heads=%d is not a multiple of kv=%d", op, heads, kv)
	}
	nq, err := product(op, b, heads, l, d)
	if err != nil {
		return err
	}
	nk, _ := product(op, b, kv, l, d)
	if err := needBuf(op, "offsets", offsets, b+1); err != nil {
		return err
	}
	if err := needBuf(op, "qkv", qkv, 1); err != nil {
		return err
	}
	if err := needBuf(op, "q", q, nq); err != nil {
		return err
	}
	return needBufs(op, nk, []string{"k", "v"}, k, v)
}

func checkRoPEOp(b, heads, d, l int, x, offsets, invFreq Buf, positionOffset int32) error {
	const op = "rope"
	if err := llamaDims(op, []string{"b", "heads", "d", "l"}, b, heads, d, l); err != nil {
		return err
	}
	switch {
	case d%2 != 0:
		return fmt.Errorf("%s: head dimension d=%d must be even", op, d)
	case positionOffset < 0 || int64(positionOffset)+int64(l) > math.MaxInt32:
		return fmt.Errorf("%s: positionOffset %d must be >= 0 with positionOffset+l < 2^31", op, positionOffset)
	}
	n, err := product(op, b, heads, l, d)
	if err != nil {
		return err
	}
	if err := needBuf(op, "x", x, n); err != nil {
		return err
	}
	if err := needBuf(op, "offsets", offsets, b+1); err != nil {
		return err
	}
	return needBuf(op, "invFreq", invFreq, d/2)
}

func checkCausalSoftmaxOp(b, heads, l int, s, offsets Buf) error {
	const op = "causal-softmax"
	if err := llamaDims(op, []string{"b", "heads", "l"}, b, heads, l); err != nil {
		return err
	}
	n, err := product(op, b, heads, l, l)
	if err != nil {
		return err
	}
	if b*heads*l > math.MaxInt32 {
		return fmt.Errorf("%s: b*heads*l = %d*%d*%d score rows do not fit one grid (2^31-1 blocks)", op, b, heads, l)
	}
	if err := needBuf(op, "s", s, n); err != nil {
		return err
	}
	return needBuf(op, "offsets", offsets, b+1)
}

func checkSwiGLUOp(tokens, inter int, gateUp, out Buf) error {
	const op = "swiglu"
	if err := llamaDims(op, []string{"tokens", "inter"}, tokens, inter); err != nil {
		return err
	}
	n, err := product(op, tokens, 2, inter)
	if err != nil {
		return err
	}
	if err := needBuf(op, "gateUp", gateUp, n); err != nil {
		return err
	}
	return needBuf(op, "out", out, n/2)
}

// checkGroupedGEMM checks a strided batched GEMM of batch blocks whose
// operands a and b and output c hold aBlock, bBlock and cBlock values per
// block.
func checkGroupedGEMM(op string, batch, m, n, d int, a, b, c Buf, aBlock, bBlock, cBlock int) error {
	if err := llamaDims(op, []string{"batch", "m", "n", "d"}, batch, m, n, d); err != nil {
		return err
	}
	for _, x := range []struct {
		name  string
		buf   Buf
		block int
	}{{"first operand", a, aBlock}, {"second operand", b, bBlock}, {"output", c, cBlock}} {
		total, err := product(op, batch, x.block)
		if err != nil {
			return err
		}
		if err := needBuf(op, x.name, x.buf, total); err != nil {
			return err
		}
	}
	return nil
}

func checkScoresGroupedOp(batch, m, n, d int, q, k, s Buf) error {
	return checkGroupedGEMM("scores-grouped", batch, m, n, d, q, k, s, m*d, n*d, m*n)
}

func checkContextGroupedOp(batch, m, n, d int, p, v, c Buf) error {
	return checkGroupedGEMM("context-grouped", batch, m, n, d, p, v, c, m*n, n*d, m*d)
}
