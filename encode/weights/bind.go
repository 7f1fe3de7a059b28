package weights

import "strings"

// binding exposes an initializer under a Hugging Face name.
type binding struct {
	src       string // initializer name
	transpose bool   // stored [in, out]: transpose to PyTorch's [out, in]
}

// hfName reports whether an initializer name looks like a PyTorch
// state-dict name ("bert.encoder.layer.0.attention.self.query.bias"):
// dotted, without the "::" of names torch.onnx makes up for folded
// constants (onnx::MatMul_1234) and without the "/" of node outputs.
func hfName(name string) bool {
	return strings.Contains(name, ".") && !strings.Contains(name, "::") && !strings.HasPrefix(name, "/") &&
		!strings.ContainsAny(name, " \t\n")
}

// weightName is the state-dict name of the weight of the linear layer
// whose bias is prefix+".bias": prefix+".weight", except for the masked-LM
// decoders, whose bias Hugging Face keeps under the head's name
// (cls.predictions.bias, lm_head.bias) while the weight is
// cls.predictions.decoder.weight or lm_head.decoder.weight.
func weightName(prefix string) string {
	if prefix == "lm_head" || strings.HasSuffix(prefix, ".lm_head") ||
		prefix == "predictions" || strings.HasSuffix(prefix, ".predictions") {
		return prefix + ".decoder.weight"
	}
	return prefix + ".weight"
}

// bindGraph finds the dense weights that an export stores under made-up
// names, and returns them by their Hugging Face names:
//
//   - Add(P.bias, MatMul(x, W)) (either input order), W a 2-D initializer
//     without a state-dict name stored [in, out] (torch.onnx folds the
//     transpose of nn.Linear's weight into such a constant): W transposed
//     is P.weight;
//   - Gemm(x, W, P.bias) with W such an initializer: W is P.weight (with
//     transB = 1; transposed otherwise).
//
// A name that an initializer already has is never bound, and a name that
// two different initializers would get is returned in ambiguous instead.
func bindGraph(inits map[string]*initializer, nodes []node) (bound map[string]binding, ambiguous map[string]bool) {
	producer := make(map[string]*node, len(nodes))
	for i := range nodes {
		for _, out := range nodes[i].outputs {
			producer[out] = &nodes[i]
		}
	}
	bound, ambiguous = map[string]binding{}, map[string]bool{}
	isFloat := func(t *initializer) bool { _, ok := elemType(t.dtype); return ok }
	// biasOf returns the prefix P of a 1-D float initializer named P.bias.
	biasOf := func(name string) (string, *initializer, bool) {
		t, ok := inits[name]
		if !ok || !hfName(name) || !strings.HasSuffix(name, ".bias") || len(t.dims) != 1 || !isFloat(t) {
			return "", nil, false
		}
		return strings.TrimSuffix(name, ".bias"), t, true
	}
	// anonymous returns a 2-D float initializer without a state-dict name.
	anonymous := func(name string) (*initializer, bool) {
		t, ok := inits[name]
		if !ok || hfName(name) || len(t.dims) != 2 || !isFloat(t) {
			return nil, false
		}
		return t, true
	}
	add := func(name string, b binding) {
		if _, taken := inits[name]; taken {
			return
		}
		if prev, ok := bound[name]; ok && prev != b {
			ambiguous[name] = true
			return
		}
		bound[name] = b
	}
	for i := range nodes {
		n := &nodes[i]
		switch {
		case n.op == "Add" && len(n.inputs) == 2:
			for k := 0; k < 2; k++ {
				prefix, bias, ok := biasOf(n.inputs[k])
				if !ok {
					continue
				}
				m := producer[n.inputs[1-k]]
				if m == nil || m.op != "MatMul" || len(m.inputs) != 2 {
					continue
				}
				w, ok := anonymous(m.inputs[1])
				if !ok || w.dims[1] != bias.dims[0] {
					continue
				}
				add(weightName(prefix), binding{src: m.inputs[1], transpose: true})
			}
		case n.op == "Gemm" && len(n.inputs) == 3:
			prefix, bias, ok := biasOf(n.inputs[2])
			if !ok {
				continue
			}
			w, ok := anonymous(n.inputs[1])
			if !ok {
				continue
			}
			out := w.dims[1]
			if n.transB != 0 {
				out = w.dims[0]
			}
			if out != bias.dims[0] {
				continue
			}
			add(weightName(prefix), binding{src: n.inputs[1], transpose: n.transB == 0})
		}
	}
	for name := range ambiguous {
		delete(bound, name)
	}
	return bound, ambiguous
}
