# yungate: multi-stage image. Build with `docker build -t yungate .` (or `podman build`).
# The final image holds the binary, CA roots and nothing else; it runs as a non-root user,
# needs no writable root filesystem, and `yungate serve` handles SIGTERM itself (it drains).

FROM rust:1.95-slim-bookworm AS build
# The OpenSSL crypto backend (default feature) links the system's libcrypto.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The manifest names the benches, so cargo needs their files to read it.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY benches ./benches
COPY src ./src
RUN cargo build --release --locked --bin yungate

FROM debian:bookworm-slim
# Unpinned on purpose: the image should get the distribution's current CA roots and fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/yungate /usr/local/bin/yungate
# In a container the listeners face the pod network, not loopback; health gets its own plaintext
# port for the kubelet's gRPC probes, Prometheus one for /metrics; logs are JSON lines.
ENV YUNGATE__LISTEN=0.0.0.0:50051 \
    YUNGATE__NOTIFY__LISTEN=0.0.0.0:8081 \
    YUNGATE__HEALTH__LISTEN=0.0.0.0:50052 \
    YUNGATE__METRICS__LISTEN=0.0.0.0:9464 \
    YUNGATE_LOG_FORMAT=json
EXPOSE 50051 8081 50052 9464
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/yungate", "serve"]
