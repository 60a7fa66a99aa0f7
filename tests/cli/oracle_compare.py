"""Shared by the CLI tests: oracle scenarios as Sieve requests, and the check of a response
against tools/oracle.py's result (tests/fixtures/pipeline/oracle_dev.json)."""
import json
import sys

checks = 0


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


def ok(what):
    global checks
    checks += 1
    print(f"ok   {what}", flush=True)


def first_difference(got, want, path=""):
    """Where two JSON values first differ, as "[i][j]...: got X, want Y"."""
    if isinstance(got, list) and isinstance(want, list):
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                return first_difference(g, w, f"{path}[{i}]")
        return f"{path}: {len(got)} elements, want {len(want)}"
    return f"{path}: got {json.dumps(got)[:300]}, want {json.dumps(want)[:300]}"


def expect_equal(name, got, want):
    if got != want:
        fail(f"{name}: {first_difference(got, want)}")
    ok(name)


def expect_close(name, got, want, tol):
    if not isinstance(got, list) or len(got) != len(want):
        fail(f"{name}: got {json.dumps(got)[:300]}, want {len(want)} values")
    worst = max((abs(a - b) for a, b in zip(got, want)), default=0.0)
    if worst > tol:
        i = max(range(len(want)), key=lambda k: abs(got[k] - want[k]))
        fail(f"{name}: |got - want| = {worst:.3g} > {tol:g} at [{i}] ({got[i]} vs {want[i]})")
    ok(f"{name} (max error {worst:.2g})")


def request_for(oracle, params):
    sieve = {"mode": params.get("mode", "parallelcomp"),
             "chunk_tokens": params["chunk_tokens"],
             "keep_chunks": params["keep_k"]}
    if params.get("capacity") is not None:
        sieve["kv_capacity"] = params["capacity"]
    if params.get("calib") is not None:
        sieve["calibration"] = {"layers": params["calib"], "threshold": params["lam"],
                                "region": params["R"]}
    sieve["scope"] = dict(params["scope"]) if params.get("scope") else {"strategy": "off"}
    req = {"document_ids": oracle["document_ids"], "query_ids": oracle["query_ids"],
           "explain": True, "max_new_tokens": params["max_new"], "sieve": sieve}
    if params.get("forced"):
        req["force_continuation_ids"] = oracle["continuation_ids"]
    return req



def check_scenario(name, oracle, scenario, r):
    """Every field of one oracle scenario against a response dict `r`."""
    params, want = scenario["params"], scenario["result"]
    acc = r["accounting"]
    expect_equal(f"{name} document/query tokens",
                 [acc["document_tokens"], acc["query_tokens"]],
                 [len(oracle["document_ids"]), len(oracle["query_ids"])])
    expect_equal(f"{name} chunk tokens", [c["tokens"] for c in acc["chunks"]],
                 [c["tokens"] for c in want["chunks"]])
    expect_equal(f"{name} chunk indices", [c["index"] for c in acc["chunks"]],
                 [c["index"] for c in want["chunks"]])
    expect_close(f"{name} chunk scores", [c["score"] for c in acc["chunks"]],
                 [c["score"] for c in want["chunks"]], 1e-4)
    expect_equal(f"{name} chunk kept flags", [c["kept"] for c in acc["chunks"]],
                 [c["kept"] for c in want["chunks"]])
    expect_equal(f"{name} kept_chunks", acc["kept_chunks"], want["kept_chunks"])
    if "p0" in want:
        expect_equal(f"{name} p0", acc["p0"], want["p0"])
    if "prefill_cache" in want:
        expect_equal(f"{name} prefill_cache", acc["prefill_cache"], want["prefill_cache"])
    if "layout_prefill" in want:
        expect_equal(f"{name} layout_prefill", r.get("layout_prefill"), want["layout_prefill"])
    if "calibration_evicted" in want:
        expect_equal(f"{name} calibration_evicted", r.get("calibration_evicted"),
                     want["calibration_evicted"])
    expect_equal(f"{name} first_top5 ids", [t[0] for t in acc["first_top5"]],
                 [t[0] for t in want["first_top5"]])
    expect_close(f"{name} first_top5 logits", [t[1] for t in acc["first_top5"]],
                 [t[1] for t in want["first_top5"]], 1e-4)
    expect_equal(f"{name} generated_ids", r["generated_ids"], want["generated_ids"])
    expect_equal(f"{name} generated_tokens", acc["generated_tokens"], len(want["generated_ids"]))
    if "forced_logprobs" in want:
        expect_close(f"{name} forced_logprobs", r.get("forced_logprobs"),
                     want["forced_logprobs"], 1e-4)
    else:
        expect_equal(f"{name} no forced_logprobs", "forced_logprobs" in r, False)
    if "scope_fired_steps" in want:
        expect_equal(f"{name} scope_fired_steps", acc["scope_fired_steps"],
                     want["scope_fired_steps"])
        if want.get("final_cache") is not None:
            expect_equal(f"{name} final_cache", acc["final_cache"], want["final_cache"])
            expect_equal(f"{name} final_decode_positions", r.get("final_decode_positions"),
                         want["final_decode_positions"])
    else:
        # SCOPE off never evicts.
        expect_equal(f"{name} scope off: no eviction steps", acc["scope_fired_steps"], [])
    if len(want["generated_ids"]) == params["max_new"]:
        expect_equal(f"{name} finish_reason", r["finish_reason"], "length")

