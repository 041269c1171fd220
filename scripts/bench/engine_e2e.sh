#!/usr/bin/env bash
# End-to-end engine throughput from SQLite (issue 3), with a bare sqlite3 ordered scan of
# the same rows in the same run, and peak RSS (/usr/bin/time -v) of each.
#
#   scripts/bench/engine_e2e.sh [LOG_ROWS (default 10000000)] [WORKDIR (default: a new temp dir)]
#
# Needs: sqlite3, /usr/bin/time (Debian packages `sqlite3`, `time`). Builds the release
# binary and the engine_sqlite bench. A WORKDIR that already holds a demo database of the
# right size is reused.
set -euo pipefail
ROWS=${1:-10000000}
WORK=${2:-$(mktemp -d /tmp/usestats-e2e.XXXXXX)}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release --bin usestats -q
BENCH=$(cargo bench --bench engine_sqlite --no-run --message-format=json -q 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="engine_sqlite" and m.get("executable"): print(m["executable"])')
US="$ROOT/target/release/usestats"
mkdir -p "$WORK"
cd "$WORK"
DB="$WORK/usestats.sqlite3"
peak() { grep -E "Maximum resident set size|Elapsed \(wall|User time|System time" "$1" | sed 's/^\s*/    /'; }

if [ ! -f usestats.toml ]; then
  "$US" init --wwwroot http://127.0.0.1:18090 --listen 127.0.0.1:18090 >/dev/null
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
USERS=$(sed -n 's/^usernames to try: //p' demo.out | tr -d ',')

echo "== warm the page cache"
cat "$DB" > /dev/null

echo "== bare sqlite3: ordered scan of the log table (userid, timecreated, id)"
/usr/bin/time -v -o sq1.time sqlite3 "$DB" \
  "SELECT count(*), sum(timecreated) FROM (SELECT * FROM mdl_logstore_standard_log ORDER BY userid, timecreated, id)"
peak sq1.time

echo "== bare sqlite3: the engine's extraction query (joins + filters, same order), all users"
/usr/bin/time -v -o sq2.time sqlite3 "$DB" \
  "SELECT count(*), sum(timecreated) FROM (SELECT l.id AS id, l.userid AS userid, l.timecreated AS timecreated, l.courseid AS courseid, l.contextlevel AS contextlevel, l.action AS action, l.target AS target, l.origin AS origin, l.realuserid AS realuserid, ctx.id AS ctx_id, ctx.instanceid AS ctx_instanceid, cm.id AS cm_id, m.name AS modname, cm.section AS cm_section FROM mdl_logstore_standard_log l LEFT JOIN mdl_context ctx ON l.contextlevel = 70 AND ctx.id = l.contextid LEFT JOIN mdl_course_modules cm ON cm.id = ctx.instanceid LEFT JOIN mdl_modules m ON m.id = cm.module WHERE l.userid IN (SELECT id FROM mdl_user) AND l.timecreated >= 0 AND l.timecreated <= 99999999999 AND (l.origin IS NULL OR l.origin <> 'cli') AND l.action <> 'failed' AND (l.courseid <> 0 OR (l.courseid = 0 AND l.action IN ('loggedin', 'loggedout'))) AND l.realuserid IS NULL ORDER BY l.userid, l.timecreated, l.id)"
peak sq2.time

for mode in scan reports per-user; do
  echo "== engine_sqlite mode $mode"
  USESTATS_BENCH_DB="$DB" USESTATS_BENCH_MODE=$mode /usr/bin/time -v -o es-$mode.time "$BENCH" --bench
  peak es-$mode.time
done

for user in $USERS; do
  echo "== usestats stats $user"
  /usr/bin/time -v -o st-$user.time "$US" stats "$user" --format json > st-$user.json
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("    log rows", d.get("log_rows", d.get("rows")), "total s", d.get("total"))' st-$user.json 2>/dev/null || true
  peak st-$user.time
done
echo "workdir: $WORK"
