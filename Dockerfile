# raven-registry container image.
#
#   docker build -t raven-registry .
#   docker run -p 8080:8080 -v raven-data:/data raven-registry
#
# With nothing configured the container runs on SQLite at /data/registry.db, keeps tarballs under
# /data/storage and generates a JWT secret in /data/jwt-secret. Set DATABASE_URL, STORAGE_TYPE=s3 (+ S3_*,
# AWS_*) and JWT_SECRET for production (see README.md, "Configuration").

# ---------------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder

# A C toolchain for aws-lc-sys (jsonwebtoken, rustls) and the bundled SQLite; cmake in case aws-lc-sys
# falls back to its CMake build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# 1. Dependencies only. The manifests and lock file with stub sources: this layer is rebuilt only when
#    a Cargo.toml or Cargo.lock changes. benches/load.rs must exist because Cargo.toml declares the bench.
COPY Cargo.toml Cargo.lock ./
COPY entity/Cargo.toml entity/Cargo.toml
COPY migration/Cargo.toml migration/Cargo.toml
RUN mkdir -p src entity/src migration/src benches \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && : > entity/src/lib.rs \
    && : > migration/src/lib.rs \
    && echo 'fn main() {}' > migration/src/main.rs \
    && echo 'fn main() {}' > benches/load.rs \
    && cargo build --release --locked --bin raven-registry \
    && rm -rf src entity/src migration/src benches

# 2. The real sources. COPY keeps the files' modification times, which can be older than the stub
#    build's outputs: touch the crate roots so Cargo rebuilds the three workspace crates for real.
COPY entity/src entity/src
COPY migration/src migration/src
COPY benches benches
COPY src src
# The GraphiQL page's scripts and styles, embedded in the binary (include_bytes!).
COPY assets/graphiql assets/graphiql
# Optional: the commit shown by the raven_build_info metric (`docker build --build-arg GIT_SHA=$(git rev-parse HEAD) .`).
ARG GIT_SHA
RUN touch src/main.rs src/lib.rs entity/src/lib.rs migration/src/lib.rs migration/src/main.rs \
    && cargo build --release --locked --bin raven-registry \
    && install -m 0755 target/release/raven-registry /usr/local/bin/raven-registry \
    && /usr/local/bin/raven-registry --version

# ---------------------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: TLS to S3 and PostgreSQL. curl: the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user owning the data directory (created before VOLUME so the ownership sticks).
RUN groupadd --system --gid 10001 raven \
    && useradd --system --uid 10001 --gid raven --home-dir /data --no-create-home --shell /usr/sbin/nologin raven \
    && mkdir -p /data \
    && chown raven:raven /data \
    && chmod 0700 /data

COPY --from=builder /usr/local/bin/raven-registry /usr/local/bin/raven-registry

# DATA_DIR holds the default SQLite file, local tarballs (DATA_DIR/storage) and the generated JWT
# secret. HOST must be an IP address.
ENV DATA_DIR=/data \
    PORT=8080 \
    HOST=0.0.0.0

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# Liveness only (/health never touches the database); /ready also checks the database and storage.
# Shell form so that a PORT set at run time is honoured.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/health" || exit 1

# `serve` applies pending migrations before listening and stops gracefully on SIGTERM.
ENTRYPOINT ["/usr/local/bin/raven-registry"]
CMD ["serve"]
