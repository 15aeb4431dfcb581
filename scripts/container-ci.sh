#!/usr/bin/env bash
# CI, container part: builds the image's runtime stage around the binary of the
# build CI already made for its tests (no second compile), runs it over SQLite and
# over the local PostgreSQL (health, /sync, non-root user, HEALTHCHECK, clean
# stop), checks its size, then validates and scans deploy/kubernetes.
#
#   scripts/container-ci.sh prepare   # tools, base image, manifest tools only:
#                                     # .ci/run starts this while the code compiles
#   scripts/container-ci.sh           # everything (what is prepared is reused)
#
# The binary is HR_BRIDGE_BINARY (default: target/debug/hr-bridge, the test
# build's), stripped into target/container/hr-bridge. A release image is
# scripts/container-full-build.sh, which compiles in the container, on demand.
#
# No registry or Docker daemon is needed: the base image is a debootstrap of
# bookworm from apt's own mirror. Everything is kept under target/container, so a
# re-run reuses the base image and the venv; containers and the test database are
# removed before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/container-lib.sh

IMAGE=localhost/hr-bridge:ci
BINARY=${HR_BRIDGE_BINARY:-${CARGO_TARGET_DIR:-target}/debug/hr-bridge}
# What the image adds around the binary (the base, /etc/passwd, the layers' own
# overhead: about 3 MB): a bound against anything else growing in it. The binary
# itself is the test build's, with unoptimised dependencies (about 42 MB
# stripped; a release binary is about 18 MB), so the whole image is no measure.
MAX_IMAGE_EXTRA_BYTES=5000000
# Pinned so a new release cannot change the verdict on unchanged manifests.
PY_TOOLS=(kubernetes-validate==1.37.0 checkov==3.3.30)
VENV="$WORK/venv"

prepare() {
    step "tools"
    container_tools
    podman_setup
    step "base image (debootstrap --variant=minbase bookworm)"
    base_image
    step "manifest tools"
    if [ ! -x "$VENV/bin/checkov" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
    fi
}

if [ "${1:-}" = prepare ]; then
    prepare
    step "prepared in ${SECONDS}s"
    exit 0
fi

prepare
trap 'remove_containers; drop_ci_database' EXIT

step "image (runtime stage around $BINARY)"
[ -x "$BINARY" ] || fail "$BINARY is missing: build first (cargo build --locked)"
# Debug information is most of a test build's size; the image needs none of it.
strip -o "$WORK/hr-bridge" "$BINARY"
podman build --quiet --format docker --target prebuilt \
    --build-arg BASE="$BASE_IMAGE" --build-arg PREBUILT=target/container/hr-bridge \
    -t "$IMAGE" . >/dev/null
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
binary=$(stat -c %s "$WORK/hr-bridge")
awk -v size="$size" -v binary="$binary" 'BEGIN {
    printf "image size: %d bytes (%.1f MB; binary %.1f MB)\n", size, size / 1e6, binary / 1e6 }'
[ "$((size - binary))" -lt "$MAX_IMAGE_EXTRA_BYTES" ] ||
    fail "the image adds $((size - binary)) bytes to the binary, over $MAX_IMAGE_EXTRA_BYTES"

smoke_test "$IMAGE"

step "Kubernetes manifests"
manifests=$(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
# Every manifest but the example Secrets is applied by `kubectl apply -k`.
for file in $manifests; do
    name=${file##*/}
    [ "$name" = secret.example.yaml ] && continue
    grep -qx "  - $name" deploy/kubernetes/kustomization.yaml ||
        fail "$file is not listed in deploy/kubernetes/kustomization.yaml"
done
# shellcheck disable=SC2086
"$VENV/bin/kubernetes-validate" --strict --quiet $manifests
# shellcheck disable=SC2086
"$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version 1.28.0 $manifests
# Every skipped check must say why.
# shellcheck disable=SC2086
if grep -h 'checkov.io/skip' $manifests | grep -vE 'CKV[0-9]*_[A-Z0-9_]+=.{20,}'; then
    fail "a checkov skip annotation above has no written reason"
fi
"$VENV/bin/checkov" --directory deploy/kubernetes --framework kubernetes secrets \
    --skip-download --compact --quiet

step "container CI passed in ${SECONDS}s"
