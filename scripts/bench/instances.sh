#!/usr/bin/env bash
# Several instances (issue 13): get_stats throughput through nginx with 1 and with 3
# `usestats serve` processes on one PostgreSQL state, and the failover gap when one of three
# is killed (SIGKILL) and restarted 4 s later.
#
#   scripts/bench/instances.sh [CLIENTS (8)] [SECONDS (30)]
#
# Runs the harness of tests/instances.rs (`bench_instances`, release build): a fresh
# PostgreSQL database with the demo site (usestats demo's defaults: 60 users, 8 courses,
# 200 000 log rows; USESTATS_BENCH_USERS/_COURSES/_LOG_ROWS change it), N instances whose
# configs differ only in the port, nginx round-robin in front (as examples/nginx-upstream.conf),
# and an in-process calling peer with CLIENTS concurrent callers, each answer compared with
# the one `usestats stats --format xml` gives. Per-address and per-peer rate limits are off.
# Needs USESTATS_TEST_PG_URL (a role allowed to create databases; `. /tmp/usestats_env` or
# .ci/run's) and nginx (USESTATS_TEST_NGINX, default /usr/sbin/nginx). Only 127.0.0.1 is used.
# Numbers go to BENCHMARKS.md; nothing is asserted about them.
set -euo pipefail
CLIENTS=${1:-8}
SECONDS_RUN=${2:-30}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/usestats-instances.XXXXXX)
export USESTATS_TEST_NGINX=${USESTATS_TEST_NGINX:-/usr/sbin/nginx}
export USESTATS_REQUIRE_PG=1 USESTATS_REQUIRE_NGINX=1
: "${USESTATS_TEST_PG_URL:?set USESTATS_TEST_PG_URL (postgres://user:pw@127.0.0.1:5432/postgres)}"

cd "$ROOT"
cargo test --release --locked -q --test instances --no-run

run() { # instances kill label
  echo "== $3: $1 instance(s), $CLIENTS clients, $SECONDS_RUN s$([ "$2" = 1 ] && echo ', instance 0 killed at 1/3 and restarted 4 s later')"
  USESTATS_BENCH_INSTANCES=$1 USESTATS_BENCH_KILL=$2 USESTATS_BENCH_CLIENTS=$CLIENTS \
    USESTATS_BENCH_SECONDS=$SECONDS_RUN \
    cargo test --release --locked -q --test instances -- --ignored --exact bench_instances \
      --nocapture --test-threads=1 > "$WORK/$3.out" 2>&1 || { tail -n 40 "$WORK/$3.out"; exit 1; }
  sed -n 's/^BENCH //p' "$WORK/$3.out" > "$WORK/$3.json"
  grep '^not right' "$WORK/$3.out" | head -n 10 | sed 's/^/  /' || true
  python3 - "$WORK/$3.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  calls {r['calls']} in {r['seconds']:.1f} s = {r['calls_per_second']:.1f} calls/s; "
      f"right {r['right']}, wrong {r['wrong']}, failed {r['failed']}; "
      f"latency p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; longest gap between answers {r['longest_gap_ms']} ms")
if r.get("gap_around_kill_ms") is not None:
    print(f"  failover: longest gap between successful answers from the kill to the restart {r['gap_around_kill_ms']} ms, "
          f"{r['failed']} calls failed (in flight on the killed instance)")
PY
}

echo "workdir $WORK; $(nproc) cores; $("$USESTATS_TEST_NGINX" -v 2>&1); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The anchor, in the same run: what one private-key operation costs on this machine now.
openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print "anchor: openssl speed rsa2048: " $4 " per sign"}' 
run 1 0 one
run 3 0 three
run 3 1 failover
