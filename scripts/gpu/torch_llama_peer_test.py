"""Tests of scripts/gpu/torch_llama_peer.py that run without a GPU.

    python3 scripts/gpu/torch_llama_peer_test.py -v

The torch tests skip, saying why, where torch does not import; the test
against gen-test's checkpoint layout needs $SPLASH_GENTEST_UNTIED, a
directory written by

    splash model gen-test --arch llama --layers 2 --hidden 64 --heads 8 \
      --kv-heads 2 --intermediate 192 --vocab 40000 --no-onnx \
      --safetensors-dtype BF16 --output DIR
"""
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_llama_peer as peer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MISTRAL = os.path.join(ROOT, "testdata", "tokenizers", "mistral-7b", "tokenizer.json")

try:
    import torch
except ImportError:  # Debian's python3 without python3-torch
    torch = None
needs_torch = unittest.skipIf(torch is None, "torch does not import")

# Llama 3 8B's config.json (meta-llama/Meta-Llama-3-8B).
LLAMA3_8B = {
    "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False,
}


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)), 8 + n


class NoTorch(unittest.TestCase):
    def test_flops_llama3_8b(self):
        # Two FLOPs per weight of the GEMMs (8,030,261,248 parameters less
        # the embedding table 128256x4096 and the 65 RMSNorm gains of 4096),
        # plus 4·l·H per layer of attention at l = 512: the published
        # parameter count, not the formula again.
        want = 2 * (8_030_261_248 - 128256 * 4096 - 65 * 4096) + 32 * 4 * 512 * 4096
        self.assertEqual(peer.flops_per_token(LLAMA3_8B, 512), want)

    def test_llama_tensors_count_llama3_8b(self):
        params = sum(peer.math.prod(s) for _, s in peer.llama_tensors(LLAMA3_8B))
        self.assertEqual(params, 8_030_261_248)
        tied = dict(LLAMA3_8B, tie_word_embeddings=True)
        self.assertEqual(sum(peer.math.prod(s) for _, s in peer.llama_tensors(tied)), 8_030_261_248 - 128256 * 4096)

    def test_pad_tokenizer(self):
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(MISTRAL, os.path.join(d, "tokenizer.json"))
            with open(MISTRAL, encoding="utf-8") as f:
                before = json.load(f)["model"]["vocab"]
            self.assertEqual(peer.pad_tokenizer(d, 128256), 32000)
            with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
                after = json.load(f)["model"]["vocab"]
            self.assertEqual(len(after), 128256)
            self.assertEqual(sorted(after.values()), list(range(128256)))
            for k, v in before.items():
                self.assertEqual(after[k], v)
            with self.assertRaises(ValueError):
                peer.pad_tokenizer(d, 1000)

    def test_seismic_and_compare(self):
        vecs = [{5: 1.5, 70000: 0.25, 3: 2.0}, {}, {1: 0.5}]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.bin")
            with open(path, "wb") as f:
                f.write(struct.pack("<I", len(vecs)))
                for v in vecs:
                    terms = sorted(v)
                    f.write(struct.pack(f"<I{len(terms)}I{len(terms)}f", len(terms), *terms, *[v[t] for t in terms]))
            with open(path + ".ids", "w") as f:
                f.write("a\nb\nc\n")
            ids, got = peer.read_seismic(path)
            self.assertEqual(ids, ["a", "b", "c"])
            self.assertEqual(got, vecs)
            with open(path, "ab") as f:
                f.write(b"\0")
            with self.assertRaises(ValueError):
                peer.read_seismic(path)
        # Top-2 of theirs {1, 2}; of ours {1, 3}: overlap 1/2; over theirs'
        # top-2, term 1 differs by 0.1 on 1.0 and term 2 by 2.99 on 3.
        o, r = peer.compare_vectors({1: 1.1, 3: 5.0, 2: 0.01}, {1: 1.0, 2: 3.0, 3: 0.5}, k=2)
        self.assertEqual(o, 0.5)
        self.assertAlmostEqual(r, 2.99 / 3, places=6)
        # A term missing from ours counts in the overlap, not in the difference.
        o, r = peer.compare_vectors({1: 1.1, 3: 5.0}, {1: 1.0, 2: 3.0, 3: 0.5}, k=2)
        self.assertEqual(o, 0.5)
        self.assertAlmostEqual(r, 0.1, places=6)
        self.assertEqual(peer.compare_vectors({1: 1.0}, {1: 1.0}, k=20), (1.0, 0.0))

    def test_overlap_files(self):
        def write(path, ids, vecs):
            with open(path, "wb") as f:
                f.write(struct.pack("<I", len(vecs)))
                for v in vecs:
                    terms = sorted(v)
                    f.write(struct.pack(f"<I{len(terms)}I{len(terms)}f", len(terms), *terms, *[v[t] for t in terms]))
            with open(path + ".ids", "w") as f:
                f.write("".join(i + "\n" for i in ids))

        full = {t: float(t) for t in range(1, 41)}  # top-20: 21..40
        half = dict(full)
        for t in range(31, 41):
            half[t] = 0.5  # top-20 now 11..30: 10 of 20 shared
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a.bin"), os.path.join(d, "b.bin")
            write(a, ["x", "y", "z"], [full, half, full])
            write(b, ["z", "y", "x", "w"], [full, full, full, {}])
            self.assertEqual(peer.overlap_files(a, b, docs=32), (2.5 / 3, 0.5, 3))
            self.assertEqual(peer.overlap_files(a, b, docs=1), (1.0, 1.0, 1))
            write(b, ["q"], [full])
            with self.assertRaises(ValueError):
                peer.overlap_files(a, b)

    def test_length_batches(self):
        rnd = random.Random(3)
        lengths = [rnd.randint(1, 512) for _ in range(1000)]
        batches = peer.length_batches(lengths, 64, 8192)
        self.assertEqual(sorted(i for b in batches for i in b), list(range(1000)))
        flat = [lengths[i] for b in batches for i in b]
        self.assertEqual(flat, sorted(flat))
        for b in batches:
            self.assertLessEqual(len(b), 64)
            self.assertLessEqual(len(b) * max(lengths[i] for i in b), 8192)

    def test_long_docs(self):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "t.jsonl"), os.path.join(d, "long.jsonl")
            with open(src, "w") as f:
                for i in range(7):
                    f.write(json.dumps({"id": str(i), "text": f"text {i} " * 100}) + "\n")
            peer.long_docs(src, out, 5)
            with open(out) as f:
                docs = [json.loads(line) for line in f]
            self.assertEqual([x["id"] for x in docs], [f"long-{i}" for i in range(5)])
            for x in docs:
                self.assertGreaterEqual(len(x["text"]), 4000)


@needs_torch
class Torch(unittest.TestCase):
    def test_pool_chunked_matches_full_and_loops(self):
        g = torch.Generator().manual_seed(7)
        b, l, h, v = 3, 9, 16, 1001
        hidden = torch.randn(b, l, h, generator=g)
        weight = torch.randn(v, h, generator=g)
        mask = torch.ones(b, l)
        mask[1, 4:] = 0
        mask[2, 1:] = 0
        full = peer.pool_full(hidden, weight, mask)
        # An independent float64 reference: explicit loops over documents,
        # real positions and vocabulary rows.
        ref = torch.zeros(b, v, dtype=torch.float64)
        hd, wd = hidden.double(), weight.double()
        for i in range(b):
            for p in range(int(mask[i].sum())):
                z = wd @ hd[i, p]
                ref[i] = torch.maximum(ref[i], torch.log1p(torch.relu(z)))
        self.assertLess(float((full.double() - ref).abs().max()), 1e-4)
        for chunk in (1, 7, 256, 1000, 1001, 5000):
            got = peer.pool_chunked(hidden, weight, mask, chunk)
            self.assertEqual(got.shape, (b, v))
            self.assertLess(float((got.double() - ref).abs().max()), 1e-4, f"chunk {chunk}")
        # Padding must not leak: a large activation at a masked position.
        hidden2 = hidden.clone()
        hidden2[2, 5] = 100
        got = peer.pool_chunked(hidden2, weight, mask, 100)
        self.assertLess(float((got.double() - ref).abs().max()), 1e-4)

    def test_pool_chunked_bf16(self):
        g = torch.Generator().manual_seed(8)
        hidden = torch.randn(2, 5, 32, generator=g).to(torch.bfloat16)
        weight = torch.randn(300, 32, generator=g).to(torch.bfloat16)
        mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
        a = peer.pool_chunked(hidden, weight, mask, 64).float()
        b = peer.pool_full(hidden, weight, mask).float()
        self.assertLess(float((a - b).abs().max() / b.abs().max()), 1e-2)

    def test_vocab_chunk(self):
        c = peer.vocab_chunk(128, 512, 128256)
        self.assertLessEqual(128 * 512 * c * 2, 2 << 30)
        self.assertEqual(peer.vocab_chunk(1, 1, 128256), 128256)

    def test_gen_weights_layout(self):
        with tempfile.TemporaryDirectory() as d:
            tmpl, out = os.path.join(d, "t"), os.path.join(d, "o")
            os.makedirs(tmpl)
            shutil.copy(MISTRAL, os.path.join(tmpl, "tokenizer.json"))
            with open(os.path.join(tmpl, "config.json"), "w") as f:
                json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
                           "splash_test_model": {}, "tie_word_embeddings": True}, f)
            shape = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 2,
                     "intermediate_size": 192, "vocab_size": 40000}
            nbytes, params = peer.gen_weights(tmpl, out, shape, shards=3, seed=1)
            with open(os.path.join(out, "config.json")) as f:
                cfg = json.load(f)
            self.assertNotIn("splash_test_model", cfg)
            self.assertFalse(cfg["tie_word_embeddings"])
            self.assertEqual(cfg["head_dim"], 8)
            with open(os.path.join(out, "model.safetensors.index.json")) as f:
                index = json.load(f)
            want = dict(peer.llama_tensors(cfg))
            self.assertEqual(set(index["weight_map"]), set(want))
            self.assertEqual(params, sum(peer.math.prod(s) for s in want.values()))
            seen, total = {}, 0
            for shard in sorted(set(index["weight_map"].values())):
                header, start = read_header(os.path.join(out, shard))
                size = os.path.getsize(os.path.join(out, shard))
                end = 0
                self.assertEqual(header.pop("__metadata__"), {"format": "pt"})
                for name, meta in header.items():
                    self.assertEqual(index["weight_map"][name], shard)
                    self.assertEqual(meta["dtype"], "BF16")
                    self.assertEqual(tuple(meta["shape"]), want[name])
                    self.assertEqual(meta["data_offsets"][1] - meta["data_offsets"][0], 2 * peer.math.prod(want[name]))
                    end = max(end, meta["data_offsets"][1])
                    seen[name] = (shard, start, meta)
                self.assertEqual(start + end, size)
                total += end
            self.assertEqual(total, nbytes)
            self.assertEqual(index["metadata"]["total_size"], nbytes)
            # The bytes are the bf16 values: norms read back as exactly 1,
            # the embedding as N(0, 1).
            shard, start, meta = seen["model.norm.weight"]
            with open(os.path.join(out, shard), "rb") as f:
                f.seek(start + meta["data_offsets"][0])
                raw = f.read(meta["data_offsets"][1] - meta["data_offsets"][0])
            vals = [struct.unpack("<f", struct.pack("<I", u << 16))[0] for u in struct.unpack(f"<{len(raw) // 2}H", raw)]
            self.assertEqual(vals, [1.0] * 64)
            shard, start, meta = seen["model.embed_tokens.weight"]
            with open(os.path.join(out, shard), "rb") as f:
                f.seek(start + meta["data_offsets"][0])
                raw = f.read(2 * 64 * 1000)
            vals = [struct.unpack("<f", struct.pack("<I", u << 16))[0] for u in struct.unpack(f"<{len(raw) // 2}H", raw)]
            mean = sum(vals) / len(vals)
            var = sum((x - mean) ** 2 for x in vals) / len(vals)
            self.assertLess(abs(mean), 0.02)
            self.assertLess(abs(var - 1), 0.05)

    @unittest.skipUnless(os.environ.get("SPLASH_GENTEST_UNTIED"), "set SPLASH_GENTEST_UNTIED to a gen-test directory (see the module doc)")
    def test_names_and_shapes_match_gen_test(self):
        d = os.environ["SPLASH_GENTEST_UNTIED"]
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        got = {}
        for name in os.listdir(d):
            if name.endswith(".safetensors"):
                header, _ = read_header(os.path.join(d, name))
                got.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
        self.assertEqual(got, dict(peer.llama_tensors(cfg)))


if __name__ == "__main__":
    unittest.main()
