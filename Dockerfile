# usestats container image (README "Install" › "Container").
#
#   docker build --build-arg USESTATS_GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t usestats .
#   docker run -d --name usestats -p 127.0.0.1:8080:8080 -v usestats:/var/lib/usestats \
#       -e USESTATS_WWWROOT=https://stats.example.org usestats
#
# podman: add `--format docker` to the build, or the OCI format drops the HEALTHCHECK.
# examples/compose.yaml runs it with PostgreSQL as the state and a Moodle database as the
# source.

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim
# `build` compiles the binary here. `prebuilt` takes prebuilt/usestats from the build
# context instead: scripts/container-test puts the binary of the Debian package there, built
# for the same Debian release, so CI compiles once for both.
ARG BINARY=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The libraries the build links against (OpenSSL, libpq, MariaDB's client), when missing.
COPY scripts/setup scripts/setup
RUN scripts/setup
COPY . .
# The build context has no .git: the commit `usestats --version` names comes from here.
ARG USESTATS_GIT_COMMIT=unknown
ENV USESTATS_GIT_COMMIT=${USESTATS_GIT_COMMIT} \
    CARGO_PROFILE_RELEASE_STRIP=true
# Cache mounts (BuildKit, buildah): a rebuild fetches and compiles only what changed, and the
# stage's layers hold no build output.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin usestats \
    && install -D -m 0755 target/release/usestats /out/usestats

FROM ${RUNTIME_IMAGE} AS prebuilt
COPY prebuilt/usestats /out/usestats

FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
# Runtime libraries only; a fixed uid/gid, so a volume keeps its owner across image builds.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 libpq5 libmariadb3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 usestats \
    && useradd --system --uid 10001 --gid usestats --home-dir /var/lib/usestats \
        --no-create-home --shell /usr/sbin/nologin usestats \
    && install -d -o usestats -g usestats -m 0700 /var/lib/usestats
COPY examples/usestats.toml /usr/share/doc/usestats/usestats.toml
COPY packaging/container/usestats.toml /etc/usestats/usestats.toml
# Readable by the service through its group, never writable by it (as in the Debian package).
RUN chown root:usestats /etc/usestats/usestats.toml && chmod 0640 /etc/usestats/usestats.toml
COPY --from=binary /out/usestats /usr/bin/usestats

ENV USESTATS_CONFIG=/etc/usestats/usestats.toml
USER usestats:usestats
WORKDIR /var/lib/usestats
# Our key pair and the SQLite state (or, on a PostgreSQL state, the key-encryption key).
VOLUME ["/var/lib/usestats"]
EXPOSE 8080
# 200 from /healthz: the state database answers, and Moodle's when it is separate.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/bin/usestats", "healthcheck", "--timeout-secs", "5"]
# SIGTERM: stop accepting, finish the calls in flight (up to 30 s), write their audit rows.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/usestats"]
CMD ["serve"]
