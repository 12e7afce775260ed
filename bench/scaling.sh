#!/usr/bin/env bash
# How the cost grows with the work, against Envoy's jwt_authn and the platform ceiling in the same run:
# `bench/run.sh scaling [dimension...]` (or this script directly). Each variant is a pair of listeners
# with the same JSON configuration, one for jwt_authn (`native`) and one for this filter (`wasm`), with
# jwt_cache_config { jwt_cache_size: 100 } on both (this filter's default), on direct-response routes.
# Dimensions:
#   rules        1, 100, 1000 rules, the matching one last (hot)
#   providers    1, 10, 50 providers under one requires_any, the token for the last; and 50 providers
#                with the rule naming only the last (hot and cold)
#   keys         1 and 256 keys in the JWKS, the token's kid the last (cold)
#   claims       1 and 20 claim_to_headers (hot)
#   concurrency  Envoy --concurrency 1 and 2 (wrk with 1 and 2 threads), one provider (hot and cold);
#                at 2 Envoy is not pinned (it needs both cores)
# Default: all five. Every round runs every selected (variant, mode, setup) once, interleaved, plus
# `ceiling` (bench/ceiling_filter: only the host calls of a cached-token request) and `ceiling_streams`
# (the same with per-stream contexts, as any filter with one VM for several configurations: see
# bench/run.sh) once per round in each Envoy; medians over ROUNDS. "hot" repeats one token; "cold" cycles
# COLD_TOKENS distinct tokens, more than either cache holds. Prints a table with req/s, Envoy CPU per
# request, the ratio against jwt_authn and against both ceilings, and each variant against the
# dimension's first.
#
#   bench/run.sh scaling [rules] [providers] [keys] [claims] [concurrency]
#       ROUNDS=3 SECONDS_PER_RUN=5 CONNECTIONS=16 COLD_TOKENS=2000 PIN=1
#   Run time: about (runs per round) × SECONDS_PER_RUN × ROUNDS plus ~1 s per run and ~30 s of setup;
#   runs per round: rules 8, providers 16, keys 6, claims 6, concurrency 12 (each Envoy's two ceilings
#   included, shared by the dimensions in one run). All five at the defaults: 40 runs × 6 s × 3 ≈ 12 min;
#   `rules` alone ≈ 2.5 min.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
CONNECTIONS="${CONNECTIONS:-16}"
COLD_TOKENS="${COLD_TOKENS:-2000}"
# Cold tokens must outnumber what the caches hold (100 per worker, 2 workers at --concurrency 2), or
# "cold" runs are hot ones.
((COLD_TOKENS > 400)) || { echo "COLD_TOKENS=$COLD_TOKENS fits in the caches: use more than 400" >&2; exit 2; }
DIMENSIONS=("$@")
((${#DIMENSIONS[@]})) || DIMENSIONS=(rules providers keys claims concurrency)
for d in "${DIMENSIONS[@]}"; do
  [[ " rules providers keys claims concurrency " == *" $d "* ]] ||
    { echo "unknown dimension '$d' (rules, providers, keys, claims, concurrency)" >&2; exit 2; }
done
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
source bench/common.sh
bench_build

"$MINT" 1 >"$WORK/hot.txt"
"$MINT" "$COLD_TOKENS" >"$WORK/cold.txt"
JWKS_1="$("$MINT" jwks)"
KEYS=256 "$MINT" jwks >"$WORK/jwks256.json"
HOT_TOKEN="$(head -1 "$WORK/hot.txt")"

# One configuration per Envoy: envoy1.json (--concurrency 1) and envoy2.json (--concurrency 2), and
# plan.txt with a line per listener: envoy dimension variant modes setup port.
PYTHONPATH="$ROOT/bench" python3 - "$WORK" "$MODULE" "$CEILING_MODULE" "$JWKS_1" "${DIMENSIONS[*]}" "$CEILING_STREAMS_MODULE" <<'PY'
import sys
import bench_envoy
from bench_envoy import listener, native, requiring, wasm, write_bootstrap, ISSUER
work, module, ceiling_module, jwks_1, dimensions, ceiling_streams_module = sys.argv[1:7]
dimensions = dimensions.split()
jwks_256 = open(f"{work}/jwks256.json").read().strip()

def provider(issuer=ISSUER, jwks=jwks_1, claims=1):
    # ISSUER is the tokens' issuer: the last provider's.
    names = ["sub", "email", "iss", "jti", "aud"]
    return bench_envoy.provider(
        jwks, issuer=issuer, cache_size=100,
        claim_to_headers=[{"header_name": f"x-jwt-c{i}", "claim_name": names[i % len(names)]}
                          for i in range(claims)])

def one(**kw):
    return requiring(provider(**kw))

def rules(n):
    c = one()
    c["rules"] = [{"match": {"prefix": f"/other-{i}/"}, "requires": {"provider_name": "bench"}}
                  for i in range(n - 1)] + c["rules"]
    return c

def providers(n, any_of=True):
    ps = {f"p{i}": provider(issuer=f"https://issuer-{i}.example.com") for i in range(n - 1)}
    ps[f"p{n - 1}"] = provider()
    names = list(ps)
    requires = ({"requires_any": {"requirements": [{"provider_name": p} for p in names]}}
                if any_of and n > 1 else {"provider_name": names[-1]})
    return {"providers": ps, "rules": [{"match": {"prefix": "/"}, "requires": requires}]}

# dimension -> [(variant label, config, modes)]
VARIANTS = {
    "rules": [(f"{n} rules, the matching one last", rules(n), "hot") for n in (1, 100, 1000)],
    "providers": [(f"{n} providers, requires_any, token for the last", providers(n), "hot cold")
                  for n in (1, 10, 50)]
                 + [("50 providers, the rule names only the last", providers(50, any_of=False), "hot")],
    "keys": [("1 key in the JWKS", one(), "cold"),
             ("256 keys in the JWKS, kid is the last", one(jwks=jwks_256), "cold")],
    "claims": [(f"{n} claim_to_headers", one(claims=n), "hot") for n in (1, 20)],
    "concurrency": [("--concurrency 1, wrk 1 thread", one(), "hot cold")],
}
CONCURRENCY_2 = ("--concurrency 2, wrk 2 threads", one(), "hot cold")

plan = []
envoys = {1: [], 2: []}
port = 19000
def add(envoy, dimension, index, label, config, modes):
    global port
    for setup in ("native", "wasm"):
        name = f"{dimension}_{index}_{setup}"
        # One vm_id per listener: each configuration gets VMs of its own, as separate deployments would.
        filters = native(config) if setup == "native" else wasm(name, module, config)
        envoys[envoy].append(listener(name, port, filters))
        plan.append(f"{envoy}\t{dimension}\t{index}\t{label}\t{modes}\t{setup}\t{port}")
        port += 1
for dimension in dimensions:
    for index, (label, config, modes) in enumerate(VARIANTS[dimension]):
        add(1, dimension, index, label, config, modes)
    if dimension == "concurrency":
        add(2, dimension, 1, *CONCURRENCY_2)
for envoy, admin in ((1, 19099), (2, 19098)):
    if not envoys[envoy]:
        continue
    for name, filename in (("ceiling", ceiling_module), ("ceiling_streams", ceiling_streams_module)):
        envoys[envoy].append(listener(name, port, wasm(name, filename)))
        plan.append(f"{envoy}\tceiling\t0\tceiling\thot\t{name}\t{port}")
        port += 1
    write_bootstrap(f"{work}/envoy{envoy}.json", envoys[envoy], admin)
open(f"{work}/plan.txt", "w").write("\n".join(plan) + "\n")
PY

# Envoy --concurrency 1 on core 1 and wrk on core 0 (PIN=0 leaves placement to the scheduler);
# Envoy --concurrency 2 needs both cores, so it and its wrk are not pinned.
PIN1="" CLIENT_PIN1=""
if [[ "${PIN:-1}" != 0 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  PIN1="taskset -c 1" CLIENT_PIN1="taskset -c 0"
fi
declare -A ENVOY_OF
start_envoy "$WORK/envoy1.json" 1 "$PIN1" 19099
ENVOY_OF[1]=$ENVOY_PID; PIDS+=("$ENVOY_PID")
if [[ -f "$WORK/envoy2.json" ]]; then
  start_envoy "$WORK/envoy2.json" 2 "" 19098
  ENVOY_OF[2]=$ENVOY_PID; PIDS+=("$ENVOY_PID")
fi
while IFS=$'\t' read -r envoy dimension _ _ _ setup port; do
  [[ $setup == ceiling* ]] || check_port "$port" "$HOT_TOKEN"
done <"$WORK/plan.txt"

RESULTS="$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  while IFS=$'\t' read -r envoy dimension index label modes setup port; do
    for mode in $modes; do
      ENVOY_PID="${ENVOY_OF[$envoy]}"
      if [[ $envoy == 2 ]]; then CLIENT_PIN="" threads=2; else CLIENT_PIN="$CLIENT_PIN1" threads=1; fi
      read -r rps p50 p99 non2xx cpu < <(run_wrk "$port" "$WORK/$mode.txt" "$threads" "$ROOT/bench/tokens.lua")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$envoy" "$dimension" "$index" "$label" "$mode" "$setup" \
        "$rps" "$cpu" "$non2xx" >>"$RESULTS"
      printf 'round %s  %-11s %-52s %-4s %-7s %10s req/s  Envoy CPU %7s µs/req  p99 %6s ms  non-2xx %s\n' \
        "$round" "$dimension" "$label" "$mode" "$setup" "$rps" "$cpu" "$p99" "$non2xx" >&2
    done
  done <"$WORK/plan.txt"
done

echo
echo "Machine: $(nproc) cores, $(uname -sr); ${PIN1:+Envoy --concurrency 1 on core 1, wrk on core 0; }--concurrency 2 unpinned;"
echo "wrk $CONNECTIONS connections, ${SECONDS_PER_RUN}s x $ROUNDS interleaved rounds, RS256 2048-bit, jwt_cache_size 100 on both; medians."
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def med(envoy, dimension, index, mode, setup, col):
    vals = [float(r[col]) for r in rows if r[0] == envoy and r[1] == dimension and r[2] == index
            and r[4] == mode and r[5] == setup and r[col] != "nan"]
    return statistics.median(vals) if vals else float("nan")
def ceiling(envoy, col, setup="ceiling"):
    return med(envoy, "ceiling", "0", "hot", setup, col)
bad = sum(int(r[8]) for r in rows if r[8].isdigit())
print()
print("| dimension | mode | jwt_authn req/s | this filter req/s | ratio | by CPU | / ceiling | / ceiling_streams | vs first variant |")
print("|---|---|---|---|---|---|---|---|---|")
seen = []
for r in rows:
    key = (r[0], r[1], r[2], r[3], r[4])
    if r[1] == "ceiling" or key in seen:
        continue
    seen.append(key)
for envoy, dimension, index, label, mode in seen:
    n, w = med(envoy, dimension, index, mode, "native", 6), med(envoy, dimension, index, mode, "wasm", 6)
    n_cpu, w_cpu = med(envoy, dimension, index, mode, "native", 7), med(envoy, dimension, index, mode, "wasm", 7)
    first = med("1", dimension, "0", mode, "wasm", 6)
    vs_first = "" if (envoy, index) == ("1", "0") else f"{w / first:.2f}"
    print(f"| {label} | {mode} | {n:,.0f} | {w:,.0f} | {w / n:.2f} | {n_cpu / w_cpu:.2f} | "
          f"{w / ceiling(envoy, 6):.2f} | {w / ceiling(envoy, 6, 'ceiling_streams'):.2f} | {vs_first} |")
for envoy in ("1", "2"):
    c, cs = ceiling(envoy, 6), ceiling(envoy, 6, "ceiling_streams")
    if c == c:
        print(f"| ceiling (--concurrency {envoy}) | hot | | {c:,.0f} | | | 1.00 | {c / cs:.2f} | |")
        print(f"| ceiling_streams (--concurrency {envoy}) | hot | | {cs:,.0f} | | | {cs / c:.2f} | 1.00 | |")
print()
print("ratio: this filter / jwt_authn in req/s; by CPU: the same from Envoy's CPU time per request;")
print("/ ceiling: this filter / bench/ceiling_filter (hot tokens) in the same Envoy; / ceiling_streams: the")
print("same against its stream-contexts build (per-stream entries, as this filter has); vs first variant:")
print("this filter's req/s against the dimension's first variant in the same mode (1.00 = flat).")
if bad:
    print(f"WARNING: {bad} non-2xx answers in the runs: the figures are not valid.")
PY
