# shellcheck shell=bash
# A container engine for scripts/container-test and scripts/deb-test-systemd: podman, else a
# docker with a daemon (ENGINE=… to choose), with the flags this host accepts, and a Debian
# bookworm base image: docker.io's debian:bookworm-slim, or where Docker Hub cannot be
# reached one made from deb.debian.org with mmdebstrap. Expects the caller's fail, ok,
# elapsed and $WORK.
#
# A machine that cannot run containers at all is a failure when USESTATS_REQUIRE_CONTAINER=1
# (.ci/run sets it); otherwise the script says so and stops there, successfully.

ENGINE_CMD=()
RUN_FLAGS=()
BASE_IMAGE=""

engine_unavailable() { # engine_unavailable REASON
    if [ "${USESTATS_REQUIRE_CONTAINER:-}" = 1 ]; then fail "$1"; fi
    echo "SKIPPED: $1 (USESTATS_REQUIRE_CONTAINER=1 makes this a failure)"
    exit 0
}

if [ -z "${ENGINE:-}" ]; then
    if command -v podman >/dev/null; then
        ENGINE=podman
    elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        engine_unavailable "no container engine here (apt-get install podman, or run a docker daemon)"
    fi
fi
ENGINE_CMD=("$ENGINE")

engine_try() { # engine_try IMAGE: can a container of IMAGE run with the current flags?
    "${ENGINE_CMD[@]}" run --rm "${RUN_FLAGS[@]}" "$1" true >"$WORK/engine-probe.log" 2>&1
}

# Some hosts (cgroups v1 with crun, a hard open-files limit below podman's default) refuse
# podman's defaults: runc, and limits within this shell's own, are what they accept.
engine_adapt() { # engine_adapt IMAGE
    if engine_try "$1"; then return 0; fi
    if [ "$ENGINE" = podman ] && command -v runc >/dev/null; then
        ENGINE_CMD=(podman --runtime runc)
        RUN_FLAGS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
        if engine_try "$1"; then return 0; fi
    fi
    cat "$WORK/engine-probe.log" >&2
    engine_unavailable "$ENGINE cannot run a container here (above)"
}

engine_has_image() { "${ENGINE_CMD[@]}" image inspect "$1" >/dev/null 2>&1; }

# Sets BASE_IMAGE to a bookworm image this engine can run containers of.
engine_bookworm_base() {
    BASE_IMAGE=docker.io/library/debian:bookworm-slim
    if engine_has_image "$BASE_IMAGE" || "${ENGINE_CMD[@]}" pull -q "$BASE_IMAGE" >"$WORK/pull.log" 2>&1; then
        ok "$BASE_IMAGE"
    else
        echo "     $BASE_IMAGE cannot be pulled here: $(tail -n 1 "$WORK/pull.log")"
        BASE_IMAGE=localhost/usestats-test/debian:bookworm
        if ! engine_has_image "$BASE_IMAGE"; then
            command -v mmdebstrap >/dev/null || fail "no mmdebstrap to make a base image (apt-get install mmdebstrap)"
            local t=$SECONDS
            mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$WORK/base.tar"
            "${ENGINE_CMD[@]}" import "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
            rm -f "$WORK/base.tar"
            ok "made $BASE_IMAGE from deb.debian.org with mmdebstrap ($(elapsed "$t"))"
        fi
    fi
    engine_adapt "$BASE_IMAGE"
    ok "containers run: ${ENGINE_CMD[*]} run ${RUN_FLAGS[*]}"
}

# engine_image_with NAME PACKAGES...: BASE_IMAGE with Debian packages added, unless NAME exists.
engine_image_with() {
    local name="$1"
    shift
    if engine_has_image "$name"; then return 0; fi
    local t=$SECONDS
    printf 'FROM %s\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends %s && rm -rf /var/lib/apt/lists/*\n' \
        "$BASE_IMAGE" "$*" >"$WORK/Containerfile.base"
    "${ENGINE_CMD[@]}" build "${RUN_FLAGS[@]}" -t "$name" -f "$WORK/Containerfile.base" "$WORK" >"$WORK/base-build.log" 2>&1 ||
        { tail -n 30 "$WORK/base-build.log"; fail "building $name"; }
    ok "made $name ($(elapsed "$t"))"
}
