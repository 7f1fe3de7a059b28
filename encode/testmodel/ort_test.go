//go:build cgo

package testmodel

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/gpu/ort"
)

// The DistilBERT and RoBERTa models run through gpu/ort (graph surgery with
// SPLADE pooling, ONNX Runtime's CPU provider) on padded batches of real
// token ids, compared with the float64 oracle.

func requireORT(t *testing.T) {
	t.Helper()
	if err := ort.Usable(); err != nil {
		t.Skipf("skipping ONNX Runtime test: %v", err)
	}
}

// ortPooled encodes batch with the model in dir and returns the pooled
// vectors, one per row.
func ortPooled(t *testing.T, dir string, pooling encode.Pooling, batch *encode.Batch) [][]float64 {
	t.Helper()
	b, err := ort.Open(context.Background(), dir, ort.Options{Pooling: pooling, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	vocab := b.VocabSize()
	out := make([]float32, batch.Size*vocab)
	err = b.Encode(context.Background(), batch, out)
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]float64, batch.Size)
	for r := range rows {
		rows[r] = make([]float64, vocab)
		for j := range rows[r] {
			rows[r][j] = float64(out[r*vocab+j])
		}
	}
	return rows
}

// shiftOutputBias copies the model directory dir with c added to the
// decoder bias (the initializer named bias), so that every logit is
// positive: relu is then the identity and log1p invertible, and the pooled
// outputs give the logits back (max pooling: max_i z_ij = expm1(w_j)).
func shiftOutputBias(t *testing.T, dir, bias string, c float32) string {
	t.Helper()
	m := loadModel(t, dir)
	found := false
	for _, in := range m.Graph.Initializer {
		if in.Name != bias {
			continue
		}
		for k := 0; k+4 <= len(in.RawData); k += 4 {
			v := math.Float32frombits(binary.LittleEndian.Uint32(in.RawData[k:]))
			binary.LittleEndian.PutUint32(in.RawData[k:], math.Float32bits(v+c))
		}
		found = true
	}
	if !found {
		t.Fatalf("no initializer %s", bias)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "shifted")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{ModelFile: b, ConfigFile: readFile(t, filepath.Join(dir, ConfigFile))} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// leftPadded is NewBatch with the padding before each row's tokens.
func leftPadded(seqs [][]int32, padID int32) *encode.Batch {
	b := encode.NewBatch(seqs, padID)
	for r, s := range seqs {
		p := b.SeqLen - len(s)
		row := r * b.SeqLen
		for i := 0; i < b.SeqLen; i++ {
			if i < p {
				b.InputIDs[row+i], b.AttentionMask[row+i] = int64(padID), 0
			} else {
				b.InputIDs[row+i], b.AttentionMask[row+i] = int64(s[i-p]), 1
			}
		}
	}
	return b
}

// TestArchMatchesONNXRuntime runs DistilBERT and RoBERTa models on a batch
// of Cranfield documents cut at different lengths (a short text and an
// empty one too; for RoBERTa also a text holding <pad> itself), padded to
// the longest, and compares with the oracle:
//
//   - the SPLADE vectors as splash computes them (max and sum pooling),
//     within 1e-4;
//   - the logits themselves: with the decoder bias raised by 40 every logit
//     is positive, so max pooling returns log(1 + max_i z_ij) for every
//     term j, from which max_i z_ij must match the oracle within 1e-4, and
//     sum pooling the sum of log(1 + z_ij) over every position i;
//   - for RoBERTa the same batch padded on the left: Hugging Face's
//     positions skip the padding (the tokens still count from 2), which the
//     oracle of the unpadded sequence gives; positions counted from the
//     start of the row would differ by more than 1e-2, which the test checks
//     too, so it sees a graph that ignores the padding.
//
// It also checks that gpu/ort's graph surgery reads the inputs as exactly
// input_ids and attention_mask.
func TestArchMatchesONNXRuntime(t *testing.T) {
	requireORT(t)
	texts := cranfieldTexts(t, 0)
	for _, arch := range []Arch{ArchDistilBERT, ArchRoBERTa} {
		t.Run(string(arch), func(t *testing.T) {
			dir := generateArch(t, Config{Arch: arch, Layers: 2, Hidden: 32, Heads: 2, Seed: 21})
			info, err := ort.InspectModel(readFile(t, filepath.Join(dir, ModelFile)))
			if err != nil {
				t.Fatal(err)
			}
			var inputs []string
			for _, in := range info.Inputs {
				inputs = append(inputs, in.Name)
			}
			if !slices.Equal(inputs, []string{"input_ids", "attention_mask"}) {
				t.Fatalf("gpu/ort sees inputs %v", inputs)
			}
			tk := loadTokenizer(t, filepath.Join(dir, TokenizerFile))
			var seqs [][]int32
			for k, n := range []int{48, 9, 37, 30, 23, 3} {
				seqs = append(seqs, tk.Encode(texts[(k*233+11)%len(texts)], n).IDs)
			}
			seqs = append(seqs, tk.Encode("", 0).IDs, tk.Encode("lift <pad> and drag of a wing", 0).IDs)
			o, err := LoadOracle(dir)
			if err != nil {
				t.Fatal(err)
			}
			if o.Arch() != arch {
				t.Fatalf("oracle arch %q", o.Arch())
			}
			pad := tk.PadID()
			batches := map[string]*encode.Batch{"right-padded": encode.NewBatch(seqs, pad)}
			if arch == ArchRoBERTa {
				if pad != 1 || !slices.Contains(seqs[len(seqs)-1], 1) {
					t.Fatalf("pad id %d; the <pad> text is %v", pad, seqs[len(seqs)-1])
				}
				batches["left-padded"] = leftPadded(seqs, pad)
			}

			// The SPLADE vectors.
			for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
				want := make([][]float64, len(seqs))
				for r, s := range seqs {
					want[r] = o.Pooled(s, pooling.String())
				}
				for name, batch := range batches {
					got := ortPooled(t, dir, pooling, batch)
					worst := 0.0
					for r, s := range seqs {
						for j, w := range want[r] {
							d := math.Abs(got[r][j] - w)
							worst = max(worst, d)
							if d > 1e-4 {
								t.Fatalf("%s %v row %d (%d tokens) term %d: ONNX Runtime %v, oracle %v", name, pooling, r, len(s), j, got[r][j], w)
							}
						}
					}
					t.Logf("%s %v: pooled weights within %.2g of the oracle", name, pooling, worst)
				}
			}

			// The logits, through a model whose logits are all positive.
			const shift = 40
			shifted := shiftOutputBias(t, dir, archNamesOf(arch).outBias, shift)
			os, err := LoadOracle(shifted)
			if err != nil {
				t.Fatal(err)
			}
			maxZ := make([][]float64, len(seqs))
			sumLog := make([][]float64, len(seqs))
			for r, s := range seqs {
				logits := os.Logits(s)
				maxZ[r] = slices.Clone(logits[0])
				for _, row := range logits {
					for j, z := range row {
						if z <= 0 {
							t.Fatalf("logit %v after the shift", z)
						}
						maxZ[r][j] = max(maxZ[r][j], z)
					}
				}
				// Every logit is positive: relu is the identity here.
				sumLog[r] = encode.PoolReference(logits, nil, encode.PoolSum)
			}
			for name, batch := range batches {
				got := ortPooled(t, shifted, encode.PoolMax, batch)
				worst := 0.0
				for r := range seqs {
					for j, w := range got[r] {
						z := math.Expm1(w)
						d := math.Abs(z - maxZ[r][j])
						worst = max(worst, d)
						if d > 1e-4 {
							t.Fatalf("%s row %d term %d: ONNX Runtime's largest logit %v, oracle %v", name, r, j, z, maxZ[r][j])
						}
					}
				}
				sums := ortPooled(t, shifted, encode.PoolSum, batch)
				worstSum := 0.0
				for r, s := range seqs {
					for j, w := range sums[r] {
						// float32 sums of len(s) terms near log(41).
						d := math.Abs(w - sumLog[r][j])
						worstSum = max(worstSum, d/float64(len(s)))
						if d > 1e-5*float64(len(s)) {
							t.Fatalf("%s row %d term %d: ONNX Runtime's sum of log(1+z) %v, oracle %v", name, r, j, w, sumLog[r][j])
						}
					}
				}
				t.Logf("%s: largest logits of %d rows x %d terms within %.2g of the oracle; sums within %.2g per position",
					name, len(seqs), len(got[0]), worst, worstSum)

				if name == "left-padded" {
					// Positions counted from the row's start instead: the
					// oracle of the most padded row's tokens with the position
					// table moved down by its padding length.
					r := 0
					for k, s := range seqs {
						if len(s) < len(seqs[r]) {
							r = k
						}
					}
					p, h := batch.SeqLen-len(seqs[r]), os.hidden
					wrong := *os
					wrong.posEmb, wrong.maxPos = os.posEmb[p*h:], os.maxPos-p
					logits := wrong.Logits(seqs[r])
					wrongMax := slices.Clone(logits[0])
					for _, row := range logits {
						for j, z := range row {
							wrongMax[j] = max(wrongMax[j], z)
						}
					}
					diff := 0.0
					for j, z := range wrongMax {
						diff = max(diff, math.Abs(z-maxZ[r][j]))
					}
					t.Logf("row %d: positions that ignore its %d padding tokens would move a logit by %.3g", r, p, diff)
					if diff < 1e-2 {
						t.Errorf("row %d: positions that ignore %d padding tokens change the logits by only %v", r, p, diff)
					}
				}
			}
		})
	}
}

// TestArchMaxLengthONNXRuntime runs a RoBERTa model whose position table
// has MaxPositions + 2 rows on a sequence of MaxLength tokens (positions
// 2..MaxLength+1, the last row of the table).
func TestArchMaxLengthONNXRuntime(t *testing.T) {
	requireORT(t)
	dir := generateArch(t, Config{Arch: ArchRoBERTa, Layers: 1, Hidden: 32, Heads: 2, MaxPositions: 24, Seed: 3})
	o, err := LoadOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxLength() != 24 {
		t.Fatalf("MaxLength %d, want 24", o.MaxLength())
	}
	ids := make([]int32, 24)
	for i := range ids {
		ids[i] = int32(1000 + 37*i)
	}
	ids[0], ids[23] = robertaBOSID, robertaEOSID
	got := ortPooled(t, dir, encode.PoolMax, encode.NewBatch([][]int32{ids}, robertaPadID))[0]
	for j, w := range o.Pooled(ids, "max") {
		if math.Abs(got[j]-w) > 1e-4 {
			t.Fatalf("term %d: ONNX Runtime %v, oracle %v", j, got[j], w)
		}
	}
	if _, err := ort.InspectModel(readFile(t, filepath.Join(dir, ModelFile))); err != nil {
		t.Fatal(err)
	}
	if m := loadModel(t, dir); m.Graph.Output[0].Type.GetTensorType().GetElemType() != int32(onnxpb.TensorProto_FLOAT) {
		t.Errorf("logits are not float")
	}
}
