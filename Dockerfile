# One image with every datasync binary: broker, connect-worker, order-service, user-service, console.
#
#   docker build -t datasync:local .                       # or: docker compose build
#   docker build --build-arg RUST_IMAGE=... --build-arg BASE_IMAGE=... .   # other base images
#
# Dependency caching without BuildKit: the `plan` stage reduces the source tree to the manifests,
# the lock file, vendor/ and stub sources; the builder compiles the dependencies (librdkafka
# included, the slow part) against those stubs in a layer that is only rebuilt when a manifest or
# Cargo.lock changes, then compiles the real sources.
ARG RUST_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS plan
WORKDIR /src
COPY . .
# Keep Cargo.toml/Cargo.lock/vendor, and for every workspace member its manifest plus a stub for
# each source file cargo needs (src/lib.rs, src/main.rs and every explicit `path = "..."`).
RUN set -eu; mkdir -p /plan; cp Cargo.toml Cargo.lock /plan/; cp -a vendor /plan/vendor; \
    stub='#![allow(dead_code)] fn main() {}'; \
    find . -name Cargo.toml -not -path './vendor/*' -not -path ./Cargo.toml | while read -r m; do \
      d=$(dirname "$m"); mkdir -p "/plan/$d/src"; cp "$m" "/plan/$d/"; \
      echo "$stub" >"/plan/$d/src/lib.rs"; echo "$stub" >"/plan/$d/src/main.rs"; \
      sed -n 's/^path *= *"\([^"]*\)".*/\1/p' "$m" | while read -r p; do \
        mkdir -p "/plan/$d/$(dirname "$p")"; echo "$stub" >"/plan/$d/$p"; done; \
    done

FROM ${RUST_IMAGE} AS builder
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      cmake g++ make pkg-config libssl-dev zlib1g-dev libsasl2-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
# Line tables are not needed in the image; leaving them out also makes linking faster.
ENV CARGO_TARGET_DIR=/target CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_TERM_COLOR=never
ARG CARGO_BUILD_ARGS="--release --locked -p broker -p connect-worker -p order-service -p user-service -p console --bins"
WORKDIR /src
# 1. dependencies only (cached until a manifest or Cargo.lock changes)
COPY --from=plan /plan/ ./
RUN cargo build ${CARGO_BUILD_ARGS} && rm -rf /src/*
# 2. the real sources; touched so that cargo rebuilds the workspace crates compiled from stubs
COPY . .
RUN find . -path ./vendor -prune -o \( -name '*.rs' -o -name '*.sql' -o -name Cargo.toml \) -exec touch {} + \
 && cargo build ${CARGO_BUILD_ARGS} \
 && mkdir /out && cp /target/release/broker /target/release/connect-worker \
      /target/release/order-service /target/release/user-service /target/release/console /out/

FROM ${BASE_IMAGE}
# The binaries link only libc, libgcc, zlib and OpenSSL (librdkafka's SSL and SCRAM); curl is for the compose healthchecks.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates zlib1g libssl3 curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 datasync \
 && useradd --system --uid 10001 --gid datasync --home-dir /var/lib/datasync --shell /usr/sbin/nologin datasync \
 && mkdir -p /var/lib/datasync/broker \
 && chown -R datasync:datasync /var/lib/datasync
COPY --from=builder /out/ /usr/local/bin/
COPY docker/connectors/ /etc/datasync/connectors/
USER datasync
WORKDIR /var/lib/datasync
ENV RUST_LOG=info,librdkafka=warn \
    NO_COLOR=1 \
    BROKER_DATA_DIR=/var/lib/datasync/broker \
    HOST=0.0.0.0
EXPOSE 9092 8083 8081 8091 8092
CMD ["broker"]
