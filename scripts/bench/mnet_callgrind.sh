#!/usr/bin/env bash
# Server instructions per `system/listServices` call with a new connection per call, counted
# by callgrind (repeatable on a busy machine, unlike CPU time).
#
#   scripts/bench/mnet_callgrind.sh BENCH_BINARY [CALLS]
#
# BENCH_BINARY is target/release/deps/mnet_call-*. The bench runs its new-connection variant
# alone (USESTATS_BENCH_ONLY=fresh); callgrind dumps its counters (which zeroes them) just before the
# measured loop and again just after it (USESTATS_BENCH_GATE), one file per thread. The server's
# instructions are those of every thread but the client thread and the main thread; they are
# printed per call, next to the instructions of one RSA-2048 private-key operation counted the
# same way (`op_sign` in the main thread's setup dump, which holds the RSA reference).
set -euo pipefail
bin=$1
calls=${2:-300}
ops=20
dir=$(mktemp -d /tmp/mnet-callgrind.XXXXXX)
gate=$dir/gate
USESTATS_BENCH_ONLY=fresh USESTATS_BENCH_CALLS=$calls USESTATS_BENCH_OPS=$ops \
  USESTATS_BENCH_GATE=$gate \
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/cg.out" \
  "$bin" --bench >"$dir/stdout" 2>"$dir/stderr" &
vg=$!
wait_for() { while [ ! -e "$1" ]; do
  if ! kill -0 $vg 2>/dev/null; then echo "bench ended early; see $dir" >&2; exit 1; fi
  sleep 0.2; done; }
wait_for "$gate.ready"
callgrind_control -d setup $vg >/dev/null 2>&1
touch "$gate.go"
wait_for "$gate.done"
callgrind_control -d measured $vg >/dev/null 2>&1
touch "$gate.end"
wait $vg
# The setup dump is cg.out.1-NN, the measured one cg.out.2-NN (one file per thread).
server=0
client=0
for f in "$dir"/cg.out.2-*; do
  total=$(awk '/^(totals|summary):/ {print $2; exit}' "$f")
  [ -n "$total" ] || continue
  if grep -q "fresh_connection_calls" "$f"; then
    client=$((client + total))
  elif [[ $f == *-01 ]]; then
    :
  else
    server=$((server + total))
  fi
done
# One private op: op_sign's inclusive cost over the whole run, per call of it.
sign=$(callgrind_annotate --inclusive=yes "$dir/cg.out.1-01" 2>/dev/null \
  | awk '/mnet_call::op_sign/ {gsub(",", "", $1); print $1; exit}' || true)
per_call=$((server / calls))
per_sign=$(( ${sign:-0} / ops ))
echo "calls: $calls (dumps in $dir)"
echo "server instructions per call: $per_call"
echo "client instructions per call: $((client / calls))"
echo "one RSA-2048 private op (sign_sha1): $per_sign"
if [ "$per_sign" -gt 0 ]; then
  awk -v a=$per_call -v b=$per_sign 'BEGIN { printf "server per call = %.2f private-op equivalents (instructions)\n", a / b }'
fi
