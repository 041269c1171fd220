#!/usr/bin/env bash
# Load test (issue 6): `usestats serve` (release) on the demo site in one process, and
# `usestats bench` as the MNET client in a second process with its own config; the two
# registered as peers both ways, use_stats published to the client, admin@client granted.
#
#   scripts/bench/load.sh [CLIENTS (64)] [SECONDS (60)] [WORKDIR (new temp dir)]
#
# The server's [limits] are set for load: per_ip_per_minute = 0 and per_peer_per_minute = 0
# (no rate limit) and max_concurrent_requests = 4096; everything else is the default config
# (audit on, replay cache on, log level info to stderr). Prints the bench result and the
# server's CPU per call (utime + stime delta of the server process / calls served, from
# /proc/PID/stat), its peak RSS (/usr/bin/time -v), and a 1-client sequential run.
# Only 127.0.0.1 is used. Needs /usr/bin/time (Debian package `time`).
set -euo pipefail
CLIENTS=${1:-64}
SECONDS_RUN=${2:-60}
WORK=${3:-$(mktemp -d /tmp/usestats-load.XXXXXX)}
PS=${USESTATS_LOAD_SERVER_PORT:-18181}
PC=${USESTATS_LOAD_CLIENT_PORT:-18182}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
(cd "$ROOT" && cargo build --release --bin usestats -q)
US="$ROOT/target/release/usestats"
S="$WORK/server"; C="$WORK/client"
SW="http://127.0.0.1:$PS"; CW="http://127.0.0.1:$PC"
mkdir -p "$S" "$C"
TICK=$(getconf CLK_TCK)

set_limits() { # config file
  python3 - "$1" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
want = {"per_ip_per_minute": "0", "per_peer_per_minute": "0", "max_concurrent_requests": "4096"}
if "[limits]" not in s:
    s += "\n[limits]\n"
for k, v in want.items():
    if re.search(rf"^{k}\s*=", s, re.M):
        s = re.sub(rf"^{k}\s*=.*$", f"{k} = {v}", s, flags=re.M)
    else:
        s = s.replace("[limits]\n", f"[limits]\n{k} = {v}\n", 1)
open(p, "w").write(s)
PY
}
ticks() { # pid -> utime+stime
  python3 -c 'import sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print(int(f[11])+int(f[12]))' "$1"
}
served() { # mnet requests answered, from /metrics
  curl -s "$SW/metrics" | awk '/^usestats_requests_total\{channel="mnet"/ {s+=$2} END {print s+0}'
}
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "$1/healthz" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

cd "$S"
if [ ! -f usestats.toml ]; then
  "$US" init --wwwroot "$SW" --listen "127.0.0.1:$PS" >/dev/null
  set_limits usestats.toml
  "$US" demo --remote-host "$CW" > demo.out
fi
TARGET=${USESTATS_LOAD_TARGET:-$(sed -n 's/^usernames to try: //p' demo.out | cut -d, -f1)}
cd "$C"
if [ ! -f usestats.toml ]; then
  "$US" init --wwwroot "$CW" --listen "127.0.0.1:$PC" >/dev/null
  set_limits usestats.toml
fi

# Registration: each side keyswaps with the other, so both serve for a moment.
if [ ! -f "$WORK/linked" ]; then
  (cd "$S" && exec "$US" serve --console-listen 127.0.0.1:0 2>"$S/setup.log") & SPID=$!
  (cd "$C" && exec "$US" serve --console-listen 127.0.0.1:0 2>"$C/setup.log") & CPID=$!
  wait_up "$SW"; wait_up "$CW"
  (cd "$S" && "$US" peer add "$CW" --yes --ssl-verification 0 >/dev/null \
     && "$US" peer publish "$CW" use_stats >/dev/null \
     && "$US" grant add "$CW" admin --site --course >/dev/null)
  (cd "$C" && "$US" peer add "$SW" --yes --ssl-verification 0 >/dev/null \
     && "$US" peer subscribe "$SW" use_stats >/dev/null)
  kill "$SPID" "$CPID"; wait "$SPID" "$CPID" 2>/dev/null || true
  touch "$WORK/linked"
fi

echo "server $SW (demo site, target user $TARGET), client $CW; workdir $WORK"
cd "$S"
/usr/bin/time -v -o "$WORK/server.time" "$US" serve --console-listen 127.0.0.1:0 2>"$WORK/server.log" & TPID=$!
sleep 0.5
SPID=$(pgrep -P "$TPID" -x usestats)
wait_up "$SW"

run() { # clients seconds label
  local t0 c0 t1 c1 calls
  c0=$(served); t0=$(ticks "$SPID")
  (cd "$C" && /usr/bin/time -v -o "$WORK/client-$3.time" "$US" --json bench "$SW" "$TARGET" \
      --clients "$1" --seconds "$2" > "$WORK/bench-$3.json") || echo "bench reported errors"
  t1=$(ticks "$SPID"); c1=$(served)
  calls=$((c1 - c0))
  echo "== $3: $1 clients, $2 s"
  python3 - "$WORK/bench-$3.json" "$calls" "$((t1 - t0))" "$TICK" "$WORK/client-$3.time" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
calls, ticks, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t = open(sys.argv[5]).read()
cu = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1)) + float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
print(f"  calls {r['calls']}, errors {r['errors']}, {r['calls_per_second']:.1f} calls/s; latency p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms")
for e in r.get("error_samples", []):
    print("  error:", e)
srv = ticks / hz
print(f"  server: {calls} MNET requests served (/metrics), CPU {srv:.2f} s = {srv / max(calls, 1) * 1e6:.0f} us/call")
print(f"  client process CPU {cu:.2f} s = {cu / max(r['calls'], 1) * 1e6:.0f} us/call (includes its start-up)")
PY
}

run 1 20 seq
run "$CLIENTS" "$SECONDS_RUN" load

kill -TERM "$SPID"; wait "$TPID" || true
echo "== server process (whole life: start-up, both runs, shutdown)"
grep -E "Maximum resident set size|User time|System time|Elapsed \(wall" "$WORK/server.time" | sed 's/^\s*/  /'
echo "  log lines: $(wc -l < "$WORK/server.log")"
