#!/usr/bin/env bash
# CI, container part (called by .ci/run after the test suite): builds the image's
# runtime stage around the release binary compiled here, runs it over SQLite and
# over the local PostgreSQL (health, /sync, non-root user, HEALTHCHECK, clean stop),
# checks its size, then validates and scans deploy/kubernetes.
#
# No registry or Docker daemon is needed: the base image is a debootstrap of
# bookworm from apt's own mirror. Everything is kept under target/container, so a
# re-run reuses the base image and the venv; containers and the test database are
# removed before and after. The full in-container compile (~16 min on 2 cores) is
# scripts/container-full-build.sh, run on demand.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/container-lib.sh

IMAGE=localhost/hr-bridge:ci
MAX_IMAGE_BYTES=40000000
# Pinned so a new release cannot change the verdict on unchanged manifests.
PY_TOOLS=(kubernetes-validate==1.37.0 checkov==3.3.30)

step "tools"
container_tools
podman_setup
trap 'remove_containers; drop_ci_database' EXIT

step "release binary"
cargo build --release --locked --bin hr-bridge
# The Dockerfile's `prebuilt` target takes the binary from target/release.
built="${CARGO_TARGET_DIR:-target}/release/hr-bridge"
if [ ! "$built" -ef target/release/hr-bridge ]; then
    install -D "$built" target/release/hr-bridge
fi

step "base image (debootstrap --variant=minbase bookworm)"
base_image

step "image (runtime stage around target/release/hr-bridge)"
podman build --quiet --format docker --target prebuilt \
    --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" . >/dev/null
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
binary=$(stat -c %s target/release/hr-bridge)
awk -v size="$size" -v binary="$binary" 'BEGIN {
    printf "image size: %d bytes (%.1f MB; binary %.1f MB)\n", size, size / 1e6, binary / 1e6 }'
[ "$size" -lt "$MAX_IMAGE_BYTES" ] || fail "the image is over $MAX_IMAGE_BYTES bytes"

smoke_test "$IMAGE"

step "Kubernetes manifests"
venv="$WORK/venv"
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
fi
manifests=$(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
# Every manifest but the example Secrets is applied by `kubectl apply -k`.
for file in $manifests; do
    name=${file##*/}
    [ "$name" = secret.example.yaml ] && continue
    grep -qx "  - $name" deploy/kubernetes/kustomization.yaml ||
        fail "$file is not listed in deploy/kubernetes/kustomization.yaml"
done
# shellcheck disable=SC2086
"$venv/bin/kubernetes-validate" --strict --quiet $manifests
# shellcheck disable=SC2086
"$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version 1.28.0 $manifests
# Every skipped check must say why.
if grep -h 'checkov.io/skip' $manifests | grep -vE 'CKV[0-9]*_[A-Z0-9_]+=.{20,}'; then
    fail "a checkov skip annotation above has no written reason"
fi
"$venv/bin/checkov" --directory deploy/kubernetes --framework kubernetes secrets \
    --skip-download --compact --quiet

step "container CI passed in ${SECONDS}s"
