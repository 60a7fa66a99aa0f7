// Usage: (cd /tmp && npm install tokenizers) && NODE_PATH=/tmp/node_modules RAYON_NUM_THREADS=1 \
//        taskset -c 0 node bench/hf_tokenizers_bench.js tokenizer.json cases.jsonl
// HF tokenizers (Rust, through its Node binding) on the 171 KB case: encode MB/s on one thread.
const { Tokenizer } = require('tokenizers');
const fs = require('fs');
const [tokPath, casesPath] = process.argv.slice(2);
const lines = fs.readFileSync(casesPath, 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const big = lines.reduce((a, b) => (Buffer.byteLength(b.text) > Buffer.byteLength(a.text) ? b : a));
(async () => {
  const tok = Tokenizer.fromFile(tokPath);
  let mismatches = 0;
  for (const c of lines) {
    const e = await tok.encode(c.text, null, { addSpecialTokens: false });
    if (JSON.stringify(Array.from(e.getIds())) !== JSON.stringify(c.ids)) mismatches++;
  }
  const bytes = Buffer.byteLength(big.text);
  const times = [];
  for (let r = 0; r < 12; r++) {
    const t0 = process.hrtime.bigint();
    const e = await tok.encode(big.text, null, { addSpecialTokens: false });
    const t1 = process.hrtime.bigint();
    if (r >= 2) times.push(Number(t1 - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({ what: 'hf_tokenizers_encode', version: require('tokenizers/package.json').version,
    bytes, seconds: med, mb_per_s: bytes / med / 1e6, case_mismatches: mismatches }));
})();
