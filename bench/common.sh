# Shared by bench/run.sh, scaling.sh, realistic.sh and vm_loop.sh (sourced, not run): the Envoy
# binary, the built modules and token tools, starting one Envoy on a generated config, Envoy's CPU
# time and one wrk run.
# Expects ROOT (the repository) and WORK (a scratch directory) to be set.

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }

bench_build() {
  ./build.sh >/dev/null
  ENVOY="$(bash -c 'source <(sed -n "/^envoy_command()/,/^}/p" build.sh); ROOT='"$ROOT"'; envoy_command')" || {
    echo "Envoy not found: run ./build.sh setup" >&2; exit 1; }
  cargo build --quiet --release --locked --example mint_bench_tokens --example paced_load
  (cd bench/ceiling_filter && cargo build --quiet --release --locked --target wasm32-wasip1 &&
    CARGO_TARGET_DIR=target/stream-contexts cargo build --quiet --release --locked --target wasm32-wasip1 \
      --features stream-contexts)
  MODULE="$ROOT/target/wasm32-wasip1/release/jwt_authn_wasm.wasm"
  CEILING_MODULE="$ROOT/bench/ceiling_filter/target/wasm32-wasip1/release/ceiling_filter.wasm"
  CEILING_STREAMS_MODULE="$ROOT/bench/ceiling_filter/target/stream-contexts/wasm32-wasip1/release/ceiling_filter.wasm"
  MINT="$ROOT/target/release/examples/mint_bench_tokens"
  PACED="$ROOT/target/release/examples/paced_load"
}

# start_envoy CONFIG CONCURRENCY PIN_PREFIX ADMIN_PORT: starts Envoy, waits until ready; sets ENVOY_PID.
start_envoy() {
  local config="$1" concurrency="$2" pin="$3" admin="$4"
  # shellcheck disable=SC2086 # "func-e run" is two words; the pin is empty or a taskset command
  $pin $ENVOY -c "$config" --concurrency "$concurrency" --disable-hot-restart --log-level warn \
    >"$config.log" 2>&1 &
  ENVOY_PID=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$admin/ready" >/dev/null || { cat "$config.log" >&2; exit 1; }
}

# Envoy's CPU time in clock ticks (the process and its children: `func-e run` starts Envoy as a child).
envoy_cpu_ticks() {
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
TICKS_PER_SECOND="$(getconf CLK_TCK)"

to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 } else print v }'; }

# run_wrk PORT TOKENS_FILE THREADS SCRIPT: one wrk run against 127.0.0.1:PORT; prints
# "req/s p50_ms p99_ms non2xx envoy_cpu_us_per_request" (Envoy is $ENVOY_PID).
run_wrk() {
  local port="$1" tokens="$2" threads="$3" script="$4" before ticks out requests
  before="$(envoy_cpu_ticks "$ENVOY_PID")"
  # shellcheck disable=SC2086
  out="$(TOKENS_FILE="$tokens" $CLIENT_PIN wrk -t"$threads" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency \
    -s "$script" "http://127.0.0.1:$port/bench")"
  ticks="$(( $(envoy_cpu_ticks "$ENVOY_PID") - before ))"
  requests="$(awk '/ requests in / { print $1 }' <<<"$out")"
  printf '%s %s %s %s %s\n' \
    "$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")" \
    "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")" \
    "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")" \
    "$(awk '/Non-2xx/ { print $NF }' <<<"$out" | grep . || echo 0)" \
    "$(awk -v t="$ticks" -v hz="$TICKS_PER_SECOND" -v n="${requests:-0}" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "nan" }')"
}

# check_port PORT TOKEN: a valid token passes and no token is refused, or the run stops.
check_port() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "http://127.0.0.1:$1/bench")"
  [[ "$code" == 200 ]] || { echo "listener on port $1 answered $code to a valid token" >&2; exit 1; }
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/bench")"
  [[ "$code" == 401 ]] || { echo "listener on port $1 answered $code without a token" >&2; exit 1; }
}
