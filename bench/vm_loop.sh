#!/usr/bin/env bash
# A cached-token request's cost inside the VM, without Envoy: this module and the two ceiling filters
# (bench/run.sh's wasm_ceiling and wasm_ceiling_streams) through their real exports in Node's V8, host
# calls stubbed in JS (bench/vm_loop.cjs), alternating ROUNDS times; ns per request, the median of five
# timed loops of ITERATIONS each. A measurement, not a test. Needs node >= 18.
#
#   bench/vm_loop.sh            ROUNDS=3 ITERATIONS=300000 (MODULE_UNDER_TEST=PATH measures another build of this filter)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
source bench/common.sh
bench_build
MODULE="${MODULE_UNDER_TEST:-$MODULE}"
"$MINT" 1 >"$WORK/token.txt"
PYTHONPATH="$ROOT/bench" python3 - "$WORK/config.json" "$("$MINT" jwks)" <<'PY'
import json, sys
from bench_envoy import provider, requiring
out, jwks = sys.argv[1:3]
json.dump(requiring(provider(jwks)), open(out, "w"))
PY
echo "| round | this filter, ns | wasm_ceiling_streams, ns | wasm_ceiling, ns |"
echo "|---|---|---|---|"
run() { node bench/vm_loop.cjs "$1" "$2" "${ITERATIONS:-300000}" "$WORK/config.json" "$WORK/token.txt"; }
for round in $(seq 1 "${ROUNDS:-3}"); do
  echo "| $round | $(run "$MODULE" streams) | $(run "$CEILING_STREAMS_MODULE" streams) | $(run "$CEILING_MODULE" raw) |"
done
