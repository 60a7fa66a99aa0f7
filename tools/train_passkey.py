#!/usr/bin/env python3
"""Trains the pass-key demo model that ships in models/passkey-demo/.

A small Llama (4 layers, hidden 256, 4 query heads, 2 KV heads, head_dim 64, ~3.4M parameters)
and its own byte-level BPE tokenizer (the Llama-3 split regex, so it is the same tokenizer.json
family Sieve reads), trained on windows of at most 1024 tokens laid out exactly as ParallelComp
presents a chunk:

    [BOS] context [BOS] query answer [EOS]

where the context is filler text with a needle ("The pass key is 58213. Remember it. 58213 is the
pass key.") at a random depth, the query is " What is the pass key? The pass key is" and the
answer " 58213.". Everything is seeded; run on one H100 it takes a few minutes:

    python3 tools/train_passkey.py --out models/passkey-demo            # (GPU machine)

Writes config.json, model.safetensors (bf16), tokenizer.json, tokenizer_config.json,
generation_config.json and train_log.json (loss curve, in-window accuracy). Needs torch,
transformers and tokenizers (all on the accelerator machines).
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
    """Filler sentences with the needle at a random depth."""
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


def make_window(rng, tok, max_len, bos, eos):
    """One training window: [BOS] ctx [BOS] query answer [EOS], at most max_len tokens."""
    key = rng.randint(10000, 99999)
    q = tok.encode(QUERY, add_special_tokens=False).ids
    a = tok.encode(f" {key}.", add_special_tokens=False).ids
    budget = max_len - len(q) - len(a) - 3
    n_sent = rng.randint(1, 120)
    while True:
        ctx = tok.encode(make_context(rng, n_sent, key), add_special_tokens=False).ids
        if len(ctx) <= budget:
            break
        n_sent = max(1, n_sent * 3 // 4)
    ids = [bos] + ctx + [bos] + q + a + [eos]
    answer_start = 1 + len(ctx) + 1 + len(q)
    return ids, answer_start, len(a), key


@torch.no_grad()
def in_window_accuracy(model, tok, rng, n, device, bos, eos):
    model.eval()
    correct = 0
    for _ in range(n):
        ids, start, alen, key = make_window(rng, tok, 1024, bos, eos)
        x = torch.tensor([ids[:start]], device=device)
        out = model.generate(x, max_new_tokens=alen + 1, do_sample=False, pad_token_id=eos)
        text = tok.decode(out[0, start:].tolist())
        correct += str(key) in text
    model.train()
    return correct / n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="models/passkey-demo")
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--minutes", type=float, default=9.0, help="stop early past this budget")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    tok = train_tokenizer(rng, args.vocab, args.out)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    vocab = tok.get_vocab_size()
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                      max_position_embeddings=args.window, rope_theta=10000.0, rms_norm_eps=1e-5,
                      tie_word_embeddings=True, bos_token_id=bos, eos_token_id=eos,
                      initializer_range=0.02)
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
    model.train()
    for step in range(args.steps):
        batch = [make_window(rng, tok, args.window, bos, eos) for _ in range(args.batch)]
        length = max(len(b[0]) for b in batch)
        x = torch.full((args.batch, length), eos, dtype=torch.long)
        y = torch.full((args.batch, length), -100, dtype=torch.long)
        w = torch.ones((args.batch, length))
        for i, (ids, start, alen, _) in enumerate(batch):
            x[i, :len(ids)] = torch.tensor(ids)
            y[i, :len(ids) - 1] = torch.tensor(ids[1:])
            w[i, start - 1:start - 1 + alen] = 4.0  # the answer weighs more than the filler
        x, y, w = x.to(device), y.to(device), w.to(device)
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
        if step % 100 == 0 or step == args.steps - 1:
            entry = {"step": step, "loss": round(loss.item(), 4), "seconds": round(time.time() - t0, 1)}
            log.append(entry)
            print(json.dumps(entry), flush=True)
        if time.time() - t0 > args.minutes * 60:
            print(json.dumps({"stopped_early_at_step": step}), flush=True)
            break
    train_seconds = time.time() - t0
    acc = in_window_accuracy(model, tok, random.Random(args.seed + 1), 100, device, bos, eos)
    print(json.dumps({"in_window_accuracy": acc, "train_seconds": round(train_seconds, 1)}), flush=True)

    model = model.to(torch.bfloat16)
    model.save_pretrained(args.out, safe_serialization=True)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": BOS, "eos_token": EOS, "add_bos_token": True,
                   "model_max_length": args.window, "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump({"args": vars(args), "params": n_params, "vocab": vocab, "log": log,
                   "in_window_accuracy": acc, "train_seconds": train_seconds,
                   "torch": torch.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
