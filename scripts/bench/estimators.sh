#!/usr/bin/env bash
# Estimators side by side at scale (issue 25): every learner's time under use_stats, dedication
# and dedication.legacy, from the compiled store, over the web services; next to the anchor
# measured in the same run: DuckDB computing the same dedication rule as a window query over
# the same rows in memory.
#
#   scripts/bench/estimators.sh [LOG_ROWS (default 10000000)] [WORKDIR (default: a new temp dir)]
#
# Needs: sqlite3, curl, python3 with the `duckdb` package (pip install duckdb). A WORKDIR that
# already holds a demo of the right size is reused (its compiled store is brought up to date).
set -euo pipefail
ROWS=${1:-10000000}
WORK=${2:-$(mktemp -d /tmp/usestats-estimators.XXXXXX)}
PORT=${PORT:-18094}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release --bin usestats -q
US="$ROOT/target/release/usestats"
mkdir -p "$WORK"
cd "$WORK"
DB="$WORK/usestats.sqlite3"

if [ ! -f usestats.toml ]; then
  "$US" init --wwwroot "http://127.0.0.1:$PORT" --listen "127.0.0.1:$PORT" >/dev/null
fi
# --log-rows counts the local site's rows (the remote host's learners log on top).
have=$(sqlite3 "$DB" "SELECT count(*) FROM mdl_logstore_standard_log l JOIN mdl_user u ON u.id = l.userid WHERE u.mnethostid = 1" 2>/dev/null || echo 0)
if [ "$have" != "$ROWS" ]; then
  rm -f "$DB" "$DB-wal" "$DB-shm"
  echo "== usestats demo --log-rows $ROWS"
  "$US" demo --log-rows "$ROWS" --quiet | head -2
fi
echo "log rows: $(sqlite3 "$DB" 'SELECT count(*) FROM mdl_logstore_standard_log')"

echo "== compile (the store both estimators answer from)"
"$US" --json compile

echo "== anchor: DuckDB, block_dedication's rule (limit 3600 s, sessions over 0 s) per learner and course, same rows in memory (2 threads)"
if [ ! -f ded.csv ]; then
  sqlite3 -csv "$DB" "SELECT id, userid, courseid, timecreated, COALESCE(origin, '\\N'), eventname FROM mdl_logstore_standard_log" > ded.csv
fi
python3 - <<'PY'
import time, duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute(r"""CREATE TABLE log AS SELECT * FROM read_csv('ded.csv', header=false, nullstr='\N',
  columns={'id':'BIGINT','userid':'BIGINT','courseid':'BIGINT','timecreated':'BIGINT','origin':'VARCHAR','eventname':'VARCHAR'})""")
# docs/engine.md §8.1: rows of the course, origin neither NULL nor 'cli', a well-formed event
# name; a gap over the limit starts a session; a session lasts last - first; kept when over the
# ignore limit.
query = r"""
WITH r AS (
  SELECT id, userid, courseid, timecreated FROM log
  WHERE courseid > 0 AND origin IS NOT NULL AND origin <> 'cli'
    AND regexp_full_match(eventname, '\\[A-Za-z0-9_]+\\event\\[A-Za-z0-9_]+_[A-Za-z0-9]+')),
g AS (
  SELECT userid, courseid, timecreated,
         CASE WHEN timecreated - lag(timecreated) OVER w > 3600 OR lag(timecreated) OVER w IS NULL
              THEN 1 ELSE 0 END AS brk
  FROM r WINDOW w AS (PARTITION BY userid, courseid ORDER BY timecreated, id)),
s AS (
  SELECT userid, courseid, timecreated,
         sum(brk) OVER (PARTITION BY userid, courseid ORDER BY timecreated ROWS UNBOUNDED PRECEDING) AS sid
  FROM g),
d AS (SELECT userid, courseid, max(timecreated) - min(timecreated) AS dur FROM s GROUP BY userid, courseid, sid)
SELECT count(DISTINCT userid), sum(dur) FROM d WHERE dur > 0
"""
for round in range(3):
    t = time.time(); r = con.execute(query).fetchall(); dt = time.time() - t
    print(f"    duckdb round {round + 1}: {dt:.2f} s ({r[0][0]} learners, {r[0][1]} s in total)")
print(f"    duckdb {duckdb.__version__}")
PY

echo "== every learner in one get_users_stats call over HTTP, per estimator (3 rounds each)"
"$US" grant add "http://127.0.0.1:$PORT" bench --site --course >/dev/null 2>&1 || true
TOKEN=$("$US" --json token create "http://127.0.0.1:$PORT" bench --label bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
UIDS=$(sqlite3 "$DB" "SELECT id FROM mdl_user WHERE deleted = 0 ORDER BY id" | awk '{printf "%suids[%d]=%s", (NR > 1 ? "&" : ""), NR - 1, $1}')
"$US" serve --console-listen 127.0.0.1:0 > serve.log 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
call() {
  curl -s -o "answer-$1.json" -w "%{time_total}" "http://127.0.0.1:$PORT/webservice/rest/server.php" \
    --data "wstoken=$TOKEN&wsfunction=block_use_stats_get_users_stats&moodlewsrestformat=json&uidsource=id&$UIDS$2"
}
for round in 1 2 3; do
  u=$(call use_stats "")
  d=$(call dedication "&estimator=dedication")
  l=$(call legacy "&estimator=dedication.legacy")
  python3 -c "u,d,l=$u,$d,$l; print(f'    round $round: use_stats {u:.3f} s, dedication {d:.3f} s, dedication.legacy {l:.3f} s; use_stats + dedication = {(u+d)/u:.2f}x use_stats alone')"
done
python3 - <<'PY'
import json
d = json.load(open("answer-dedication.json"))
total = sum(c["coursetime"] for u in d for c in u.get("courses", []))
print(f"    dedication answered {len(d)} users, {total} s in courses (compare DuckDB's total above)")
PY
grep -c '"compiled"' serve.log >/dev/null 2>&1 || true
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E "usestats_compiled_answers|compiled" | head -5 || true
kill $SERVE; wait $SERVE 2>/dev/null || true
trap - EXIT
