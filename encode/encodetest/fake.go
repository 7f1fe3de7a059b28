// Package encodetest provides a fake encode.Backend for tests of the
// encoding stream and its sources and sinks: it needs neither ONNX Runtime
// nor model weights, and the vector it gives a document is a function of
// the document alone (Expected computes it without the stream).
package encodetest

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
)

// Backend pools a row as the count of each token id among the row's
// unmasked positions after log1p: a function of the document alone, so
// every test knows each document's vector without running the stream.
type Backend struct {
	// Vocab is set by Model to the tokenizer's vocabulary size.
	Vocab int
	// Calls counts Encode calls.
	Calls atomic.Int64
	// FailAt makes the FailAt-th call (from 1) fail with ErrBackend; 0 never.
	FailAt int64
	// Delay, when set, sleeps before each call (jitter for out-of-order results).
	Delay func() time.Duration
	// Block makes every call wait for ctx to be done.
	Block bool
	// Started, when set, is closed at the first call.
	Started chan struct{}
	once    sync.Once
}

// ErrBackend is the error of a call that FailAt makes fail.
var ErrBackend = errors.New("fake backend failed")

// VocabSize implements encode.Backend.
func (b *Backend) VocabSize() int { return b.Vocab }

// Close implements encode.Backend.
func (b *Backend) Close() error { return nil }

// Encode implements encode.Backend.
func (b *Backend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	n := b.Calls.Add(1)
	if b.Started != nil {
		b.once.Do(func() { close(b.Started) })
	}
	if b.Block {
		<-ctx.Done()
		return ctx.Err()
	}
	if b.FailAt > 0 && n == b.FailAt {
		return ErrBackend
	}
	if b.Delay != nil {
		time.Sleep(b.Delay())
	}
	for r := 0; r < batch.Size; r++ {
		row := out[r*b.Vocab : (r+1)*b.Vocab]
		clear(row)
		for i := 0; i < batch.SeqLen; i++ {
			k := r*batch.SeqLen + i
			if batch.AttentionMask[k] == 1 {
				row[batch.InputIDs[k]]++
			}
		}
		for j, c := range row {
			if c > 0 {
				row[j] = float32(math.Log1p(float64(c)))
			}
		}
	}
	return nil
}

// Model returns a model (max length maxLength) with the synthetic tokenizer and backend b.
func Model(t testing.TB, b *Backend, maxLength int) *encode.Model {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), testmodel.SyntheticTokenizerJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("not read by these tests"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := encode.LoadModel(dir, encode.ModelOptions{MaxLength: maxLength})
	if err != nil {
		t.Fatal(err)
	}
	b.Vocab = m.Tokenizer.VocabSize()
	if err := m.Attach([]encode.Backend{b}); err != nil {
		t.Fatal(err)
	}
	return m
}

// expected is the vector the fake backend gives text, computed without the
// stream.
func Expected(m *encode.Model, text string, opts encode.SparsifyOptions) encode.Result {
	enc := m.Tokenizer.Encode(text, m.MaxLength)
	if len(enc.IDs) <= m.Tokenizer.NumSpecialTokens() {
		return encode.Result{Truncated: enc.Truncated}
	}
	row := make([]float32, m.Tokenizer.VocabSize())
	for _, id := range enc.IDs {
		row[id]++
	}
	for j, c := range row {
		if c > 0 {
			row[j] = float32(math.Log1p(float64(c)))
		}
	}
	return encode.Result{Vec: encode.Sparsify(row, opts, encode.SparseVec{}), NumTokens: int32(len(enc.IDs)), Truncated: enc.Truncated}
}
