// Runs a wasm32-wasip1 test binary in V8 (Node's WASI), the engine Envoy runs the filter in: the
// cargo runner for `./build.sh test-in-v8`. Usage: node run_wasi.js <binary.wasm> [test args...]
// The repository is preopened at its own path, so fixtures load as they do natively.
"use strict";
// The RSA kernel multiplies with relaxed SIMD (src/crypto/rsa/fused_float.rs), on by default in V8
// from 11.4 (Envoy 1.40 has it) and behind this flag in Node 20's V8 11.3.
require("v8").setFlagsFromString("--experimental-wasm-relaxed-simd");
const { WASI } = require("node:wasi");
const fs = require("node:fs");
const path = require("node:path");

const [binary, ...args] = process.argv.slice(2);
const repo = path.resolve(__dirname, "..", "..");
const wasi = new WASI({
  version: "preview1",
  args: [path.basename(binary), ...args],
  env: { RUST_BACKTRACE: "0" },
  preopens: { [repo]: repo },
  returnOnExit: true,
});
const imports = wasi.getImportObject();
// The library also carries the proxy-wasm glue; its host imports ("env") are never called in tests.
imports.env = new Proxy({}, { get: (_, name) => () => { throw new Error(`host call ${String(name)}`); } });
WebAssembly.instantiate(fs.readFileSync(binary), imports).then(({ instance }) => {
  const code = wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
  process.exitCode = code;
}, (error) => {
  console.error(error);
  process.exitCode = 1;
});
