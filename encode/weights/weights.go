package weights

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/safetensors"
)

// SafeTensorsFile is the checkpoint file Open prefers in a model directory.
const SafeTensorsFile = "model.safetensors"

// Format is the kind of file a Checkpoint reads.
type Format string

// Formats.
const (
	FormatSafeTensors Format = "safetensors"
	FormatONNX        Format = "onnx"
)

// ErrMissing is wrapped by the error for a tensor the checkpoint does not
// hold (safetensors.ErrMissing: the same error for both formats).
var ErrMissing = safetensors.ErrMissing

// ErrUnsupported is wrapped by the error for a tensor whose type Float32
// does not convert (safetensors.ErrUnsupported).
var ErrUnsupported = safetensors.ErrUnsupported

// Option configures Open.
type Option func(*options)

type options struct {
	onnxFile string
}

// WithONNXFile makes Open read path when the directory holds no
// model.safetensors, instead of the ONNX file encode.ModelFile finds
// (model.onnx or onnx/model.onnx).
func WithONNXFile(path string) Option {
	return func(o *options) { o.onnxFile = path }
}

// Checkpoint is an open checkpoint: named float32 tensors read on demand.
// Its methods may be called concurrently.
type Checkpoint struct {
	source string
	format Format
	st     *safetensors.File
	onnx   *onnxFile
	bound  map[string]binding
	ambig  map[string]bool
	names  []string
}

// Open opens the checkpoint of a model directory: dir/model.safetensors
// when it exists, else its ONNX file (WithONNXFile's, or the one
// encode.ModelFile finds). A path to a file opens that file: a
// .safetensors file as safetensors, anything else as ONNX.
func Open(dir string, opts ...Option) (*Checkpoint, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(dir, ".safetensors") {
			return OpenSafeTensors(dir)
		}
		return OpenONNX(dir)
	}
	p := filepath.Join(dir, SafeTensorsFile)
	switch st, err := os.Stat(p); {
	case err == nil && st.Mode().IsRegular():
		return OpenSafeTensors(p)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("weights: %w", err)
	}
	onnxPath := o.onnxFile
	if onnxPath == "" {
		if onnxPath, err = encode.ModelFile(dir); err != nil {
			return nil, fmt.Errorf("weights: %s holds no %s, and %w", dir, SafeTensorsFile, err)
		}
	}
	return OpenONNX(onnxPath)
}

// badModel marks an error about a file's content: it wraps the error and
// encode.ErrBadModel, and reads as the error.
type badModel struct{ err error }

func (e *badModel) Error() string   { return e.err.Error() }
func (e *badModel) Unwrap() []error { return []error{e.err, encode.ErrBadModel} }

// OpenSafeTensors opens a safetensors checkpoint. Its names are the
// file's tensor names.
func OpenSafeTensors(path string) (*Checkpoint, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		if errors.Is(err, safetensors.ErrFormat) {
			return nil, &badModel{fmt.Errorf("weights: %w", err)}
		}
		return nil, fmt.Errorf("weights: %w", err)
	}
	return &Checkpoint{source: path, format: FormatSafeTensors, st: f, names: f.Names()}, nil
}

// OpenONNX opens the initializers of an ONNX model as a checkpoint. Only
// the headers of the initializers and the graph's nodes are read here.
// Its names are those of the float initializers (FLOAT, FLOAT16,
// BFLOAT16) whose names look like state-dict names (dotted, no "::"),
// plus the names bound through the graph (see the package documentation);
// Float32 also reads any other float initializer by its own name.
func OpenONNX(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("weights: %w", err)
	}
	c, err := newONNXCheckpoint(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	c.onnx.closer = f
	return c, nil
}

// newONNXCheckpoint scans the size bytes of an ONNX model that r reads
// (path names it in errors and locates external data).
func newONNXCheckpoint(path string, r io.ReaderAt, size int64) (*Checkpoint, error) {
	o, err := scanONNX(path, r, size)
	if err != nil {
		return nil, &badModel{fmt.Errorf("weights: %s: not a readable ONNX model: %w", path, err)}
	}
	c := &Checkpoint{source: path, format: FormatONNX, onnx: o}
	c.bound, c.ambig = bindGraph(o.inits, o.nodes)
	used := map[string]bool{}
	for name, b := range c.bound {
		c.names = append(c.names, name)
		used[b.src] = true
	}
	for name, t := range o.inits {
		if _, float := elemType(t.dtype); float && hfName(name) && !used[name] {
			c.names = append(c.names, name)
		}
	}
	sort.Strings(c.names)
	return c, nil
}

// Source returns the path of the file the checkpoint reads.
func (c *Checkpoint) Source() string { return c.source }

// Format returns the kind of file the checkpoint reads.
func (c *Checkpoint) Format() Format { return c.format }

// Names returns the state-dict names of the checkpoint's tensors, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Has reports whether Float32 finds name (a tied decoder weight, which
// checkpoints omit, is the usual name a caller asks about).
func (c *Checkpoint) Has(name string) bool {
	if c.st != nil {
		_, ok := c.st.Tensor(name)
		return ok
	}
	if _, ok := c.bound[name]; ok {
		return true
	}
	_, ok := c.onnx.inits[name]
	return ok
}

// Shape returns the shape of a tensor as Float32 returns it, without
// reading its data.
func (c *Checkpoint) Shape(name string) ([]int, bool) {
	if c.st != nil {
		info, ok := c.st.Tensor(name)
		return info.Shape, ok
	}
	src, transpose := name, false
	if b, ok := c.bound[name]; ok {
		src, transpose = b.src, b.transpose
	}
	t, ok := c.onnx.inits[src]
	if !ok {
		return nil, false
	}
	shape, _, err := t.shape()
	if err != nil {
		return nil, false
	}
	if transpose {
		slices.Reverse(shape)
	}
	return shape, true
}

// missingError is the error for a name the checkpoint lacks.
type missingError struct{ file, name, why string }

func (e *missingError) Error() string {
	return fmt.Sprintf("weights: %s: tensor %s is missing%s", e.file, e.name, e.why)
}

func (e *missingError) Is(target error) bool { return target == ErrMissing }

// Float32 returns the tensor of a state-dict name as float32 values in
// PyTorch's layout (row-major, dense weights [out, in]) and its shape.
// F16 and BF16 data converts exactly. Errors name the file and the tensor.
func (c *Checkpoint) Float32(name string) ([]float32, []int, error) {
	if c.st != nil {
		vals, shape, err := c.st.Float32(name)
		if err != nil {
			return nil, nil, fmt.Errorf("weights: %w", err)
		}
		return vals, shape, nil
	}
	if c.ambig[name] {
		return nil, nil, &missingError{c.source, name, " (two initializers bind to it through the graph)"}
	}
	src, transpose := name, false
	if b, ok := c.bound[name]; ok {
		src, transpose = b.src, b.transpose
	}
	t, ok := c.onnx.inits[src]
	if !ok {
		return nil, nil, &missingError{file: c.source, name: name}
	}
	vals, shape, err := c.onnx.read(t)
	if err != nil {
		what := "tensor " + name
		if src != name {
			what += " (initializer " + src + ")"
		}
		err = fmt.Errorf("weights: %s: %s: %w", c.source, what, err)
		if errors.Is(err, ErrUnsupported) {
			return nil, nil, err
		}
		return nil, nil, &badModel{err}
	}
	if transpose {
		vals = transpose2D(vals, shape[0], shape[1])
		shape = []int{shape[1], shape[0]}
	}
	return vals, shape, nil
}

// transpose2D returns the [cols, rows] transpose of a row-major [rows, cols] matrix.
func transpose2D(v []float32, rows, cols int) []float32 {
	out := make([]float32, len(v))
	const block = 64
	for i0 := 0; i0 < rows; i0 += block {
		for j0 := 0; j0 < cols; j0 += block {
			for i := i0; i < min(i0+block, rows); i++ {
				for j := j0; j < min(j0+block, cols); j++ {
					out[j*rows+i] = v[i*cols+j]
				}
			}
		}
	}
	return out
}

// Close closes the checkpoint's files.
func (c *Checkpoint) Close() error {
	if c.st != nil {
		return c.st.Close()
	}
	return c.onnx.close()
}
