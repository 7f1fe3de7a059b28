"""PyTorch peer of splash's CUDA engine for Llama- and Mistral-shaped models.

    python3 scripts/gpu/torch_llama_peer.py COMMAND ...

scripts/gpu-check-llama.sh runs it on the GPU machine; every command prints
one or more lines starting with "peer " (JSON after the command name where
the figures are for the summary). Commands:

  pad-tokenizer DIR VOCAB   give DIR/tokenizer.json VOCAB ids: splash
        refuses a tokenizer with fewer ids than the model's vocab_size, and
        gen-test --vocab 128256 keeps mistral-7b's 32,000-id tokenizer. The
        ids above the tokenizer's become BPE vocabulary entries no merge
        reaches (as Llama 3's reserved tokens are never produced from text),
        so splash's tokenizer and Hugging Face's give the same ids as before.
  long-docs TEXTS OUT N     write N documents of at least 4,000 characters
        (more than 512 tokens) to OUT as JSON Lines, each the concatenation
        of successive texts of TEXTS: the input of the one-batch timing.
  overlap A B               top-20 overlap of the first --docs documents of
        two splash export --format seismic files (A against B, matched by
        id): splash fp8 against splash bf16.
  flops CONFIG LENGTH       model FLOPs per token of a document of LENGTH
        tokens (see flops_per_token).
  gen-weights TEMPLATE OUT  write a Llama-shaped checkpoint with random bf16
        weights (torch, on the GPU when there is one; untied unless --tied) in --shards
        safetensors files, config.json from TEMPLATE's with the shape
        replaced, and TEMPLATE's tokenizer: gen-test takes about 20 s per GB
        on one core, too slow for 16 GB inside the check.
  encode MODEL TEXTS        the peer of splash encode: transformers
        LlamaForCausalLM (or MistralForCausalLM) from the same safetensors
        in bfloat16 with SDPA attention, the texts tokenized with the same
        tokenizer.json, sorted by length (timed), batches of --max-batch
        documents under --batch-tokens padded tokens, SPLADE max pooling
        log1p(relu(logits)) over real positions computed in vocabulary
        chunks (pool_chunked), non-zeros to the host; one warm-up batch.
        --parity SEISMIC compares splash's vectors (splash export --format
        seismic) of the first --parity-docs documents with the peer's.
        --gemm also times torch's bf16 GEMMs (the card's ceiling).
  batch MODEL TEXTS         one batch of --docs documents of --length tokens
        (no padding), timed --repeats times after a warm-up, with peak GPU
        memory: the peer of splash model bench on the 8B shape.

Only pad-tokenizer, long-docs, overlap and flops run without torch; the torch and
transformers imports are inside the commands that need them.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time


# ---------------------------------------------------------------- no torch


def pad_tokenizer(model_dir, vocab):
    """Adds unreachable BPE entries so that tokenizer.json has vocab ids."""
    path = os.path.join(model_dir, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    model = tok.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ValueError(f"{path}: model.type {model.get('type')!r}: pad-tokenizer pads BPE vocabularies only")
    ids = list(model["vocab"].values()) + [a["id"] for a in tok.get("added_tokens", [])]
    have = max(ids) + 1
    if have > vocab:
        raise ValueError(f"{path} has {have} ids, more than the {vocab} asked for")
    for i in range(have, vocab):
        name = f"<splash_pad_{i}>"
        if name in model["vocab"]:
            raise ValueError(f"{path}: {name} is already in the vocabulary")
        model["vocab"][name] = i
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    os.replace(tmp, path)
    return have


def read_texts(path):
    """The "text" of every line of a JSON Lines file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def long_docs(texts_path, out_path, n, min_chars=4000):
    """Writes n documents of at least min_chars characters, ids long-K."""
    texts = read_texts(texts_path)
    if not texts:
        raise ValueError(f"{texts_path} holds no texts")
    k = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for d in range(n):
            parts = []
            while sum(len(p) + 1 for p in parts) < min_chars:
                parts.append(texts[k % len(texts)])
                k += 1
            out.write(json.dumps({"id": f"long-{d}", "text": " ".join(parts)}) + "\n")


def flops_per_token(cfg, length):
    """Model FLOPs of one token of a document of `length` tokens.

    Two FLOPs per multiply-add of every GEMM the token goes through: per
    layer Q, K and V 2·H·(heads+2·kv)·d, the attention output 2·heads·d·H,
    gate and up 2·2·H·I, down 2·I·H, and attention itself 2·2·length·heads·d
    (scores and context, every key counted as for the bidirectional mask);
    then the LM head 2·H·V. The embedding lookup, norms, RoPE, softmax and
    pooling are not counted. This is gpu/cuda.ModelFLOPsPerToken for
    decoders (2·8,030,261,248 less the embedding table and the norms, plus
    attention, for Llama 3 8B), written again from config.json.
    """
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    d = cfg.get("head_dim") or h // heads
    inter = cfg["intermediate_size"]
    qd, kvd = heads * d, kv * d
    layer = 2 * h * (qd + 2 * kvd) + 2 * qd * h + 6 * h * inter + 4 * length * qd
    return cfg["num_hidden_layers"] * layer + 2 * h * cfg["vocab_size"]


def read_seismic(path):
    """Reads splash export --format seismic: (ids, [{term: weight}])."""
    with open(path, "rb") as f:
        data = f.read()
    (count,) = struct.unpack_from("<I", data, 0)
    off, vectors = 4, []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, off)
        off += 4
        terms = struct.unpack_from(f"<{n}I", data, off)
        off += 4 * n
        weights = struct.unpack_from(f"<{n}f", data, off)
        off += 4 * n
        vectors.append(dict(zip(terms, weights)))
    if off != len(data):
        raise ValueError(f"{path}: {len(data) - off} bytes after {count} documents")
    with open(path + ".ids", encoding="utf-8") as f:
        ids = f.read().split("\n")
    if ids and ids[-1] == "":
        ids.pop()
    if len(ids) != count:
        raise ValueError(f"{path}.ids has {len(ids)} ids for {count} documents")
    return ids, vectors


def compare_vectors(ours, theirs, k=20):
    """Top-k overlap (|top_k(ours) ∩ top_k(theirs)| / k) and the largest
    relative difference |ours - theirs| / |theirs| over the terms both
    vectors hold among the k largest of theirs."""
    top = lambda v: set(sorted(v, key=lambda t: (-v[t], t))[:k])
    a, b = top(ours), top(theirs)
    denom = max(min(k, len(theirs)), 1)
    overlap = len(a & b) / denom
    rel = 0.0
    for t in b & set(ours):
        rel = max(rel, abs(ours[t] - theirs[t]) / max(abs(theirs[t]), 1e-12))
    return overlap, rel


def overlap_files(a_path, b_path, docs=32, k=20):
    """(mean, min, documents) of the top-k overlap of a's first docs
    documents against b's vectors of the same ids."""
    ids_a, va = read_seismic(a_path)
    ids_b, vb = read_seismic(b_path)
    ref = dict(zip(ids_b, vb))
    o = [compare_vectors(v, ref[i], k)[0] for i, v in list(zip(ids_a, va))[:docs] if i in ref]
    if not o:
        raise ValueError(f"{a_path} and {b_path} share no document id")
    return sum(o) / len(o), min(o), len(o)


# ---------------------------------------------------------------- torch


def pool_chunked(hidden, weight, mask, chunk):
    """SPLADE max pooling in vocabulary chunks.

    hidden [b, l, H] (after the final norm), weight [V, H] (the LM head),
    mask [b, l] (1 on real positions). Returns [b, V] = max over positions of
    log1p(relu(hidden · weightᵀ)) · mask, naver/splade's pooling, without
    holding the [b, l, V] logits: each chunk of `chunk` vocabulary rows is
    multiplied, activated and reduced before the next.
    """
    import torch

    b, v = hidden.shape[0], weight.shape[0]
    out = torch.empty((b, v), dtype=hidden.dtype, device=hidden.device)
    m = mask.to(hidden.dtype).unsqueeze(-1)
    for c0 in range(0, v, chunk):
        c1 = min(c0 + chunk, v)
        z = torch.matmul(hidden, weight[c0:c1].t())
        out[:, c0:c1] = torch.amax(torch.log1p(torch.relu(z)) * m, dim=1)
    return out


def pool_full(hidden, weight, mask):
    """The unchunked reference of pool_chunked: the whole [b, l, V] logits."""
    import torch

    z = torch.matmul(hidden, weight.t())
    return torch.amax(torch.log1p(torch.relu(z)) * mask.to(hidden.dtype).unsqueeze(-1), dim=1)


def vocab_chunk(b, l, v, budget_bytes=2 << 30, elem=2):
    """Vocabulary rows per chunk so that one [b, l, chunk] bf16 tensor stays
    under budget_bytes (the activation makes two more of that size)."""
    return max(256, min(v, budget_bytes // max(1, b * l * elem)))


def load_model(model_dir):
    import torch
    import transformers

    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        arch = json.load(f)["architectures"][0]
    cls = getattr(transformers, arch)
    kw = dict(attn_implementation="sdpa")
    try:
        model = cls.from_pretrained(model_dir, dtype=torch.bfloat16, **kw)
    except TypeError:
        model = cls.from_pretrained(model_dir, torch_dtype=torch.bfloat16, **kw)
    # Older transformers take dtype= as a config field and load float32.
    model = model.to(device="cuda", dtype=torch.bfloat16).eval()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
    # Right padding with any id: the mask keeps padding out of attention and
    # pooling, and real tokens keep positions 0..n-1, as in splash.
    tok.pad_token = tok.convert_ids_to_tokens(0)
    tok.padding_side = "right"
    return tok, model


def encode_batch(model, ids, mask, chunk=None):
    """Pooled SPLADE vectors [b, V] (bf16) of one padded batch."""
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    w = model.lm_head.weight
    c = chunk or vocab_chunk(ids.shape[0], ids.shape[1], w.shape[0])
    return pool_chunked(hidden, w, mask, c)


def length_batches(lengths, max_batch, batch_tokens):
    """Indices sorted by length, cut into batches of at most max_batch
    documents whose padded size (documents × longest) stays under
    batch_tokens (a longer document goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, cur = [], []
    for i in order:
        if cur and (len(cur) + 1 > max_batch or (len(cur) + 1) * lengths[i] > batch_tokens):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def gemm_rates(shapes, iters=30):
    import torch

    out = []
    for m, k, n in shapes:
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            a @ b
        torch.cuda.synchronize()
        out.append(((m, k, n), 2 * m * k * n * iters / (time.perf_counter() - start) / 1e12))
        del a, b
    return out


def cmd_encode(args):
    import torch

    texts = read_texts(args.texts)
    if args.max_docs:
        texts = texts[: args.max_docs]
    tok, model = load_model(args.model)
    cfg = model.config
    print(f"peer torch {torch.__version__} on {torch.cuda.get_device_name(0)}: {type(model).__name__} "
          f"{cfg.num_hidden_layers}x{cfg.hidden_size}, vocab {cfg.vocab_size}, {len(texts)} documents", flush=True)

    def run(order_batches, all_ids):
        tokens = nonzeros = 0
        with torch.inference_mode():
            for batch in order_batches:
                enc = tok.pad({"input_ids": [all_ids[i] for i in batch]}, return_tensors="pt")
                ids, mask = enc["input_ids"].cuda(non_blocking=True), enc["attention_mask"].cuda(non_blocking=True)
                pooled = encode_batch(model, ids, mask)
                nz = pooled.nonzero()
                vals = pooled[nz[:, 0], nz[:, 1]].float().cpu()
                nz.cpu()
                tokens += int(mask.sum())
                nonzeros += int(vals.numel())
        torch.cuda.synchronize()
        return tokens, nonzeros

    # Warm-up, untimed: the first 64 texts in length-sorted batches.
    warm = tok(texts[:64], truncation=True, max_length=args.max_length)["input_ids"]
    run(length_batches([len(x) for x in warm], args.max_batch, args.batch_tokens), warm)
    torch.cuda.reset_peak_memory_stats()

    torch.cuda.synchronize()
    start = time.perf_counter()
    all_ids = tok(texts, truncation=True, max_length=args.max_length)["input_ids"]
    batches = length_batches([len(x) for x in all_ids], args.max_batch, args.batch_tokens)
    tok_secs = time.perf_counter() - start
    tokens, nonzeros = run(batches, all_ids)
    secs = time.perf_counter() - start
    res = {"system": "torch", "docs": len(texts), "tokens": tokens, "batches": len(batches), "seconds": round(secs, 3),
           "tokenize_sort_seconds": round(tok_secs, 3), "docs_per_s": len(texts) / secs, "tokens_per_s": tokens / secs,
           "nonzeros_mean": nonzeros / max(1, len(texts)), "peak_gpu_mem_mib": torch.cuda.max_memory_allocated() / 2**20,
           "pooling": "vocabulary chunks of <= 2 GiB bf16 logits"}
    print("peer encode " + json.dumps(res), flush=True)

    if args.parity:
        ids, splash_vecs = read_seismic(args.parity)
        want = {doc_id: i for i, doc_id in enumerate(ids)}
        with open(args.texts, encoding="utf-8") as f:
            docs = [json.loads(line) for _, line in zip(range(args.parity_docs), f)]
        enc = tok([d["text"] for d in docs], truncation=True, max_length=args.max_length, padding=True, return_tensors="pt")
        with torch.inference_mode():
            pooled = encode_batch(model, enc["input_ids"].cuda(), enc["attention_mask"].cuda()).float().cpu()
        overlaps, rels, missing = [], [], 0
        for j, d in enumerate(docs):
            if d["id"] not in want:
                missing += 1
                continue
            row = pooled[j]
            vals = row.tolist()
            theirs = {t: vals[t] for t in row.nonzero().flatten().tolist()}
            o, r = compare_vectors(splash_vecs[want[d["id"]]], theirs)
            overlaps.append(o)
            rels.append(r)
        res = {"docs": len(overlaps), "missing_in_splash": missing,
               "top20_overlap_mean": sum(overlaps) / max(1, len(overlaps)), "top20_overlap_min": min(overlaps, default=0),
               "max_rel_diff_top20": max(rels, default=0), "reference": "torch bf16 SDPA"}
        print("peer parity " + json.dumps(res), flush=True)

    if args.gemm:
        h, inter = cfg.hidden_size, cfg.intermediate_size
        shapes = [(16384, h, inter), (16384, h, 2 * inter), (8192, 8192, 8192)]
        rates = gemm_rates(shapes)
        for (m, k, n), tf in rates:
            print(f"peer torch-gemm-bf16 {m}x{k}x{n} tflops={tf:.0f}", flush=True)
        print("peer gemm " + json.dumps({"ceiling_tflops": max(tf for _, tf in rates)}), flush=True)


def cmd_batch(args):
    import torch

    texts = read_texts(args.texts)[: args.docs]
    tok, model = load_model(args.model)
    enc = tok(texts, truncation=True, max_length=args.length, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"].cuda(), enc["attention_mask"].cuda()
    tokens = int(mask.sum())
    with torch.inference_mode():
        encode_batch(model, ids, mask)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            pooled = encode_batch(model, ids, mask)
            nz = pooled.nonzero()
            pooled[nz[:, 0], nz[:, 1]].float().cpu()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    best = min(times)
    res = {"system": "torch", "docs": len(texts), "tokens": tokens, "padded_tokens": int(mask.numel()),
           "seconds": [round(t, 4) for t in times], "docs_per_s": len(texts) / best, "tokens_per_s": tokens / best,
           "peak_gpu_mem_mib": torch.cuda.max_memory_allocated() / 2**20}
    print("peer batch " + json.dumps(res), flush=True)


# ------------------------------------------------------- random checkpoint


def llama_tensors(cfg):
    """(name, shape) of every parameter of a LlamaForCausalLM, in
    state-dict order, from transformers' modeling_llama definitions."""
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    d = cfg.get("head_dim") or h // heads
    out = [("model.embed_tokens.weight", (v, h))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", (heads * d, h)),
            (p + "self_attn.k_proj.weight", (kv * d, h)),
            (p + "self_attn.v_proj.weight", (kv * d, h)),
            (p + "self_attn.o_proj.weight", (h, heads * d)),
            (p + "mlp.gate_proj.weight", (inter, h)),
            (p + "mlp.up_proj.weight", (inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
            (p + "input_layernorm.weight", (h,)),
            (p + "post_attention_layernorm.weight", (h,)),
        ]
    out.append(("model.norm.weight", (h,)))
    if not cfg.get("tie_word_embeddings"):
        out.append(("lm_head.weight", (v, h)))
    return out


def random_tensor(name, shape, cfg, gen, device):
    """bf16 values: norms 1, the embedding N(0, 1), projections uniform
    with fan-in scaling (outputs of o_proj and down_proj shrunk by the depth
    so that the residual stream stays near unit scale), the LM head
    N(0, 1/H)."""
    import torch

    if len(shape) == 1:
        return torch.ones(shape, dtype=torch.bfloat16, device=device)
    if name.endswith("embed_tokens.weight"):
        return torch.randn(shape, generator=gen, device=device, dtype=torch.float32).to(torch.bfloat16)
    if name == "lm_head.weight":
        return (torch.randn(shape, generator=gen, device=device, dtype=torch.float32) / math.sqrt(shape[1])).to(torch.bfloat16)
    bound = 1 / math.sqrt(shape[1])
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        bound /= math.sqrt(2 * cfg["num_hidden_layers"])
    t = torch.rand(shape, generator=gen, device=device, dtype=torch.float32)
    return ((t * 2 - 1) * bound).to(torch.bfloat16)


def write_safetensors(path, tensors):
    """safetensors: an 8-byte little-endian header length, the JSON header
    (dtype, shape, data_offsets; __metadata__), padded with spaces to 8
    bytes, then the raw bytes of every tensor."""
    import torch

    # transformers refuses archives without {"format": "pt"} metadata.
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, t in tensors:
        n = t.numel() * t.element_size()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for _, t in tensors:
            f.write(t.contiguous().view(torch.int16).cpu().numpy().tobytes())
    return off


def gen_weights(template, out, shape, shards, seed, tied=False):
    import torch

    with open(os.path.join(template, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.update(shape)
    cfg.pop("splash_test_model", None)
    cfg["tie_word_embeddings"] = bool(tied)
    cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    cfg["torch_dtype"] = "bfloat16"
    os.makedirs(out, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    specs = llama_tensors(cfg)
    # Shard j takes the tensors that start in its equal share of the bytes;
    # shards left empty (a tensor larger than a share) are dropped.
    total = sum(math.prod(s) * 2 for _, s in specs)
    assign, cum = [], 0
    for _, shape_i in specs:
        assign.append(min(shards - 1, cum * shards // total))
        cum += math.prod(shape_i) * 2
    used = sorted(set(assign))
    names = {j: f"model-{i + 1:05d}-of-{len(used):05d}.safetensors" for i, j in enumerate(used)}
    weight_map, written = {}, 0
    for j in used:
        part = [(name, random_tensor(name, shape_i, cfg, gen, device))
                for (name, shape_i), a in zip(specs, assign) if a == j]
        written += write_safetensors(os.path.join(out, names[j]), part)
        weight_map.update({name: names[j] for name, _ in part})
        del part
    with open(os.path.join(out, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
        json.dump({"metadata": {"total_size": written}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(template, name)):
            shutil.copy(os.path.join(template, name), os.path.join(out, name))
    return written, sum(math.prod(s) for _, s in specs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("pad-tokenizer")
    s.add_argument("model")
    s.add_argument("vocab", type=int)
    s = sub.add_parser("long-docs")
    s.add_argument("texts")
    s.add_argument("out")
    s.add_argument("n", type=int)
    s = sub.add_parser("overlap")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--docs", type=int, default=32)
    s = sub.add_parser("flops")
    s.add_argument("config")
    s.add_argument("length", type=float)
    s = sub.add_parser("gen-weights")
    s.add_argument("template")
    s.add_argument("out")
    for flag, default in (("layers", 32), ("hidden", 4096), ("heads", 32), ("kv-heads", 8), ("intermediate", 14336)):
        s.add_argument("--" + flag, type=int, default=default)
    s.add_argument("--vocab", type=int, default=0, help="0: the template's")
    s.add_argument("--shards", type=int, default=4)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--tied", action="store_true", help="tie the LM head to the embeddings (Llama 3 8B does not)")
    s = sub.add_parser("encode")
    s.add_argument("model")
    s.add_argument("texts")
    s.add_argument("--max-docs", type=int, default=0)
    s.add_argument("--max-length", type=int, default=512)
    s.add_argument("--max-batch", type=int, default=128)
    s.add_argument("--batch-tokens", type=int, default=32768)
    s.add_argument("--parity", help="splash export --format seismic file of the same model and texts")
    s.add_argument("--parity-docs", type=int, default=32)
    s.add_argument("--gemm", action="store_true")
    s = sub.add_parser("batch")
    s.add_argument("model")
    s.add_argument("texts")
    s.add_argument("--docs", type=int, default=64)
    s.add_argument("--length", type=int, default=512)
    s.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    if args.cmd == "pad-tokenizer":
        had = pad_tokenizer(args.model, args.vocab)
        print(f"peer pad-tokenizer {args.model}/tokenizer.json: {had} -> {args.vocab} ids")
    elif args.cmd == "long-docs":
        long_docs(args.texts, args.out, args.n)
    elif args.cmd == "overlap":
        mean, low, n = overlap_files(args.a, args.b, args.docs)
        print(f"mean {mean:.3f}, min {low:.3f} over {n} documents")
    elif args.cmd == "flops":
        with open(args.config, encoding="utf-8") as f:
            print(f"{flops_per_token(json.load(f), args.length):.6g}")
    elif args.cmd == "gen-weights":
        shape = {"num_hidden_layers": args.layers, "hidden_size": args.hidden, "num_attention_heads": args.heads,
                 "num_key_value_heads": args.kv_heads, "intermediate_size": args.intermediate}
        if args.vocab:
            shape["vocab_size"] = args.vocab
        start = time.perf_counter()
        nbytes, params = gen_weights(args.template, args.out, shape, args.shards, args.seed, args.tied)
        secs = time.perf_counter() - start
        print(f"peer gen-weights {args.out}: {params / 1e9:.2f}B parameters, {nbytes / 2**30:.1f} GiB bf16 in "
              f"{secs:.1f} s ({secs / max(nbytes / 2**30, 1e-9):.1f} s/GiB)", flush=True)
    elif args.cmd == "encode":
        cmd_encode(args)
    elif args.cmd == "batch":
        cmd_batch(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
