package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cranfieldLike is a Cranfield abstract, used when the collection is absent.
const cranfieldLike = `experimental investigation of the aerodynamics of a
wing in a slipstream .
  an experimental study of a wing in a propeller slipstream was
made in order to determine the spanwise distribution of the lift
increase due to slipstream at different angles of attack of the wing
and at different free stream to slipstream velocity ratios .  the
results were intended in part as an evaluation basis for different
theoretical treatments of this problem .`

// benchDocs returns the .W sections of the first n Cranfield documents, or
// copies of cranfieldLike.
func benchDocs(n int) []string {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cranfield", "cran.all.1400"))
	var docs []string
	if err == nil {
		for _, rec := range strings.Split(string(data), "\n.I ")[1:] {
			if i := strings.Index(rec, "\n.W\n"); i >= 0 {
				docs = append(docs, rec[i+4:])
				if len(docs) == n {
					break
				}
			}
		}
	}
	for len(docs) < n {
		docs = append(docs, cranfieldLike)
	}
	return docs
}

func BenchmarkEncode(b *testing.B) {
	tok := loadBert(b)
	docs := benchDocs(200)
	multi := []string{
		"Ångström naïve café résumé Crème brûlée — Tiếng Việt có dấu: Cụ thể, bạn sẽ tham gia",
		"北京大学的学生在研究自然语言处理。東京都庁 ひらがな カタカナ 한국어 텍스트입니다",
		"Ελληνικά Καλημέρα κόσμε Русский текст Привет мир العربية مرحبا بالعالم हिन्दी नमस्ते",
	}
	long := strings.Join(docs[:40], "\n")
	benchEncode(b, tok, docs, multi, long)
}

// BenchmarkEncodeBPE is BenchmarkEncode for GPT-2 (byte-level BPE) and
// Mistral (SentencePiece-style BPE). Their word caches are warm after the
// first round, as they are when a corpus is encoded.
func BenchmarkEncodeBPE(b *testing.B) {
	docs := benchDocs(200)
	multi := []string{
		"Ångström naïve café résumé Crème brûlée — Tiếng Việt có dấu: Cụ thể, bạn sẽ tham gia",
		"北京大学的学生在研究自然语言处理。東京都庁 ひらがな カタカナ 한국어 텍스트입니다 😀👩‍👩‍👧‍👦",
		"Ελληνικά Καλημέρα κόσμε Русский текст Привет мир العربية مرحبا بالعالم हिन्दी नमस्ते",
	}
	long := strings.Join(docs[:40], "\n")
	for _, name := range bpeModels {
		b.Run(name, func(b *testing.B) {
			benchEncode(b, loadShared(b, name, ""), docs, multi, long)
		})
	}
}

func benchEncode(b *testing.B, tok *Tokenizer, docs, multi []string, long string) {
	run := func(name string, texts []string, maxLength int) {
		b.Run(name, func(b *testing.B) {
			var bytes, tokens int
			for _, s := range texts {
				bytes += len(s)
				tokens += len(tok.Encode(s, maxLength).IDs)
			}
			b.SetBytes(int64(bytes))
			b.ReportAllocs()
			var buf []int32
			b.ResetTimer()
			for b.Loop() {
				for _, s := range texts {
					buf = tok.EncodeInto(buf, s, maxLength).IDs
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tokens), "ns/token")
		})
	}
	run("cranfield", docs, 0)
	run("cranfield-max128", docs, 128)
	run("long-doc-max512", []string{long}, 512)
	run("long-doc", []string{long}, 0)
	run("multilingual", multi, 0)
	b.Run("cranfield-Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range docs {
				_ = tok.Encode(s, 512)
			}
		}
	})
}
