//! The source read API against real SQLite, PostgreSQL and MySQL/MariaDB databases.

mod common;

use std::collections::HashMap;

use common::db::TestDb;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use usestats::store::DbConnection;
use usestats::store::source::{
    CourseField, LogRow, ModuleInfo, Source, SourceError, UserField, migrate_source,
};

/// A small hand-made site whose every row is there to pin one rule of the read API.
fn fixture(conn: &mut DbConnection, p: &str) {
    migrate_source(conn, p).expect("migrate");
    let sql = r#"
INSERT INTO {p}config (id, name, value) VALUES (1, 'mnet_localhost_id', '1');
INSERT INTO {p}mnet_host (id, deleted, wwwroot, name) VALUES
  (1, 0, 'https://lms.example.org', 'Local'),
  (2, 0, '', 'All Hosts'),
  (3, 0, 'https://Remote.Example.net/', 'Remote'),
  (4, 1, 'https://gone.example.com', 'Gone'),
  (5, 0, 'https://gone.example.com', 'Gone again');
INSERT INTO {p}user (id, auth, deleted, suspended, mnethostid, username, idnumber, firstname, lastname, email) VALUES
  (1, 'manual', 0, 0, 1, 'guest', '', 'Guest', 'User', ''),
  (2, 'manual', 0, 0, 1, 'admin', 'A1', 'Admin', 'User', 'admin@example.org'),
  (4, 'mnet', 0, 0, 3, 'anna.meyer', 'R-ANNA', 'Anna', 'Remote', 'anna@remote.example.net'),
  (3, 'manual', 0, 0, 1, 'anna.meyer', 'S100', 'Anna', 'Meyer', 'anna@example.org'),
  (5, 'manual', 1, 0, 1, 'bob.old', 'DUP', 'Bob', 'Old', 'shared@example.org'),
  (6, 'manual', 0, 1, 1, 'carl.suspended', 'DUP', 'Carl', 'Sus', 'shared@example.org'),
  (7, 'manual', 0, 0, 1, 'dora.lee', 'DUP', 'Dora', 'Lee', 'shared@example.org'),
  (8, 'mnet', 0, 0, 3, 'eve.stone', '', 'Eve', 'Stone', ''),
  (9, 'manual', 1, 0, 1, 'ghost', '', 'Ghost', 'Deleted', ''),
  (10, 'manual', 0, 0, 1, 'ghost2', '', 'Ghost', 'Two', '');
INSERT INTO {p}course (id, category, fullname, shortname, idnumber) VALUES
  (1, 0, 'Demo Site', 'demo', ''),
  (2, 1, 'Statistics & Data', 'STAT101', 'C-STAT'),
  (3, 1, 'Chemistry', 'CHEM', ''),
  (4, 2, 'Chemistry again', 'CHEM', 'C-CHEM2');
INSERT INTO {p}modules (id, name) VALUES (1, 'page'), (2, 'quiz'), (4, 'Bad;mod');
INSERT INTO {p}page (id, course, name) VALUES (1, 2, 'Week 1 reading');
INSERT INTO {p}quiz (id, course, name) VALUES (1, 2, 'Quiz <1> & more');
INSERT INTO {p}course_modules (id, course, module, instance, section, idnumber) VALUES
  (10, 2, 1, 1, 20, 'P1'),
  (11, 2, 2, 1, 21, NULL),
  (12, 2, 1, 99, 20, ''),
  (13, 2, 4, 1, 20, 'B'),
  (14, 2, 77, 1, 20, 'X');
INSERT INTO {p}context (id, contextlevel, instanceid) VALUES
  (1, 10, 0), (2, 50, 2), (3, 70, 10), (4, 70, 11), (5, 70, 15), (7, 30, 3);
INSERT INTO {p}enrol (id, enrol, status, courseid) VALUES
  (1, 'manual', 0, 2), (2, 'self', 1, 2), (3, 'manual', 0, 3), (4, 'manual', 0, 4), (5, 'self', 0, 2);
INSERT INTO {p}user_enrolments (id, status, enrolid, userid, timestart) VALUES
  (1, 0, 1, 3, 1000), (2, 0, 2, 3, 500), (3, 1, 3, 3, 100), (4, 0, 4, 3, 0), (5, 0, 5, 3, 800),
  (6, 0, 1, 7, 50);
INSERT INTO {p}grade_items (id, courseid, itemtype, itemmodule) VALUES
  (1, 2, 'course', NULL), (2, 2, 'mod', 'quiz'), (3, 3, 'course', NULL), (4, 4, 'course', NULL),
  (5, 2, 'course', NULL);
INSERT INTO {p}grade_grades (id, itemid, userid, rawgrade, finalgrade) VALUES
  (1, 1, 3, NULL, 72.5),
  (2, 1, 7, 88, NULL),
  (3, 2, 3, NULL, 10),
  (4, 3, 3, NULL, NULL),
  (5, 4, 7, 50, 55.12345),
  (6, 5, 9, NULL, 99);
INSERT INTO {p}logstore_standard_log
  (id, eventname, component, action, target, crud, edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, timecreated, origin, realuserid) VALUES
  (1, 'e', 'core', 'loggedin', 'user', 'r', 0, 1, 10, 0, 3, 0, 1000, 'web', NULL),
  (2, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 3, 2, 1010, 'web', NULL),
  (4, 'e', 'mod_page', 'viewed', 'course_module', 'r', 2, 3, 70, 10, 3, 2, 1020, 'web', NULL),
  (3, 'e', 'mod_quiz', 'viewed', 'course_module', 'r', 2, 4, 70, 11, 3, 2, 1020, NULL, NULL),
  (5, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 3, 2, 1030, 'cli', NULL),
  (6, 'e', 'core', 'failed', 'user_login', 'r', 0, 1, 10, 0, 3, 0, 1040, 'web', NULL),
  (7, 'e', 'core', 'failed', 'something', 'r', 0, 2, 50, 2, 3, 2, 1040, 'web', NULL),
  (8, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 3, 2, 1050, 'web', 2),
  (9, 'e', 'core', 'viewed', 'dashboard', 'r', 0, 7, 30, 3, 3, 0, 1060, 'web', NULL),
  (10, 'e', 'core', 'loggedin', 'user', 'r', 0, 1, 10, 0, 3, NULL, 1070, 'web', NULL),
  (11, 'e', 'mod_page', 'viewed', 'course_module', 'r', 2, 5, 70, 15, 3, 2, 1080, 'web', NULL),
  (12, 'e', 'mod_page', 'viewed', 'course_module', 'r', 2, 6, 70, 16, 3, 2, 1090, 'web', NULL),
  (13, 'e', 'core', 'loggedout', 'user', 'r', 0, 1, 10, 0, 3, 0, 1100, 'web', NULL),
  (14, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 3, 2, 999, 'web', NULL),
  (15, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 3, 2, 2000, 'web', NULL),
  (16, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 3, 2, 2001, 'web', NULL),
  (17, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 3, 3, 1500, 'ws', NULL),
  (18, 'e', 'core', 'graded', 'user', 'u', 2, 2, 50, 2, 3, 2, 1500, 'restore', NULL),
  (21, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 7, 2, 1500, 'web', NULL),
  (20, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 7, 2, 1005, 'web', NULL),
  (30, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 8, 2, 900, 'web', NULL);
"#;
    conn.batch_execute(&sql.replace("{p}", p)).expect("fixture");
}

fn source_with_fixture(db: &TestDb) -> (DbConnection, Source) {
    let mut conn = db.connect();
    fixture(&mut conn, "mdl_");
    (conn, Source::new("mdl_").unwrap())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut DbConnection, table: &str) -> Result<i64, diesel::result::Error> {
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<Count>(conn)
        .map(|c| c.n)
}

fn migrate_is_idempotent(db: &TestDb) {
    let mut conn = db.connect();
    assert_eq!(migrate_source(&mut conn, "mdl_").unwrap(), 4);
    assert_eq!(migrate_source(&mut conn, "mdl_").unwrap(), 0);
    // A fresh connection sees the recorded versions too.
    let mut conn2 = db.connect();
    assert_eq!(migrate_source(&mut conn2, "mdl_").unwrap(), 0);
    assert_eq!(count(&mut conn, "mdl_usestats_schema").unwrap(), 4);
    assert_eq!(count(&mut conn, "mdl_logstore_standard_log").unwrap(), 0);
}

fn prefix_is_respected(db: &TestDb) {
    let mut conn = db.connect();
    fixture(&mut conn, "t_");
    assert_eq!(count(&mut conn, "t_user").unwrap(), 10);
    assert!(count(&mut conn, "mdl_user").is_err());
    let s = Source::new("t_").unwrap();
    let anna = s
        .find_user(&mut conn, UserField::Username, "anna.meyer")
        .unwrap()
        .unwrap();
    assert_eq!(anna.id, 3);
    let mut n = 0;
    s.for_each_user_log(&mut conn, 3, 0, i64::MAX, |_| n += 1)
        .unwrap();
    assert_eq!(
        n, 12,
        "window [0, max] keeps the rows outside [1000, 2000] too"
    );
    // A second prefix in the same database is independent.
    assert_eq!(migrate_source(&mut conn, "mdl_").unwrap(), 4);
    assert_eq!(count(&mut conn, "mdl_user").unwrap(), 0);
    assert_eq!(count(&mut conn, "t_user").unwrap(), 10);

    for bad in [
        "",
        "Mdl_",
        "mdl-",
        "x;drop table t_user;--",
        "a_very_long_prefix_123",
    ] {
        assert!(
            matches!(Source::new(bad), Err(SourceError::InvalidPrefix(_))),
            "{bad}"
        );
        assert!(
            matches!(
                migrate_source(&mut conn, bad),
                Err(SourceError::InvalidPrefix(_))
            ),
            "{bad}"
        );
    }
}

fn mnet_lookups(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    assert_eq!(s.local_mnet_host_id(&mut conn).unwrap(), Some(1));
    let id = |c: &mut DbConnection, w: &str| s.mnet_host_id_by_wwwroot(c, w).unwrap();
    assert_eq!(id(&mut conn, "https://lms.example.org"), Some(1));
    assert_eq!(id(&mut conn, "https://lms.example.org/"), Some(1));
    assert_eq!(id(&mut conn, "HTTPS://LMS.example.org"), Some(1));
    assert_eq!(id(&mut conn, "https://remote.example.net"), Some(3));
    assert_eq!(id(&mut conn, "https://gone.example.com"), Some(5));
    assert_eq!(id(&mut conn, ""), None);
    assert_eq!(id(&mut conn, "https://unknown.example"), None);
    let h = s.mnet_host(&mut conn, 3).unwrap().unwrap();
    assert_eq!(h.wwwroot, "https://Remote.Example.net/");
    assert!(!h.deleted);
    assert!(s.mnet_host(&mut conn, 4).unwrap().unwrap().deleted);
    assert!(s.mnet_host(&mut conn, 42).unwrap().is_none());
    assert_eq!(s.site_course_id(&mut conn).unwrap(), 1);
}

fn user_lookups(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let find =
        |c: &mut DbConnection, f: UserField, v: &str| s.find_user(c, f, v).unwrap().map(|u| u.id);
    assert_eq!(find(&mut conn, UserField::Id, "3"), Some(3));
    assert_eq!(find(&mut conn, UserField::Id, "5"), None, "deleted");
    assert_eq!(find(&mut conn, UserField::Id, "abc"), None);
    assert_eq!(find(&mut conn, UserField::Id, ""), None);
    // Two accounts share the username; the lower id wins.
    assert_eq!(find(&mut conn, UserField::Username, "anna.meyer"), Some(3));
    assert_eq!(find(&mut conn, UserField::Username, "nobody"), None);
    // Exact on every backend, even under MySQL's case-insensitive, space-padding collations.
    assert_eq!(find(&mut conn, UserField::Username, "anna.meyer "), None);
    assert_eq!(find(&mut conn, UserField::Username, "Anna.Meyer"), None);
    assert_eq!(find(&mut conn, UserField::Email, "ADMIN@example.org"), None);
    assert_eq!(find(&mut conn, UserField::IdNumber, "DUP"), Some(6));
    assert_eq!(find(&mut conn, UserField::IdNumber, ""), None);
    assert_eq!(
        find(&mut conn, UserField::Email, "shared@example.org"),
        Some(6)
    );
    assert_eq!(find(&mut conn, UserField::Email, ""), None);
    let anna = s
        .find_user(&mut conn, UserField::Email, "anna@example.org")
        .unwrap()
        .unwrap();
    assert_eq!(anna.username, "anna.meyer");
    assert_eq!(anna.mnethostid, 1);
    assert_eq!(anna.firstname, "Anna");
    assert_eq!(anna.lastname, "Meyer");
    assert_eq!(anna.idnumber, "S100");
    assert_eq!((anna.deleted, anna.suspended), (false, false));
    let carl = s.find_user(&mut conn, UserField::Id, "6").unwrap().unwrap();
    assert!(carl.suspended);

    // Many at once: the same users, in the order asked, in a few statements.
    for (field, values) in [
        (UserField::Id, vec!["3", "5", "abc", "", "6", "003", "3"]),
        (
            UserField::Username,
            vec![
                "anna.meyer",
                "nobody",
                "anna.meyer ",
                "Anna.Meyer",
                "eve.stone",
                "",
            ],
        ),
        (UserField::IdNumber, vec!["DUP", "", "S100", "s100"]),
        (
            UserField::Email,
            vec![
                "shared@example.org",
                "ADMIN@example.org",
                "anna@example.org",
                "",
            ],
        ),
    ] {
        let values: Vec<String> = values.into_iter().map(String::from).collect();
        let many: Vec<Option<i64>> = s
            .find_users(&mut conn, field, &values)
            .unwrap()
            .into_iter()
            .map(|u| u.map(|u| u.id))
            .collect();
        let one: Vec<Option<i64>> = values.iter().map(|v| find(&mut conn, field, v)).collect();
        assert_eq!(many, one, "{field:?}");
    }

    // B17: the local account wins even though the remote one has the lower id.
    let rpc = |c: &mut DbConnection, u: &str| s.find_user_for_rpc(c, u).unwrap().map(|u| u.id);
    assert_eq!(rpc(&mut conn, "anna.meyer"), Some(3));
    assert_eq!(rpc(&mut conn, "eve.stone"), Some(8));
    assert_eq!(rpc(&mut conn, "ghost"), None);
    assert_eq!(rpc(&mut conn, ""), None);

    let mnet =
        |c: &mut DbConnection, u: &str, h: i64| s.find_mnet_user(c, u, h).unwrap().map(|u| u.id);
    assert_eq!(mnet(&mut conn, "anna.meyer", 3), Some(4));
    assert_eq!(mnet(&mut conn, "anna.meyer", 1), Some(3));
    assert_eq!(mnet(&mut conn, "anna.meyer", 2), None);
    assert_eq!(mnet(&mut conn, "ghost", 1), None);
}

fn user_for_rpc_without_local_host_config(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    conn.batch_execute("DELETE FROM mdl_config").unwrap();
    assert_eq!(s.local_mnet_host_id(&mut conn).unwrap(), None);
    let u = s
        .find_user_for_rpc(&mut conn, "anna.meyer")
        .unwrap()
        .unwrap();
    assert_eq!(u.id, 3, "lowest id when the local host is unknown");
    conn.batch_execute("DELETE FROM mdl_course").unwrap();
    assert_eq!(s.site_course_id(&mut conn).unwrap(), 1);
}

fn course_lookups(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let find = |c: &mut DbConnection, f: CourseField, v: &str| {
        s.find_course(c, f, v).unwrap().map(|c| c.id)
    };
    assert_eq!(find(&mut conn, CourseField::Id, "2"), Some(2));
    assert_eq!(find(&mut conn, CourseField::Id, "x2"), None);
    assert_eq!(find(&mut conn, CourseField::Id, "99"), None);
    assert_eq!(find(&mut conn, CourseField::IdNumber, "C-CHEM2"), Some(4));
    assert_eq!(find(&mut conn, CourseField::IdNumber, ""), None);
    assert_eq!(find(&mut conn, CourseField::ShortName, "CHEM"), Some(3));
    assert_eq!(find(&mut conn, CourseField::ShortName, "chem"), None);
    assert_eq!(find(&mut conn, CourseField::ShortName, "CHEM  "), None);
    assert_eq!(find(&mut conn, CourseField::IdNumber, "c-stat"), None);
    let c = s
        .find_course(&mut conn, CourseField::ShortName, "STAT101")
        .unwrap()
        .unwrap();
    assert_eq!(c.fullname, "Statistics & Data");
    assert_eq!(c.idnumber, "C-STAT");
    assert_eq!(c.category, 1);

    let map = s.courses_by_ids(&mut conn, &[1, 3, 42, 3]).unwrap();
    let mut ids: Vec<_> = map.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, vec![1, 3]);
    assert_eq!(map[&1].category, 0);
    assert!(s.courses_by_ids(&mut conn, &[]).unwrap().is_empty());
}

fn module_labels(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let labels = s
        .module_labels(&mut conn, &[10, 11, 12, 13, 14, 15, 10])
        .unwrap();
    let mut keys: Vec<_> = labels.keys().copied().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![10, 11, 12, 13],
        "cm 15 gone, cm 14 has no module type"
    );
    assert_eq!(labels[&10].name, "Week 1 reading");
    assert_eq!(labels[&10].modname, "page");
    assert_eq!(labels[&10].idnumber, "P1");
    assert_eq!(labels[&11].name, "Quiz <1> & more");
    assert_eq!(labels[&11].modname, "quiz");
    assert_eq!(labels[&11].idnumber, "");
    assert_eq!(labels[&12].name, "", "instance row missing");
    assert_eq!(labels[&13].modname, "Bad;mod");
    assert_eq!(
        labels[&13].name, "",
        "unsafe module table name is never queried"
    );
    assert!(s.module_labels(&mut conn, &[]).unwrap().is_empty());
}

fn enrolment_starts(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let starts = s.enrolment_starts(&mut conn, 3).unwrap();
    // Course 2: 1000 and 800 are active, 500 belongs to a disabled enrol instance.
    // Course 3: only a suspended enrolment. Course 4: timestart 0.
    assert_eq!(starts, HashMap::from([(2, 800), (4, 0)]));
    assert_eq!(
        s.enrolment_starts(&mut conn, 7).unwrap(),
        HashMap::from([(2, 50)])
    );
    assert!(s.enrolment_starts(&mut conn, 8).unwrap().is_empty());
    let many = s.enrolment_starts_for_users(&mut conn, &[3, 7, 8]).unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(many[&3], starts);
    assert_eq!(many[&7], HashMap::from([(2, 50)]));
}

fn course_grades(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let g = |c: &mut DbConnection, u: i64, course: i64| s.course_grade(c, u, course).unwrap();
    assert_eq!(g(&mut conn, 3, 2).as_deref(), Some("72.50000"));
    assert_eq!(
        g(&mut conn, 7, 2).as_deref(),
        Some("88.00000"),
        "rawgrade fallback"
    );
    assert_eq!(g(&mut conn, 7, 4).as_deref(), Some("55.12345"));
    assert_eq!(g(&mut conn, 3, 3), None, "both NULL");
    assert_eq!(g(&mut conn, 9, 3), None, "no row for this user (B21)");
    assert_eq!(g(&mut conn, 3, 4), None, "no grade row");
    assert_eq!(g(&mut conn, 3, 99), None, "no course item");
    // User 9's grade sits on the second course item of course 2, which is not the course total.
    assert_eq!(g(&mut conn, 9, 2), None);

    let mine = s.user_course_grades(&mut conn, 3).unwrap();
    assert_eq!(mine, HashMap::from([(2, "72.50000".to_owned())]));
    let course2 = s.users_course_grades(&mut conn, &[3, 7, 9], 2).unwrap();
    assert_eq!(
        course2,
        HashMap::from([(3, "72.50000".to_owned()), (7, "88.00000".to_owned())])
    );
}

fn ids(rows: &[LogRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

fn log_scan_filters_and_order(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let mut rows = Vec::new();
    let n = s
        .for_each_user_log(&mut conn, 3, 1000, 2000, |r| rows.push(r))
        .unwrap();
    assert_eq!(n, rows.len() as u64);
    // Dropped: 5 cli, 6 and 7 failed, 8 logged-in-as, 9 course-0 non-login, 10 NULL course,
    // 14 and 16 outside the inclusive window. Kept: 3 (NULL origin), 17 (ws), 18 (restore).
    assert_eq!(ids(&rows), vec![1, 2, 3, 4, 11, 12, 13, 17, 18, 15]);
    let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
    assert_eq!(
        times,
        vec![1000, 1010, 1020, 1020, 1080, 1090, 1100, 1500, 1500, 2000]
    );

    let r1 = &rows[0];
    assert_eq!(r1.userid, 3);
    assert_eq!(r1.course, Some(0));
    assert_eq!(r1.context_level, 10);
    assert_eq!(
        (r1.action.as_str(), r1.target.as_str()),
        ("loggedin", "user")
    );
    assert_eq!(r1.origin.as_deref(), Some("web"));
    assert_eq!(r1.realuserid, None);
    assert_eq!(r1.module, ModuleInfo::NotModule);
    assert_eq!(rows[1].module, ModuleInfo::NotModule);
    assert_eq!(rows[2].origin, None);
    assert_eq!(
        rows[2].module,
        ModuleInfo::Cm {
            cmid: 11,
            module: Some("quiz".into()),
            section: Some(21)
        }
    );
    assert_eq!(
        rows[3].module,
        ModuleInfo::Cm {
            cmid: 10,
            module: Some("page".into()),
            section: Some(20)
        }
    );
    assert_eq!(
        rows[4].module,
        ModuleInfo::Cm {
            cmid: 15,
            module: None,
            section: None
        }
    );
    assert_eq!(rows[5].module, ModuleInfo::ContextGone);
    assert_eq!(rows[6].action, "loggedout");
    assert_eq!(rows[7].course, Some(3));
    assert_eq!(
        (rows[8].action.as_str(), rows[8].target.as_str()),
        ("graded", "user")
    );

    let mut narrow = Vec::new();
    s.for_each_user_log(&mut conn, 3, 1020, 1020, |r| narrow.push(r.id))
        .unwrap();
    assert_eq!(narrow, vec![3, 4]);
    let mut none = 0;
    s.for_each_user_log(&mut conn, 42, 0, i64::MAX, |_| none += 1)
        .unwrap();
    assert_eq!(none, 0);
}

/// The compiler's read (log columns by position, module contexts resolved per slice) gives
/// every row what the joined read gives it: a live cm, a cm whose row is gone, a context that
/// is gone; and it keeps the rows the joined read filters out.
fn compiler_read_equals_joined_read(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let all = s.logs_in_ids(&mut conn, 0, 1_000).unwrap();
    assert_eq!(
        ids(&all),
        [
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 30
        ]
    );
    let mut joined = Vec::new();
    s.for_each_users_log(&mut conn, &[3, 7, 8], 0, i64::MAX, |r| joined.push(r))
        .unwrap();
    assert!(joined.len() >= 14, "{}", joined.len());
    for row in &joined {
        let bare = all.iter().find(|b| b.id == row.id).expect("row read");
        assert_eq!(bare, row);
    }
    let by_id = |id: i64| all.iter().find(|r| r.id == id).unwrap().module.clone();
    assert_eq!(
        by_id(3),
        ModuleInfo::Cm {
            cmid: 11,
            module: Some("quiz".into()),
            section: Some(21),
        }
    );
    assert_eq!(
        by_id(11),
        ModuleInfo::Cm {
            cmid: 15,
            module: None,
            section: None,
        }
    );
    assert_eq!(by_id(12), ModuleInfo::ContextGone);
    assert_eq!(by_id(9), ModuleInfo::NotModule);
    // A slice boundary is exclusive at the top; the rows after a mark, by user.
    assert_eq!(ids(&s.logs_in_ids(&mut conn, 5, 9).unwrap()), [5, 6, 7, 8]);
    assert_eq!(
        ids(&s.logs_after(&mut conn, &[3, 8], 15).unwrap()),
        [16, 17, 18, 30]
    );
    assert!(s.logs_after(&mut conn, &[], 0).unwrap().is_empty());
}

fn users_log_scan_order(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let mut rows = Vec::new();
    let n = s
        .for_each_users_log(&mut conn, &[7, 3, 999, 7], 1000, 2000, |r| rows.push(r))
        .unwrap();
    assert_eq!(n, 12);
    // One pass in log id order, across the users.
    let keys: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    let ids_of = |u: i64| -> Vec<i64> {
        rows.iter()
            .filter(|r| r.userid == u)
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids_of(3), [1, 2, 3, 4, 11, 12, 13, 15, 17, 18]);
    assert_eq!(ids_of(7), [20, 21]);
    // Each user's part holds the single-user scan's rows, in id order instead of (time, id).
    let mut single = Vec::new();
    s.for_each_user_log(&mut conn, 3, 1000, 2000, |r| single.push(r))
        .unwrap();
    let mut part: Vec<_> = rows.iter().filter(|r| r.userid == 3).cloned().collect();
    part.sort_by_key(|r| (r.time, r.id));
    assert_eq!(single, part);
    let mut empty = 0;
    s.for_each_users_log(&mut conn, &[], 0, i64::MAX, |_| empty += 1)
        .unwrap();
    assert_eq!(empty, 0);

    // Hundreds of users in one call, with rows far apart in the id order: the same rows as one
    // scan per user.
    conn.batch_execute(
        "INSERT INTO mdl_logstore_standard_log \
         (id, eventname, component, action, target, crud, edulevel, contextid, contextlevel, \
          contextinstanceid, userid, courseid, timecreated, origin, realuserid) VALUES \
         (100, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 400, 2, 1200, 'web', NULL), \
         (101, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 400, 2, 1100, 'web', NULL), \
         (102, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 250, 2, 1300, 'web', NULL)",
    )
    .unwrap();
    let mut many: Vec<i64> = (1..=450).rev().collect();
    many.push(3);
    let mut rows = Vec::new();
    s.for_each_users_log(&mut conn, &many, 1000, 2000, |r| {
        rows.push((r.userid, r.id))
    })
    .unwrap();
    let mut expected = Vec::new();
    for user in 1..=450 {
        s.for_each_user_log(&mut conn, user, 1000, 2000, |r| {
            expected.push((r.userid, r.id))
        })
        .unwrap();
    }
    assert_eq!(
        rows.len(),
        12 + 3,
        "users 3 and 7 as above, then 250 and 400"
    );
    // Per user, the batch gives exactly the single-user scans' rows.
    for user in [3, 7, 250, 400] {
        let of = |v: &[(i64, i64)]| -> Vec<(i64, i64)> {
            let mut mine: Vec<_> = v.iter().filter(|p| p.0 == user).copied().collect();
            mine.sort_unstable();
            mine
        };
        assert_eq!(of(&rows), of(&expected), "user {user}");
    }
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
}

/// The batch reports equal the single-user reports when ids and times disagree: rows up to a few
/// minutes early (users 2 and 3: put in order in memory), a row far earlier than one already
/// counted (user 8, id 32: that user is read again alone), and rows in different id slices.
fn batch_reports_equal_single_reports(db: &TestDb) {
    let (mut conn, s) = source_with_fixture(db);
    let id_far = 3 * usestats::store::source::IDS_PER_BATCH_QUERY + 7;
    conn.batch_execute(&format!(
        "INSERT INTO mdl_logstore_standard_log \
         (id, eventname, component, action, target, crud, edulevel, contextid, contextlevel, \
          contextinstanceid, userid, courseid, timecreated, origin, realuserid) VALUES \
         (31, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 8, 2, 1500, 'web', NULL), \
         (32, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 8, 2, 100, 'web', NULL), \
         (40, 'e', 'core', 'loggedin', 'user', 'r', 0, 1, 10, 0, 2, 0, 5000, 'web', NULL), \
         (41, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 2, 2, 4990, 'web', NULL), \
         (42, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 2, 3, 5100, 'web', NULL), \
         ({id_far}, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 8, 2, 950, 'web', NULL), \
         ({}, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, 2, 2, 2, 5040, 'web', NULL)",
        id_far + 1
    ))
    .unwrap();
    let settings = usestats::stats::Settings::default();
    let window = usestats::stats::Window {
        from: 0,
        to: 10_000,
        now: 10_000,
    };
    // More users than are read one by one, so the batch makes its pass over the log.
    let mut users = vec![2, 3, 7, 8, 10, 999];
    users.extend(5000..5000 + usestats::reports::USERS_READ_ONE_BY_ONE as i64);
    let batch = usestats::reports::users_reports(&mut conn, &s, &settings, &users, window).unwrap();
    assert_eq!(batch.len(), users.len());
    for &user in &users {
        let single =
            usestats::reports::user_report(&mut conn, &s, &settings, user, window, false).unwrap();
        assert_eq!(batch.get(&user), Some(&single), "user {user}");
    }
    // Not empty reports compared with empty ones: users 2, 3 and 8 have time.
    for user in [2, 3, 8] {
        assert!(batch[&user].total > 0, "user {user}");
    }
}

on_both_backends! { mysql;
    migrate_idempotent => super::migrate_is_idempotent;
    prefix_respected => super::prefix_is_respected;
    mnet => super::mnet_lookups;
    users => super::user_lookups;
    users_without_config => super::user_for_rpc_without_local_host_config;
    courses => super::course_lookups;
    modules => super::module_labels;
    enrolments => super::enrolment_starts;
    grades => super::course_grades;
    log_scan => super::log_scan_filters_and_order;
    users_log_scan => super::users_log_scan_order;
    compiler_read => super::compiler_read_equals_joined_read;
    batch_reports => super::batch_reports_equal_single_reports;
}

/// The batch's reorder window against the reference, on random logs: rows of three users
/// with times that mostly rise but now and then jump back (a little, within the window, or
/// far, beyond it), spread over several id slices. Every user's batch report must equal the
/// single-user read, whatever the order.
mod batch_order_property {
    use super::*;
    use proptest::prelude::*;

    fn insert_rows(conn: &mut DbConnection, rows: &[(i64, i64, i64, i64)]) {
        let values: Vec<String> = rows
            .iter()
            .map(|(id, user, course, time)| {
                format!(
                    "({id}, 'e', 'core', 'viewed', 'course', 'r', 2, 2, 50, {course}, {user}, {course}, {time}, 'web', NULL)"
                )
            })
            .collect();
        for chunk in values.chunks(200) {
            conn.batch_execute(&format!(
                "INSERT INTO mdl_logstore_standard_log \
                 (id, eventname, component, action, target, crud, edulevel, contextid, contextlevel, \
                  contextinstanceid, userid, courseid, timecreated, origin, realuserid) VALUES {}",
                chunk.join(", ")
            ))
            .unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn batch_reports_equal_single_reports_on_random_logs(
            steps in proptest::collection::vec((0usize..3, 0usize..2, -1500i64..400, 1i64..3), 1..120),
        ) {
            let db = TestDb::sqlite();
            let (mut conn, s) = source_with_fixture(&db);
            let users = [2i64, 3, 8];
            let courses = [2i64, 3];
            let mut time = 20_000i64;
            let mut id = 1_000i64;
            let mut rows = Vec::new();
            for (user, course, jump, gap) in steps {
                // Mostly forward; a negative jump sends a row back in time.
                time = (time + jump).max(10_000);
                // Ids skip ahead now and then, so rows land in different slices.
                id += if gap == 2 { usestats::store::source::IDS_PER_BATCH_QUERY } else { 1 };
                rows.push((id, users[user], courses[course], time));
            }
            insert_rows(&mut conn, &rows);
            let settings = usestats::stats::Settings::default();
            let window = usestats::stats::Window { from: 0, to: 1_000_000, now: 1_000_000 };
            let mut asked = users.to_vec();
            asked.extend(6000..6000 + usestats::reports::USERS_READ_ONE_BY_ONE as i64);
            let batch = usestats::reports::users_reports(&mut conn, &s, &settings, &asked, window).unwrap();
            for user in users {
                let single = usestats::reports::user_report(&mut conn, &s, &settings, user, window, false).unwrap();
                prop_assert_eq!(batch.get(&user), Some(&single), "user {}", user);
            }
        }
    }
}
