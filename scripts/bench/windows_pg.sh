#!/usr/bin/env bash
# Windows from the compiled store on PostgreSQL (issue 21), on a database laid out with Moodle's
# own indexes (schema/source/postgres: install.xml's), every figure next to its anchors from the
# same run: a bare psql read of the log, the full scan, the whole-history answer.
#
#   scripts/bench/windows_pg.sh ADMIN_URL [LOG_ROWS (2000000)] [USERS (2000)] [WORKDIR]
#
# ADMIN_URL: a PostgreSQL role that may create databases; `sudo -u postgres` must work too, to
# count statements in the server's log (log_statement for the bench role) and read that log.
set -euo pipefail
ADMIN=${1:?usage: $0 ADMIN_URL [LOG_ROWS] [USERS] [WORKDIR]}
ROWS=${2:-2000000}
USERS=${3:-2000}
WORK=${4:-$(mktemp -d /tmp/usestats-windows-pg.XXXXXX)}
PORT=${PORT:-18095}
DBNAME=usestats_bench_windows
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release --bin usestats -q
US="$ROOT/target/release/usestats"
URL="${ADMIN%/*}/$DBNAME"
mkdir -p "$WORK"
cd "$WORK"
peak() { grep -E "Maximum resident set size|Elapsed \(wall|User time|System time" "$1" | sed 's/^\s*/    /'; }
as_pg() { su postgres -c "$(printf '%q ' "$@")"; }
PGLOG=$(as_pg psql -qtAc "SELECT pg_current_logfile()" 2>/dev/null || true)
PGLOG=${PGLOG:-/var/log/postgresql/postgresql-15-main.log}
case "$PGLOG" in /*) ;; *) PGLOG="$(as_pg psql -qtAc 'SHOW data_directory')/$PGLOG" ;; esac

if ! psql "$URL" -qtAc "SELECT 1 FROM mdl_logstore_standard_log LIMIT 1" >/dev/null 2>&1; then
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DBNAME" -qc "CREATE DATABASE $DBNAME"
  rm -f usestats.toml
  "$US" init --wwwroot "http://127.0.0.1:$PORT" --listen "127.0.0.1:$PORT" >/dev/null
  sed -i "s#^url = \".*usestats.sqlite3\"#url = \"$URL\"#" usestats.toml
  echo "== usestats demo --log-rows $ROWS --users $USERS (PostgreSQL, Moodle's indexes)"
  /usr/bin/time -v -o demo.time "$US" demo --log-rows "$ROWS" --users "$USERS" > demo.out
  head -2 demo.out; peak demo.time
  psql "$URL" -qc "VACUUM ANALYZE"
fi
grep -E '^url' usestats.toml | sed 's/^/    config: /'
psql "$URL" -qtAc "SELECT 'log rows: ' || count(*) || ', learners with rows: ' || count(DISTINCT userid) || ', from ' || to_timestamp(min(timecreated)) || ' to ' || to_timestamp(max(timecreated)) FROM mdl_logstore_standard_log" | sed 's/^/    /'
psql "$URL" -qtAc "SELECT '    index: ' || indexname FROM pg_indexes WHERE tablename = 'mdl_logstore_standard_log' ORDER BY 1"

echo "== anchor: bare psql read of every log row"
psql "$URL" -qtAc "EXPLAIN (ANALYZE, TIMING OFF) SELECT count(*), sum(timecreated), sum(length(action)) FROM mdl_logstore_standard_log" | grep -E "Execution Time" | sed 's/^/    /'

echo "== cold compile: usestats compile --full"
/usr/bin/time -v -o cold.time "$US" --json compile --full > cold.json
cat cold.json; peak cold.time
python3 -c 'import json; d=json.load(open("cold.json")); print("    rows/s: %.0f" % (d["rows_read"]/d["seconds"]))'

echo "== a pass with nothing new: the census alone"
for round in 1 2 3; do
  "$US" --json compile > census.json
  python3 -c 'import json; d=json.load(open("census.json")); print("    %.3f s" % d["seconds"])'
done
psql "$URL" -qtAc "EXPLAIN (ANALYZE, BUFFERS) SELECT id / 65536 AS bucket, COUNT(*) AS n FROM mdl_logstore_standard_log WHERE id <= (SELECT max(id) FROM mdl_logstore_standard_log) GROUP BY id / 65536" | sed 's/^/    /'

"$US" grant add "http://127.0.0.1:$PORT" bench --site --course >/dev/null 2>&1 || true
TOKEN=$("$US" --json token create "http://127.0.0.1:$PORT" bench --label bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
psql "$URL" -qtAc "SELECT id FROM mdl_user WHERE deleted = 0 AND id IN (SELECT DISTINCT userid FROM mdl_logstore_standard_log) ORDER BY id" \
  | awk '{printf "%suids[%d]=%s", (NR > 1 ? "&" : ""), NR - 1, $1}' > uids.txt
LEARNERS=$(tr '&' '\n' < uids.txt | wc -l)
read -r FROM_S TO_S < <(psql "$URL" -qtAc "SELECT percentile_disc(0.6) WITHIN GROUP (ORDER BY timecreated), percentile_disc(0.8) WITHIN GROUP (ORDER BY timecreated) FROM mdl_logstore_standard_log" | tr '|' ' ')
echo "    $LEARNERS learners; term window $FROM_S .. $TO_S (the log's 60th to 80th percentile of time)"
call() { curl -s -o "$1" -w "$2: %{time_total} s, %{size_download} bytes\n" \
  "http://127.0.0.1:$PORT/webservice/rest/server.php" \
  --data-binary @<(printf '%s' "wstoken=$TOKEN&wsfunction=block_use_stats_get_users_stats&moodlewsrestformat=json&uidsource=id&$(cat uids.txt)$3"); }
serve() {
  "$US" serve > serve.log 2>&1 &
  SERVE=$!
  for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
}
counted() {  # label, output file, extra: statements the server logged for the bench role
  local before after
  before=$(as_pg wc -l < "$PGLOG")
  call "$2" "$1" "$3"
  sleep 1
  after=$(as_pg sed -n "$((before + 1)),\$p" "$PGLOG" | grep -cE "LOG:  (statement|execute)" || true)
  echo "      statements in PostgreSQL's log: $after"
}

echo "== get_users_stats over HTTP, every learner in one call"
as_pg psql -qc "ALTER ROLE $(python3 -c "import sys,urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).username)" "$ADMIN") SET log_statement = 'all'"
serve
trap 'kill $SERVE 2>/dev/null || true' EXIT
for round in 1 2 3; do
  counted "    compiled, whole history, round $round" whole.json ""
  counted "    compiled, term, round $round" term.json "&from=$FROM_S&to=$TO_S"
done
kill $SERVE; wait $SERVE 2>/dev/null || true
sed -i 's/^compiled = true/compiled = false/' usestats.toml
serve
counted "    full scan, whole history" whole-full.json ""
counted "    full scan, term" term-full.json "&from=$FROM_S&to=$TO_S"
kill $SERVE; wait $SERVE 2>/dev/null || true
sed -i 's/^compiled = false/compiled = true/' usestats.toml
python3 - <<'PY'
import json
for name in ("whole", "term"):
    a, b = json.load(open(f"{name}.json")), json.load(open(f"{name}-full.json"))
    print(f"    compiled {name} answer equals the full scan's:", a == b)
PY

echo "== retention: the oldest tenth of the log deleted, autovacuum off, answers at once"
psql "$URL" -qc "ALTER TABLE mdl_logstore_standard_log SET (autovacuum_enabled = false)"
CUT=$(psql "$URL" -qtAc "SELECT timecreated FROM mdl_logstore_standard_log ORDER BY timecreated LIMIT 1 OFFSET $((ROWS / 10))")
psql "$URL" -qtAc "EXPLAIN (ANALYZE, TIMING OFF) DELETE FROM mdl_logstore_standard_log WHERE timecreated < $CUT" | grep -E "Execution Time" | sed 's/^/    delete: /'
echo "    the answer's deletion check (oldest row, newest id), first and second time after the delete:"
for i in 1 2; do
  psql "$URL" -qtAc "EXPLAIN (ANALYZE, BUFFERS) SELECT (SELECT MIN(timecreated) FROM mdl_logstore_standard_log) AS oldest, (SELECT MAX(id) FROM mdl_logstore_standard_log) AS hi" | grep -E "Execution Time|Buffers: shared" | head -2 | sed 's/^/      /'
done
serve
for round in 1 2; do
  counted "    right after, whole history, round $round" whole-ret.json ""
  counted "    right after, term, round $round" term-ret.json "&from=$FROM_S&to=$TO_S"
done
kill $SERVE; wait $SERVE 2>/dev/null || true
trap - EXIT
/usr/bin/time -v -o pass.time "$US" --json compile > pass.json
cat pass.json; peak pass.time
as_pg psql -qc "ALTER ROLE $(python3 -c "import sys,urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).username)" "$ADMIN") RESET log_statement"
psql "$URL" -qc "ALTER TABLE mdl_logstore_standard_log RESET (autovacuum_enabled)"

echo "== in process (benches/compiled.rs): statements counted by the client, the heaviest learner's get_stats CPU"
BENCH=$(cd "$ROOT" && cargo bench --bench compiled --no-run --message-format=json -q 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="compiled" and m.get("executable"): print(m["executable"])')
USESTATS_BENCH_DB="$URL" "$BENCH" --bench 2>&1 | grep -vE "full scan" | sed 's/^/    /'
