#!/usr/bin/env bash
# Windows from the compiled store (issue 21), every figure next to its anchors measured in the
# same run: a bare sqlite3 read of the log, DuckDB computing the same kind of windowed sums
# over the same rows in memory, the full scan (`compiled = false`) and the whole-history answer.
#
#   scripts/bench/windows.sh DEMO_DB [WORKDIR]
#
# DEMO_DB: a database made by `usestats demo --log-rows 10000000` (copied, never changed).
# Needs: sqlite3, /usr/bin/time, curl, python3 with the `duckdb` package.
set -euo pipefail
SRC=${1:?usage: $0 DEMO_DB [WORKDIR]}
WORK=${2:-$(mktemp -d /tmp/usestats-windows.XXXXXX)}
PORT=${PORT:-18094}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FROM=2025-09-01
TO=2026-01-01
FROM_S=1756684800
TO_S=1767225600
cd "$ROOT"
cargo build --release --bin usestats -q
US="$ROOT/target/release/usestats"
mkdir -p "$WORK"
cd "$WORK"
DB="$WORK/usestats.sqlite3"
cp "$SRC" "$DB"
rm -f "$DB-wal" "$DB-shm"
"$US" init --wwwroot "http://127.0.0.1:$PORT" --listen "127.0.0.1:$PORT" >/dev/null
peak() { grep -E "Maximum resident set size|Elapsed \(wall|User time|System time" "$1" | sed 's/^\s*/    /'; }
cat "$DB" > /dev/null

echo "== anchor: bare sqlite3 read of every log row in primary-key order"
/usr/bin/time -v -o sq.time sqlite3 "$DB" \
  "SELECT count(*), sum(timecreated), sum(length(action)) FROM mdl_logstore_standard_log"
peak sq.time

echo "== anchor: DuckDB, gap-capped sums per user and course over the same rows in memory (2 threads)"
sqlite3 -csv "$DB" "SELECT id, userid, courseid, timecreated FROM mdl_logstore_standard_log" > log.csv
FROM_S=$FROM_S TO_S=$TO_S python3 - <<'PY'
import os, time, duckdb
lo, hi = int(os.environ["FROM_S"]), int(os.environ["TO_S"])
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE TABLE log AS SELECT * FROM read_csv('log.csv', header=false, columns={'id':'BIGINT','userid':'BIGINT','courseid':'BIGINT','timecreated':'BIGINT'})")
def query(where):
    return f"""
WITH g AS (
  SELECT userid, courseid, timecreated,
         lead(timecreated) OVER (PARTITION BY userid ORDER BY timecreated, id) AS nxt
  FROM log {where})
SELECT count(*), sum(t) FROM (
  SELECT userid, courseid,
         sum(CASE WHEN nxt IS NULL OR nxt - timecreated > 3600 THEN 900 ELSE nxt - timecreated END) AS t
  FROM g GROUP BY userid, courseid)
"""
for name, where in [("whole history", ""), ("term", f"WHERE timecreated BETWEEN {lo} AND {hi}")]:
    for round in range(3):
        t = time.time(); r = con.execute(query(where)).fetchall(); dt = time.time() - t
        print(f"    duckdb {name} round {round + 1}: {dt:.2f} s ({r[0][0]} user-course rows)")
print(f"    duckdb {duckdb.__version__}")
PY

echo "== cold compile: usestats compile --full"
/usr/bin/time -v -o cold.time "$US" --json compile --full > cold.json
cat cold.json; peak cold.time
python3 -c 'import json; d=json.load(open("cold.json")); print("    rows/s: %.0f" % (d["rows_read"]/d["seconds"]))'

echo "== a pass with nothing new: the census alone"
for round in 1 2 3; do
  /usr/bin/time -v -o census.time "$US" --json compile > census.json
  python3 -c 'import json; d=json.load(open("census.json")); print("    round: %.3f s, %d rows read, %d users marked by the census" % (d["seconds"], d["rows_read"], d.get("census_stale", 0)))'
done
echo "    the census query itself in sqlite3:"
/usr/bin/time -f "    %e s wall" sqlite3 "$DB" "SELECT count(*) FROM (SELECT id / 65536, count(*) FROM mdl_logstore_standard_log WHERE id <= 10000000 GROUP BY id / 65536)"

echo "== sizes (sqlite dbstat): the log with its indexes, and the compiled store"
sqlite3 "$DB" "SELECT CASE WHEN name LIKE 'compiled%' OR name LIKE 'sqlite_autoindex_compiled%' THEN 'compiled store' WHEN name LIKE '%logstore_standard_log%' THEN 'log + indexes' ELSE 'other' END AS what, round(sum(pgsize)/1048576.0, 1) AS MiB FROM dbstat GROUP BY what"

echo "== report --course STAT101: whole history, and $FROM .. $TO (compiled, then full scan)"
for round in 1 2 3; do
  /usr/bin/time -f "    compiled, whole history, round $round: %e s" "$US" report --course STAT101 --format csv > whole.csv
  /usr/bin/time -f "    compiled, term, round $round: %e s" "$US" report --course STAT101 --from $FROM --to $TO --format csv > term.csv
done
sed -i 's/^compiled = true/compiled = false/' usestats.toml
/usr/bin/time -f "    full scan, term: %e s" "$US" report --course STAT101 --from $FROM --to $TO --format csv > term-full.csv
sed -i 's/^compiled = false/compiled = true/' usestats.toml
cmp term.csv term-full.csv && echo "    the compiled CSV equals the full scan's"

echo "== get_users_stats over HTTP, every user in one call: whole history, and the term"
"$US" grant add "http://127.0.0.1:$PORT" bench --site --course >/dev/null
TOKEN=$("$US" --json token create "http://127.0.0.1:$PORT" bench --label bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
UIDS=$(sqlite3 "$DB" "SELECT id FROM mdl_user WHERE deleted = 0 ORDER BY id" | awk '{printf "%suids[%d]=%s", (NR > 1 ? "&" : ""), NR - 1, $1}')
call() { curl -s -o "$1" -w "$2: %{time_total} s, %{size_download} bytes\n" \
  "http://127.0.0.1:$PORT/webservice/rest/server.php" \
  --data "wstoken=$TOKEN&wsfunction=block_use_stats_get_users_stats&moodlewsrestformat=json&uidsource=id&$UIDS$3"; }
serve() {
  "$US" serve > serve.log 2>&1 &
  SERVE=$!
  for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
}
serve
trap 'kill $SERVE 2>/dev/null || true' EXIT
for round in 1 2 3; do
  call whole.json "    compiled, whole history, round $round" ""
  call term.json "    compiled, term, round $round" "&from=$FROM_S&to=$TO_S"
done
kill $SERVE; wait $SERVE 2>/dev/null || true
sed -i 's/^compiled = true/compiled = false/' usestats.toml
serve
call term-full.json "    full scan, term" "&from=$FROM_S&to=$TO_S"
kill $SERVE; wait $SERVE 2>/dev/null || true
sed -i 's/^compiled = false/compiled = true/' usestats.toml
python3 - <<'PY'
import json
a, b = json.load(open("term.json")), json.load(open("term-full.json"))
for x in (a, b):
    for u in x:
        u.get("query", {}).pop("estimator", None)
print("    compiled term answer equals the full scan's:", a == b)
PY

echo "== retention: the oldest tenth of the log deleted, then answers at once and after a pass"
CUT=$(sqlite3 "$DB" "SELECT timecreated FROM mdl_logstore_standard_log ORDER BY timecreated LIMIT 1 OFFSET 1000000")
/usr/bin/time -f "    delete: %e s" sqlite3 "$DB" "DELETE FROM mdl_logstore_standard_log WHERE timecreated < $CUT"
serve
for round in 1 2; do
  call whole-ret.json "    right after, whole history, round $round" ""
  call term-ret.json "    right after, term, round $round" "&from=$FROM_S&to=$TO_S"
done
kill $SERVE; wait $SERVE 2>/dev/null || true
/usr/bin/time -v -o pass.time "$US" --json compile > pass.json
cat pass.json; peak pass.time
serve
call whole-ret.json "    after the pass, whole history" ""
call term-ret.json "    after the pass, term" "&from=$FROM_S&to=$TO_S"
kill $SERVE; wait $SERVE 2>/dev/null || true
trap - EXIT

echo "== first compile under load: serve with an empty store, four all-user calls at a time"
sqlite3 "$DB" "DELETE FROM compiled_meta"
/usr/bin/time -v -o first.time "$US" serve > serve-first.log 2>&1 &
TIMED=$!
for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
sleep 2
curl -s "http://127.0.0.1:$PORT/healthz" | sed 's/^/    healthz: /'
start=$(date +%s)
calls=0
while curl -s "http://127.0.0.1:$PORT/healthz" | grep -q "first compile running"; do
  pids=()
  for i in 1 2 3 4; do call "during-$i.json" "    during the first compile" "&from=$FROM_S&to=$TO_S" > /dev/null & pids+=($!); done
  # Only the calls: a bare `wait` would also wait for serve, which runs until told to stop.
  wait "${pids[@]}"
  calls=$((calls + 4))
  for i in 1 2 3 4; do
    python3 - "during-$i.json" term-full.json <<'PY' || exit 1
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for x in (a, b):
    for u in x:
        u.get("query", {}).pop("estimator", None)
sys.exit(0 if a == b else 1)
PY
  done
done
echo "    $calls all-user calls during the first compile, every one equal to the full scan ($(( $(date +%s) - start )) s)"
pkill -INT -f "$US serve" || true
wait $TIMED 2>/dev/null || true
peak first.time
