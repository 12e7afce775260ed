#!/usr/bin/env bash
# Per-token verification cost of RS256, ES256, ES384, ES512 and EdDSA, natively and in V8 (Node's WASI: the engine
# Envoy runs the filter in, without Envoy around it). Needs node >= 18. A measurement, not a test.
#
#   bench/verify_cost.sh        TOKENS=200
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
TOKENS="${TOKENS:-200}"
INPUT="$ROOT/target/verify-cost-input.tsv"
cargo build --quiet --release --locked --example mint_bench_tokens
for alg in RS256 ES256 ES384 ES512 EdDSA; do
  label="$alg"; [[ $alg == RS256 ]] && label="RS256 (2048-bit)"
  printf '%s\tjwks\t%s\n' "$label" "$(ALG=$alg target/release/examples/mint_bench_tokens jwks)"
  ALG=$alg target/release/examples/mint_bench_tokens "$TOKENS" | sed "s/^/$label\ttoken\t/"
done >"$INPUT"
# The kid lookup: the same RS256 tokens against 256 keys, theirs the last (the others are decoys).
label="RS256, 256 keys, kid the last"
printf '%s\tjwks\t%s\n' "$label" "$(KEYS=256 target/release/examples/mint_bench_tokens jwks)" >>"$INPUT"
grep -P '^RS256 \(2048-bit\)\ttoken\t' "$INPUT" | sed "s/^RS256 (2048-bit)/$label/" >>"$INPUT"
cargo build --quiet --release --locked --example verify_cost
cargo build --quiet --release --locked --example verify_cost --target wasm32-wasip1
header="| algorithm | checks without keys, µs | signature check, µs | whole request path, µs | the rest of the path, µs | first token with a freshly parsed key, µs | token in the cache, µs |
|---|---|---|---|---|---|---|"
echo "Native ($(uname -m)):"
echo "$header"
target/release/examples/verify_cost <"$INPUT"
echo
echo "V8 (node $(node --version), wasm32-wasip1):"
echo "$header"
node --no-warnings -e '
// Relaxed SIMD (the fused RSA kernel) is behind a flag in Node 20 V8 11.3; a no-op where it is on.
require("v8").setFlagsFromString("--experimental-wasm-relaxed-simd");
const { WASI } = require("node:wasi");
const fs = require("node:fs");
const wasi = new WASI({ version: "preview1", args: [], env: {} });
// The library also carries the proxy-wasm glue, whose host imports ("env") are never called here.
const imports = wasi.getImportObject();
imports.env = new Proxy({}, { get: (_, name) => () => { throw new Error(`host call ${String(name)}`); } });
WebAssembly.instantiate(fs.readFileSync(process.argv[1]), imports)
  // The proxy-wasm entry point (_initialize) is exported too; run only main (_start).
  .then(({ instance }) => wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } }));
' "$ROOT/target/wasm32-wasip1/release/examples/verify_cost.wasm" <"$INPUT"
