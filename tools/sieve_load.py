#!/usr/bin/env python3
"""sieve-load: throughput benchmark of a running Sieve service (sieve-node --serve).

Sends a stream of N long documents (random token ids, so any length is exact) to
POST /v1/completions with "stream": true, first concurrently (all at once, or arriving at --rate
per second, at most --concurrency in flight), then the same requests one at a time, and reports
for each: requests/s, time to first token percentiles (measured by the client: request sent ->
first streamed text; and the service's own accounting.timing.ttft_s), prefill time, latency,
prompt tokens/s, and the concurrent run's speedup over the sequential one, as JSON on stdout.

    python3 tools/sieve_load.py --url http://127.0.0.1:8080 --requests 8 \\
        --min-tokens 32768 --max-tokens 131072 --max-new-tokens 32 --out load.json

The lead's 4-GPU run: `mpirun -np 5 sieve-node --model DIR --serve` (rank 0 + 4 GPU ranks), then
the command above (8 documents of 32K..128K tokens). Options:
  --lengths A,B,...      explicit document lengths (overrides --requests/--min/--max-tokens)
  --vocab N              token ids are drawn from [100, min(N, 128000)) (default: 128000)
  --seed S               documents and their order (default 0)
  --rate R               arrivals per second in the concurrent run (0: all at once)
  --concurrency C        requests in flight at most in the concurrent run (default: all)
  --mode / --chunk-tokens / --keep-chunks / --kv-capacity   sieve options of every request
  --query TEXT           the question appended to every chunk
  --retries K            a 429 is retried up to K times after its Retry-After (default 20)
  --skip-sequential      only the concurrent run
  --api-key-file F       sends "Authorization: Bearer KEY"
  --timeout S            per request (default 1800)
Exit 0 when every request completed, 1 otherwise. Python 3 standard library only.
"""
import argparse
import concurrent.futures
import http.client
import json
import math
import random
import sys
import threading
import time
import urllib.parse


def percentile(values, p):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))
    return v[k]


def summary(values):
    return {"p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values) if values else None,
            "mean": sum(values) / len(values) if values else None}


class Target:
    def __init__(self, url, api_key, timeout):
        u = urllib.parse.urlparse(url)
        if u.scheme not in ("http", "") or not u.hostname:
            raise SystemExit(f"--url: expected http://HOST:PORT, got {url}")
        self.host, self.port = u.hostname, u.port or 8080
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout

    def get_json(self, path):
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.request("GET", path, headers=self.headers)
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            c.close()

    def run(self, body):
        """One streaming request: a result dict (status, timings, accounting or error)."""
        out = {"status": None, "client_ttft_s": None, "latency_s": None}
        t0 = time.monotonic()
        c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            c.request("POST", "/v1/completions", body=body, headers=self.headers)
            r = c.getresponse()
            out["status"] = r.status
            if r.status != 200:
                data = r.read()
                try:
                    out["error"] = json.loads(data)["error"]
                except (ValueError, KeyError, TypeError):
                    out["error"] = {"message": data[:300].decode("utf-8", "replace")}
                out["retry_after_s"] = float(r.getheader("Retry-After") or 1)
                return out
            buffer = ""
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    break
                buffer += chunk.decode("utf-8", "replace")
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    for line in block.split("\n"):
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            continue
                        event = json.loads(data)
                        if "error" in event:
                            out["status"] = event["error"].get("status", 500)
                            out["error"] = event["error"]
                            continue
                        choices = event.get("choices") or []
                        if choices and choices[0].get("text") and out["client_ttft_s"] is None:
                            out["client_ttft_s"] = time.monotonic() - t0
                        if "sieve" in event:
                            out["accounting"] = event["sieve"]["accounting"]
                            out["finish_reason"] = event["sieve"]["finish_reason"]
        except (OSError, http.client.HTTPException, ValueError) as e:
            out["status"] = "exception"
            out["error"] = {"message": repr(e)}
        finally:
            c.close()
            out["latency_s"] = time.monotonic() - t0
        if out["status"] == 200 and "accounting" not in out:
            out["status"] = "incomplete"
        return out


def make_documents(args):
    if args.lengths:
        lengths = [int(x) for x in args.lengths.split(",")]
    elif args.requests == 1:
        lengths = [args.min_tokens]
    else:
        step = (args.max_tokens - args.min_tokens) / (args.requests - 1)
        lengths = [int(round(args.min_tokens + i * step)) for i in range(args.requests)]
    rng = random.Random(args.seed)
    rng.shuffle(lengths)
    hi = max(200, min(args.vocab, 128000))
    docs = [[rng.randrange(100, hi) for _ in range(n)] for n in lengths]
    sieve = {}
    if args.mode:
        sieve["mode"] = args.mode
    for key in ("chunk_tokens", "keep_chunks", "kv_capacity"):
        if getattr(args, key) is not None:
            sieve[key] = getattr(args, key)
    bodies = []
    for i, ids in enumerate(docs):
        req = {"prompt": ids, "query": args.query, "max_tokens": args.max_new_tokens,
               "stream": True}
        if sieve:
            req["sieve"] = sieve
        bodies.append(json.dumps(req).encode())
    return lengths, bodies


def run_with_retries(target, body, retries, stats_lock, stats):
    for attempt in range(retries + 1):
        result = target.run(body)
        if result["status"] != 429 or attempt == retries:
            result["retries"] = attempt
            return result
        with stats_lock:
            stats["rejected_429"] += 1
        time.sleep(result.get("retry_after_s", 1))
    return result


def run_phase(target, lengths, bodies, args, concurrent_run):
    stats, lock = {"rejected_429": 0}, threading.Lock()
    results = [None] * len(bodies)
    start = time.monotonic()
    if concurrent_run:
        workers = args.concurrency or len(bodies)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = {}
            for i, body in enumerate(bodies):
                if args.rate > 0 and i > 0:
                    time.sleep(random.Random(args.seed + i).expovariate(args.rate))
                futures[pool.submit(run_with_retries, target, body, args.retries, lock, stats)] = i
            for f in concurrent.futures.as_completed(futures):
                results[futures[f]] = f.result()
    else:
        for i, body in enumerate(bodies):
            results[i] = run_with_retries(target, body, args.retries, lock, stats)
    wall = time.monotonic() - start
    done = [r for r in results if r["status"] == 200]
    acc = [r["accounting"] for r in done]
    timing = [a["timing"] for a in acc]
    prompt_tokens = sum(a["document_tokens"] + a["query_tokens"] for a in acc)
    phase = {
        "requests": len(bodies), "completed": len(done), "wall_s": wall,
        "requests_per_s": len(done) / wall if wall > 0 else None,
        "prompt_tokens_per_s": prompt_tokens / wall if wall > 0 else None,
        "rejected_429_retried": stats["rejected_429"],
        "client_ttft_s": summary([r["client_ttft_s"] for r in done if r["client_ttft_s"] is not None]),
        "server_ttft_s": summary([t["ttft_s"] for t in timing]),
        "prefill_s": summary([t["prefill_s"] for t in timing]),
        "latency_s": summary([r["latency_s"] for r in done]),
        "kv_bytes_moved": sum(a["kv"]["bytes_moved"] for a in acc),
        "per_request": [{"document_tokens": n, "status": r["status"],
                         "client_ttft_s": r["client_ttft_s"], "latency_s": r["latency_s"],
                         "server_ttft_s": r.get("accounting", {}).get("timing", {}).get("ttft_s"),
                         "prefill_s": r.get("accounting", {}).get("timing", {}).get("prefill_s"),
                         "kept_chunks": r.get("accounting", {}).get("kept_chunks"),
                         "retries": r.get("retries"), "error": r.get("error")}
                        for n, r in zip(lengths, results)],
    }
    return phase


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--api-key-file")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--min-tokens", type=int, default=32768)
    ap.add_argument("--max-tokens", type=int, default=131072)
    ap.add_argument("--lengths")
    ap.add_argument("--vocab", type=int, default=128000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--query", default="What is the pass key?")
    ap.add_argument("--mode")
    ap.add_argument("--chunk-tokens", dest="chunk_tokens", type=int)
    ap.add_argument("--keep-chunks", dest="keep_chunks", type=int)
    ap.add_argument("--kv-capacity", dest="kv_capacity", type=int)
    ap.add_argument("--retries", type=int, default=20)
    ap.add_argument("--skip-sequential", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out")
    args = ap.parse_args()
    api_key = open(args.api_key_file).read().strip() if args.api_key_file else None
    target = Target(args.url, api_key, args.timeout)
    try:
        status, models = target.get_json("/v1/models")
    except OSError as e:
        print(f"sieve-load: cannot reach {args.url}: {e}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"sieve-load: GET /v1/models answered {status}: {models}", file=sys.stderr)
        return 1
    lengths, bodies = make_documents(args)
    print(f"sieve-load: {len(bodies)} documents of {min(lengths)}..{max(lengths)} tokens to "
          f"{args.url} ({models['data'][0]['id']})", file=sys.stderr)
    report = {"url": args.url, "model": models["data"][0]["id"], "lengths": lengths,
              "max_new_tokens": args.max_new_tokens, "rate": args.rate,
              "concurrency": args.concurrency or len(bodies)}
    report["concurrent"] = run_phase(target, lengths, bodies, args, True)
    c = report["concurrent"]
    print(f"  concurrent: {c['completed']}/{c['requests']} in {c['wall_s']:.2f} s, "
          f"{c['requests_per_s']:.3f} req/s, TTFT p50 {c['client_ttft_s']['p50']} s",
          file=sys.stderr)
    if not args.skip_sequential:
        report["sequential"] = run_phase(target, lengths, bodies, args, False)
        s = report["sequential"]
        print(f"  one at a time: {s['completed']}/{s['requests']} in {s['wall_s']:.2f} s, "
              f"{s['requests_per_s']:.3f} req/s, TTFT p50 {s['client_ttft_s']['p50']} s",
              file=sys.stderr)
        if c["requests_per_s"] and s["requests_per_s"]:
            report["throughput_speedup"] = c["requests_per_s"] / s["requests_per_s"]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    complete = all(p["completed"] == p["requests"] for k, p in report.items()
                   if k in ("concurrent", "sequential"))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
