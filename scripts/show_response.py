#!/usr/bin/env python3
"""Pretty-prints a Sieve response JSON (stdin): the answer, then the accounting as a table."""
import json
import sys


def main():
    r = json.load(sys.stdin)
    if "error" in r:
        e = r["error"]
        print(f"error {e['code']} ({e['status']}): {e['message']}")
        sys.exit(1)
    a = r["accounting"]
    print(f"answer: {r['text']!r}   ({r['finish_reason']}, {len(r['generated_ids'])} tokens)")
    print(f"device: {a.get('device', '?')}   document {a['document_tokens']} tokens, query {a['query_tokens']}")
    if a["chunks"]:
        chunks = a["chunks"]
        shown = chunks
        if len(chunks) > 12:
            # The kept chunks and the next best, in document order.
            best = sorted(chunks, key=lambda c: (c["score"], c["index"]))[:max(5, len(a["kept_chunks"]) + 3)]
            shown = sorted(best, key=lambda c: c["index"])
        print(f"\n{len(chunks)} chunks; the best by score (mean NLL of the query given the chunk):")
        print(f"{'chunk':>5} {'tokens':>7} {'score':>9}  kept")
        for c in shown:
            print(f"{c['index']:>5} {c['tokens']:>7} {c['score']:>9.4f}  {'yes' if c['kept'] else ''}")
        print(f"kept chunks {a['kept_chunks']}, query at position P0 = {a['p0']}")
    kv = a["kv"]
    print(f"\nKV cache: {kv['entries_kept']:,} entries kept of {kv['entries_full']:,} "
          f"({100 * kv['kept_fraction']:.1f}%), {kv['bytes_kept'] / 2**20:.1f} MiB of {kv['bytes_full'] / 2**20:.1f} MiB")
    if a["scope_fired_steps"]:
        print(f"SCOPE evicted at {len(a['scope_fired_steps'])} decode steps")
    t = a["timing"]
    print("\ntiming (s): " + "  ".join(f"{k[:-2]} {t[k]:.3f}" for k in
                                        ("tokenize_s", "prefill_s", "score_exchange_s", "assemble_s",
                                         "query_prefill_s", "decode_s", "ttft_s", "total_s")))


if __name__ == "__main__":
    main()
