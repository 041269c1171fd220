#!/usr/bin/env bash
# Finding a person on a large site (issue 24): `usestats users --search` on PostgreSQL with
# Moodle's own indexes (schema/source/postgres) and EXTRA_USERS more accounts, end to end and
# statement by statement (EXPLAIN ANALYZE of the exact SQL), next to the anchor measured in the
# same run: Moodle's own user search, as its admin user list builds it (the full name matched
# anywhere with ILIKE, deleted users left out, sorted by last and first name, 30 a page).
#
#   scripts/bench/search_pg.sh ADMIN_URL [EXTRA_USERS (500000)] [WORKDIR]
#
# ADMIN_URL: a PostgreSQL role that may create databases.
set -euo pipefail
ADMIN=${1:?usage: $0 ADMIN_URL [EXTRA_USERS] [WORKDIR]}
EXTRA=${2:-500000}
WORK=${3:-$(mktemp -d /tmp/usestats-search-pg.XXXXXX)}
DBNAME=usestats_bench_search
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release --bin usestats -q
US="${CARGO_TARGET_DIR:-$ROOT/target}/release/usestats"
URL="${ADMIN%/*}/$DBNAME"
mkdir -p "$WORK"
cd "$WORK"

if ! psql "$URL" -qtAc "SELECT 1 FROM mdl_user WHERE username = 'bench.user.1'" 2>/dev/null | grep -q 1; then
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DBNAME" -qc "CREATE DATABASE $DBNAME"
  rm -f usestats.toml
  "$US" init --wwwroot "http://127.0.0.1:18096" --listen "127.0.0.1:18096" >/dev/null
  sed -i "s#^url = \".*usestats.sqlite3\"#url = \"$URL\"#" usestats.toml
  "$US" demo --log-rows 20000 --users 2000 >/dev/null
  # Accounts spread over names as a large site's are: 60 first names × 60 last names, a number
  # to make each username unique, an email and an id number each.
  PGOPTIONS="-c bench.extra=$EXTRA" psql "$URL" -q <<'SQL'
WITH f(n, i) AS (SELECT n, row_number() OVER () - 1 FROM unnest(ARRAY['Anna','Ben','Clara','David','Elena','Farah','George','Hannah','Ivan','Julia','Kenji','Lena','Mateo','Nora','Oscar','Paula','Quentin','Rosa','Samuel','Tara','Ulrich','Vera','William','Xenia','Yusuf','Zoe','Amir','Bianca','Carlos','Dana','Emil','Fatima','Greta','Hugo','Ines','Jonas','Karla','Lukas','Maya','Niklas','Olivia','Pedro','Rania','Sven','Tomas','Uma','Viktor','Wanda','Yara','Zack','Aiko','Bruno','Chen','Dmitri','Eva','Felix','Gita','Hiro','Irene','Jakob']) AS n),
     l(n, i) AS (SELECT n, row_number() OVER () - 1 FROM unnest(ARRAY['Brown','Smith','Meyer','Garcia','Rossi','Dubois','Novak','Jensen','Kim','Sato','Silva','Costa','Weber','Wagner','Moreau','Martin','Bernard','Russo','Santos','Taylor','Popescu','Nielsen','Richter','Hoffmann','Kowalski','Schmidt','Mueller','Fischer','Becker','Lopez','Gonzalez','Perez','Sanchez','Ramirez','Torres','Flores','Rivera','Gomez','Diaz','Cruz','Morales','Ortiz','Gutierrez','Chavez','Ramos','Ruiz','Alvarez','Mendoza','Castillo','Jimenez','Moreno','Romero','Herrera','Medina','Aguilar','Vargas','Castro','Guzman','Fernandez','Wilson']) AS n)
INSERT INTO mdl_user (auth, confirmed, deleted, suspended, mnethostid, username, idnumber, firstname, lastname, email)
SELECT 'manual', 1, CASE WHEN g % 97 = 0 THEN 1 ELSE 0 END, 0, 1,
       'bench.user.' || g, 'B' || lpad(g::text, 7, '0'), f.n, l.n,
       lower(f.n) || '.' || lower(l.n) || g || '@bench.example.org'
FROM generate_series(1, (SELECT current_setting('bench.extra')::int)) AS g
JOIN f ON f.i = g % 60 JOIN l ON l.i = (g / 60) % 60;
SQL
fi
psql "$URL" -qc "VACUUM ANALYZE mdl_user"
cols="id, username, mnethostid, firstname, lastname, COALESCE(idnumber, '') AS idnumber, COALESCE(email, '') AS email, CAST(deleted AS BIGINT) AS deleted, CAST(suspended AS BIGINT) AS suspended"
echo "== sizes"
psql "$URL" -qtAc "SELECT '    users: ' || count(*) || ' (' || sum(deleted) || ' deleted)' FROM mdl_user"
psql "$URL" -qtAc "SELECT '    index: ' || indexname FROM pg_indexes WHERE tablename = 'mdl_user' ORDER BY 1"
sample=$(psql "$URL" -qtAc "SELECT username || '|' || email || '|' || idnumber FROM mdl_user WHERE username = 'bench.user.123457'")
IFS='|' read -r s_user s_mail s_idn <<<"$sample"

# End to end: the command as an operator runs it (process start, configuration, connection,
# the statements, the table), best of 5; `courses --per-page 1` is the same start-up with a
# trivial statement, for scale.
best() { # LABEL ARGS...
  local label=$1 b="" t
  shift
  for _ in 1 2 3 4 5; do
    t=$( { /usr/bin/time -f %e "$US" "$@" >/dev/null; } 2>&1 | tail -n 1)
    if [ -z "$b" ] || awk -v a="$t" -v b="$b" 'BEGIN { exit !(a < b) }'; then b=$t; fi
  done
  printf '    %-46s %s s\n' "$label" "$b"
}
echo "== end to end (usestats users --search, best of 5)"
best "start-up anchor: courses --per-page 1" courses --per-page 1
best "exact username ($s_user)" users --search "$s_user"
best "exact email" users --search "$s_mail"
best "exact idnumber" users --search "$s_idn"
best "part of a name, common (brow: 8 300 people)" users --search brow
best "part of a name, rare (no match: a whole scan)" users --search "zzqx"
best "first and last name (Lena Brown)" users --search "Lena Brown"

explain() { # LABEL SQL
  printf '== %s\n' "$1"
  psql "$URL" -qtAc "EXPLAIN (ANALYZE, BUFFERS) $2" | sed 's/^/    /'
}
explain "statement: exact (id, username on the hosts, email, idnumber)" \
  "SELECT $cols FROM mdl_user WHERE deleted = 0 AND (id = -1 OR (mnethostid = ANY('{1,3}') AND username = '$s_user') OR email = '$s_user' OR idnumber = '$s_user') LIMIT 500"
explain "statement: exact by email" \
  "SELECT $cols FROM mdl_user WHERE deleted = 0 AND (id = -1 OR (mnethostid = ANY('{1,3}') AND username = '$s_mail') OR email = '$s_mail' OR idnumber = '$s_mail') LIMIT 500"
# What `Source::search_users` sends when nobody matches exactly (src/store/source/search.rs).
contains() { echo "lower((firstname || ' ' || lastname)) LIKE '%$1%' ESCAPE '!'"; }
explain "statement: part of a name, common (brow), LIMIT 51" \
  "SELECT $cols FROM mdl_user WHERE deleted = 0 AND $(contains brow) LIMIT 51"
explain "statement: part of a name, rare (zzqx), LIMIT 51: the whole table" \
  "SELECT $cols FROM mdl_user WHERE deleted = 0 AND $(contains zzqx) LIMIT 51"
explain "anchor: Moodle's user list search, a page (full name ILIKE, ORDER BY lastname, firstname LIMIT 30)" \
  "SELECT $cols FROM mdl_user WHERE deleted = 0 AND id <> 1 AND (firstname || ' ' || lastname) ILIKE '%brow%' ORDER BY lastname, firstname LIMIT 30"
explain "anchor: Moodle's user list search, its count" \
  "SELECT COUNT(*) FROM mdl_user WHERE deleted = 0 AND id <> 1 AND (firstname || ' ' || lastname) ILIKE '%brow%'"
explain "anchor: Moodle's user list search, rare (zzqx)" \
  "SELECT $cols FROM mdl_user WHERE deleted = 0 AND id <> 1 AND (firstname || ' ' || lastname) ILIKE '%zzqx%' ORDER BY lastname, firstname LIMIT 30"
