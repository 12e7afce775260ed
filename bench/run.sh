#!/usr/bin/env bash
# Side-by-side throughput and latency: one Envoy (--concurrency 1) with seven listeners on direct-response
# routes, so only the filter's cost shows:
#   none          no authentication
#   native        Envoy's jwt_authn
#   native_cache  jwt_authn with jwt_cache_config
#   wasm          this filter (its verified-token cache is on by default)
#   wasm_floor    this module with a rule that requires nothing: its cost per request before any JWT work
#                 (reading headers, matching rules, counting)
#   wasm_empty    bench/empty_filter, a proxy-wasm SDK filter that does nothing, with all of the SDK's
#                 exports: proxy-wasm's own cost per request in Envoy (this module, built by build.sh,
#                 exports fewer callbacks and can go slightly below it)
#   wasm_ceiling  bench/ceiling_filter: only the host calls a cached-token request needs (read the headers
#                 and the clock, remove authorization, add the claim header), on the raw ABI with one VM
#                 entry per request and no check at all: the most any proxy-wasm filter can reach here
#   wasm_ceiling_streams  the same with proxy_on_context_create and proxy_on_delete exported and a
#                 per-stream record (three VM entries per request): the most a filter can reach that tells
#                 configurations sharing a VM apart and can be reconfigured without leaking, as this one
#   dpop_es256,   with DPOP=1 (the default; DPOP=0 skips them): this filter with a `dpop` provider, each
#   dpop_eddsa    request a cached bound access token and a fresh proof (ES256 or EdDSA), measured after
#                 the main runs against `wasm` hot (a cached Bearer token) in the same rounds: the
#                 difference is the per-request cost of a DPoP proof
#   wasm_per_route this filter with the requirement in per_route_config on the route's name and rules that
#                 require nothing: what reading the route name (xds.route_name) adds to wasm
#   wasm_before   with BEFORE_MODULE=PATH (another build of this filter, e.g. from an earlier commit):
#                 the same configuration as wasm, so a change is measured against its base in one run
# Same provider for all (local_jwks; ALG=RS256 with a 2048-bit key by default, or ALG=ES256 / ES384 / ES512 / EdDSA). wrk runs "hot" (one token repeated) and "cold"
# (COLD_TOKENS distinct tokens, more than any cache holds) against each, interleaving setups in every
# round, and the medians and ratios are printed (throughput, and Envoy's CPU time per request, which a
# busy machine disturbs less); then each setup gets the same fixed load (PACED_RATE
# req/s, paced by tools/measure/paced_load.rs; 0 skips it) for p50/p99 like with like. A measurement
# script, not a test.
#
#   bench/run.sh                 ROUNDS=3 SECONDS_PER_RUN=5 CONNECTIONS=16 COLD_TOKENS=2000 PACED_RATE=2000 PIN=1
#                                (ORDER=fixed runs the setups in SETUPS' order in every round, not shuffled;
#                                 MODES="hot cold" and SETUPS="none native native_cache wasm wasm_floor wasm_empty wasm_ceiling wasm_ceiling_streams" narrow a run;
#                                 ALG=ES256, ES384, ES512 or EdDSA measures those algorithms instead of RS256;
#                                 PHASES=1 runs a build of this filter that times the steps of its header
#                                 callback, printed at the end: use it with one of MODES=hot or MODES=cold)
#   bench/run.sh scaling [rules|providers|keys|claims|concurrency ...]   cost against the size of the work
#                                (bench/scaling.sh; docs/performance.md has what each runs and its run time)
#   bench/run.sh realistic       10,000 users, Zipf-distributed tokens, --concurrency 1 and 2
#                                (bench/realistic.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  scaling) shift; exec bench/scaling.sh "$@" ;;
  realistic) shift; exec bench/realistic.sh "$@" ;;
esac
ROOT="$(pwd)"
ROUNDS="${ROUNDS:-3}"
export ALG="${ALG:-RS256}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
CONNECTIONS="${CONNECTIONS:-16}"
COLD_TOKENS="${COLD_TOKENS:-2000}"
WORK="$(mktemp -d)"
trap 'kill "${ENVOY_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# shellcheck source=bench/common.sh
source bench/common.sh
bench_build
if [[ "${PHASES:-0}" != 0 ]]; then
  # A module that times the steps of its header callback and logs averages (src/glue/phase_timing.rs),
  # built in a target directory of its own so the shipped build stays as it is.
  CARGO_TARGET_DIR="$ROOT/target/phase-timing" cargo build --quiet --release --locked --target wasm32-wasip1 \
    --lib --features phase-timing
  MODULE="$ROOT/target/phase-timing/wasm32-wasip1/release/jwt_authn_wasm.wasm"
  cargo xtask strip-exports "$MODULE" >/dev/null
fi
(cd bench/empty_filter && cargo build --quiet --release --locked --target wasm32-wasip1)
EMPTY_MODULE="$ROOT/bench/empty_filter/target/wasm32-wasip1/release/empty_filter.wasm"
"$MINT" 1 >"$WORK/hot.txt"
"$MINT" "$COLD_TOKENS" >"$WORK/cold.txt"
JWKS="$("$MINT" jwks)"
HOT_TOKEN="$(head -1 "$WORK/hot.txt")"

PYTHONPATH="$ROOT/bench" python3 - "$WORK/envoy.json" "$MODULE" "$JWKS" "$EMPTY_MODULE" "$CEILING_MODULE" "${BEFORE_MODULE:-}" "$CEILING_STREAMS_MODULE" <<'PY'
import os, sys
from bench_envoy import listener, native, provider, requiring, wasm, write_bootstrap, ROUTER, ROUTE_NAME
out, module, jwks, empty_module, ceiling_module, before_module, ceiling_streams_module = sys.argv[1:8]
def authn(cache=False, floor=False):
    c = requiring(provider(jwks, cache_size=100 if cache else None))
    if floor:
        del c["rules"][0]["requires"]
    return c
def per_route():
    c = authn()
    c["rules"] = [{"match": {"prefix": "/"}}]
    c["requirement_map"] = {"bench": {"provider_name": "bench"}}
    c["per_route_config"] = {ROUTE_NAME: {"requirement_name": "bench"}}
    return wasm("jwt_authn_wasm_per_route", module, c)
setups = {"none": (18000, [ROUTER]), "native": (18001, native(authn())),
          "native_cache": (18002, native(authn(cache=True))),
          "wasm": (18003, wasm("jwt_authn_wasm", module, authn())),
          "wasm_floor": (18004, wasm("jwt_authn_wasm_floor", module, authn(floor=True))),
          "wasm_empty": (18005, wasm("empty", empty_module)),
          "wasm_ceiling": (18006, wasm("ceiling", ceiling_module)), "wasm_per_route": (18012, per_route()),
          "wasm_ceiling_streams": (18008, wasm("ceiling_streams", ceiling_streams_module))}
if before_module:
    setups["wasm_before"] = (18007, wasm("jwt_authn_wasm_before", before_module, authn()))
if os.environ.get("DPOP", "1") != "0":
    # Proofs live an hour so the pre-minted files stay valid; the replay cache holds every proof of a run.
    p = provider(jwks)
    p["dpop"] = {"allowed_algs": ["ES256", "EdDSA"], "max_proof_age": "3600s", "clock_skew": "60s",
                 "replay_cache_size": 1000000}
    setups["dpop_es256"] = (18010, wasm("dpop_es256", module, requiring(p)))
    setups["dpop_eddsa"] = (18011, wasm("dpop_eddsa", module, requiring(p)))
write_bootstrap(out, [listener(name, port, filters) for name, (port, filters) in setups.items()], 18099)
PY

# Envoy and the load generator on cores of their own, as in production, where clients run elsewhere:
# sharing a core, each evicts the other's code and data from its caches, and the scheduler's choices
# move every figure. The same for every setup. PIN=0 leaves placement to the scheduler.
ENVOY_PIN="" CLIENT_PIN=""
if [[ "${PIN:-1}" != 0 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  ENVOY_PIN="taskset -c 1" CLIENT_PIN="taskset -c 0"
fi
start_envoy "$WORK/envoy.json" 1 "$ENVOY_PIN" 18099
# 18012 answers 401 without a token only if the route's per_route_config entry applies (its rules admit all).
for port in 18001 18002 18003 18012; do check_port "$port" "$HOT_TOKEN"; done

declare -A PORT=([none]=18000 [native]=18001 [native_cache]=18002 [wasm]=18003 [wasm_floor]=18004 [wasm_empty]=18005 [wasm_ceiling]=18006 [wasm_before]=18007 [wasm_ceiling_streams]=18008 [dpop_es256]=18010 [dpop_eddsa]=18011 [wasm_per_route]=18012)
read -r -a SETUPS <<<"${SETUPS:-none native native_cache wasm wasm_floor wasm_empty wasm_ceiling wasm_ceiling_streams}"
RESULTS="$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  # A new random order of the setups in every round (ORDER=fixed keeps SETUPS' order): a setup's place in
  # a round can bias it (one run of this pass measured the same setup 4–13 % slower in every round), and
  # a shuffle spreads that over all of them.
  if [[ "${ORDER:-shuffled}" == fixed ]]; then
    ORDERED=("${SETUPS[@]}")
  else
    mapfile -t ORDERED < <(printf '%s\n' "${SETUPS[@]}" | shuf)
  fi
  for mode in ${MODES:-hot cold}; do
    for setup in "${ORDERED[@]}"; do
      # Envoy CPU per request (the last field): less sensitive than req/s to what else the machine runs.
      read -r rps p50 p99 non2xx cpu_us < <(run_wrk "${PORT[$setup]}" "$WORK/$mode.txt" 1 "$ROOT/bench/tokens.lua")
      echo "$mode $setup $rps $p50 $p99 ${non2xx:-0} $cpu_us" >>"$RESULTS"
      printf 'round %s %-4s %-12s %10s req/s  p50 %6s ms  p99 %6s ms  Envoy CPU %6s µs/req  non-2xx %s\n' \
        "$round" "$mode" "$setup" "$rps" "$p50" "$p99" "$cpu_us" "${non2xx:-0}" >&2
    done
  done
done

# Latency at one fixed load for every setup (a paced, open-loop client): PACED_RATE requests per second,
# below every setup's saturation, so p50/p99 compare like with like.
PACED_RESULTS="$WORK/paced.txt"
if [[ "${PACED_RATE:-2000}" != 0 ]]; then
  for mode in ${MODES:-hot cold}; do
    for setup in "${SETUPS[@]}"; do
      # shellcheck disable=SC2086
      read -r p50 p99 achieved bad < <($CLIENT_PIN "$ROOT/target/release/examples/paced_load" "${PORT[$setup]}" \
        "${PACED_RATE:-2000}" "$SECONDS_PER_RUN" "$CONNECTIONS" "$WORK/$mode.txt")
      echo "$mode $setup $p50 $p99 $achieved $bad" >>"$PACED_RESULTS"
      printf 'paced %-4s %-12s p50 %6s ms  p99 %6s ms  at %s req/s  non-2xx %s\n' \
        "$mode" "$setup" "$p50" "$p99" "$achieved" "$bad" >&2
    done
  done
fi

# The DPoP dimension: per round, `wasm` hot (a cached Bearer token) and the two DPoP setups (a cached
# bound token and a fresh proof per request, minted just before the run: DPOP_PROOFS of them, more than
# a run sends, or the repeats show as non-2xx replays). Envoy CPU per request, minus wasm's, is the cost
# of checking a proof.
DPOP_RESULTS="$WORK/dpop.txt"
if [[ "${DPOP:-1}" != 0 ]]; then
  # 20,000 a second of run: EdDSA proofs reach 8,300 req/s on a fast machine, and the 40,000 of before
  # ran out there (the repeats were refused as replays).
  DPOP_PROOFS="${DPOP_PROOFS:-$((20000 * SECONDS_PER_RUN))}"
  for setup in dpop_es256 dpop_eddsa; do
    alg="ES256"; [[ $setup == dpop_eddsa ]] && alg="EdDSA"
    read -r token proof < <("$MINT" dpop "$alg" 1 "http://127.0.0.1:${PORT[$setup]}/bench")
    code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: DPoP $token" -H "DPoP: $proof" "http://127.0.0.1:${PORT[$setup]}/bench")"
    [[ "$code" == 200 ]] || { echo "$setup answered $code to a valid DPoP request" >&2; exit 1; }
  done
  for round in $(seq 1 "$ROUNDS"); do
    for setup in wasm dpop_es256 dpop_eddsa; do
      script="$ROOT/bench/tokens.lua" file="$WORK/hot.txt"
      if [[ $setup != wasm ]]; then
        alg="ES256"; [[ $setup == dpop_eddsa ]] && alg="EdDSA"
        "$MINT" dpop "$alg" "$DPOP_PROOFS" "http://127.0.0.1:${PORT[$setup]}/bench" >"$WORK/$setup.txt"
        script="$ROOT/bench/dpop.lua" file="$WORK/$setup.txt"
      fi
      read -r rps p50 p99 non2xx cpu_us < <(run_wrk "${PORT[$setup]}" "$file" 1 "$script")
      echo "$setup $rps $p50 $p99 ${non2xx:-0} $cpu_us" >>"$DPOP_RESULTS"
      printf 'round %s dpop %-12s %10s req/s  p50 %6s ms  p99 %6s ms  Envoy CPU %6s µs/req  non-2xx %s\n' \
        "$round" "$setup" "$rps" "$p50" "$p99" "$cpu_us" "${non2xx:-0}" >&2
    done
  done
fi

RSS_KB="$(awk '/VmRSS/ { print $2 }' "/proc/$ENVOY_PID/status")"
VM_BYTES="$(curl -s "http://127.0.0.1:18099/stats?filter=vm_memory_bytes" | awk -F': ' '{ print $2 }' | head -1)"
MODULE_BYTES="$(stat -c %s "$MODULE")"
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); Envoy --concurrency 1;${ENVOY_PIN:+ Envoy on core 1, wrk on core 0;}"
echo "wrk 1 thread, $CONNECTIONS connections, ${SECONDS_PER_RUN}s x $ROUNDS interleaved rounds; $ALG$([[ $ALG == RS256 ]] && echo " 2048-bit"); medians."
python3 - "$RESULTS" "$MODULE_BYTES" "$RSS_KB" "${VM_BYTES:-0}" "$PACED_RESULTS" "${PACED_RATE:-2000}" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
def med(mode, setup, col):
    vals = [float(r[col]) for r in rows if r[0] == mode and r[1] == setup]
    return statistics.median(vals) if vals else float("nan")
SHOWN = ["none", "native", "native_cache", "wasm", "wasm_floor", "wasm_empty", "wasm_ceiling", "wasm_ceiling_streams"]
SHOWN.append("wasm_before")
# Only the setups this run measured (SETUPS may narrow it).
SHOWN = [s for s in SHOWN if any(r[1] == s for r in rows)]
print()
print(f"| setup | hot req/s | hot p50 / p99 ms | hot Envoy CPU µs/req | cold req/s | cold p50 / p99 ms | cold Envoy CPU µs/req |")
print(f"|---|---|---|---|---|---|---|")
for s in SHOWN:
    print(f"| {s} | {med('hot', s, 2):,.0f} | {med('hot', s, 3):.2f} / {med('hot', s, 4):.2f} | {med('hot', s, 6):.1f} "
          f"| {med('cold', s, 2):,.0f} | {med('cold', s, 3):.2f} / {med('cold', s, 4):.2f} | {med('cold', s, 6):.1f} |")
hot = med("hot", "wasm", 2) / med("hot", "native_cache", 2)
cold = med("cold", "wasm", 2) / med("cold", "native", 2)
# The same ratios from Envoy's CPU time per request (the reciprocal: less CPU per request is faster).
hot_cpu = med("hot", "native_cache", 6) / med("hot", "wasm", 6)
cold_cpu = med("cold", "native", 6) / med("cold", "wasm", 6)
print()
print(f"hot:  wasm / native_cache = {hot:.2f}x   (target >= 1.0; by Envoy CPU per request {hot_cpu:.2f}x)")
print(f"cold: wasm / native       = {cold:.2f}x   (target >= 0.5; by Envoy CPU per request {cold_cpu:.2f}x)")
floor = med("hot", "wasm_floor", 2) / med("hot", "native_cache", 2)
empty = med("hot", "wasm_empty", 2) / med("hot", "native_cache", 2)
floor_cpu = med("hot", "native_cache", 6) / med("hot", "wasm_floor", 6)
empty_cpu = med("hot", "native_cache", 6) / med("hot", "wasm_empty", 6)
print(f"floor: wasm_floor / native_cache = {floor:.2f}x  (this module before any JWT work; by CPU {floor_cpu:.2f}x)")
print(f"empty: wasm_empty / native_cache = {empty:.2f}x  (an SDK filter doing nothing: proxy-wasm's own cost; by CPU {empty_cpu:.2f}x)")
ceiling = med("hot", "wasm_ceiling", 2) / med("hot", "native_cache", 2)
ceiling_cpu = med("hot", "native_cache", 6) / med("hot", "wasm_ceiling", 6)
print(f"ceiling: wasm_ceiling / native_cache = {ceiling:.2f}x  (only the hot path's host calls, raw ABI, no check: the most proxy-wasm allows; by CPU {ceiling_cpu:.2f}x)")
# This filter against each ceiling: the median of the per-round ratios (each round runs both back to back,
# so a round's ratio is less disturbed by the machine than a ratio of medians), with the rounds.
def per_round(setup, col, reciprocal=False):
    ours = [float(r[col]) for r in rows if r[0] == "hot" and r[1] == "wasm"]
    theirs = [float(r[col]) for r in rows if r[0] == "hot" and r[1] == setup]
    ratios = [(t / o if reciprocal else o / t) for o, t in zip(ours, theirs)]
    return (statistics.median(ratios), ratios) if ratios else (float("nan"), [])
for setup, what in [("wasm_ceiling", "one VM entry per request"),
                    ("wasm_ceiling_streams", "three VM entries per request, as any filter with stream contexts")]:
    if setup in SHOWN and "wasm" in SHOWN:
        (rps, rounds), (cpu, _) = per_round(setup, 2), per_round(setup, 6, reciprocal=True)
        print(f"hot against {setup} ({what}): wasm / {setup} = {rps:.2f} by req/s, {cpu:.2f} by CPU "
              f"(per round {', '.join(f'{r:.2f}' for r in rounds)})")
if "wasm_before" in SHOWN:
    for mode, base in [("hot", "native_cache"), ("cold", "native")]:
        now, before = med(mode, "wasm", 2) / med(mode, base, 2), med(mode, "wasm_before", 2) / med(mode, base, 2)
        print(f"before/after ({mode}): wasm_before / {base} = {before:.2f}x, wasm / {base} = {now:.2f}x  "
              f"(by CPU {med(mode, base, 6) / med(mode, 'wasm_before', 6):.2f}x and {med(mode, base, 6) / med(mode, 'wasm', 6):.2f}x)")
import os
if os.path.exists(sys.argv[5]):
    paced = {(r[0], r[1]): r for r in (l.split() for l in open(sys.argv[5]))}
    print()
    print(f"Latency at a fixed {int(sys.argv[6]):,} req/s (paced, open loop), p50 / p99 ms:")
    print()
    print("| setup | hot | cold |")
    print("|---|---|---|")
    for s in SHOWN:
        cells = [f"{paced[(m, s)][2]} / {paced[(m, s)][3]}" if (m, s) in paced else "-" for m in ["hot", "cold"]]
        print(f"| {s} | {cells[0]} | {cells[1]} |")
print(f"module: {int(sys.argv[2]):,} bytes; one worker VM's linear memory: {int(sys.argv[4] or 0) / 1048576:.1f} MiB; "
      f"Envoy RSS after the runs (all listeners in one process): {int(sys.argv[3]) / 1024:.0f} MiB")
PY
if [[ -s "$DPOP_RESULTS" ]]; then
  python3 - "$DPOP_RESULTS" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
def med(setup, col):
    vals = [float(r[col]) for r in rows if r[0] == setup]
    return statistics.median(vals) if vals else float("nan")
print()
print("DPoP: a cached bound token and a fresh proof per request, against a cached Bearer token (hot):")
print()
print("| setup | req/s | p50 / p99 ms | Envoy CPU µs/req | proof cost µs/req | non-2xx |")
print("|---|---|---|---|---|---|")
for s in ["wasm", "dpop_es256", "dpop_eddsa"]:
    cost = "-" if s == "wasm" else f"{med(s, 5) - med('wasm', 5):.1f}"
    print(f"| {s} | {med(s, 1):,.0f} | {med(s, 2):.2f} / {med(s, 3):.2f} | {med(s, 5):.1f} | {cost} | {med(s, 4):.0f} |")
PY
fi
if [[ "${PHASES:-0}" != 0 ]]; then
  # Cumulative since Envoy started, so a run with one MODES at a time gives that mode's steps.
  echo
  echo "Phase timing (src/glue/phase_timing.rs; each step includes one clock read), last report per filter:"
  grep -o 'wasm log [^:]*: jwt-authn-wasm phase timing.*' "$WORK/envoy.json.log" |
    awk '{ last[$3] = $0 } END { for (name in last) print last[name] }' || true
fi
