// One module's whole cached-token request in Node's V8, without Envoy: the real exports in a tight loop
// (proxy_on_context_create, proxy_on_request_headers with a cached token, proxy_on_delete; only the
// header callback with `raw`), every host call a stub in JS. What the module's own code costs when its
// code and data stay in the CPU's caches, as Envoy between two requests does not keep them.
// Run by bench/vm_loop.sh; usage: node bench/vm_loop.cjs MODULE streams|raw ITERATIONS CONFIG TOKEN
"use strict";
// The RSA kernel multiplies with relaxed SIMD (src/crypto/rsa/fused_float.rs), on by default in V8
// from 11.4 (Envoy 1.40 has it) and behind this flag in Node 20's V8 11.3.
require("v8").setFlagsFromString("--experimental-wasm-relaxed-simd");
const fs = require("fs");
const [file, mode, itersArg, configFile, tokenFile] = process.argv.slice(2);
const iters = Number(itersArg || 200000);
const config = Buffer.from(fs.readFileSync(configFile));
const token = fs.readFileSync(tokenFile, "utf8").trim();
const headers = [[":authority", "127.0.0.1:18003"], [":path", "/bench"], [":method", "GET"], [":scheme", "http"],
  ["authorization", "Bearer " + token], ["x-forwarded-proto", "http"], ["x-request-id", "3f1e0c2a-7b1d-4c55-9a0e-1d2f3a4b5c6d"]];
function serialize(pairs) {
  const enc = pairs.map(([n, v]) => [Buffer.from(n), Buffer.from(v)]);
  let size = 4 + enc.length * 8; for (const [n, v] of enc) size += n.length + v.length + 2;
  const b = Buffer.alloc(size); let o = 0; b.writeUInt32LE(enc.length, o); o += 4;
  for (const [n, v] of enc) { b.writeUInt32LE(n.length, o); b.writeUInt32LE(v.length, o + 4); o += 8; }
  for (const [n, v] of enc) { n.copy(b, o); o += n.length + 1; v.copy(b, o); o += v.length + 1; }
  return b;
}
const headerBytes = serialize(headers);
let inst;
const u8 = () => new Uint8Array(inst.exports.memory.buffer);
const dv = () => new DataView(inst.exports.memory.buffer);
function give(bytes, ptrPtr, sizePtr) {
  const p = inst.exports.proxy_on_memory_allocate(bytes.length);
  u8().set(bytes, p); dv().setUint32(ptrPtr, p, true); dv().setUint32(sizePtr, bytes.length, true); return 0;
}
let metric = 1, local = 0, adds = 0, removes = 0;
const env = {
  proxy_get_buffer_bytes: (type, start, max, pp, sp) => type === 7 ? give(config, pp, sp) : 1,
  proxy_get_header_map_pairs: (t, pp, sp) => give(headerBytes, pp, sp),
  proxy_get_current_time_nanoseconds: (p) => { dv().setBigUint64(p, BigInt(Date.now()) * 1000000n, true); return 0; },
  proxy_get_shared_data: () => 1, proxy_get_property: () => 1, proxy_get_header_map_value: () => 1,
  proxy_define_metric: (t, np, nl, idp) => { dv().setUint32(idp, metric++, true); return 0; },
  proxy_log: (lvl, p, l) => { if (process.env.LOG) console.log(Buffer.from(u8().slice(p, p + l)).toString()); return 0; },
  proxy_send_local_response: () => { local++; return 0; },
  proxy_add_header_map_value: () => { adds++; return 0; },
  proxy_remove_header_map_value: () => { removes++; return 0; },
};
const stub = new Proxy(env, { get: (t, n) => t[n] || (() => 0) });
const wasi = new Proxy({}, { get: (_, n) => n === "random_get" ? (p, l) => { u8().fill(7, p, p + l); return 0; } : () => 0 });
const wasmModule = new WebAssembly.Module(fs.readFileSync(file));
inst = new WebAssembly.Instance(wasmModule, { env: stub, wasi_snapshot_preview1: wasi });
const e = inst.exports;
if (e._initialize) e._initialize();
if (e.proxy_on_context_create) e.proxy_on_context_create(1, 0);
e.proxy_on_vm_start(1, 0);
if (!e.proxy_on_configure(1, config.length)) throw new Error("configure refused");
if (e.proxy_on_tick) e.proxy_on_tick(1);
const streams = mode !== "raw";
function one(ctx) {
  if (streams && e.proxy_on_context_create) e.proxy_on_context_create(ctx, 1);
  e.proxy_on_request_headers(ctx, headers.length, 1);
  if (streams && e.proxy_on_delete) e.proxy_on_delete(ctx);
}
let ctx = 2;
for (let i = 0; i < 20000; i++) one(ctx++);
const rounds = [];
for (let r = 0; r < 5; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) one(ctx++);
  const t1 = process.hrtime.bigint();
  rounds.push(Number(t1 - t0) / iters);
}
// The request must have been allowed with the claim header added, or the figure is of something else.
if (local !== 0 || adds === 0) throw new Error(`not a cached, allowed request: ${local} local replies, ${adds} headers added`);
rounds.sort((a, b) => a - b);
console.log(`${(rounds[2]).toFixed(0)}`);
