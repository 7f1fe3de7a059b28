#!/usr/bin/python3
"""splade_torch.py: the naver/splade document encoding loop in PyTorch, the
peer splash is compared with.

Written the way naver/splade's users run it: a BertForMaskedLM in eval mode
under torch.inference_mode(), batches of B documents in input order padded to
the batch's longest, the SPLADE max pooling of naver/splade
(torch.max(torch.log(1 + torch.relu(logits)) * attention_mask.unsqueeze(-1),
dim=1)), then each document's non-zero weights.

The model: Debian has no python3-transformers, so BertForMaskedLM is rebuilt
below as a small nn.Module with Hugging Face's structure and parameter names
(exact GELU, post-LayerNorm, (1 - mask) * -10000 attention penalty, decoder
tied to the word embeddings); its state dict is loaded, strict, from the
initializers of the model directory's model.onnx (the same weights splash
runs), and the head count and LayerNorm epsilon from its config.json.

Tokens: Debian has no python3-tokenizers either. The ids come from
bench/peers/docs.mjs --tokenizer (Hugging Face tokenizers, the npm build of
the Rust library behind BertTokenizerFast, truncation to 512 keeping [SEP]);
docs.mjs reports that time separately.

Usage (Debian's python, which has Debian's torch):

    node bench/peers/docs.mjs --input 'DOCS*.parquet' --title-column title \\
        --tokenizer MODEL/tokenizer.json --max-length 512 > docs.jsonl
    /usr/bin/python3 bench/peers/splade_torch.py --model MODEL --docs docs.jsonl \\
        --batch-size 32 --threads 2 [--output vectors.jsonl]

--output writes one {"id", "num_tokens", "terms": {"term id": weight}} per
document. The last line on stdout is a JSON summary: docs, tokens,
padded_tokens, padding_waste, batches, load_s (model build), wall_s (the
encoding loop: tensors, forward, pooling, sparsification), docs_per_s,
tokens_per_s, write_s, nnz_mean, peak_rss_mb (ru_maxrss), versions, openblas
(the OpenBLAS core the GEMMs ran on, OPENBLAS_CORETYPE as given, and
OpenBLAS's build configuration; null when libblas.so.3 is not OpenBLAS).

OpenBLAS picks its core from the CPU model; on a CPU model it does not know it
may pick a weaker one than the CPU's flags allow. bench/run.sh and check.sh
then set OPENBLAS_CORETYPE for this script (openblas_coretype in
bench/lib.sh); run by hand, set it yourself, e.g. OPENBLAS_CORETYPE=SkylakeX.
"""

import argparse
import json
import math
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model directory: model.onnx (or onnx/model.onnx) and config.json")
    p.add_argument("--docs", required=True, help='JSON Lines from docs.mjs --tokenizer: {"id", "ids"} per line')
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--limit", type=int, default=0, help="encode only the first N documents (0: all)")
    p.add_argument("--output", default="", help="write the sparse vectors as JSON Lines here")
    return p.parse_args()


ARGS = parse_args()
# Thread count for OpenMP (torch's intra-op pool) and for OpenBLAS (Debian's
# torch does its float32 GEMMs through libblas.so.3 = OpenBLAS, whose pthread
# build reads OPENBLAS_NUM_THREADS at load): set before torch is imported.
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

import resource  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.register_buffer("position_ids", torch.arange(c["max_position_embeddings"]).unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids):
        pos = self.position_ids[:, : input_ids.shape[1]]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(pos)
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.head_dim = h // self.heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + ext_mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        b, _, s, _ = ctx.shape
        return ctx.permute(0, 2, 1, 3).reshape(b, s, self.heads * self.head_dim)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, "self", BertSelfAttention(c))  # HF's parameter name: attention.self.*
        self.output = BertSelfOutput(c)

    def forward(self, x, ext_mask):
        return self.output(getattr(self, "self")(x, ext_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))  # exact (erf) GELU, hidden_act "gelu"


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, ext_mask):
        for layer in self.layer:
            x = layer(x, ext_mask)
        return x


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)

    def forward(self, input_ids, attention_mask, token_type_ids):
        # Hugging Face's extended attention mask: (1 - mask) * large negative.
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0
        return self.encoder(self.embeddings(input_ids, token_type_ids), ext)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.decoder = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))

    def forward(self, x):
        return self.decoder(self.transform(x)) + self.bias


class BertOnlyMLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)

    def forward(self, x):
        return self.predictions(x)


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.cls = BertOnlyMLMHead(c)
        # Tied decoder, as tie_word_embeddings says.
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.cls(self.bert(input_ids, attention_mask, token_type_ids))


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    if c.get("hidden_act", "gelu") != "gelu":
        raise SystemExit(f"splade_torch: hidden_act {c['hidden_act']!r} not supported (only exact gelu)")
    path = os.path.join(model_dir, "model.onnx")
    if not os.path.exists(path):
        path = os.path.join(model_dir, "onnx", "model.onnx")
    proto = onnx.load(path)
    inits = {t.name: t for t in proto.graph.initializer}
    c.setdefault("intermediate_size", 4 * c["hidden_size"])
    model = BertForMaskedLM(c)
    sd = model.state_dict()
    new = {}
    for name, ref in sd.items():
        src = name
        if name == "cls.predictions.decoder.weight":
            src = "bert.embeddings.word_embeddings.weight"  # tied
        if src not in inits:
            raise SystemExit(f"splade_torch: {path} has no initializer {src!r}")
        arr = numpy_helper.to_array(inits[src])
        if tuple(arr.shape) != tuple(ref.shape):
            raise SystemExit(f"splade_torch: {src} has shape {arr.shape}, want {tuple(ref.shape)}")
        new[name] = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True))
    model.load_state_dict(new, strict=True)
    del proto, inits
    return model.eval(), c


def openblas_info():
    """The OpenBLAS behind torch's GEMMs (Debian's torch links libblas.so.3;
    CDLL returns the library already loaded): its core and configuration."""
    import ctypes

    try:
        lib = ctypes.CDLL("libblas.so.3")
        core, config = lib.openblas_get_corename, lib.openblas_get_config
    except (OSError, AttributeError):
        return None
    core.restype = config.restype = ctypes.c_char_p
    return {"core": core().decode(), "coretype_env": os.environ.get("OPENBLAS_CORETYPE"), "config": config().decode()}


def read_docs(path, limit):
    docs = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            if "ids" not in d:
                raise SystemExit(f"splade_torch: {path}: a line without ids (run docs.mjs with --tokenizer)")
            docs.append((d["id"], d["ids"]))
            if limit and len(docs) >= limit:
                break
    return docs


def main():
    torch.set_num_threads(ARGS.threads)
    t0 = time.perf_counter()
    model, conf = load_model(ARGS.model)
    load_s = time.perf_counter() - t0
    docs = read_docs(ARGS.docs, ARGS.limit)
    pad_id = conf.get("pad_token_id", 0)

    results = []  # per document: (id, num_tokens, term ids, weights)
    tokens = padded = batches = nnz = 0
    t1 = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, len(docs), ARGS.batch_size):
            batch = docs[lo : lo + ARGS.batch_size]
            longest = max(len(ids) for _, ids in batch)
            # Pad to the batch's longest, as tokenizer(..., padding=True) does.
            input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for i, (_, ids) in enumerate(batch):
                input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention_mask[i, : len(ids)] = 1
            token_type_ids = torch.zeros_like(input_ids)
            logits = model(input_ids, attention_mask, token_type_ids)
            # naver/splade's max pooling.
            values, _ = torch.max(torch.log(1 + torch.relu(logits)) * attention_mask.unsqueeze(-1), dim=1)
            for i, (doc_id, ids) in enumerate(batch):
                cols = torch.nonzero(values[i]).squeeze(-1)
                w = values[i, cols]
                results.append((doc_id, len(ids), cols.tolist(), w.tolist()))
                nnz += cols.numel()
            tokens += int(attention_mask.sum())
            padded += input_ids.numel()
            batches += 1
    wall_s = time.perf_counter() - t1

    write_s = 0.0
    if ARGS.output:
        t2 = time.perf_counter()
        with open(ARGS.output, "w") as f:
            for doc_id, n, cols, ws in results:
                f.write(json.dumps({"id": doc_id, "num_tokens": n, "terms": dict(zip(map(str, cols), ws))}) + "\n")
        write_s = time.perf_counter() - t2

    n = len(docs)
    summary = {
        "tool": "splade_torch",
        "docs": n,
        "tokens": tokens,
        "padded_tokens": padded,
        "padding_waste": round(1 - tokens / padded, 4) if padded else 0,
        "batches": batches,
        "batch_size": ARGS.batch_size,
        "threads": torch.get_num_threads(),
        "load_s": round(load_s, 4),
        "wall_s": round(wall_s, 4),
        "docs_per_s": round(n / wall_s, 2) if wall_s else None,
        "tokens_per_s": round(tokens / wall_s, 1) if wall_s else None,
        "write_s": round(write_s, 4),
        "nnz_mean": round(nnz / n, 2) if n else 0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__, "onnx": onnx.__version__},
        "openblas": openblas_info(),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
