//! The compiled store against the reference: on random logs in a real Moodle-shaped database,
//! every answer from the compiled store equals a full scan's, field for field, for random
//! windows and settings, before and after rows are appended, arrive late, are deleted, and
//! after enrolment, activity and settings changes.

mod common;

use std::collections::HashMap;

use common::db::TestDb;
use diesel::connection::SimpleConnection;
use proptest::prelude::*;
use usestats::compiled::{self, CompileOptions, CompiledStore, DeletionCheck};
use usestats::reports::{answer_user, answer_users, user_report, users_reports};
use usestats::stats::{Settings, Window};
use usestats::store::source::{Source, migrate_source};
use usestats::store::{Db, DbConnection, migrate_state};

const USERS: [i64; 3] = [3, 7, 8];
const T0: i64 = 1_000_000;
const SOURCE_KEY: &str = "test-source";

fn fixture(conn: &mut DbConnection) {
    migrate_source(conn, "mdl_").expect("migrate source");
    conn.batch_execute(
        r#"
INSERT INTO mdl_config (id, name, value) VALUES (1, 'mnet_localhost_id', '1');
INSERT INTO mdl_mnet_host (id, deleted, wwwroot, name) VALUES (1, 0, 'https://lms.example.org', 'Local');
INSERT INTO mdl_user (id, auth, deleted, suspended, mnethostid, username, idnumber, firstname, lastname, email) VALUES
  (3, 'manual', 0, 0, 1, 'anna', '', 'Anna', 'A', ''),
  (7, 'manual', 0, 0, 1, 'dora', '', 'Dora', 'D', ''),
  (8, 'manual', 0, 0, 1, 'eve', '', 'Eve', 'E', '');
INSERT INTO mdl_course (id, category, fullname, shortname, idnumber) VALUES
  (1, 0, 'Site', 'site', ''), (2, 1, 'Two', 'C2', ''), (3, 1, 'Three', 'C3', '');
INSERT INTO mdl_modules (id, name) VALUES (1, 'page'), (2, 'quiz'), (3, 'forum');
INSERT INTO mdl_course_modules (id, course, module, instance, section, idnumber) VALUES
  (10, 2, 1, 1, 20, ''), (11, 2, 2, 1, 21, ''), (12, 3, 3, 1, 22, '');
INSERT INTO mdl_context (id, contextlevel, instanceid) VALUES
  (1, 10, 0), (2, 50, 2), (3, 70, 10), (4, 70, 11), (5, 70, 12), (6, 70, 15), (7, 30, 3), (8, 50, 3);
INSERT INTO mdl_enrol (id, enrol, status, courseid) VALUES (1, 'manual', 0, 2), (2, 'manual', 0, 3);
INSERT INTO mdl_user_enrolments (id, status, enrolid, userid, timestart) VALUES
  (1, 0, 1, 3, 1001000), (2, 0, 2, 3, 0), (3, 0, 1, 7, 1003000), (4, 0, 2, 8, 1002000);
"#,
    )
    .expect("fixture");
}

/// What a row is about: (action, target, contextid, contextlevel, instanceid, courseid,
/// origin, realuserid).
type Kind = (
    &'static str,
    &'static str,
    i64,
    i64,
    i64,
    Option<i64>,
    &'static str,
    Option<i64>,
);

const KINDS: [Kind; 14] = [
    ("viewed", "course", 2, 50, 2, Some(2), "web", None),
    ("viewed", "course", 8, 50, 3, Some(3), "web", None),
    ("viewed", "course_module", 3, 70, 10, Some(2), "web", None),
    ("viewed", "course_module", 4, 70, 11, Some(2), "web", None),
    ("viewed", "course_module", 5, 70, 12, Some(3), "web", None),
    // A cm gone with its context kept, and a context gone.
    ("viewed", "course_module", 6, 70, 15, Some(2), "web", None),
    ("viewed", "course_module", 99, 70, 16, Some(2), "web", None),
    ("loggedin", "user", 1, 10, 0, Some(0), "web", None),
    ("loggedout", "user", 1, 10, 0, Some(0), "web", None),
    ("graded", "user", 2, 50, 2, Some(2), "web", None),
    ("viewed", "course", 2, 50, 2, Some(2), "cli", None),
    ("failed", "user_login", 1, 10, 0, Some(0), "web", None),
    ("viewed", "course", 2, 50, 2, Some(2), "web", Some(2)),
    ("viewed", "dashboard", 7, 30, 3, Some(0), "web", None),
];

/// A row: (id, user, time, kind).
type Row = (i64, i64, i64, usize);

fn insert(conn: &mut DbConnection, rows: &[Row]) {
    let values: Vec<String> = rows
        .iter()
        .map(|&(id, user, time, kind)| {
            let (action, target, ctx, level, instance, course, origin, real) = KINDS[kind];
            format!(
                "({id}, 'e', 'core', '{action}', '{target}', 'r', 0, {ctx}, {level}, {instance}, {user}, {}, {time}, '{origin}', {})",
                course.map_or("NULL".to_string(), |c| c.to_string()),
                real.map_or("NULL".to_string(), |r| r.to_string()),
            )
        })
        .collect();
    common::db::insert_log_values(conn, &values);
}

/// Rows of the three users, each moving forward in time by short steps and now and then by
/// more than any threshold; ids follow insertion.
fn rows(steps: &[(usize, usize, i64)], first_id: i64, clocks: &mut [i64; 3]) -> Vec<Row> {
    common::db::stepped_rows(steps, &USERS, first_id, clocks)
}

fn steps() -> impl Strategy<Value = Vec<(usize, usize, i64)>> {
    let step = prop_oneof![
        6 => 0i64..400,
        2 => 400i64..4_000,
        1 => 4_000i64..20_000,
    ];
    prop::collection::vec((0usize..3, 0usize..KINDS.len(), step), 0..70)
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        prop::sample::select(vec![5i64, 20, 60]),
        prop::sample::select(vec![0i64, 10, 15]),
        any::<bool>(),
        prop::sample::select(vec![vec![], vec!["quiz"], vec!["quiz", "page"]]),
        prop::sample::select(vec![vec![], vec!["forum"]]),
        any::<bool>(),
    )
        .prop_map(
            |(threshold, credit, single, capture, ignore, filter)| Settings {
                threshold_minutes: threshold,
                lastpingcredit_minutes: credit,
                one_session_per_course: single,
                capture_modules: capture.into_iter().map(str::to_string).collect(),
                ignore_modules: ignore.into_iter().map(str::to_string).collect(),
                enrolment_filter: filter,
            },
        )
}

/// Windows as offsets from T0: some cover everything, some cut sessions at either end, some
/// end before `now` or are asked at a `now` before the last row.
fn windows() -> impl Strategy<Value = Vec<(i64, i64, i64)>> {
    prop::collection::vec((-1_000i64..120_000, 0i64..200_000, -20_000i64..50_000), 4)
}

struct Site {
    _source: TestDb,
    _state: Option<TestDb>,
    _state_dir: tempfile::TempDir,
    conn: DbConnection,
    store: CompiledStore,
    source: Source,
    commit_ids: i64,
}

fn site() -> Site {
    site_checking(DeletionCheck::Count)
}

fn site_checking(check: DeletionCheck) -> Site {
    site_on(false, check).expect("SQLite is always there")
}

/// A Moodle-shaped source and a state database, both SQLite or both PostgreSQL (None when
/// PostgreSQL is not configured and not required).
fn site_on(postgres: bool, check: DeletionCheck) -> Option<Site> {
    let dbs = common::db::source_and_state(postgres)?;
    let mut conn = dbs.source.connect();
    fixture(&mut conn);
    Some(Site {
        _source: dbs.source,
        _state: dbs.state_db,
        _state_dir: dbs.state_dir,
        conn,
        store: CompiledStore {
            state: dbs.state,
            source_key: SOURCE_KEY.into(),
            in_source: false,
            deletion_check: check,
        },
        source: Source::new("mdl_").expect("prefix"),
        commit_ids: 7,
    })
}

impl Site {
    fn compile(&mut self, settings: &Settings, now: i64) -> compiled::CompileSummary {
        let mut state = self.store.state.get().expect("state connection");
        let options = CompileOptions {
            // Small commits, so that passes commit in the middle of users' sessions.
            commit_ids: self.commit_ids,
            ..CompileOptions::default()
        };
        compiled::compile(
            &mut state,
            &mut self.conn,
            &self.source,
            settings,
            SOURCE_KEY,
            now,
            options,
        )
        .expect("compile")
    }

    /// Every window's compiled answers against full scans; returns how many users the store
    /// answered itself (not by falling back to a scan).
    fn check(&mut self, settings: &Settings, windows: &[(i64, i64, i64)]) -> usize {
        let mut answered = 0;
        for &(from, length, after) in windows {
            let window = Window {
                from: T0 + from,
                to: T0 + from + length,
                now: T0 + from + length + after,
            };
            let mut state = self.store.state.get().expect("state connection");
            let direct = compiled::answer(
                Some(&mut state),
                &mut self.conn,
                &compiled::Question {
                    source: &self.source,
                    settings,
                    source_key: SOURCE_KEY,
                    check: self.store.deletion_check,
                    userids: &USERS,
                    window,
                    keep_sessions: true,
                },
            )
            .expect("compiled answer");
            drop(state);
            answered += direct.reports.len();
            for (user, report) in &direct.reports {
                let full = user_report(&mut self.conn, &self.source, settings, *user, window, true)
                    .expect("full scan");
                assert_eq!(report, &full, "user {user}, window {window:?}");
            }
            let batch = answer_users(
                &mut self.conn,
                &self.source,
                settings,
                Some(&self.store),
                &USERS,
                window,
            )
            .expect("compiled batch");
            let reference = users_reports(&mut self.conn, &self.source, settings, &USERS, window)
                .expect("full batch");
            assert_eq!(batch, reference, "batch, window {window:?}");
            for user in USERS {
                let one = answer_user(
                    &mut self.conn,
                    &self.source,
                    settings,
                    Some(&self.store),
                    user,
                    window,
                    false,
                )
                .expect("compiled single");
                assert_eq!(Some(&one), reference.get(&user), "user {user}");
            }
        }
        answered
    }

    fn exec(&mut self, sql: &str) {
        self.conn.batch_execute(sql).expect(sql);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compiled_answers_equal_full_scans(
        settings in settings(),
        first in steps(),
        appended in steps(),
        late in prop::collection::vec((0usize..3, 0usize..KINDS.len(), 0i64..150_000), 0..6),
        deleted in prop::collection::vec(0usize..200, 0..4),
        windows in windows(),
        census in any::<bool>(),
    ) {
        let check = if census { DeletionCheck::Census } else { DeletionCheck::Count };
        let site = site_checking(check);
        answers_equal_full_scans(site, &settings, &first, &appended, &late, &deleted, &windows)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    /// The same on PostgreSQL, as state and as source.
    #[test]
    fn compiled_answers_equal_full_scans_on_postgres(
        settings in settings(),
        first in steps(),
        appended in steps(),
        late in prop::collection::vec((0usize..3, 0usize..KINDS.len(), 0i64..150_000), 0..6),
        deleted in prop::collection::vec(0usize..200, 0..4),
        windows in windows(),
    ) {
        let Some(site) = site_on(true, DeletionCheck::Census) else { return Ok(()) };
        answers_equal_full_scans(site, &settings, &first, &appended, &late, &deleted, &windows)?;
    }
}

/// The settings both shrunk cases below came with: a 5-minute threshold, no last-ping credit.
fn shrunk_settings() -> Settings {
    Settings {
        threshold_minutes: 5,
        lastpingcredit_minutes: 0,
        ..Settings::default()
    }
}

/// A case proptest once shrank to (SQLite, the count check): a late row at the window's start,
/// before the user's first segment, with "now" before the window's end.
#[test]
fn late_row_at_the_window_start_before_every_segment() {
    let settings = shrunk_settings();
    let windows = [
        (17258, 39996, 23436),
        (1934, 7825, -3222),
        (31362, 167715, 3747),
        (9434, 62474, 2816),
    ];
    let site = site_checking(DeletionCheck::Count);
    answers_equal_full_scans(
        site,
        &settings,
        &[(2, 0, 9760)],
        &[(2, 0, 301), (2, 0, 400)],
        &[(2, 0, 1934)],
        &[],
        &windows,
    )
    .unwrap();
}

type Steps = [(usize, usize, i64)];

fn answers_equal_full_scans(
    mut site: Site,
    settings: &Settings,
    first: &Steps,
    appended: &Steps,
    late: &Steps,
    deleted: &[usize],
    windows: &[(i64, i64, i64)],
) -> Result<(), TestCaseError> {
    let census = site.store.deletion_check == DeletionCheck::Census;
    let (settings, windows) = (settings.clone(), windows.to_vec());
    let mut clocks = [T0; 3];
    let first_rows = rows(first, 1, &mut clocks);
    insert(&mut site.conn, &first_rows);
    let now = T0 + 400_000;
    site.compile(&settings, now);
    // Straight after a compile, the store answers for everyone.
    let answered = site.check(&settings, &windows);
    prop_assert_eq!(answered, USERS.len() * windows.len());

    // Rows appended after the compile: read past the high-water mark.
    let appended_rows = rows(appended, 1_000, &mut clocks);
    insert(&mut site.conn, &appended_rows);
    site.check(&settings, &windows);
    site.compile(&settings, now);
    let answered = site.check(&settings, &windows);
    prop_assert_eq!(answered, USERS.len() * windows.len());

    // Late rows: new ids, old times.
    let late_rows: Vec<Row> = late
        .iter()
        .enumerate()
        .map(|(i, &(user, kind, offset))| (5_000 + i as i64, USERS[user], T0 + offset, kind))
        .collect();
    insert(&mut site.conn, &late_rows);
    site.check(&settings, &windows);
    site.compile(&settings, now);
    site.check(&settings, &windows);

    // Deleted rows (log retention, privacy requests).
    let all: Vec<Row> = first_rows
        .iter()
        .chain(&appended_rows)
        .chain(&late_rows)
        .copied()
        .collect();
    for &pick in deleted {
        if let Some(row) = all.get(pick % all.len().max(1)) {
            site.exec(&format!(
                "DELETE FROM mdl_logstore_standard_log WHERE id = {}",
                row.0
            ));
        }
    }
    if census {
        // A privacy request's deletion is found by the next pass's census.
        site.compile(&settings, now);
    }
    site.check(&settings, &windows);
    site.compile(&settings, now);
    let answered = site.check(&settings, &windows);
    prop_assert_eq!(answered, USERS.len() * windows.len());

    // Enrolments change under the filter, then an activity is deleted with its context.
    site.exec("UPDATE mdl_user_enrolments SET timestart = timestart + 5000 WHERE userid = 3");
    site.check(&settings, &windows);
    site.compile(&settings, now);
    site.check(&settings, &windows);
    site.exec("DELETE FROM mdl_context WHERE id = 4; DELETE FROM mdl_course_modules WHERE id = 11");
    site.check(&settings, &windows);
    site.compile(&settings, now);
    site.check(&settings, &windows);

    // Other settings: the store was compiled with different ones and is not used.
    let mut other = settings.clone();
    other.threshold_minutes += 7;
    prop_assert_eq!(site.check(&other, &windows), 0);
    site.compile(&other, now);
    let answered = site.check(&other, &windows);
    prop_assert_eq!(answered, USERS.len() * windows.len());
    Ok(())
}

/// The store is a cache: rebuilding it from scratch gives the same rows as building it by
/// small incremental passes.
#[test]
fn incremental_compile_equals_a_full_one() {
    let mut site = site();
    let mut clocks = [T0; 3];
    let steps: Vec<(usize, usize, i64)> = (0..300)
        .map(|i| {
            (
                i % 3,
                (i * 7) % KINDS.len(),
                ((i * 37) % 900) as i64 * if i % 41 == 0 { 40 } else { 1 },
            )
        })
        .collect();
    let all = rows(&steps, 1, &mut clocks);
    let settings = Settings::default();
    for chunk in all.chunks(23) {
        insert(&mut site.conn, chunk);
        site.compile(&settings, T0 + 10_000_000);
    }
    let window = Window {
        from: 0,
        to: T0 + 10_000_000,
        now: T0 + 10_000_000,
    };
    let mut state = site.store.state.get().unwrap();
    let incremental = compiled::answer(
        Some(&mut state),
        &mut site.conn,
        &compiled::Question {
            source: &site.source,
            settings: &settings,
            source_key: SOURCE_KEY,
            check: DeletionCheck::Count,
            userids: &USERS,
            window,
            keep_sessions: true,
        },
    )
    .unwrap();
    drop(state);
    assert!(incremental.fallback.is_empty());
    let mut state = site.store.state.get().unwrap();
    let summary = compiled::compile(
        &mut state,
        &mut site.conn,
        &site.source,
        &settings,
        SOURCE_KEY,
        T0 + 10_000_000,
        CompileOptions {
            full: true,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    assert!(summary.from_scratch);
    assert_eq!(summary.rows_read, all.len() as u64);
    let full = compiled::answer(
        Some(&mut state),
        &mut site.conn,
        &compiled::Question {
            source: &site.source,
            settings: &settings,
            source_key: SOURCE_KEY,
            check: DeletionCheck::Count,
            userids: &USERS,
            window,
            keep_sessions: true,
        },
    )
    .unwrap();
    assert_eq!(incremental.reports, full.reports);
    let reference: HashMap<_, _> = USERS
        .iter()
        .map(|&u| {
            (
                u,
                user_report(&mut site.conn, &site.source, &settings, u, window, true).unwrap(),
            )
        })
        .collect();
    assert_eq!(full.reports, reference);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// `deletion_check = "census"` sees Moodle's log retention (the oldest rows) at once, and
    /// still answers from the store; a privacy request (a user's rows, all or in a context)
    /// is found by the next pass's census.
    #[test]
    fn census_sees_retention_at_once_and_other_deletions_at_the_next_pass(
        settings in settings(),
        first in steps(),
        cutoff in 0i64..60_000,
        gone in 0usize..3,
        context in prop::sample::select(vec![2i64, 3, 4, 8]),
        windows in windows(),
        postgres in any::<bool>(),
    ) {
        census_case(&settings, &first, cutoff, gone, context, &windows, postgres)?;
    }
}

/// A case proptest once shrank to (SQLite): a one-row session left after retention.
#[test]
fn census_case_retention_leaves_a_one_row_session() {
    let settings = shrunk_settings();
    let first = [
        (0, 0, 12097),
        (0, 0, 3),
        (0, 5, 70),
        (1, 12, 18809),
        (1, 3, 164),
    ];
    let windows = [
        (81149, 26571, -8895),
        (45237, 177504, -14663),
        (25604, 193153, -12842),
        (12167, 132569, -17926),
    ];
    census_case(&settings, &first, 11850, 0, 2, &windows, false).unwrap();
}

fn census_case(
    settings: &Settings,
    first: &[(usize, usize, i64)],
    cutoff: i64,
    gone: usize,
    context: i64,
    windows: &[(i64, i64, i64)],
    postgres: bool,
) -> Result<(), TestCaseError> {
    let Some(mut site) = site_on(postgres, DeletionCheck::Census) else {
        return Ok(());
    };
    let mut clocks = [T0; 3];
    insert(&mut site.conn, &rows(first, 1, &mut clocks));
    let now = T0 + 400_000;
    site.compile(settings, now);
    let answered = site.check(settings, windows);
    prop_assert_eq!(answered, USERS.len() * windows.len());
    site.exec(&format!(
        "DELETE FROM mdl_logstore_standard_log WHERE timecreated < {}",
        T0 + cutoff
    ));
    let answered = site.check(settings, windows);
    prop_assert_eq!(
        answered,
        USERS.len() * windows.len(),
        "retention needs no full scan"
    );
    site.compile(settings, now);
    site.check(settings, windows);
    site.exec(&format!(
        "DELETE FROM mdl_logstore_standard_log WHERE userid = {} AND contextid = {context}",
        USERS[(gone + 1) % 3]
    ));
    site.exec(&format!(
        "DELETE FROM mdl_logstore_standard_log WHERE userid = {}",
        USERS[gone]
    ));
    site.compile(settings, now);
    let answered = site.check(settings, windows);
    prop_assert_eq!(answered, USERS.len() * windows.len());

    // A row committed under the mark (its id was taken before rows the last pass read).
    insert(
        &mut site.conn,
        &[(0, USERS[(gone + 2) % 3], T0 + cutoff + 77, 0)],
    );
    site.compile(settings, now);
    let answered = site.check(settings, windows);
    prop_assert_eq!(answered, USERS.len() * windows.len());
    Ok(())
}

/// Two passes at once (`usestats compile` beside `serve`): the one that finds the store moved
/// on under it stops without writing, so no row is counted twice.
#[test]
fn a_pass_that_finds_the_store_moved_on_writes_nothing() {
    let mut site = site();
    let mut clocks = [T0; 3];
    let steps: Vec<(usize, usize, i64)> = (0..60).map(|i| (i % 3, 0, 100 + i as i64)).collect();
    insert(&mut site.conn, &rows(&steps[..30], 1, &mut clocks));
    let settings = Settings::default();
    site.compile(&settings, T0 + 1_000_000);
    insert(&mut site.conn, &rows(&steps[30..], 100, &mut clocks));
    let other = site.store.state.clone();
    let mut state = site.store.state.get().unwrap();
    let result = compiled::compile(
        &mut state,
        &mut site.conn,
        &site.source,
        &settings,
        SOURCE_KEY,
        T0 + 1_000_000,
        CompileOptions {
            progress: Some(Box::new(move |_, _| {
                // Another pass commits while this one reads.
                other
                    .get()
                    .unwrap()
                    .batch_execute("UPDATE compiled_meta SET high_water = high_water + 1")
                    .unwrap();
            })),
            ..CompileOptions::default()
        },
    );
    assert!(
        matches!(result, Err(compiled::CompiledError::Concurrent)),
        "{result:?}"
    );
    drop(state);
    let users_grown: i64 = {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut state = site.store.state.get().unwrap();
        diesel::sql_query("SELECT COUNT(*) AS n FROM compiled_users WHERE raw_rows > 10")
            .get_result::<N>(&mut state)
            .unwrap()
            .n
    };
    assert_eq!(users_grown, 0, "the stopped pass wrote no user row");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Rows deleted and late rows arriving between two passes, with no answer in between to
    /// notice the deletion first: the pass that reads the late row must not keep segments
    /// whose rows were deleted. The busiest user loses their first row (log retention) and
    /// gets a late row three quarters into their history.
    #[test]
    fn a_late_row_after_a_deletion_does_not_hide_it(
        settings in settings(),
        first in steps(),
        kind in 0usize..3,
        windows in windows(),
    ) {
        let mut site = site();
        let mut clocks = [T0; 3];
        let first_rows = rows(&first, 1, &mut clocks);
        insert(&mut site.conn, &first_rows);
        let now = T0 + 400_000;
        site.compile(&settings, now);
        let busiest = *USERS
            .iter()
            .max_by_key(|u| first_rows.iter().filter(|r| r.1 == **u).count())
            .unwrap();
        let theirs: Vec<&Row> = first_rows.iter().filter(|r| r.1 == busiest).collect();
        if let (Some(oldest), Some(later)) = (theirs.first(), theirs.get(theirs.len() * 3 / 4)) {
            site.exec(&format!("DELETE FROM mdl_logstore_standard_log WHERE id = {}", oldest.0));
            insert(&mut site.conn, &[(5_000, busiest, later.2, kind)]);
        }
        site.compile(&settings, now);
        // Equal to full scans (`check` asserts it); a user whose deletion no pass has seen
        // is answered by a full scan and marked for the next pass, which then compiles them.
        site.check(&settings, &windows);
        site.compile(&settings, now);
        let answered = site.check(&settings, &windows);
        prop_assert_eq!(answered, USERS.len() * windows.len());
    }
}

/// A long history: thousands of sessions, so answers sum blocks of 16, 256 and 4 096 segments.
/// Sessions are a login and a few rows in course 2 or 3, apart by more than any threshold.
fn long_history(
    user: usize,
    sessions: usize,
    first_id: i64,
    clock: &mut i64,
    seed: u64,
) -> Vec<Row> {
    let mut out = Vec::new();
    let mut state = seed | 1;
    let mut next = || {
        // xorshift: a fixed sequence per seed, no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut id = first_id;
    for _ in 0..sessions {
        *clock += 5_000 + (next() % 20_000) as i64;
        let login = if next() % 4 == 0 { 7 } else { 0 };
        out.push((id, USERS[user], *clock, login));
        id += 1;
        for _ in 0..(1 + next() % 4) {
            *clock += (next() % 500) as i64;
            let kind = [0usize, 1, 2, 3, 4, 9][(next() % 6) as usize];
            out.push((id, USERS[user], *clock, kind));
            id += 1;
        }
    }
    out
}

/// Window edges on row times (±1 s), inside sessions, before the first row and after the last.
fn edge_windows(rows: &[Row], picks: &[(usize, usize, i64, i64)]) -> Vec<(i64, i64, i64)> {
    let times: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let last = times.last().copied().unwrap_or(T0);
    let mut out = vec![(-5_000, last - T0 + 10_000, 0), (0, last - T0, -50_000)];
    for &(a, b, jitter, after) in picks {
        let x = times.get(a % times.len().max(1)).copied().unwrap_or(T0) + jitter;
        let y = times.get(b % times.len().max(1)).copied().unwrap_or(T0) - jitter;
        let (from, to) = (x.min(y), x.max(y));
        out.push((from - T0, to - from, after));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, failure_persistence: None, ..ProptestConfig::default() })]

    /// Answers over thousands of segments equal full scans for windows whose edges fall on
    /// row times, inside sessions, before the first row and after the last; after Moodle's
    /// retention (at once, from the store), late rows and appended rows.
    #[test]
    fn long_histories_sum_blocks_exactly(
        seed in any::<u64>(),
        picks in prop::collection::vec((any::<usize>(), any::<usize>(), -1i64..=1, -30_000i64..30_000), 6),
        postgres in any::<bool>(),
    ) {
        let Some(mut site) = site_on(postgres, DeletionCheck::Census) else { return Ok(()) };
        site.commit_ids = 1_999;
        let settings = Settings { threshold_minutes: 60, ..Settings::default() };
        let mut clock = T0;
        let sessions = if postgres { 1_400 } else { 4_500 };
        let rows = long_history(0, sessions, 1, &mut clock, seed);
        let mut other_clock = T0;
        let others = long_history(1, 300, 1_000_000, &mut other_clock, seed ^ 0x5eed);
        insert(&mut site.conn, &rows);
        insert(&mut site.conn, &others);
        let now = clock + 100_000;
        site.compile(&settings, now);
        let windows = edge_windows(&rows, &picks);
        let answered = site.check(&settings, &windows);
        prop_assert_eq!(answered, USERS.len() * windows.len());

        // Retention: the oldest tenth goes; answers stay exact and from the store.
        let cutoff = rows[rows.len() / 10].2;
        site.exec(&format!("DELETE FROM mdl_logstore_standard_log WHERE timecreated < {cutoff}"));
        let answered = site.check(&settings, &windows);
        prop_assert_eq!(answered, USERS.len() * windows.len());

        // A late row in the middle of the history, and rows appended at the end.
        let middle = rows[rows.len() / 2].2 + 1;
        insert(&mut site.conn, &[(2_000_000, USERS[0], middle, 2)]);
        let appended = long_history(0, 20, 2_000_001, &mut clock, seed ^ 7);
        insert(&mut site.conn, &appended);
        site.check(&settings, &windows);
        site.compile(&settings, now);
        let answered = site.check(&settings, &windows);
        prop_assert_eq!(answered, USERS.len() * windows.len());
    }
}

/// Statements an all-user answer sends, counted by the connection itself: they do not grow
/// with the users asked, window or not (docs/engine.md §7.1), on SQLite and PostgreSQL.
#[test]
fn statements_do_not_grow_with_the_users() {
    use diesel::connection::{Connection, InstrumentationEvent};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use usestats::demo::{DemoOptions, build_demo};

    let mut dbs = vec![TestDb::sqlite()];
    dbs.extend(TestDb::postgres());
    for db in dbs {
        let mut conn = db.connect();
        migrate_state(&mut conn).expect("migrate state");
        let demo = DemoOptions {
            users: 120,
            log_rows: 30_000,
            ..DemoOptions::default()
        };
        build_demo(&mut conn, "mdl_", &demo).expect("demo");
        let state = Db::open(&db.url(), 2).expect("state db");
        let source = Source::new("mdl_").expect("prefix");
        let settings = Settings::default();
        let store = CompiledStore {
            state: state.clone(),
            source_key: SOURCE_KEY.into(),
            in_source: true,
            deletion_check: DeletionCheck::Census,
        };
        let now = demo.anchor + 3_600;
        compiled::compile(
            &mut state.get().expect("state connection"),
            &mut conn,
            &source,
            &settings,
            SOURCE_KEY,
            now,
            CompileOptions::default(),
        )
        .expect("compile");
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        let users: Vec<i64> = {
            use diesel::RunQueryDsl;
            diesel::sql_query(
                "SELECT DISTINCT userid AS id FROM mdl_logstore_standard_log ORDER BY 1",
            )
            .load::<Id>(&mut conn)
            .expect("users")
            .into_iter()
            .map(|r| r.id)
            .collect()
        };
        assert!(users.len() > 100, "{} users", users.len());
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        let whole = Window {
            from: 0,
            to: now,
            now,
        };
        let term = Window {
            from: demo.anchor - 120 * 86_400,
            to: demo.anchor - 30 * 86_400,
            now,
        };
        for window in [whole, term] {
            let mut counts = Vec::new();
            for asked in [&users[..3], &users[..]] {
                let before = sent.load(Ordering::Relaxed);
                let answers =
                    answer_users(&mut conn, &source, &settings, Some(&store), asked, window)
                        .expect("answers");
                counts.push(sent.load(Ordering::Relaxed) - before);
                let full = users_reports(&mut conn, &source, &settings, asked, window)
                    .expect("full scans");
                assert_eq!(answers, full, "window {window:?}");
            }
            assert_eq!(
                counts[0],
                counts[1],
                "{} users vs 3, window {window:?}",
                users.len()
            );
            assert!(counts[1] <= 12, "{counts:?} statements, window {window:?}");
        }
    }
}
