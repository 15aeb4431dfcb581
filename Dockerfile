# syntax=docker/dockerfile:1
# Build stage: compile the release binary with the same toolchain family as CI.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin hr-bridge

# Runtime stage: a small Debian with CA roots (for TLS to the database) and curl
# for the health check, running as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/hr-bridge --create-home hr-bridge
COPY --from=build /src/target/release/hr-bridge /usr/local/bin/hr-bridge
COPY config/hr-bridge.example.toml /etc/hr-bridge/hr-bridge.example.toml
USER hr-bridge
WORKDIR /var/lib/hr-bridge
# mimalloc gives freed pages back at once, so the memory of one large /sync answer
# does not stay resident (see README "Performance").
ENV HR_BRIDGE__SERVER__LISTEN=0.0.0.0:8080 \
    HR_BRIDGE__DATABASE__URL=sqlite:///var/lib/hr-bridge/hr-bridge.db?mode=rwc \
    MIMALLOC_PURGE_DELAY=0 \
    MIMALLOC_ARENA_EAGER_COMMIT=0
EXPOSE 8080
VOLUME ["/var/lib/hr-bridge"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || curl -fsSk https://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["hr-bridge"]
CMD ["serve"]
