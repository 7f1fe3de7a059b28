#!/usr/bin/env node
// transformersjs.mjs: SPLADE document encoding with transformers.js (npm
// @huggingface/transformers, pinned in bench/peers/package.json, running the
// model on onnxruntime-node's CPU backend), the peer splash is compared with.
//
// Written the way its users run it: AutoTokenizer and AutoModelForMaskedLM
// from a local model folder (no hub: env.allowRemoteModels = false,
// local_files_only), fp32, batches of B documents in input order tokenized
// with tokenizer(texts, {padding: true, truncation: true, max_length}) (padding
// to the batch's longest), the model called on the batch, and SPLADE max
// pooling in plain JavaScript over the logits tensor: for each document the
// maximum over its real positions (attention_mask = 1) of the raw logits,
// then w = log(1 + relu(max)), exactly max_i log(1 + relu(z_ij)) since both are
// monotone; terms with w > 0 are kept.
//
// transformers.js expects onnx/model.onnx and tokenizer_config.json inside
// the model folder; an optimum export has both, a splash model folder (model.onnx,
// tokenizer.json, config.json) does not, so the script lays out a temporary
// folder of symlinks plus the tokenizer_config.json that optimum writes for
// BERT (lower-casing, model_max_length = min(max_position_embeddings, 512)).
//
// Truncation: transformers.js truncates the encoded ids, which drops the final
// [SEP] of a document over max_length tokens (Hugging Face's Rust tokenizers
// keep it). That is what its users get, so it is the default. --keep-sep
// instead tokenizes without truncation and cuts to max_length - 1 ids plus
// [SEP], as Hugging Face does: use it to compare vectors with splash.
//
// Usage (from the repository root, after bench/setup-peers.sh):
//
//	node bench/peers/docs.mjs --input 'DOCS*.parquet' --title-column title > docs.jsonl
//	node bench/peers/transformersjs.mjs --model MODEL --docs docs.jsonl \
//	    --batch-size 32 --threads 2 [--max-length 512] [--keep-sep] [--output vectors.jsonl]
//
// --output writes one {"id", "num_tokens", "terms": {"term id": weight}} per
// document. The last line on stdout is a JSON summary: docs, tokens,
// padded_tokens, padding_waste, batches, load_s, wall_s (the encoding loop:
// tokenization, forward, pooling, sparsification), tokenize_s (its
// tokenization part), docs_per_s, tokens_per_s, write_s, nnz_mean,
// peak_rss_mb (process.resourceUsage().maxRSS), versions.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const a = { model: '', docs: '', batchSize: 32, threads: os.availableParallelism(), maxLength: 512, keepSep: false, limit: 0, output: '' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--model': a.model = v(); break;
      case '--docs': a.docs = v(); break;
      case '--batch-size': a.batchSize = Number(v()); break;
      case '--threads': a.threads = Number(v()); break;
      case '--max-length': a.maxLength = Number(v()); break;
      case '--keep-sep': a.keepSep = true; break;
      case '--limit': a.limit = Number(v()); break;
      case '--output': a.output = v(); break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!a.model || !a.docs) throw new Error('--model and --docs are required');
  return a;
}

// layout makes the folder transformers.js wants from a splash model folder.
function layout(modelDir) {
  const src = path.resolve(modelDir);
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'splash-tjs-'));
  const name = 'model';
  const dst = path.join(tmp, name);
  fs.mkdirSync(path.join(dst, 'onnx'), { recursive: true });
  const onnxSrc = fs.existsSync(path.join(src, 'onnx', 'model.onnx')) ? path.join(src, 'onnx', 'model.onnx') : path.join(src, 'model.onnx');
  fs.symlinkSync(onnxSrc, path.join(dst, 'onnx', 'model.onnx'));
  fs.symlinkSync(path.join(src, 'config.json'), path.join(dst, 'config.json'));
  fs.symlinkSync(path.join(src, 'tokenizer.json'), path.join(dst, 'tokenizer.json'));
  if (fs.existsSync(path.join(src, 'tokenizer_config.json'))) {
    fs.symlinkSync(path.join(src, 'tokenizer_config.json'), path.join(dst, 'tokenizer_config.json'));
  } else {
    fs.writeFileSync(path.join(dst, 'tokenizer_config.json'), JSON.stringify({
      tokenizer_class: 'BertTokenizer',
      do_lower_case: true,
      tokenize_chinese_chars: true,
      strip_accents: null,
      clean_up_tokenization_spaces: true,
      model_max_length: Math.min(config.max_position_embeddings ?? 512, 512),
      cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', mask_token: '[MASK]',
    }, null, 2));
  }
  return { root: tmp, name };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const { env, AutoTokenizer, AutoModelForMaskedLM, Tensor } = await import('@huggingface/transformers');
  const lay = layout(args.model);
  process.on('exit', () => fs.rmSync(lay.root, { recursive: true, force: true }));
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = lay.root + path.sep;
  env.useFSCache = false;
  const tokenizer = await AutoTokenizer.from_pretrained(lay.name, { local_files_only: true });
  const model = await AutoModelForMaskedLM.from_pretrained(lay.name, {
    local_files_only: true,
    dtype: 'fp32',
    device: 'cpu',
    session_options: { intraOpNumThreads: args.threads, interOpNumThreads: 1 },
  });
  const loadS = (performance.now() - t0) / 1000;

  let docs = fs.readFileSync(args.docs, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  if (args.limit > 0) docs = docs.slice(0, args.limit);
  const sepId = tokenizer.sep_token_id;
  const padId = tokenizer.pad_token_id;

  const results = [];
  let tokens = 0;
  let padded = 0;
  let batches = 0;
  let nnz = 0;
  let tokenizeMs = 0;
  const t1 = performance.now();
  for (let lo = 0; lo < docs.length; lo += args.batchSize) {
    const batch = docs.slice(lo, lo + args.batchSize);
    const texts = batch.map((d) => d.text);
    const tk = performance.now();
    let inputs;
    if (!args.keepSep) {
      inputs = tokenizer(texts, { padding: true, truncation: true, max_length: args.maxLength });
    } else {
      inputs = keepSepInputs(Tensor, tokenizer, texts, args.maxLength, sepId, padId);
    }
    tokenizeMs += performance.now() - tk;
    const { logits } = await model(inputs);
    const [B, L, V] = logits.dims;
    const z = logits.data;
    const mask = inputs.attention_mask.data; // BigInt64Array [B, L]
    const acc = new Float32Array(V);
    for (let b = 0; b < B; b++) {
      acc.fill(-Infinity);
      let n = 0;
      for (let i = 0; i < L; i++) {
        if (mask[b * L + i] === 0n) continue;
        n++;
        const off = (b * L + i) * V;
        for (let j = 0; j < V; j++) {
          const x = z[off + j];
          if (x > acc[j]) acc[j] = x;
        }
      }
      const ids = [];
      const ws = [];
      for (let j = 0; j < V; j++) {
        const x = acc[j];
        if (x > 0) {
          const w = Math.fround(Math.log1p(x));
          if (w > 0) {
            ids.push(j);
            ws.push(w);
          }
        }
      }
      nnz += ids.length;
      tokens += n;
      results.push({ id: batch[b].id, num_tokens: n, ids, ws });
    }
    padded += B * L;
    batches++;
    logits.dispose?.();
  }
  const wallS = (performance.now() - t1) / 1000;

  let writeS = 0;
  if (args.output) {
    const t2 = performance.now();
    const lines = results.map((r) => {
      const terms = {};
      r.ids.forEach((j, k) => { terms[j] = r.ws[k]; });
      return JSON.stringify({ id: r.id, num_tokens: r.num_tokens, terms });
    });
    fs.writeFileSync(args.output, lines.join('\n') + (lines.length ? '\n' : ''));
    writeS = (performance.now() - t2) / 1000;
  }

  const ver = (p) => JSON.parse(fs.readFileSync(path.join(here, 'node_modules', p, 'package.json'), 'utf8')).version;
  const n = docs.length;
  process.stdout.write(JSON.stringify({
    tool: 'transformersjs',
    docs: n,
    tokens,
    padded_tokens: padded,
    padding_waste: padded ? +(1 - tokens / padded).toFixed(4) : 0,
    batches,
    batch_size: args.batchSize,
    threads: args.threads,
    keep_sep: args.keepSep,
    load_s: +loadS.toFixed(4),
    wall_s: +wallS.toFixed(4),
    tokenize_s: +(tokenizeMs / 1000).toFixed(4),
    docs_per_s: wallS ? +(n / wallS).toFixed(2) : null,
    tokens_per_s: wallS ? +(tokens / wallS).toFixed(1) : null,
    write_s: +writeS.toFixed(4),
    nnz_mean: n ? +(nnz / n).toFixed(2) : 0,
    // resourceUsage().maxRSS is in kilobytes.
    peak_rss_mb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    versions: {
      node: process.versions.node,
      '@huggingface/transformers': ver('@huggingface/transformers'),
      'onnxruntime-node': ver('onnxruntime-node'),
    },
  }) + '\n');
}

// keepSepInputs tokenizes without truncation, keeps the first max_length - 1
// ids and appends [SEP] to documents that were cut (Hugging Face's truncation
// for a single sequence), then pads to the batch's longest.
function keepSepInputs(Tensor, tokenizer, texts, maxLength, sepId, padId) {
  const enc = tokenizer(texts, { padding: false, truncation: false, return_tensor: false });
  const seqs = enc.input_ids.map((ids) => (ids.length > maxLength ? [...ids.slice(0, maxLength - 1), sepId] : ids));
  const L = Math.max(...seqs.map((s) => s.length));
  const B = seqs.length;
  const ids = new BigInt64Array(B * L).fill(BigInt(padId));
  const mask = new BigInt64Array(B * L);
  seqs.forEach((s, b) => s.forEach((id, i) => { ids[b * L + i] = BigInt(id); mask[b * L + i] = 1n; }));
  return {
    input_ids: new Tensor('int64', ids, [B, L]),
    attention_mask: new Tensor('int64', mask, [B, L]),
    token_type_ids: new Tensor('int64', new BigInt64Array(B * L), [B, L]),
  };
}

main().catch((e) => {
  process.stderr.write(`transformersjs.mjs: ${e.stack || e}\n`);
  process.exit(1);
});
