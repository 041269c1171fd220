#!/usr/bin/env bash
# Dedication from the compiled store at scale (issue 25): every learner in one web-service call,
# use_stats alone against use_stats + dedication + dedication.legacy (three calls, all answered
# from the compiled store), next to an anchor measured in the same run: DuckDB computing the
# dedication rule (docs/engine.md §8.1) as a window query over the same rows in memory.
#
#   scripts/bench/dedication.sh [LOG_ROWS (default 10000000)] [WORKDIR (default: a new temp dir)]
#
# Needs: sqlite3, /usr/bin/time, curl, python3 with the `duckdb` package (pip install duckdb).
# USESTATS_BIN=path runs that binary instead of building the release one (a quick check of the
# script on a small demo). A WORKDIR that already holds a demo of the right size is reused.
# ROUNDS (default 3) calls of each kind; the figure to read is the ratio printed at the end.
set -euo pipefail
ROWS=${1:-10000000}
WORK=${2:-$(mktemp -d /tmp/usestats-dedication.XXXXXX)}
PORT=${PORT:-18094}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${USESTATS_BIN:-}" ]; then
  US=$(realpath "$USESTATS_BIN")
else
  (cd "$ROOT" && cargo build --release --bin usestats -q)
  US="$ROOT/target/release/usestats"
fi
mkdir -p "$WORK"
cd "$WORK"
DB="$WORK/usestats.sqlite3"
peak() { grep -E "Maximum resident set size|Elapsed \(wall" "$1" | sed 's/^\s*/    /'; }

if [ ! -f usestats.toml ]; then
  "$US" init --wwwroot "http://127.0.0.1:$PORT" --listen "127.0.0.1:$PORT" >/dev/null
fi
# --log-rows counts the local site's rows (the remote host's learners log on top).
have=$(sqlite3 "$DB" "SELECT count(*) FROM mdl_logstore_standard_log l JOIN mdl_user u ON u.id = l.userid WHERE u.mnethostid = 1" 2>/dev/null || echo 0)
if [ "$have" != "$ROWS" ]; then
  rm -f "$DB" "$DB-wal" "$DB-shm"
  echo "== usestats demo --log-rows $ROWS"
  "$US" demo --log-rows "$ROWS" > demo.out
  head -2 demo.out
fi

echo "== cold compile (use_stats and dedication): usestats compile --full"
/usr/bin/time -v -o cold.time "$US" --json compile --full > cold.json
cat cold.json; peak cold.time
sqlite3 "$DB" "SELECT 'dedication sessions kept: ' || count(*) || ' (' || sum(row_count) || ' rows)' FROM compiled_dedication"
sqlite3 "$DB" "SELECT CASE WHEN name LIKE '%compiled_dedication%' THEN 'compiled dedication' WHEN name LIKE 'compiled%' OR name LIKE 'sqlite_autoindex_compiled%' THEN 'compiled use_stats' WHEN name LIKE '%logstore_standard_log%' THEN 'log + indexes' ELSE 'other' END AS what, round(sum(pgsize)/1048576.0, 1) AS MiB FROM dbstat GROUP BY what"

echo "== anchor: DuckDB, the dedication rule as a window query over the same rows (2 threads)"
if [ ! -f dedication.csv ]; then
  sqlite3 -csv "$DB" "SELECT id, userid, courseid, timecreated, coalesce(origin, '<null>'), eventname FROM mdl_logstore_standard_log" > dedication.csv
fi
LIMIT=$(sqlite3 "$DB" "SELECT value FROM mdl_config_plugins WHERE plugin = 'block_dedication' AND name = 'session_limit'" 2>/dev/null || true)
LIMIT=${LIMIT:-3600} python3 - <<'PY'
import os, time, duckdb
limit = int(os.environ["LIMIT"] or 3600)
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE TABLE log AS SELECT * FROM read_csv('dedication.csv', header=false, quote='\"', columns={'id':'BIGINT','userid':'BIGINT','courseid':'BIGINT','timecreated':'BIGINT','origin':'VARCHAR','eventname':'VARCHAR'})")
query = f"""
WITH r AS (
  SELECT userid, courseid, timecreated, id FROM log
  WHERE courseid > 0 AND origin NOT IN ('cli', '<null>')
    AND regexp_full_match(eventname, '\\\\[A-Za-z0-9_]+\\\\event\\\\[A-Za-z0-9_]+_[A-Za-z0-9]+')),
g AS (
  SELECT *, timecreated - lag(timecreated) OVER w AS gap FROM r
  WINDOW w AS (PARTITION BY userid, courseid ORDER BY timecreated, id)),
s AS (
  SELECT *, sum(CASE WHEN gap IS NULL OR gap > {limit} THEN 1 ELSE 0 END) OVER w AS sid FROM g
  WINDOW w AS (PARTITION BY userid, courseid ORDER BY timecreated, id ROWS UNBOUNDED PRECEDING)),
d AS (SELECT userid, courseid, sid, max(timecreated) - min(timecreated) AS dur FROM s GROUP BY ALL)
SELECT count(*), sum(CASE WHEN dur > 0 THEN dur ELSE 0 END) FROM d
"""
for round in range(3):
    t = time.time(); r = con.execute(query).fetchall(); dt = time.time() - t
    print(f"    duckdb round {round + 1}: {dt:.2f} s ({r[0][0]} sessions, {r[0][1]} s kept)")
print(f"    duckdb {duckdb.__version__}")
PY

echo "== warm web-service calls, every learner in one call, from the compiled store"
"$US" grant add "http://127.0.0.1:$PORT" bench --site --course >/dev/null
TOKEN=$("$US" --json token create "http://127.0.0.1:$PORT" bench --label bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
UIDS=$(sqlite3 "$DB" "SELECT id FROM mdl_user WHERE deleted = 0 ORDER BY id" | awk '{printf "%suids[%d]=%s", (NR > 1 ? "&" : ""), NR - 1, $1}')
# The whole log: the compiled store answers any window, and this one makes every row count.
WINDOW="from=1&to=$(sqlite3 "$DB" "SELECT max(timecreated) + 1 FROM mdl_logstore_standard_log")"
"$US" serve --console-listen 127.0.0.1:0 > serve.log 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
call() {
  curl -s -o "answer-${1:-default}.json" -w "%{time_total}" \
    "http://127.0.0.1:$PORT/webservice/rest/server.php" \
    --data "wstoken=$TOKEN&wsfunction=block_use_stats_get_users_stats&moodlewsrestformat=json&uidsource=id&$WINDOW&$UIDS${1:+&estimator=$1}"
}
call >/dev/null; call dedication >/dev/null; call dedication.legacy >/dev/null  # warm caches
: > rounds.txt
for round in $(seq 1 "$ROUNDS"); do
  alone=$(call)
  dedication=$(call dedication)
  legacy=$(call dedication.legacy)
  echo "$alone $dedication $legacy" >> rounds.txt
  echo "    round $round: use_stats $alone s, dedication $dedication s, dedication.legacy $legacy s"
done
# What every call costs whatever it asks: one learner, use_stats.
ALL_UIDS=$UIDS
UIDS="uids[0]=$(sqlite3 "$DB" "SELECT userid FROM mdl_logstore_standard_log WHERE id = (SELECT max(id) FROM mdl_logstore_standard_log)")"
: > one.txt
for round in $(seq 1 "$ROUNDS"); do call >> one.txt; echo >> one.txt; done
UIDS=$ALL_UIDS
# The rule's default start: each course's window from its own start date (from=0).
WHOLE=$WINDOW
WINDOW="from=0&to=$(sqlite3 "$DB" "SELECT max(timecreated) + 1 FROM mdl_logstore_standard_log")"
: > from0.txt
for round in $(seq 1 "$ROUNDS"); do call dedication >> from0.txt; echo >> from0.txt; done
WINDOW=$WHOLE
# With every session listed the blocks cannot answer: each session is read, as every answer
# was before the blocks (the anchor of the same run).
: > listed.txt
for round in $(seq 1 "$ROUNDS"); do call "dedication&sessionlist=1" >> listed.txt; echo >> listed.txt; done
python3 - <<'PY'
rows = [tuple(map(float, l.split())) for l in open("rounds.txt") if l.strip()]
med = lambda xs: sorted(xs)[len(xs) // 2]
alone, dedic, legacy = (med([r[i] for r in rows]) for i in range(3))
one = med([float(l) for l in open("one.txt") if l.strip()])
print(f"    median: use_stats {alone:.4f} s, dedication {dedic:.4f} s, dedication.legacy {legacy:.4f} s")
print(f"    use_stats + dedication / use_stats alone: {(alone + dedic) / alone:.2f}")
print(f"    all three / use_stats alone: {(alone + dedic + legacy) / alone:.2f}")
print(f"    one learner, use_stats (what any call costs): {one:.4f} s")
from0 = med([float(l) for l in open("from0.txt") if l.strip()])
print(f"    dedication, from=0 (each course from its start date): {from0:.4f} s")
listed = med([float(l) for l in open("listed.txt") if l.strip()])
print(f"    dedication with sessionlist=1 (every session read, no blocks): {listed:.4f} s")
PY
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E "^usestats_(compiled|dedication|dedication_block)_answers_total" | sed 's/^/    /'
kill $SERVE; wait $SERVE 2>/dev/null || true
trap - EXIT
