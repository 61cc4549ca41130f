# One image holding every binary of the workspace: order, product,
# notification, and the two setup steps, migration and topology.
# docker-compose.yml picks the binary per service with `command:`. Needs BuildKit (the default builder of current Docker and
# of Compose); no `# syntax=` line, so no frontend image is fetched.

# ---------------------------------------------------------------------------
# builder: compiles the shipped crates (sea-orm 2 / sqlx 0.9 need Rust
# >= 1.94); the migration binary comes with its default `cli` feature
# ---------------------------------------------------------------------------
FROM rust:1.96-slim-bookworm AS builder

WORKDIR /app

# The build context is filtered by .dockerignore (no target/, no .git).
COPY . .

# The registry and target/ live in cache mounts, so a rebuild after a source
# change recompiles only the workspace crates. A cache mount is not part of
# the image, hence the copy of the binaries to /out inside the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/app/target \
    cargo build --release --locked --bins \
        -p order -p product -p notification -p migration -p messaging \
 && mkdir -p /out \
 && cp target/release/order \
       target/release/product \
       target/release/notification \
       target/release/migration \
       target/release/topology \
       /out/

# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# curl serves the compose healthchecks (GET /ready on the admin port).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=builder /out/ /usr/local/bin/

# Numeric, so that runtimes checking runAsNonRoot can verify it.
USER 10001:10001

# product 5001, order 5002, notification 5003 (each one reads HTTP_ADDR);
# the admin listener of each (ADMIN_ADDR) on 9000 in compose and Kubernetes.
EXPOSE 5001 5002 5003 9000

CMD ["order"]
