//! The source schema copies against Moodle's own definitions: exactly Moodle 4.5's indexes,
//! under the names its XMLDB generator gives them, on SQLite, PostgreSQL and MariaDB; the same
//! answers from a PostgreSQL copy as from the SQLite demo; and query plans on PostgreSQL that
//! reach users and log rows through Moodle's indexes.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::db::TestDb;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use usestats::demo::{DemoOptions, build_demo};
use usestats::reports::{user_report, users_reports};
use usestats::stats::{Settings, Window};
use usestats::store::DbConnection;
use usestats::store::source::{Source, UserField, migrate_source};

/// Moodle 4.5's secondary indexes on the tables usestats reads, prefix `mdl_`: (table, index,
/// unique, columns). Read off a Moodle 4.5 installation's schema (its MySQL dump) and Moodle's
/// install.xml files; the primary keys are left out.
const MOODLE_INDEXES: &[(&str, &str, bool, &str)] = &[
    ("config", "mdl_conf_nam_uix", true, "name"),
    (
        "config_plugins",
        "mdl_confplug_plunam_uix",
        true,
        "plugin,name",
    ),
    ("mnet_host", "mdl_mnethost_las_ix", false, "last_log_id"),
    ("mnet_host", "mdl_mnethost_app_ix", false, "applicationid"),
    ("user", "mdl_user_mneuse_uix", true, "mnethostid,username"),
    ("user", "mdl_user_del_ix", false, "deleted"),
    ("user", "mdl_user_con_ix", false, "confirmed"),
    ("user", "mdl_user_fir_ix", false, "firstname"),
    ("user", "mdl_user_las_ix", false, "lastname"),
    ("user", "mdl_user_cit_ix", false, "city"),
    ("user", "mdl_user_cou_ix", false, "country"),
    ("user", "mdl_user_las2_ix", false, "lastaccess"),
    ("user", "mdl_user_ema_ix", false, "email"),
    ("user", "mdl_user_aut_ix", false, "auth"),
    ("user", "mdl_user_idn_ix", false, "idnumber"),
    ("user", "mdl_user_fir2_ix", false, "firstnamephonetic"),
    ("user", "mdl_user_las3_ix", false, "lastnamephonetic"),
    ("user", "mdl_user_mid_ix", false, "middlename"),
    ("user", "mdl_user_alt_ix", false, "alternatename"),
    ("course", "mdl_cour_cat_ix", false, "category"),
    ("course", "mdl_cour_idn_ix", false, "idnumber"),
    ("course", "mdl_cour_sho_ix", false, "shortname"),
    ("course", "mdl_cour_sor_ix", false, "sortorder"),
    ("course", "mdl_cour_ori_ix", false, "originalcourseid"),
    (
        "course_sections",
        "mdl_coursect_cousec_uix",
        true,
        "course,section",
    ),
    (
        "course_sections",
        "mdl_coursect_comite_ix",
        false,
        "component,itemid",
    ),
    ("modules", "mdl_modu_nam_ix", false, "name"),
    ("course_modules", "mdl_courmodu_vis_ix", false, "visible"),
    ("course_modules", "mdl_courmodu_cou_ix", false, "course"),
    ("course_modules", "mdl_courmodu_mod_ix", false, "module"),
    ("course_modules", "mdl_courmodu_ins_ix", false, "instance"),
    (
        "course_modules",
        "mdl_courmodu_idncou_ix",
        false,
        "idnumber,course",
    ),
    ("course_modules", "mdl_courmodu_gro_ix", false, "groupingid"),
    (
        "context",
        "mdl_cont_conins_uix",
        true,
        "contextlevel,instanceid",
    ),
    ("context", "mdl_cont_ins_ix", false, "instanceid"),
    ("context", "mdl_cont_pat_ix", false, "path"),
    ("enrol", "mdl_enro_enr_ix", false, "enrol"),
    ("enrol", "mdl_enro_cou_ix", false, "courseid"),
    ("enrol", "mdl_enro_rol_ix", false, "roleid"),
    (
        "user_enrolments",
        "mdl_userenro_enruse_uix",
        true,
        "enrolid,userid",
    ),
    ("user_enrolments", "mdl_userenro_enr_ix", false, "enrolid"),
    ("user_enrolments", "mdl_userenro_use_ix", false, "userid"),
    (
        "user_enrolments",
        "mdl_userenro_mod_ix",
        false,
        "modifierid",
    ),
    (
        "grade_items",
        "mdl_graditem_locloc_ix",
        false,
        "locked,locktime",
    ),
    (
        "grade_items",
        "mdl_graditem_itenee_ix",
        false,
        "itemtype,needsupdate",
    ),
    ("grade_items", "mdl_graditem_gra_ix", false, "gradetype"),
    (
        "grade_items",
        "mdl_graditem_idncou_ix",
        false,
        "idnumber,courseid",
    ),
    (
        "grade_items",
        "mdl_graditem_iteiteitecou_ix",
        false,
        "itemtype,itemmodule,iteminstance,courseid",
    ),
    ("grade_items", "mdl_graditem_cou_ix", false, "courseid"),
    ("grade_items", "mdl_graditem_cat_ix", false, "categoryid"),
    ("grade_items", "mdl_graditem_sca_ix", false, "scaleid"),
    ("grade_items", "mdl_graditem_out_ix", false, "outcomeid"),
    (
        "grade_grades",
        "mdl_gradgrad_useite_uix",
        true,
        "userid,itemid",
    ),
    (
        "grade_grades",
        "mdl_gradgrad_locloc_ix",
        false,
        "locked,locktime",
    ),
    ("grade_grades", "mdl_gradgrad_ite_ix", false, "itemid"),
    ("grade_grades", "mdl_gradgrad_use_ix", false, "userid"),
    ("grade_grades", "mdl_gradgrad_raw_ix", false, "rawscaleid"),
    (
        "grade_grades",
        "mdl_gradgrad_use2_ix",
        false,
        "usermodified",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_tim_ix",
        false,
        "timecreated",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_couanotim_ix",
        false,
        "courseid,anonymous,timecreated",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_useconconcr_ix",
        false,
        "userid,contextlevel,contextinstanceid,crud,edulevel,timecreated",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_con_ix",
        false,
        "contextid",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_use_ix",
        false,
        "userid",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_cou_ix",
        false,
        "courseid",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_rea_ix",
        false,
        "realuserid",
    ),
    (
        "logstore_standard_log",
        "mdl_logsstanlog_rel_ix",
        false,
        "relateduserid",
    ),
    ("groups", "mdl_grou_idn_ix", false, "idnumber"),
    ("groups", "mdl_grou_cou_ix", false, "courseid"),
    (
        "groups_members",
        "mdl_groumemb_usegro_uix",
        true,
        "userid,groupid",
    ),
    ("groups_members", "mdl_groumemb_gro_ix", false, "groupid"),
    ("groups_members", "mdl_groumemb_use_ix", false, "userid"),
    ("assign", "mdl_assi_cou_ix", false, "course"),
    (
        "assign",
        "mdl_assi_tea_ix",
        false,
        "teamsubmissiongroupingid",
    ),
    ("forum", "mdl_foru_cou_ix", false, "course"),
    ("learningtimecheck", "mdl_lear_cou_ix", false, "course"),
    ("page", "mdl_page_cou_ix", false, "course"),
    ("quiz", "mdl_quiz_cou_ix", false, "course"),
    ("resource", "mdl_reso_cou_ix", false, "course"),
    ("url", "mdl_url_cou_ix", false, "course"),
];

#[derive(QueryableByName)]
struct IndexRow {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    idx: String,
    #[diesel(sql_type = BigInt)]
    uniq: i64,
    #[diesel(sql_type = Text)]
    cols: String,
}

type IndexSet = BTreeMap<String, BTreeSet<(String, bool, String)>>;

/// Every secondary index on the `mdl_` tables, by table (prefix stripped), as the catalog has it.
fn indexes_present(conn: &mut DbConnection) -> IndexSet {
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "SELECT t.relname AS tbl, i.relname AS idx, CASE WHEN ix.indisunique THEN CAST(1 AS INT8) ELSE CAST(0 AS INT8) END AS uniq, \
             (SELECT string_agg(a.attname, ',' ORDER BY k.n) \
              FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) \
              JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) AS cols \
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_namespace ns ON ns.oid = t.relnamespace AND ns.nspname = current_schema() \
             WHERE t.relname LIKE 'mdl\\_%' AND NOT ix.indisprimary"
        }
        DbConnection::Sqlite(_) => {
            "SELECT m.tbl_name AS tbl, m.name AS idx, \
             (SELECT \"unique\" FROM pragma_index_list(m.tbl_name) l WHERE l.name = m.name) AS uniq, \
             (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(m.name) ORDER BY seqno)) AS cols \
             FROM sqlite_master m WHERE m.type = 'index' AND m.tbl_name LIKE 'mdl\\_%' ESCAPE '\\' \
             AND m.name NOT LIKE 'sqlite_autoindex%'"
        }
        DbConnection::Mysql(_) => {
            "SELECT TABLE_NAME AS tbl, INDEX_NAME AS idx, CAST(1 - MIN(NON_UNIQUE) AS SIGNED) AS uniq, \
             GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ',') AS cols \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME LIKE 'mdl\\_%' AND INDEX_NAME <> 'PRIMARY' GROUP BY TABLE_NAME, INDEX_NAME"
        }
    };
    let rows: Vec<IndexRow> = diesel::sql_query(sql).load(conn).expect("index catalog");
    let mut out = IndexSet::new();
    for r in rows {
        let table = r.tbl.trim_start_matches("mdl_").to_string();
        if table == "usestats_schema" {
            continue;
        }
        out.entry(table)
            .or_default()
            .insert((r.idx, r.uniq != 0, r.cols));
    }
    out
}

fn moodle_indexes() -> IndexSet {
    let mut out = IndexSet::new();
    for (table, name, unique, cols) in MOODLE_INDEXES {
        out.entry(table.to_string()).or_default().insert((
            name.to_string(),
            *unique,
            cols.to_string(),
        ));
    }
    out
}

fn indexes_are_moodles(db: &TestDb) {
    let mut conn = db.connect();
    migrate_source(&mut conn, "mdl_").expect("migrate");
    let present = indexes_present(&mut conn);
    let wanted = moodle_indexes();
    for (table, want) in &wanted {
        assert_eq!(present.get(table), Some(want), "indexes of mdl_{table}");
    }
    let extra: Vec<&String> = present
        .keys()
        .filter(|t| !wanted.contains_key(*t))
        .collect();
    assert!(
        extra.is_empty(),
        "indexes on tables Moodle leaves bare: {extra:?}"
    );
}

#[test]
fn indexes_are_moodles_on_sqlite() {
    indexes_are_moodles(&TestDb::sqlite());
}

#[test]
fn indexes_are_moodles_on_postgres() {
    if let Some(db) = TestDb::postgres() {
        indexes_are_moodles(&db);
    }
}

#[test]
fn indexes_are_moodles_on_mariadb() {
    if let Some(db) = TestDb::mysql() {
        indexes_are_moodles(&db);
    }
}

fn demo() -> DemoOptions {
    DemoOptions {
        seed: 11,
        users: 40,
        courses: 5,
        log_rows: 30_000,
        remote_hosts: vec!["https://moodle.example.org".into()],
        ..DemoOptions::default()
    }
}

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

fn explain(conn: &mut DbConnection, sql: &str) -> String {
    let lines: Vec<Plan> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .load(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A PostgreSQL copy built from Moodle's definitions answers as the SQLite demo does, and its
/// plans reach a user and a user's log rows through Moodle's indexes.
#[test]
fn postgres_copy_answers_as_sqlite_and_uses_moodles_indexes() {
    let Some(pg) = TestDb::postgres() else {
        return;
    };
    let lite = TestDb::sqlite();
    let (mut a, mut b) = (lite.connect(), pg.connect());
    let summary = build_demo(&mut a, "mdl_", &demo()).unwrap();
    build_demo(&mut b, "mdl_", &demo()).unwrap();
    let source = Source::new("mdl_").unwrap();
    let settings = Settings::default();
    let window = Window {
        from: 0,
        to: i64::MAX / 2,
        now: i64::MAX / 2,
    };
    let mut ids = Vec::new();
    for name in &summary.sample_usernames {
        let ua = source
            .find_user(&mut a, UserField::Username, name)
            .unwrap()
            .unwrap();
        let ub = source
            .find_user(&mut b, UserField::Username, name)
            .unwrap()
            .unwrap();
        assert_eq!(ua, ub);
        assert_eq!(
            source.find_user_for_rpc(&mut a, name).unwrap(),
            source.find_user_for_rpc(&mut b, name).unwrap()
        );
        let ra = user_report(&mut a, &source, &settings, ua.id, window, true).unwrap();
        let rb = user_report(&mut b, &source, &settings, ub.id, window, true).unwrap();
        assert_eq!(ra, rb, "{name}");
        ids.push(ua.id);
    }
    // Every user of the site in one batch, with ids enough for the pass over the log.
    let all: Vec<i64> = (1..=60).chain(1000..1100).collect();
    let ba = users_reports(&mut a, &source, &settings, &all, window).unwrap();
    let bb = users_reports(&mut b, &source, &settings, &all, window).unwrap();
    assert_eq!(ba, bb);
    // The batch gives each user what a single read gives.
    for id in &ids {
        let single = user_report(&mut b, &source, &settings, *id, window, false).unwrap();
        assert_eq!(bb.get(id), Some(&single), "user {id}");
    }

    // Plans: with sequential scans priced out, a query with no usable index still shows a Seq
    // Scan; the two lookups must name Moodle's indexes in an index condition instead.
    b.batch_execute("SET enable_seqscan = off").unwrap();
    let user_plan = explain(
        &mut b,
        "SELECT id FROM mdl_user WHERE username = 'x' AND mnethostid = 1 AND deleted = 0 \
         ORDER BY id LIMIT 1",
    );
    assert!(user_plan.contains("mdl_user_mneuse_uix"), "{user_plan}");
    assert!(user_plan.contains("(mnethostid = 1)"), "{user_plan}");
    assert!(!user_plan.contains("Seq Scan"), "{user_plan}");
    let log_plan = explain(
        &mut b,
        &format!(
            "SELECT l.id FROM mdl_logstore_standard_log l WHERE l.userid = {} \
             AND l.timecreated >= 0 AND l.timecreated <= 2000000000 ORDER BY l.timecreated, l.id",
            ids[0]
        ),
    );
    assert!(
        log_plan.contains("mdl_logsstanlog_use_ix")
            || log_plan.contains("mdl_logsstanlog_useconconcr_ix"),
        "{log_plan}"
    );
    assert!(log_plan.contains("Index Cond: (userid ="), "{log_plan}");
    assert!(!log_plan.contains("Seq Scan"), "{log_plan}");
}

#[derive(QueryableByName)]
struct TempFiles {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Temporary files written in the current database so far, this session's included.
fn temp_files(conn: &mut DbConnection) -> i64 {
    conn.batch_execute("SELECT pg_stat_force_next_flush()")
        .unwrap();
    let rows: Vec<TempFiles> = diesel::sql_query(
        "SELECT temp_files AS n FROM pg_stat_database WHERE datname = current_database()",
    )
    .load(conn)
    .unwrap();
    rows.first().map(|r| r.n).unwrap()
}

/// The batch read never sorts the log on the server: one slice's plan, for the exact SQL the
/// code sends, reads the primary key and has no Sort node; and a whole all-user batch with a
/// `work_mem` so small that any sort of the log would spill writes no temporary file, where the
/// (time, id) ordered read it replaced writes some.
#[test]
fn postgres_batch_read_sorts_nothing_and_spills_nothing() {
    let Some(pg) = TestDb::postgres() else {
        return;
    };
    let mut conn = pg.connect();
    build_demo(&mut conn, "mdl_", &demo()).unwrap();
    conn.batch_execute("ANALYZE").unwrap();
    let source = Source::new("mdl_").unwrap();
    let sql = source.users_log_slice_sql(&mut conn);
    conn.batch_execute(&format!(
        "PREPARE slice(bigint[], bigint, bigint, bigint, bigint) AS {sql}"
    ))
    .unwrap();
    let users: Vec<String> = (1..=150).map(|u| u.to_string()).collect();
    let plan = explain(
        &mut conn,
        &format!(
            "EXECUTE slice('{{{}}}', 0, 2000000000, 1000, 6000)",
            users.join(",")
        ),
    );
    assert!(!plan.contains("Sort"), "{plan}");
    assert!(plan.contains("mdl_logstore_standard_log_pkey"), "{plan}");
    assert!(plan.contains("(id >= '1000'::bigint)"), "{plan}");

    conn.batch_execute("SET work_mem = '64kB'").unwrap();
    let all: Vec<i64> = (1..=150).collect();
    let window = Window {
        from: 0,
        to: i64::MAX / 2,
        now: i64::MAX / 2,
    };
    let before = temp_files(&mut conn);
    let reports = users_reports(&mut conn, &source, &Settings::default(), &all, window).unwrap();
    assert!(reports.values().any(|r| r.total > 0));
    assert_eq!(
        temp_files(&mut conn),
        before,
        "the batch wrote temporary files"
    );
    // The measure can see a spill: the read in (time, id) order writes temporary files here.
    let ordered = sql
        .replace("l.id >= $4 AND l.id < $5", "l.id >= 0")
        .replace("$1", &format!("'{{{}}}'", users.join(",")))
        .replace("$2", "0")
        .replace("$3", "2000000000")
        + " ORDER BY l.timecreated, l.id";
    let spill = explain(&mut conn, &format!("ANALYZE {ordered}"));
    assert!(spill.contains("Sort Key: l.timecreated, l.id"), "{spill}");
    assert!(
        temp_files(&mut conn) > before,
        "no spill seen for a sort of the log: {spill}"
    );
}
