#!/usr/bin/env bash
# CLI test of sieve-make-model (tools/sieve_make_model.cc), end to end with sieve-run.
#
#   bash tests/cli/make_model_test.sh BUILD_DIR FIXTURES_DIR      (CTest: ctest -L cli)
#
# 1. --list-presets lists tiny, small, 1b and 8b (exit 0).
# 2. --preset tiny --tokenizer tiny-llama3/tokenizer.json writes config.json (the tiny-llama3
#    shape), model.safetensors (bf16, 20 tensors), generation_config.json, tokenizer.json (a byte
#    copy) and tokenizer_config.json; the same seed gives byte-identical weights, another seed
#    different ones.
# 3. sieve-run on the new directory answers a short text request (exit 0, the requested number
#    of tokens, the directory's name as the model); without a tokenizer the directory is not
#    loadable (exit 3).
# 4. Bad usage exits 2 with a message on stderr and nothing on stdout: unknown preset, missing
#    --out, bad --seed, unknown argument.
# Prints one line per check; exits non-zero at the first mismatch. Python 3 standard library only.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR FIXTURES_DIR" >&2
  exit 2
fi
BUILD_DIR=$1
FIXTURES_DIR=$2
for tool in sieve-make-model sieve-run; do
  [[ -x "$BUILD_DIR/tools/$tool" ]] || { echo "FAIL: $BUILD_DIR/tools/$tool not built" >&2; exit 1; }
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

python3 - "$BUILD_DIR/tools" "$FIXTURES_DIR" "$TMP" <<'PYTHON'
import filecmp
import json
import os
import struct
import subprocess
import sys

tools, fixtures, tmp = sys.argv[1:4]
make_model = os.path.join(tools, "sieve-make-model")
sieve_run = os.path.join(tools, "sieve-run")
tokenizer = os.path.join(fixtures, "tiny-llama3", "tokenizer.json")
checks = 0


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


def ok(what):
    global checks
    checks += 1
    print(f"ok   {what}", flush=True)


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, timeout=300, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---- 1. presets --------------------------------------------------------------------------------
code, out, err = run([make_model, "--list-presets"])
if code != 0:
    fail(f"--list-presets: exit {code}: {err}")
names = [line.split()[0] for line in out.splitlines() if line.strip()]
if names != ["tiny", "small", "1b", "8b"]:
    fail(f"--list-presets: presets {names}, want tiny, small, 1b, 8b:\n{out}")
ok(f"--list-presets: {', '.join(names)}")

# ---- 2. the tiny preset ------------------------------------------------------------------------
tiny = os.path.join(tmp, "tiny-made")
code, out, err = run([make_model, "--preset", "tiny", "--out", tiny, "--seed", "7",
                      "--tokenizer", tokenizer])
if code != 0:
    fail(f"--preset tiny: exit {code}: {err}")
if "preset tiny" not in out or "seed 7" not in out:
    fail(f"--preset tiny: unexpected summary line: {out!r}")
ok(f"--preset tiny: {out.strip()[:120]}")
for f in ["config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
          "tokenizer_config.json"]:
    if not os.path.isfile(os.path.join(tiny, f)):
        fail(f"--preset tiny: {f} missing")
ok("--preset tiny: all five files written")
if not filecmp.cmp(tokenizer, os.path.join(tiny, "tokenizer.json"), shallow=False):
    fail("tokenizer.json is not a byte copy")
ok("tokenizer.json is a byte copy of --tokenizer")

config = json.load(open(os.path.join(tiny, "config.json")))
want = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 192,
        "vocab_size": 128256, "tie_word_embeddings": True, "bos_token_id": 128000,
        "torch_dtype": "bfloat16"}
fixture_config = json.load(open(os.path.join(fixtures, "tiny-llama3", "config.json")))
for key, value in want.items():
    if config.get(key) != value:
        fail(f"config.json {key} = {config.get(key)!r}, want {value!r}")
    if fixture_config.get(key) != value:
        fail(f"the tiny-llama3 fixture's {key} = {fixture_config.get(key)!r}, want {value!r}")
if config.get("rope_scaling", {}).get("rope_type") != "llama3" or \
        config["rope_scaling"].get("original_max_position_embeddings") != 8192:
    fail(f"config.json rope_scaling = {config.get('rope_scaling')}")
ok("config.json has the tiny-llama3 shape (2 layers, hidden 64, 4/2 heads x 16, llama3 RoPE)")
generation = json.load(open(os.path.join(tiny, "generation_config.json")))
if generation.get("eos_token_id") != [128001, 128008, 128009]:
    fail(f"generation_config.json eos_token_id = {generation.get('eos_token_id')}")
ok("generation_config.json has the Llama-3 EOS ids")

with open(os.path.join(tiny, "model.safetensors"), "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
tensors = {k: v for k, v in header.items() if k != "__metadata__"}
if len(tensors) != 20 or any(v["dtype"] != "BF16" for v in tensors.values()):
    fail(f"model.safetensors: {len(tensors)} tensors, dtypes {set(v['dtype'] for v in tensors.values())}")
if tensors["model.embed_tokens.weight"]["shape"] != [128256, 64]:
    fail(f"embed_tokens shape {tensors['model.embed_tokens.weight']['shape']}")
if header.get("__metadata__", {}).get("sieve_seed") != "7":
    fail(f"model.safetensors metadata {header.get('__metadata__')}")
ok("model.safetensors: 20 bf16 tensors, embed_tokens [128256, 64], seed 7 recorded")

again = os.path.join(tmp, "tiny-again")
other = os.path.join(tmp, "tiny-other-seed")
for d, seed in [(again, "7"), (other, "8")]:
    code, out, err = run([make_model, "--preset", "tiny", "--out", d, "--seed", seed])
    if code != 0:
        fail(f"--preset tiny --seed {seed}: exit {code}: {err}")
if not filecmp.cmp(os.path.join(tiny, "model.safetensors"), os.path.join(again, "model.safetensors"),
                   shallow=False):
    fail("the same preset and seed gave different model.safetensors")
ok("same preset and seed: byte-identical model.safetensors")
if filecmp.cmp(os.path.join(tiny, "model.safetensors"), os.path.join(other, "model.safetensors"),
               shallow=False):
    fail("seeds 7 and 8 gave identical model.safetensors")
ok("another seed: different weights")

# ---- 3. sieve-run on the new model -------------------------------------------------------------
request = os.path.join(tmp, "request.json")
with open(request, "w") as f:
    json.dump({"document": "The pass key is 71432. Remember it. " * 20,
               "query": " What is the pass key?", "max_new_tokens": 4,
               "sieve": {"chunk_tokens": 64, "keep_chunks": 2}}, f)
code, out, err = run([sieve_run, "--model", tiny, "--device", "cpu", "--request", request])
if code != 0:
    fail(f"sieve-run on the made model: exit {code}\nstdout: {out[:500]}\nstderr: {err[-500:]}")
r = json.loads(out)
acc = r["accounting"]
if r.get("model") != "tiny-made":
    fail(f"sieve-run: model {r.get('model')!r}, want 'tiny-made'")
if not 1 <= len(r["generated_ids"]) <= 4 or acc["generated_tokens"] != len(r["generated_ids"]):
    fail(f"sieve-run: generated {r['generated_ids']}")
if r["finish_reason"] not in ("length", "eos") or \
        (r["finish_reason"] == "length") != (len(r["generated_ids"]) == 4):
    fail(f"sieve-run: finish_reason {r['finish_reason']} with {len(r['generated_ids'])} tokens")
if acc["document_tokens"] < 64 or len(acc["chunks"]) < 2 or len(acc["kept_chunks"]) != 2:
    fail(f"sieve-run: document_tokens {acc['document_tokens']}, chunks {len(acc['chunks'])}, "
         f"kept {acc['kept_chunks']}")
ok(f"sieve-run on the made model: {len(r['generated_ids'])} tokens, {len(acc['chunks'])} chunks, "
   f"kept {acc['kept_chunks']}, text {r['text']!r}")

code, out, err = run([sieve_run, "--model", other, "--device", "cpu", "--request", request])
if code != 3:
    fail(f"sieve-run on a directory without tokenizer.json: exit {code}, want 3")
ok("sieve-run on a directory without tokenizer.json: exit 3")

# ---- 4. bad usage ------------------------------------------------------------------------------


def expect_usage_error(name, args, fragment):
    code, out, err = run([make_model, *args])
    if code != 2:
        fail(f"{name}: exit {code}, want 2; stderr: {err[-300:]}")
    if out:
        fail(f"{name}: stdout should be empty, got {out[:200]!r}")
    if fragment not in err:
        fail(f"{name}: '{fragment}' not in stderr: {err[-300:]}")
    ok(f"{name}: exit 2, stderr: {err.strip().splitlines()[0][:100]}")


expect_usage_error("unknown preset", ["--preset", "huge", "--out", os.path.join(tmp, "x")],
                   "unknown preset 'huge'")
if os.path.exists(os.path.join(tmp, "x")):
    fail("unknown preset: the output directory was created anyway")
expect_usage_error("missing --out", ["--preset", "tiny"], "--out")
expect_usage_error("bad --seed", ["--preset", "tiny", "--out", os.path.join(tmp, "y"),
                                  "--seed", "-1"], "--seed")
expect_usage_error("unknown argument", ["--preset", "tiny", "--bogus"], "--bogus")
expect_usage_error("--preset without a value", ["--preset"], "--preset")

print(f"PASS: {checks} checks", flush=True)
PYTHON
