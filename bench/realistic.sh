#!/usr/bin/env bash
# Realistic traffic: USERS users (10,000), each with a token of their own (subject user-i), drawn per
# request with Zipf weights (exponent ZIPF, 1.0: a few busy users, a long tail), so each token is reused
# across requests and, with every connection drawing on its own, across connections and workers.
# `bench/run.sh realistic` (or this script). Two Envoys: --concurrency 1 (pinned to core 1, the client on
# core 0) and --concurrency 2 (unpinned, wrk 2 threads). In each: jwt_authn (`native`) and this filter
# (`wasm`) with the same JSON (one provider, RS256 2048-bit, jwt_cache_config { jwt_cache_size:
# CACHE_SIZE (100) }), and bench/ceiling_filter. Per round and setup:
#   - throughput: wrk, closed loop, CONNECTIONS connections, SECONDS_PER_RUN;
#   - latency at a fixed load: tools/measure/paced_load.rs, open loop at PACED_RATE req/s, latency from
#     each request's scheduled send time (no coordinated omission: wrk2's method, which Debian does not
#     package);
#   - the cache hit rate of each filter over the throughput run, from Envoy's stats: jwt_authn's
#     http.<listener>.jwt_authn.jwt_cache_hit / jwt_cache_miss and this filter's
#     jwt_authn_wasm.jwt_cache_hit / jwt_cache_miss (added up per 100 ms tick; the script waits for one).
# Then the hit rates a process-wide cache would reach, from tools/measure/cache_model.rs (the same
# Zipf traffic through the filter's eviction policy), for the shared-data question.
#
#   bench/run.sh realistic     ROUNDS=3 SECONDS_PER_RUN=10 CONNECTIONS=32 USERS=10000 ZIPF=1.0
#                              CACHE_SIZE=100 PACED_RATE=2000 PIN=1
#   Run time: minting 10,000 tokens ~20 s (kept in target/bench-users-*.txt for 2 h), then per round
#   2 Envoys × 3 setups × (throughput + paced) × SECONDS_PER_RUN: 12 runs × 11 s ≈ 2.2 min per round,
#   ≈ 7 min at the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
USERS="${USERS:-10000}"
export ZIPF="${ZIPF:-1.0}"
CACHE_SIZE="${CACHE_SIZE:-100}"
PACED_RATE="${PACED_RATE:-2000}"
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
source bench/common.sh
bench_build
cargo build --quiet --release --locked --example cache_model

# Tokens live 4 h; a file younger than 2 h is reused so reruns skip the minting.
TOKENS="$ROOT/target/bench-users-$USERS.txt"
if [[ ! -s "$TOKENS" || -n "$(find "$TOKENS" -mmin +120)" ]]; then
  echo "minting $USERS tokens..." >&2
  USERS=1 "$MINT" "$USERS" >"$TOKENS.tmp" && mv "$TOKENS.tmp" "$TOKENS"
fi
JWKS="$("$MINT" jwks)"
HOT_TOKEN="$(head -1 "$TOKENS")"

PYTHONPATH="$ROOT/bench" python3 - "$WORK" "$MODULE" "$CEILING_MODULE" "$JWKS" "$CACHE_SIZE" <<'PY'
import sys
from bench_envoy import listener, native, provider, requiring, wasm, write_bootstrap
work, module, ceiling_module, jwks, cache_size = sys.argv[1:6]
config = requiring(provider(jwks, cache_size=int(cache_size)))
for envoy, base, admin in ((1, 19200, 19299), (2, 19210, 19298)):
    setups = [("native", native(config)), ("wasm", wasm("jwt_authn_wasm", module, config)),
              ("ceiling", wasm("ceiling", ceiling_module))]
    write_bootstrap(f"{work}/envoy{envoy}.json",
                    [listener(name, base + i, filters) for i, (name, filters) in enumerate(setups)], admin)
PY

PIN1="" CLIENT_PIN1=""
if [[ "${PIN:-1}" != 0 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  PIN1="taskset -c 1" CLIENT_PIN1="taskset -c 0"
fi
declare -A ENVOY_OF ADMIN_OF=([1]=19299 [2]=19298) BASE_OF=([1]=19200 [2]=19210)
declare -A OFFSET=([native]=0 [wasm]=1 [ceiling]=2)
start_envoy "$WORK/envoy1.json" 1 "$PIN1" 19299
ENVOY_OF[1]=$ENVOY_PID; PIDS+=("$ENVOY_PID")
start_envoy "$WORK/envoy2.json" 2 "" 19298
ENVOY_OF[2]=$ENVOY_PID; PIDS+=("$ENVOY_PID")
for envoy in 1 2; do
  for setup in native wasm; do check_port "$((BASE_OF[$envoy] + OFFSET[$setup]))" "$HOT_TOKEN"; done
done

# "hits misses" of SETUP's cache in Envoy ENVOY (counters over all workers).
cache_counts() {
  local envoy="$1" setup="$2" stats
  stats="$(curl -s "http://127.0.0.1:${ADMIN_OF[$envoy]}/stats?filter=jwt_cache_")"
  case "$setup" in
    native) awk -F': ' -v p="http.native.jwt_authn." '
      $1 == p "jwt_cache_hit" { h = $2 } $1 == p "jwt_cache_miss" { m = $2 } END { print h + 0, m + 0 }' <<<"$stats" ;;
    wasm) awk -F': ' '
      $1 ~ /jwt_authn_wasm\.jwt_cache_hit$/ { h = $2 } $1 ~ /jwt_authn_wasm\.jwt_cache_miss$/ { m = $2 }
      END { print h + 0, m + 0 }' <<<"$stats" ;;
    *) echo "0 0" ;;
  esac
}

RESULTS="$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for envoy in 1 2; do
    ENVOY_PID="${ENVOY_OF[$envoy]}"
    if [[ $envoy == 2 ]]; then CLIENT_PIN="" threads=2; else CLIENT_PIN="$CLIENT_PIN1" threads=1; fi
    for setup in native wasm ceiling; do
      port="$((BASE_OF[$envoy] + OFFSET[$setup]))"
      read -r hits0 misses0 < <(cache_counts "$envoy" "$setup")
      read -r rps _ p99_closed non2xx cpu < <(run_wrk "$port" "$TOKENS" "$threads" "$ROOT/bench/tokens_zipf.lua")
      sleep 0.3 # this filter adds its counts up on its 100 ms tick
      read -r hits1 misses1 < <(cache_counts "$envoy" "$setup")
      # shellcheck disable=SC2086
      read -r p50 p99 achieved bad < <($CLIENT_PIN "$PACED" "$port" "$PACED_RATE" "$SECONDS_PER_RUN" "$CONNECTIONS" "$TOKENS")
      hit_rate="$(awk -v h=$((hits1 - hits0)) -v m=$((misses1 - misses0)) 'BEGIN { if (h + m > 0) printf "%.3f", h / (h + m); else print "-" }')"
      echo "$envoy $setup $rps $cpu $p50 $p99 $achieved $hit_rate $((non2xx + bad))" >>"$RESULTS"
      printf 'round %s  --concurrency %s  %-7s %10s req/s  Envoy CPU %7s µs/req  cache hit rate %5s  at %s req/s: p50 %s ms p99 %s ms  non-2xx %s\n' \
        "$round" "$envoy" "$setup" "$rps" "$cpu" "$hit_rate" "$achieved" "$p50" "$p99" "$((non2xx + bad))" >&2
    done
  done
done

echo
echo "Machine: $(nproc) cores, $(uname -sr); ${PIN1:+--concurrency 1: Envoy on core 1, clients on core 0; }--concurrency 2 unpinned."
echo "$USERS users, Zipf exponent $ZIPF, RS256 2048-bit, jwt_cache_size $CACHE_SIZE on both; wrk $CONNECTIONS connections"
echo "(1 thread at --concurrency 1, 2 at 2), ${SECONDS_PER_RUN}s x $ROUNDS interleaved rounds; paced load $PACED_RATE req/s; medians."
python3 - "$RESULTS" "$ROOT/target/release/examples/cache_model" "$USERS" "$ZIPF" "$CACHE_SIZE" "$PACED_RATE" <<'PY'
import statistics, subprocess, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(envoy, setup, col):
    vals = [float(r[col]) for r in rows if r[0] == envoy and r[1] == setup and r[col] not in ("-", "nan")]
    return statistics.median(vals) if vals else float("nan")
print()
print("| Envoy | setup | req/s | Envoy CPU µs/req | p50 / p99 ms at the fixed load (rate reached) | cache hit rate | req/s / jwt_authn |")
print("|---|---|---|---|---|---|---|")
for envoy in ("1", "2"):
    native = med(envoy, "native", 2)
    for setup in ("native", "wasm", "ceiling"):
        hit = med(envoy, setup, 7)
        print(f"| --concurrency {envoy} | {setup} | {med(envoy, setup, 2):,.0f} | {med(envoy, setup, 3):.1f} | "
              f"{med(envoy, setup, 4):.2f} / {med(envoy, setup, 5):.2f} ({med(envoy, setup, 6):,.0f}) | "
              f"{'-' if hit != hit else f'{hit:.3f}'} | "
              f"{med(envoy, setup, 2) / native:.2f} |")
bad = sum(int(r[8]) for r in rows)
short = [r for r in rows if float(r[6]) < 0.95 * float(sys.argv[6])]
if short:
    print(f"WARNING: {len(short)} paced runs fell short of the fixed rate: their latencies are not at that load.")
if bad:
    print(f"WARNING: {bad} non-2xx answers: the figures are not valid.")
model, users, zipf, size = sys.argv[2:6]
print()
print(f"Hit rates of the same traffic through this filter's eviction policy (tools/measure/cache_model.rs, "
      f"{users} users, Zipf {zipf}, 2 workers, 400,000 requests):")
print()
for capacity in (int(size), 2 * int(size)):
    out = subprocess.run([model, users, zipf, str(capacity), "2", "400000"], capture_output=True, text=True).stdout
    print("  " + "; ".join(out.split("\n")[:-1]))
PY
