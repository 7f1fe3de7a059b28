"""PyTorch peer of splash's CUDA engine, run as naver/splade runs SPLADE.

    python3 scripts/gpu/torch_peer.py MODEL_DIR TEXTS_JSONL [--max-docs N]

MODEL_DIR is a Hugging Face BertForMaskedLM directory (config.json,
model.safetensors, tokenizer.json): `splash model gen-test --safetensors`
writes one. TEXTS_JSONL has one {"id", "text"} object per line
(scripts/repeatcorpus writes it beside the Parquet shards).

It loads the model with transformers in bfloat16 with SDPA attention and
encodes every text with naver/splade's pooling,
max over positions of log(1 + relu(logits)) * attention_mask, then takes
each document's non-zero terms to the host (what an indexer receives):

  1. naver-style: batches of 128 in corpus order, as naver/splade's
     indexing loop does;
  2. length-sorted: the same batches after sorting the documents by token
     count (the lengths come from one tokenization pass, timed too);
  3. the card's ceiling: torch.matmul in bfloat16 (cuBLAS) of
     [16384 x 768] by [768 x 3072], BERT-base's largest GEMM, in TFLOP/s.

Each run prints one line "peer <name> docs=... seconds=... docs_per_s=...
tokens_per_s=..."; tokenization is inside the timed loop, as in naver/splade.
"""
import argparse
import json
import sys
import time

import torch
from transformers import BertForMaskedLM, PreTrainedTokenizerFast


def load(model_dir):
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    tok.pad_token, tok.cls_token, tok.sep_token, tok.mask_token, tok.unk_token = "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"
    try:
        model = BertForMaskedLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa")
    except TypeError:
        model = BertForMaskedLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    return tok, model.cuda().eval()


def encode(tok, model, texts, order, batch=128):
    """Encodes texts[order] in batches; returns (seconds, tokens, non-zeros)."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    tokens = nonzeros = 0
    with torch.inference_mode():
        for i in range(0, len(order), batch):
            chunk = [texts[j] for j in order[i:i + batch]]
            enc = tok(chunk, padding=True, truncation=True, max_length=512, return_tensors="pt").to("cuda")
            logits = model(**enc).logits
            weights, _ = torch.max(torch.log1p(torch.relu(logits)) * enc["attention_mask"].unsqueeze(-1), dim=1)
            idx = weights.nonzero()
            vals = weights[idx[:, 0], idx[:, 1]].float().cpu()
            idx = idx.cpu()
            tokens += int(enc["attention_mask"].sum())
            nonzeros += int(vals.numel())
    torch.cuda.synchronize()
    return time.perf_counter() - start, tokens, nonzeros


def gemm_ceiling(m=16384, k=768, n=3072, iters=50):
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * m * k * n * iters / (time.perf_counter() - start) / 1e12


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("texts")
    p.add_argument("--max-docs", type=int, default=0)
    args = p.parse_args()
    texts = [json.loads(line)["text"] for line in open(args.texts, encoding="utf-8")]
    if args.max_docs:
        texts = texts[:args.max_docs]
    print(f"peer torch {torch.__version__} on {torch.cuda.get_device_name(0)}, {len(texts)} documents", flush=True)
    tok, model = load(args.model_dir)
    encode(tok, model, texts, list(range(min(256, len(texts)))))  # warm-up
    secs, tokens, nnz = encode(tok, model, texts, list(range(len(texts))))
    print(f"peer naver-style docs={len(texts)} seconds={secs:.2f} docs_per_s={len(texts) / secs:.0f} tokens_per_s={tokens / secs:.0f} nonzeros={nnz}", flush=True)
    start = time.perf_counter()
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=512)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    sort_secs = time.perf_counter() - start
    secs, tokens, nnz = encode(tok, model, texts, order)
    secs += sort_secs
    print(f"peer length-sorted docs={len(texts)} seconds={secs:.2f} docs_per_s={len(texts) / secs:.0f} tokens_per_s={tokens / secs:.0f} nonzeros={nnz} (sorting {sort_secs:.2f}s included)", flush=True)
    print(f"peer torch-gemm-bf16 16384x768x3072 tflops={gemm_ceiling():.0f}", flush=True)
    print(f"peer peak_gpu_mem_mib={torch.cuda.max_memory_allocated() / 2**20:.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
