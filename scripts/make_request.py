#!/usr/bin/env python3
"""Writes a Sieve request JSON: a long document (filler text with a pass-key needle) and a query.

    scripts/make_request.py --words 6000 --depth 0.4 --key 58213 > request.json

The same haystack family the pass-key benchmark uses (README "The request"). Options after the
document shape go into the request's "sieve" object: --mode, --chunk-tokens, --keep-chunks.
Deterministic for a given --seed.
"""
import argparse
import json
import os
import random
import sys

# The sentences models/passkey-demo was trained with (tools/passkey_text.py): the filler is in
# distribution, only the length is new.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from passkey_text import FILLER  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--words", type=int, default=6000, help="approximate document length in words")
    p.add_argument("--depth", type=float, default=0.5, help="needle position, 0 = start, 1 = end")
    p.add_argument("--key", type=int, default=None, help="the pass key (default: random 5 digits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", default="parallelcomp", choices=["parallelcomp", "parallel", "full"])
    p.add_argument("--chunk-tokens", type=int, default=None)
    p.add_argument("--keep-chunks", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=8)
    args = p.parse_args()
    rng = random.Random(args.seed)
    key = args.key if args.key is not None else rng.randint(10000, 99999)
    sentences, words = [], 0
    while words < args.words:
        s = rng.choice(FILLER)
        sentences.append(s)
        words += len(s.split())
    needle = f"The pass key is {key}. Remember it. {key} is the pass key."
    sentences.insert(int(round(args.depth * len(sentences))), needle)
    sieve = {"mode": args.mode}
    if args.chunk_tokens:
        sieve["chunk_tokens"] = args.chunk_tokens
    if args.keep_chunks:
        sieve["keep_chunks"] = args.keep_chunks
    request = {
        "document": " ".join(sentences),
        "query": " What is the pass key? The pass key is",
        "max_new_tokens": args.max_new_tokens,
        "sieve": sieve,
    }
    json.dump(request, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
