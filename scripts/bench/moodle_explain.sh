#!/usr/bin/env bash
# EXPLAIN (ANALYZE, BUFFERS) of every query usestats sends to a Moodle PostgreSQL source, with
# the exact SQL the code builds (read off the server's statement log) bound through PREPARE as
# the client binds it, next to anchors measured in the same run.
#
# usage: scripts/bench/moodle_explain.sh POSTGRES_URL [USERNAME] [COURSEID]
# The database: a source built by `usestats demo` (schema/source/postgres), optionally with
# extra users in mdl_user. Prints to stdout; reads only (EXPLAIN ANALYZE of SELECTs).
set -euo pipefail
url=${1:?usage: $0 POSTGRES_URL [USERNAME] [COURSEID]}
username=${2:-lena.brown2}
course=${3:-2}
log_cols="l.id AS id, l.userid AS userid, l.timecreated AS timecreated, l.courseid AS courseid, l.contextlevel AS contextlevel, l.action AS action, l.target AS target, l.origin AS origin, l.realuserid AS realuserid, ctx.id AS ctx_id, ctx.instanceid AS ctx_instanceid, cm.id AS cm_id, m.name AS modname, cm.section AS cm_section FROM mdl_logstore_standard_log l LEFT JOIN mdl_context ctx ON l.contextlevel = 70 AND ctx.id = l.contextid LEFT JOIN mdl_course_modules cm ON cm.id = ctx.instanceid LEFT JOIN mdl_modules m ON m.id = cm.module"
filters="l.timecreated >= \$2 AND l.timecreated <= \$3 AND (l.origin IS NULL OR l.origin <> 'cli') AND l.action <> 'failed' AND (l.courseid <> 0 OR (l.courseid = 0 AND l.action IN ('loggedin', 'loggedout'))) AND l.realuserid IS NULL"
user_cols="id, username, mnethostid, firstname, lastname, COALESCE(idnumber, '') AS idnumber, COALESCE(email, '') AS email, CAST(deleted AS BIGINT) AS deleted, CAST(suspended AS BIGINT) AS suspended"
course_cols="id, category, fullname, shortname, COALESCE(idnumber, '') AS idnumber"
grade_tail="gi.itemtype = 'course' AND gi.id = (SELECT MIN(g2.id) FROM mdl_grade_items g2 WHERE g2.courseid = gi.courseid AND g2.itemtype = 'course')"
psql -X -q -v ON_ERROR_STOP=1 "$url" <<SQL
\pset pager off
\pset format unaligned
\pset tuples_only on
SELECT id AS uid, mnethostid AS host, idnumber AS uidn, email AS umail FROM mdl_user WHERE username = '$username' ORDER BY id LIMIT 1 \gset
SELECT shortname AS cshort, idnumber AS cidn FROM mdl_course WHERE id = $course \gset
SELECT '{' || string_agg(id::text, ',') || '}' AS users FROM (SELECT DISTINCT userid AS id FROM mdl_logstore_standard_log) u \gset
SELECT '{' || string_agg(id::text, ',') || '}' AS courses FROM mdl_course \gset
SELECT MAX(id) AS maxid FROM mdl_logstore_standard_log \gset
\echo ## sizes
SELECT 'log rows (estimate)', reltuples::bigint FROM pg_class WHERE relname = 'mdl_logstore_standard_log';
SELECT 'users', reltuples::bigint FROM pg_class WHERE relname = 'mdl_user';
SELECT 'users in the batch', cardinality(:'users'::bigint[]);
\echo ## anchor: bare count of the log
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM mdl_logstore_standard_log;
\echo ## anchor: bare sequential scan of the log
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM mdl_logstore_standard_log;
PREPARE u_name(text, bigint) AS SELECT $user_cols FROM mdl_user WHERE username = \$1 AND mnethostid = \$2 AND deleted = 0 ORDER BY id LIMIT 1;
PREPARE u_id(bigint) AS SELECT $user_cols FROM mdl_user WHERE id = \$1 AND deleted = 0 ORDER BY id LIMIT 1;
PREPARE u_idn(text) AS SELECT $user_cols FROM mdl_user WHERE idnumber = \$1 AND deleted = 0 ORDER BY id LIMIT 1;
PREPARE u_mail(text) AS SELECT $user_cols FROM mdl_user WHERE email = \$1 AND deleted = 0 ORDER BY id LIMIT 1;
PREPARE hosts AS SELECT id, wwwroot, name, CAST(deleted AS BIGINT) AS deleted FROM mdl_mnet_host ORDER BY id;
PREPARE cfg(text) AS SELECT value AS v FROM mdl_config WHERE name = \$1;
PREPARE c_id(bigint) AS SELECT $course_cols FROM mdl_course WHERE id = \$1 ORDER BY id LIMIT 1;
PREPARE c_short(text) AS SELECT $course_cols FROM mdl_course WHERE shortname = \$1 ORDER BY id LIMIT 1;
PREPARE c_idn(text) AS SELECT $course_cols FROM mdl_course WHERE idnumber = \$1 ORDER BY id LIMIT 1;
PREPARE c_ids(bigint[]) AS SELECT $course_cols FROM mdl_course WHERE id = ANY(\$1);
PREPARE c_site AS SELECT id AS v FROM mdl_course WHERE category = 0 ORDER BY id LIMIT 1;
PREPARE cms(bigint[]) AS SELECT cm.id AS cmid, cm.instance AS instance, cm.idnumber AS idnumber, m.name AS modname FROM mdl_course_modules cm JOIN mdl_modules m ON m.id = cm.module WHERE cm.id = ANY(\$1);
PREPARE log_user(bigint, bigint, bigint) AS SELECT $log_cols WHERE l.userid = \$1 AND $filters ORDER BY l.timecreated, l.id;
PREPARE log_slice(bigint[], bigint, bigint, bigint, bigint) AS SELECT $log_cols WHERE l.userid = ANY(\$1) AND l.id >= \$4 AND l.id < \$5 AND $filters;
PREPARE log_bounds AS SELECT MIN(id) AS lo, MAX(id) AS hi FROM mdl_logstore_standard_log;
PREPARE log_old(bigint[], bigint, bigint) AS SELECT $log_cols WHERE l.userid = ANY(\$1) AND $filters ORDER BY l.timecreated, l.id;
PREPARE g_user(bigint, bigint) AS SELECT CAST(gg.finalgrade AS TEXT) AS finalgrade, CAST(gg.rawgrade AS TEXT) AS rawgrade FROM mdl_grade_grades gg JOIN mdl_grade_items gi ON gi.id = gg.itemid WHERE gg.userid = \$1 AND gi.courseid = \$2 AND $grade_tail;
PREPARE g_users_course(bigint[], bigint) AS SELECT gg.userid AS k, CAST(gg.finalgrade AS TEXT) AS finalgrade, CAST(gg.rawgrade AS TEXT) AS rawgrade FROM mdl_grade_grades gg JOIN mdl_grade_items gi ON gi.id = gg.itemid WHERE gg.userid = ANY(\$1) AND gi.courseid = \$2 AND $grade_tail;
PREPARE g_users(bigint[]) AS SELECT gg.userid AS u, gi.courseid AS k, CAST(gg.finalgrade AS TEXT) AS finalgrade, CAST(gg.rawgrade AS TEXT) AS rawgrade FROM mdl_grade_grades gg JOIN mdl_grade_items gi ON gi.id = gg.itemid WHERE gg.userid = ANY(\$1) AND $grade_tail;
PREPARE e_user(bigint) AS SELECT e.courseid AS k, MIN(ue.timestart) AS v FROM mdl_user_enrolments ue JOIN mdl_enrol e ON e.id = ue.enrolid WHERE ue.userid = \$1 AND ue.status = 0 AND e.status = 0 GROUP BY e.courseid;
PREPARE e_users(bigint[]) AS SELECT ue.userid AS u, e.courseid AS k, MIN(ue.timestart) AS v FROM mdl_user_enrolments ue JOIN mdl_enrol e ON e.id = ue.enrolid WHERE ue.userid = ANY(\$1) AND ue.status = 0 AND e.status = 0 GROUP BY ue.userid, e.courseid;
PREPARE size_est(text) AS SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class WHERE oid = to_regclass(\$1) AND reltuples >= 0;
PREPARE size_max AS SELECT MAX(id) AS n FROM mdl_logstore_standard_log;
\echo ## user by username on one MNET host (one per host)
EXPLAIN (ANALYZE, BUFFERS) EXECUTE u_name('$username', :host);
\echo ## user by id
EXPLAIN (ANALYZE, BUFFERS) EXECUTE u_id(:uid);
\echo ## user by idnumber
EXPLAIN (ANALYZE, BUFFERS) EXECUTE u_idn(:'uidn');
\echo ## user by email
EXPLAIN (ANALYZE, BUFFERS) EXECUTE u_mail(:'umail');
\echo ## mnet hosts
EXPLAIN (ANALYZE, BUFFERS) EXECUTE hosts;
\echo ## config mnet_localhost_id
EXPLAIN (ANALYZE, BUFFERS) EXECUTE cfg('mnet_localhost_id');
\echo ## course by id
EXPLAIN (ANALYZE, BUFFERS) EXECUTE c_id($course);
\echo ## course by shortname
EXPLAIN (ANALYZE, BUFFERS) EXECUTE c_short(:'cshort');
\echo ## course by idnumber
EXPLAIN (ANALYZE, BUFFERS) EXECUTE c_idn(:'cidn');
\echo ## courses by ids
EXPLAIN (ANALYZE, BUFFERS) EXECUTE c_ids(:'courses');
\echo ## site course
EXPLAIN (ANALYZE, BUFFERS) EXECUTE c_site;
\echo ## module labels (course_modules of a course)
SELECT '{' || string_agg(id::text, ',') || '}' AS cmids FROM mdl_course_modules WHERE course = $course \gset
EXPLAIN (ANALYZE, BUFFERS) EXECUTE cms(:'cmids');
\echo ## per-user log read
EXPLAIN (ANALYZE, BUFFERS) EXECUTE log_user(:uid, 0, 2000000000);
\echo ## batch: log id bounds
EXPLAIN (ANALYZE, BUFFERS) EXECUTE log_bounds;
\echo ## batch: one slice of 50000 ids, every user of the log (mid-log)
EXPLAIN (ANALYZE, BUFFERS) EXECUTE log_slice(:'users', 0, 2000000000, :maxid / 2, :maxid / 2 + 50000);
\echo ## grade of one user in one course
EXPLAIN (ANALYZE, BUFFERS) EXECUTE g_user(:uid, $course);
\echo ## grades of the batch users in one course
EXPLAIN (ANALYZE, BUFFERS) EXECUTE g_users_course(:'users', $course);
\echo ## grades of the batch users, every course
EXPLAIN (ANALYZE, BUFFERS) EXECUTE g_users(:'users');
\echo ## enrolment filter: one user
EXPLAIN (ANALYZE, BUFFERS) EXECUTE e_user(:uid);
\echo ## enrolment filter: the batch users
EXPLAIN (ANALYZE, BUFFERS) EXECUTE e_users(:'users');
\echo ## doctor: log size
EXPLAIN (ANALYZE, BUFFERS) EXECUTE size_max;
EXPLAIN (ANALYZE, BUFFERS) EXECUTE size_est('mdl_logstore_standard_log');
\echo ## temp files before the old batch query
SELECT temp_files, temp_bytes FROM pg_stat_database WHERE datname = current_database();
\echo ## before issue 11: the batch read in (time, id) order, every user
EXPLAIN (ANALYZE, BUFFERS) EXECUTE log_old(:'users', 0, 2000000000);
\echo ## temp files after
SELECT pg_sleep(0.5);
SELECT temp_files, temp_bytes FROM pg_stat_database WHERE datname = current_database();
SQL
