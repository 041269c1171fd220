#!/usr/bin/env bash
# Compiled stats at scale (issue 12), every figure next to its anchors measured in the same run:
# a bare sqlite3 read of the log and a DuckDB window query over the same rows in memory.
#
#   scripts/bench/compiled.sh [LOG_ROWS (default 10000000)] [WORKDIR (default: a new temp dir)]
#
# Needs: sqlite3, /usr/bin/time, curl, python3 with the `duckdb` package (pip install duckdb).
# A WORKDIR that already holds a demo database of the right size is reused (its compiled store
# is rebuilt from scratch).
set -euo pipefail
ROWS=${1:-10000000}
WORK=${2:-$(mktemp -d /tmp/usestats-compiled.XXXXXX)}
PORT=${PORT:-18093}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release --bin usestats -q
BENCH=$(cargo bench --bench compiled --no-run --message-format=json -q 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="compiled" and m.get("executable"): print(m["executable"])')
US="$ROOT/target/release/usestats"
mkdir -p "$WORK"
cd "$WORK"
DB="$WORK/usestats.sqlite3"
peak() { grep -E "Maximum resident set size|Elapsed \(wall|User time|System time" "$1" | sed 's/^\s*/    /'; }

if [ ! -f usestats.toml ]; then
  "$US" init --wwwroot "http://127.0.0.1:$PORT" --listen "127.0.0.1:$PORT" >/dev/null
fi
# --log-rows counts the local site's rows (the remote host's learners log on top).
have=$(sqlite3 "$DB" "SELECT count(*) FROM mdl_logstore_standard_log l JOIN mdl_user u ON u.id = l.userid WHERE u.mnethostid = 1" 2>/dev/null || echo 0)
if [ "$have" != "$ROWS" ]; then
  rm -f "$DB" "$DB-wal" "$DB-shm"
  echo "== usestats demo --log-rows $ROWS"
  /usr/bin/time -v -o demo.time "$US" demo --log-rows "$ROWS" > demo.out
  head -2 demo.out; peak demo.time
fi
ls -l "$DB" | awk '{print "database size: " $5 " bytes"}'
cat "$DB" > /dev/null

echo "== anchor: bare sqlite3 read of every log row in primary-key order"
/usr/bin/time -v -o sq.time sqlite3 "$DB" \
  "SELECT count(*), sum(timecreated), sum(length(action)) FROM mdl_logstore_standard_log"
peak sq.time

echo "== anchor: DuckDB, gap-capped sums per user and course over the same rows in memory (2 threads)"
if [ ! -f log.csv ]; then
  sqlite3 -csv "$DB" "SELECT id, userid, courseid, timecreated FROM mdl_logstore_standard_log" > log.csv
fi
python3 - <<'PY'
import time, duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE TABLE log AS SELECT * FROM read_csv('log.csv', header=false, columns={'id':'BIGINT','userid':'BIGINT','courseid':'BIGINT','timecreated':'BIGINT'})")
query = """
WITH g AS (
  SELECT userid, courseid, timecreated,
         lead(timecreated) OVER (PARTITION BY userid ORDER BY timecreated, id) AS nxt
  FROM log)
SELECT count(*), sum(t) FROM (
  SELECT userid, courseid,
         sum(CASE WHEN nxt IS NULL OR nxt - timecreated > 3600 THEN 900 ELSE nxt - timecreated END) AS t
  FROM g GROUP BY userid, courseid)
"""
for round in range(3):
    t = time.time(); r = con.execute(query).fetchall(); dt = time.time() - t
    print(f"    duckdb round {round + 1}: {dt:.2f} s ({r[0][0]} user-course rows)")
print(f"    duckdb {duckdb.__version__}")
PY

echo "== cold compile: usestats compile --full"
/usr/bin/time -v -o cold.time "$US" --json compile --full > cold.json
cat cold.json; peak cold.time
python3 -c 'import json; d=json.load(open("cold.json")); print("    rows/s: %.0f" % (d["rows_read"]/d["seconds"]))'

echo "== sizes (sqlite dbstat): the log with its indexes, and the compiled store"
sqlite3 "$DB" "SELECT CASE WHEN name LIKE 'compiled%' OR name LIKE 'sqlite_autoindex_compiled%' THEN 'compiled store' WHEN name LIKE '%logstore_standard_log%' THEN 'log + indexes' ELSE 'other' END AS what, sum(pgsize)/1048576.0 AS MiB FROM dbstat GROUP BY what"

echo "== warm answers in process (benches/compiled.rs)"
USESTATS_BENCH_DB="$DB" "$BENCH" --bench

echo "== warm get_users_stats over HTTP, every user in one call"
"$US" grant add "http://127.0.0.1:$PORT" bench --site --course >/dev/null
TOKEN=$("$US" --json token create "http://127.0.0.1:$PORT" bench --label bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
UIDS=$(sqlite3 "$DB" "SELECT id FROM mdl_user WHERE deleted = 0 ORDER BY id" | awk '{printf "%suids[%d]=%s", (NR > 1 ? "&" : ""), NR - 1, $1}')
"$US" serve --console-listen 127.0.0.1:0 > serve.log 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
for round in 1 2 3; do
  curl -s -o users.json -w "    round $round: %{time_total} s, %{size_download} bytes\n" \
    "http://127.0.0.1:$PORT/webservice/rest/server.php" \
    --data "wstoken=$TOKEN&wsfunction=block_use_stats_get_users_stats&moodlewsrestformat=json&uidsource=id&$UIDS"
done
python3 -c 'import json; d=json.load(open("users.json")); print("    users answered:", len(d.get("users", d)) if isinstance(d, dict) else len(d))'
kill $SERVE; wait $SERVE 2>/dev/null || true
trap - EXIT

echo "== 100 000 rows appended (a copy of the newest rows, 30 days later), then an incremental compile"
sqlite3 "$DB" "INSERT INTO mdl_logstore_standard_log (id, eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, relateduserid, anonymous, other, timecreated, origin, ip, realuserid) SELECT id + 100000, eventname, component, action, target, objecttable, objectid, crud, edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, relateduserid, anonymous, other, timecreated + 2592000, origin, ip, realuserid FROM mdl_logstore_standard_log WHERE id > (SELECT max(id) - 100000 FROM mdl_logstore_standard_log)"
/usr/bin/time -v -o incr.time "$US" --json compile > incr.json
cat incr.json; peak incr.time
echo "== warm answers in process after the append"
USESTATS_BENCH_DB="$DB" "$BENCH" --bench
