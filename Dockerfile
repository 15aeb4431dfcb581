# syntax=docker/dockerfile:1
# hr-bridge's image: the release binary on nothing but the C library it links
# against (no shell, no package manager, no curl), running as an unprivileged user.
#
#   docker build -t hr-bridge .        # compiles in rust:1-bookworm, then the runtime
#
# Build arguments (the defaults are the public images; CI swaps in local ones):
#   BUILDER  an image with cargo and rustc >= 1.85 (Debian bookworm based, so the
#            binary links against the same glibc as BASE)
#   BASE     a Debian bookworm image the runtime libraries are taken from
#   HOST_CA_BUNDLE  a CA bundle path for cargo inside the build (CARGO_HTTP_CAINFO),
#            for networks that intercept TLS; mount it for the build only
# Targets:
#   runtime  (the default, last stage) compiles the binary in BUILDER
#   prebuilt takes a binary already built on a bookworm (glibc 2.36) machine from
#            the build context instead: target/release/hr-bridge, or the path in
#            the PREBUILT build argument (CI: its test build's binary, stripped,
#            at target/container/hr-bridge)
ARG BUILDER=docker.io/library/rust:1-bookworm
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER} AS build
ARG HOST_CA_BUNDLE=
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN if [ -n "$HOST_CA_BUNDLE" ]; then export CARGO_HTTP_CAINFO="$HOST_CA_BUNDLE"; fi \
 && cargo build --release --locked --bin hr-bridge

# The runtime files, gathered into /rootfs: the dynamic loader, libc, libm and
# libgcc_s (unwinding) are all the binary links against; TLS roots are compiled in
# (webpki-roots), SQLite is bundled, and glibc >= 2.34 has the files/dns name
# lookup built in. /lib is a symlink in bookworm, so the files are copied (-L)
# into real directories, where the loader looks without an ld.so.cache.
FROM ${BASE} AS rootfs
RUN set -eu; \
    for lib in /lib*/ld-linux*.so.* /lib/*-linux-gnu/libc.so.6 \
               /lib/*-linux-gnu/libm.so.6 /lib/*-linux-gnu/libgcc_s.so.1; do \
        mkdir -p "/rootfs${lib%/*}"; cp -L "$lib" "/rootfs$lib"; \
    done; \
    mkdir -p /rootfs/etc/hr-bridge /rootfs/usr/local/bin /rootfs/var/lib/hr-bridge /rootfs/tmp; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nhr-bridge:x:10001:10001:hr-bridge:/var/lib/hr-bridge:/sbin/nologin\n' \
        > /rootfs/etc/passwd; \
    printf 'root:x:0:\nhr-bridge:x:10001:\n' > /rootfs/etc/group; \
    printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf; \
    chown 10001:10001 /rootfs/var/lib/hr-bridge; \
    chmod 1777 /rootfs/tmp

FROM scratch AS runtime-base
COPY --from=rootfs /rootfs/ /
COPY config/hr-bridge.example.toml /etc/hr-bridge/hr-bridge.example.toml
USER 10001:10001
WORKDIR /var/lib/hr-bridge
ENV PATH=/usr/local/bin \
    HR_BRIDGE__SERVER__LISTEN=0.0.0.0:8080 \
    HR_BRIDGE__DATABASE__URL=sqlite:///var/lib/hr-bridge/hr-bridge.db?mode=rwc
EXPOSE 8080
VOLUME ["/var/lib/hr-bridge"]
STOPSIGNAL SIGTERM
# `hr-bridge healthcheck` reads the same settings as `serve` (listen address, TLS)
# and exits 0 when /healthz answers; no shell or curl needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/hr-bridge", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hr-bridge"]
CMD ["serve"]

FROM runtime-base AS prebuilt
ARG PREBUILT=target/release/hr-bridge
COPY ${PREBUILT} /usr/local/bin/hr-bridge

FROM runtime-base AS runtime
COPY --from=build /src/target/release/hr-bridge /usr/local/bin/hr-bridge
