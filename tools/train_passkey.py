#!/usr/bin/env python3
"""Trains the pass-key demo model that ships in models/passkey-demo/.

A small Llama (5 layers, hidden 256, 4 query heads, 2 KV heads, head_dim 64, ~4.2M parameters)
and its own byte-level BPE tokenizer (the Llama-3 split regex, so it is the same tokenizer.json
family Sieve reads), trained on windows of at most 1024 tokens laid out exactly as ParallelComp
presents a chunk:

    [BOS] context [BOS] query answer [EOS]      the context holds the needle
    [BOS] context [BOS] filler ...              it does not (--without-needle of the windows)

The context is a slice of a filler document cut at arbitrary token offsets (as fixed-size chunks
are), the needle ("The pass key is 58213. Remember it. 58213 is the pass key.") whole inside it
at a random depth; the query is " What is the pass key? The pass key is" and the answer
" 58213.". ParallelComp keeps the chunks that predict the query best (lowest mean query NLL), so
the model has to learn that the query follows a chunk with a needle and not one without. Trained
on needle windows only, it found the query certain after any chunk; the score then measured
nothing it was taught, and a needle chunk could rank last (bench/RESULTS.md section 3).

Everything is seeded (Python's and torch's generators; GPU kernels may still differ in the last
bits from run to run); on one H100 the 2800 steps take about three and a half minutes:

    python3 tools/train_passkey.py --out models/passkey-demo            # (GPU machine)

Writes config.json, model.safetensors (bf16), tokenizer.json, tokenizer_config.json,
generation_config.json and train_log.json (loss curve, in-window accuracy, and the chunk scores
of 200 chunks with a needle against 200 without). Needs torch, transformers and tokenizers (all
on the accelerator machines).
"""
import argparse
import json
import math
import os
import random
import time

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM

from passkey_text import FILLER  # tools/, this script's directory

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
QUERY = " What is the pass key? The pass key is"


def needle(key):
    return f" The pass key is {key}. Remember it. {key} is the pass key."


def make_context(rng, n_sentences, key):
    """Filler sentences with the needle at a random depth (the tokenizer's corpus)."""
    sentences = [" " + rng.choice(FILLER) for _ in range(n_sentences)]
    sentences.insert(rng.randint(0, n_sentences), needle(key))
    return "".join(sentences).lstrip()


def train_tokenizer(rng, vocab_size, out_dir):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    corpus = []
    for _ in range(3000):
        key = rng.randint(10000, 99999)
        corpus.append(make_context(rng, rng.randint(5, 30), key) + QUERY + f" {key}.")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                      special_tokens=[(BOS, bos_id)])
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    return tok


class Windows:
    """Training windows laid out as ParallelComp presents a chunk: [BOS] context [BOS] continuation.

    The context is a slice of a filler document cut at arbitrary token offsets (chunks are cut at
    fixed token counts, so most start and end mid-sentence), built from per-sentence token ids the
    way sieve-bench quality builds its haystacks. With a needle inside (whole), the continuation is
    query + answer + [EOS]; without one, it is more filler. So the query is predictable only after
    a needle, which is what ParallelComp's chunk score (the query's NLL given the chunk) measures.
    """

    def __init__(self, tok, max_len, bos, eos):
        self.tok, self.max_len, self.bos, self.eos = tok, max_len, bos, eos
        self.sentences = [self.ids(" " + s) for s in FILLER]
        self.query = self.ids(QUERY)
        # Room for [BOS] ctx [BOS] query answer [EOS]; answers are " ddddd." (at most 4 tokens).
        self.budget = max_len - len(self.query) - 8
        self.shortest = len(self.ids(needle(99999))) + 4

    def ids(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def context(self, rng, length, key):
        """`length` tokens of filler, with the needle of `key` whole inside when key is not None."""
        stream, starts = [], []
        nd = self.ids(needle(key)) if key is not None else []
        target = 2 * length + len(nd) + 16
        while len(stream) < target:
            starts.append(len(stream))
            stream += rng.choice(self.sentences)
        if key is not None:
            at = rng.randrange(len(starts) + 1)
            nb = starts[at] if at < len(starts) else len(stream)
            stream = stream[:nb] + nd + stream[nb:]
            starts = starts[:at] + [nb] + [s + len(nd) for s in starts[at:]]
            lo, hi = max(0, nb + len(nd) - length), min(nb, len(stream) - length)
        else:
            lo, hi = 0, len(stream) - length
        begin = rng.randint(lo, hi)
        if rng.random() < 0.25:  # now and then a chunk that starts on a sentence, as chunk 0 does
            aligned = [s for s in starts if lo <= s <= hi]
            if aligned:
                begin = rng.choice(aligned)
        return stream[begin:begin + length]

    def make(self, rng, needle_present, length=None):
        """One window: (ids, first answer-or-continuation index, answer length, key or None)."""
        key = rng.randint(10000, 99999)
        if length is None:
            # Every length up to the window, and extra weight on the chunk sizes ParallelComp
            # cuts (three quarters of the window down to half of that).
            length = (rng.randint(self.shortest, self.budget) if rng.random() < 0.5
                      else rng.randint(self.max_len * 3 // 8, min(self.budget, self.max_len * 3 // 4 + 16)))
        ctx = self.context(rng, length, key if needle_present else None)
        if needle_present:
            answer = self.ids(f" {key}.")
            ids = [self.bos] + ctx + [self.bos] + self.query + answer + [self.eos]
            return ids, 1 + len(ctx) + 1 + len(self.query), len(answer), key
        more = []
        while len(more) < len(self.query) + 5:
            more += rng.choice(self.sentences)
        ids = [self.bos] + ctx + [self.bos] + more[:len(self.query) + 5]
        return ids, 1 + len(ctx) + 1, 0, None


@torch.no_grad()
def in_window_accuracy(model, tok, windows, rng, n, device, eos):
    """The fraction of n windows with a needle whose greedy answer holds the key."""
    model.eval()
    correct = 0
    for _ in range(n):
        ids, start, alen, key = windows.make(rng, True)
        x = torch.tensor([ids[:start]], device=device)
        out = model.generate(x, max_new_tokens=alen + 1, do_sample=False, pad_token_id=eos)
        text = tok.decode(out[0, start:].tolist())
        correct += str(key) in text
    model.train()
    return correct / n


@torch.no_grad()
def chunk_scores(model, windows, rng, n, device):
    """The chunk score Sieve computes (mean NLL of the query tokens given [BOS] chunk [BOS]) for
    n chunks with a needle and n without, at the sizes ParallelComp cuts (384..768 tokens).

    Returns the largest score with a needle, the smallest without, and the fraction of
    (needle, filler) pairs ranked right: what decides whether a top-k keeps the needle's chunk.
    """
    model.eval()
    q = windows.query
    scores = {True: [], False: []}
    for present in (True, False):
        for _ in range(n):
            length = rng.randint(windows.max_len * 3 // 8, windows.max_len * 3 // 4)
            ctx = windows.context(rng, length, rng.randint(10000, 99999) if present else None)
            ids = torch.tensor([[windows.bos] + ctx + [windows.bos] + q], device=device)
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            rows = torch.arange(len(ctx) + 1, len(ctx) + 1 + len(q), device=device)
            nll = -logp[rows, torch.tensor(q, device=device)]
            scores[present].append(nll.mean().item())
    model.train()
    pos, neg = torch.tensor(scores[True]), torch.tensor(scores[False])
    ranked = (pos[:, None] < neg[None, :]).float().mean().item()
    return {"max_with_needle": round(pos.max().item(), 5), "median_with_needle": round(pos.median().item(), 5),
            "min_without": round(neg.min().item(), 5), "median_without": round(neg.median().item(), 5),
            "pairs_ranked_right": ranked}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="models/passkey-demo")
    p.add_argument("--steps", type=int, default=2800)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=1024)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--without-needle", type=float, default=0.5,
                   help="fraction of windows whose context has no needle (continued by filler)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--minutes", type=float, default=9.5, help="stop early past this budget")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    tok = train_tokenizer(rng, args.vocab, args.out)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    vocab = tok.get_vocab_size()
    windows = Windows(tok, args.window, bos, eos)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=768,
                      num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=64, max_position_embeddings=args.window, rope_theta=10000.0,
                      rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=bos,
                      eos_token_id=eos, initializer_range=0.02)
    model = LlamaForCausalLM(cfg).to(device)
    n_params = sum(q.numel() for q in model.parameters())
    print(json.dumps({"params": n_params, "vocab": vocab, "device": device}), flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = 100

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    log = []
    t0 = time.time()
    steps_done = 0
    model.train()
    for step in range(args.steps):
        batch = [windows.make(rng, rng.random() >= args.without_needle) for _ in range(args.batch)]
        length = max(len(b[0]) for b in batch)
        x = torch.full((args.batch, length), eos, dtype=torch.long)
        y = torch.full((args.batch, length), -100, dtype=torch.long)
        w = torch.ones((args.batch, length))
        for i, (ids, start, alen, _) in enumerate(batch):
            x[i, :len(ids)] = torch.tensor(ids)
            y[i, :len(ids) - 1] = torch.tensor(ids[1:])
            w[i, start - 1:start - 1 + alen] = 4.0  # the answer weighs more than the filler
        x, y, w = x.to(device, non_blocking=True), y.to(device, non_blocking=True), w.to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = model(input_ids=x).logits
        nll = torch.nn.functional.cross_entropy(logits.float().view(-1, vocab), y.view(-1),
                                                ignore_index=-100, reduction="none")
        mask = (y.view(-1) != -100).float()
        loss = (nll * w.view(-1) * mask).sum() / (w.view(-1) * mask).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps_done = step + 1
        if step % 100 == 0 or step == args.steps - 1:
            entry = {"step": step, "loss": round(loss.item(), 4), "seconds": round(time.time() - t0, 1)}
            log.append(entry)
            print(json.dumps(entry), flush=True)
        if time.time() - t0 > args.minutes * 60:
            print(json.dumps({"stopped_early_at_step": step}), flush=True)
            break
    train_seconds = time.time() - t0
    acc = in_window_accuracy(model, tok, windows, random.Random(args.seed + 1), 100, device, eos)
    scores = chunk_scores(model, windows, random.Random(args.seed + 2), 200, device)
    print(json.dumps({"in_window_accuracy": acc, "chunk_scores": scores, "steps": steps_done,
                      "train_seconds": round(train_seconds, 1)}), flush=True)

    model = model.to(torch.bfloat16)
    model.save_pretrained(args.out, safe_serialization=True)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": BOS, "eos_token": EOS, "add_bos_token": True,
                   "model_max_length": args.window, "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump({"args": vars(args), "params": n_params, "vocab": vocab, "steps_done": steps_done,
                   "log": log, "in_window_accuracy": acc, "chunk_scores": scores,
                   "train_seconds": train_seconds, "torch": torch.__version__,
                   "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}, f, indent=2)


if __name__ == "__main__":
    main()
