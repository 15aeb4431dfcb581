#!/usr/bin/env bash
# On demand (about 16 minutes on 2 cores): the image exactly as users build it,
# compiling inside the container, then the same smoke test as CI.
#
# BUILDER is Debian bookworm with rustc-web/cargo-web from bookworm-security
# (rustc >= 1.85) on the local debootstrap base, instead of rust:1-bookworm. cargo
# inside needs this host's CA bundle to reach crates.io; it is mounted for the
# build only and never stored in an image layer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/container-lib.sh

IMAGE=localhost/hr-bridge:full
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

step "tools"
container_tools
podman_setup
trap 'remove_containers; drop_ci_database' EXIT

step "base image"
base_image

step "builder image (rustc-web, cargo-web)"
if ! podman image exists "$BUILDER_IMAGE"; then
    security=$(apt_mirror bookworm-security)
    podman build --quiet --format docker -t "$BUILDER_IMAGE" -f - . >/dev/null <<DOCKERFILE
FROM $BASE_IMAGE
RUN echo 'deb $security bookworm-security main' > /etc/apt/sources.list.d/security.list \\
 && apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
        rustc-web cargo-web libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
DOCKERFILE
fi
podman run --rm "$BUILDER_IMAGE" rustc --version

step "image (compiled in the container)"
podman build --format docker \
    --build-arg BUILDER="$BUILDER_IMAGE" --build-arg BASE="$BASE_IMAGE" \
    --build-arg HOST_CA_BUNDLE=/run/host-ca.crt -v "$CA_BUNDLE:/run/host-ca.crt:ro" \
    -t "$IMAGE" .
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
awk -v size="$size" 'BEGIN { printf "image size: %d bytes (%.1f MB)\n", size, size / 1e6 }'

smoke_test "$IMAGE"
step "full build passed in ${SECONDS}s"
