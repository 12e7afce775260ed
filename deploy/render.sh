#!/usr/bin/env bash
# Writes copies of the manifests under deploy/istio and deploy/envoy-gateway with your image and its real
# OCI manifest digest in place of the documented example (registry.example.com/jwt-authn-wasm:0.1.0,
# digest 000…0), so what you apply pulls exactly the module you built.
#
#   deploy/render.sh --image REGISTRY/REPO:TAG [--digest HEX | --digest-file FILE] [--out DIR]
#
#   --image        the image you pushed (`./build.sh push REF`); an oci:// prefix is accepted
#   --digest       the manifest digest, 64 hex (a sha256: prefix is accepted)
#   --digest-file  a file holding it; default target/oci-image/manifest-digest (or
#                  $OCI_IMAGE_DIR/manifest-digest), written by `./build.sh image`
#   --out          where the copies go; default target/deploy (istio/ and envoy-gateway/ inside)
#
# The copies are checked against the CRD schemas when tools/manifest-check is installed
# (`./build.sh setup`).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
EXAMPLE_IMAGE="registry.example.com/jwt-authn-wasm:0.1.0"
EXAMPLE_DIGEST="0000000000000000000000000000000000000000000000000000000000000000"

die() { echo "render: $*" >&2; exit 1; }

image="" digest="" digest_file="${OCI_IMAGE_DIR:-$ROOT/target/oci-image}/manifest-digest" out="$ROOT/target/deploy"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --image) image="${2:-}"; shift 2 ;;
    --digest) digest="${2:-}"; shift 2 ;;
    --digest-file) digest_file="${2:-}"; shift 2 ;;
    --out) out="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

image="${image#oci://}"
[[ -n "$image" ]] || die "give --image REGISTRY/REPO:TAG, the image you pushed"
# The characters of an image reference; anything else (spaces, quotes, |) would break the YAML or sed.
[[ "$image" =~ ^[A-Za-z0-9][A-Za-z0-9._:/@-]*$ && "$image" == */* ]] ||
  die "--image '$image' is not an image reference like registry.example.com/team/jwt-authn-wasm:0.1.0"
[[ "$image" != "$EXAMPLE_IMAGE" ]] || die "--image is the documented example; give the image you pushed"

if [[ -z "$digest" ]]; then
  [[ -f "$digest_file" ]] ||
    die "no digest: $digest_file does not exist (run ./build.sh image, or give --digest)"
  digest="$(tr -d '[:space:]' <"$digest_file")"
fi
digest="${digest#sha256:}"
[[ "$digest" =~ ^[a-f0-9]{64}$ ]] ||
  die "the manifest digest must be 64 lowercase hex characters, got '$digest'"

mkdir -p "$out"
for platform in istio envoy-gateway; do
  rm -rf "${out:?}/$platform"
  mkdir -p "$out/$platform"
  for file in "$ROOT/deploy/$platform"/*.yaml; do
    target="$out/$platform/$(basename "$file")"
    # Istio's url carries oci://, Envoy Gateway's does not; both are the same reference. The digest is
    # replaced only as the quoted YAML string, so no other run of zeros can change.
    {
      echo "# Rendered by deploy/render.sh from deploy/$platform/$(basename "$file"): image $image,"
      echo "# manifest digest $digest. Edit the source and render again rather than this copy."
      sed -e "s|oci://$EXAMPLE_IMAGE|oci://$image|g" \
        -e "s|$EXAMPLE_IMAGE|$image|g" \
        -e "s|\"$EXAMPLE_DIGEST\"|\"$digest\"|g" \
        "$file"
    } >"$target"
    if grep -q -e "$EXAMPLE_IMAGE" -e "$EXAMPLE_DIGEST" "$target"; then
      die "$target still holds the example image or digest"
    fi
  done
done
echo "render: wrote $out/istio and $out/envoy-gateway (image $image, manifest digest $digest)"

checker="$ROOT/tools/manifest-check"
if [[ -d "$checker/node_modules" ]] && command -v node >/dev/null 2>&1; then
  node "$checker/check.mjs" "$out"/istio/*.yaml "$out"/envoy-gateway/*.yaml
else
  echo "render: not checked against the CRD schemas (run ./build.sh setup to install tools/manifest-check)" >&2
fi
