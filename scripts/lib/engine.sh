# shellcheck shell=bash
# A container engine for scripts/container-test and scripts/deb-test-systemd: podman, else a
# docker with a daemon (ENGINE=… to choose), with the flags this host accepts, and Debian
# bookworm base images made with mmdebstrap where Docker Hub cannot be reached. Expects the
# caller's fail, ok, elapsed and $WORK.

if [ -z "${ENGINE:-}" ]; then
    if command -v podman >/dev/null; then
        ENGINE=podman
    elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        fail "no container engine: apt-get install podman (or run a docker daemon)"
    fi
fi
ENGINE_CMD=("$ENGINE")
RUN_FLAGS=()

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
    fail "$ENGINE cannot run a container here (above)"
}

engine_has_image() { "${ENGINE_CMD[@]}" image inspect "$1" >/dev/null 2>&1; }

# engine_debian_image NAME PACKAGES [CMD]: a bookworm image from deb.debian.org, unless one
# of that name exists already.
engine_debian_image() {
    if engine_has_image "$1"; then return 0; fi
    command -v mmdebstrap >/dev/null || fail "no mmdebstrap to make $1 (apt-get install mmdebstrap)"
    local t=$SECONDS change=()
    if [ -n "${3:-}" ]; then change=(--change "CMD $3"); fi
    mmdebstrap --quiet --variant=minbase --include="ca-certificates${2:+,$2}" bookworm "$WORK/base.tar"
    "${ENGINE_CMD[@]}" import "${change[@]}" "$WORK/base.tar" "$1" >/dev/null
    rm -f "$WORK/base.tar"
    ok "made $1 with mmdebstrap ($(elapsed "$t"))"
}
