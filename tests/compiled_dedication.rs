//! Dedication from the compiled store against the live read: on random logs in a Moodle-shaped
//! database, for random windows and block_dedication settings, both variants' answers from the
//! store equal the live rule's, field for field, after the compile, with rows logged since,
//! late rows, deleted rows, and after a change of the plugin's settings (docs/engine.md §7.6).

mod common;

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use proptest::prelude::*;
use usestats::compiled::dedication::{answer_dedication, dedication_users};
use usestats::compiled::{self, CompileOptions, CompiledStore, DeletionCheck};
use usestats::estimators::{self, DedicationQuery, dedication_settings};
use usestats::stats::Settings;
use usestats::stats::dedication::{Dedication, Variant};
use usestats::store::DbConnection;
use usestats::store::source::{Source, migrate_source};

const USERS: [i64; 3] = [3, 7, 8];
const T0: i64 = 1_000_000;
const SOURCE_KEY: &str = "test-source";
const VARIANTS: [Variant; 2] = [Variant::Live, Variant::Legacy];

fn fixture(conn: &mut DbConnection) {
    migrate_source(conn, "mdl_").expect("migrate source");
    if matches!(conn, DbConnection::Mysql(_)) {
        // Event names hold backslashes, which MySQL's string literals would otherwise eat.
        conn.batch_execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            .expect("sql_mode");
    }
    conn.batch_execute(
        r#"
INSERT INTO mdl_config (id, name, value) VALUES (1, 'mnet_localhost_id', '1');
INSERT INTO mdl_user (id, auth, deleted, suspended, mnethostid, username, idnumber, firstname, lastname, email) VALUES
  (3, 'manual', 0, 0, 1, 'anna', '', 'Anna', 'A', ''),
  (7, 'manual', 0, 0, 1, 'dora', '', 'Dora', 'D', ''),
  (8, 'manual', 0, 0, 1, 'eve', '', 'Eve', 'E', '');
INSERT INTO mdl_course (id, category, fullname, shortname, idnumber, startdate) VALUES
  (1, 0, 'Site', 'site', '', 0), (2, 1, 'Two', 'C2', '', 1030000), (3, 1, 'Three', 'C3', '', 0);
"#,
    )
    .expect("fixture");
}

/// What a row is: (eventname, courseid, origin). Malformed names, course 0 and NULL, NULL and
/// `cli` origins are all there: each variant counts some of them.
const KINDS: [(&str, Option<i64>, Option<&str>); 9] = [
    ("\\core\\event\\course_viewed", Some(2), Some("web")),
    ("\\core\\event\\course_viewed", Some(3), Some("web")),
    (
        "\\mod_page\\event\\course_module_viewed",
        Some(2),
        Some("ws"),
    ),
    ("\\core\\event\\course_viewed", Some(2), None),
    ("\\core\\event\\course_viewed", Some(3), Some("cli")),
    ("not an event", Some(2), Some("web")),
    ("\\core\\event\\viewed", Some(3), Some("web")),
    ("\\core\\event\\user_loggedin", Some(0), Some("web")),
    ("\\core\\event\\course_viewed", None, Some("web")),
];

/// A row: (id, user, time, kind).
type Row = (i64, i64, i64, usize);

fn insert(conn: &mut DbConnection, rows: &[Row]) {
    let values: Vec<String> = rows
        .iter()
        .map(|&(id, user, time, kind)| {
            let (event, course, origin) = KINDS[kind];
            format!(
                "({id}, '{event}', 'core', 'viewed', 'course', 'r', 0, 2, 50, 2, {user}, {}, {time}, {}, NULL)",
                course.map_or("NULL".to_string(), |c| c.to_string()),
                origin.map_or("NULL".to_string(), |o| format!("'{o}'")),
            )
        })
        .collect();
    common::db::insert_log_values(conn, &values);
}

type Steps = Vec<(usize, usize, i64)>;

/// Rows of the three users, each moving forward by steps that include 0 (equal times) and
/// gaps exactly equal to the limits tried; ids follow insertion.
fn rows(steps: &[(usize, usize, i64)], first_id: i64, clocks: &mut [i64; 3]) -> Vec<Row> {
    common::db::stepped_rows(steps, &USERS, first_id, clocks)
}

fn steps() -> impl Strategy<Value = Steps> {
    let step = prop_oneof![
        2 => Just(0i64),
        2 => prop::sample::select(vec![60i64, 61, 600, 601, 3600, 3601]),
        4 => 1i64..400,
        2 => 400i64..4_000,
        1 => 4_000i64..90_000,
    ];
    prop::collection::vec((0usize..3, 0usize..KINDS.len(), step), 0..60)
}

/// block_dedication's settings as saved in config_plugins: `None` never saved.
type Plugin = (Option<&'static str>, Option<&'static str>);

fn plugin() -> impl Strategy<Value = Plugin> {
    (
        prop::sample::select(vec![None, Some("60"), Some("600"), Some(""), Some("3600")]),
        prop::sample::select(vec![None, Some("0"), Some("60"), Some("120"), Some("")]),
    )
}

/// Windows as `(from, to, now)`: offsets from T0, 0 for the rule's defaults. Some are whole
/// UTC days (from a day's first second to a day's last), as the store's blocks of days are.
fn windows() -> impl Strategy<Value = Vec<(i64, i64, i64)>> {
    const DAY: i64 = 86_400;
    let edge = prop_oneof![1 => Just(None), 4 => (-1_000i64..2_500_000).prop_map(Some)];
    prop::collection::vec((edge.clone(), edge, 0i64..3_000_000, any::<bool>()), 3).prop_map(|ws| {
        ws.into_iter()
            .map(|(from, to, now, whole_days)| {
                let (from, to) = match (from, to) {
                    (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                    other => other,
                };
                let (from, to) = (from.map(|f| T0 + f), to.map(|t| T0 + t));
                let (from, to) = if whole_days {
                    (
                        from.map(|f| f.div_euclid(DAY) * DAY),
                        to.map(|t| (t.div_euclid(DAY) + 1) * DAY - 1),
                    )
                } else {
                    (from, to)
                };
                (from.unwrap_or(0), to.unwrap_or(0), T0 + now)
            })
            .collect()
    })
}

struct Site {
    /// Kept for the databases' lifetime.
    _dbs: common::db::SourceAndState,
    conn: DbConnection,
    store: CompiledStore,
    source: Source,
    settings: Settings,
}

/// A Moodle-shaped source and a state database, both SQLite or both PostgreSQL (None when
/// PostgreSQL is not configured and not required).
fn site_on(postgres: bool, check: DeletionCheck) -> Option<Site> {
    let dbs = common::db::source_and_state(postgres)?;
    let mut conn = dbs.source.connect();
    fixture(&mut conn);
    Some(Site {
        store: CompiledStore {
            state: dbs.state.clone(),
            source_key: SOURCE_KEY.into(),
            in_source: false,
            deletion_check: check,
        },
        source: Source::new("mdl_").expect("prefix"),
        settings: Settings::default(),
        conn,
        _dbs: dbs,
    })
}

impl Site {
    fn compile(&mut self) {
        let mut state = self.store.state.get().expect("state connection");
        let options = CompileOptions {
            commit_ids: 7,
            ..CompileOptions::default()
        };
        let now = T0 + 400_000;
        compiled::compile(
            &mut state,
            &mut self.conn,
            &self.source,
            &self.settings,
            SOURCE_KEY,
            now,
            options,
        )
        .expect("compile");
    }

    fn exec(&mut self, sql: &str) {
        self.conn.batch_execute(sql).expect(sql);
    }

    fn save_plugin(&mut self, (limit, ignore): Plugin) {
        self.exec("DELETE FROM mdl_config_plugins WHERE plugin = 'block_dedication'");
        for (name, value) in [("session_limit", limit), ("ignore_sessions_limit", ignore)] {
            if let Some(value) = value {
                self.exec(&format!(
                    "INSERT INTO mdl_config_plugins (plugin, name, value) \
                     VALUES ('block_dedication', '{name}', '{value}')"
                ));
            }
        }
    }

    /// Every window's answers from the store against the live read, for both variants, all
    /// courses and one course, with the site's ignore limit and `ignore` asked instead.
    /// Returns how many (user, question) pairs the store answered itself.
    fn check(&mut self, windows: &[(i64, i64, i64)], ignore: Option<i64>) -> usize {
        let mut answered = 0;
        for variant in VARIANTS {
            let mut settings =
                dedication_settings(&mut self.conn, &self.source, variant, None).expect("settings");
            if let (Variant::Live, Some(ignore)) = (variant, ignore) {
                settings.ignore_sessions_limit = ignore;
            }
            for &(from, to, now) in windows {
                for course in [None, Some(2), Some(0)] {
                    // With the session lists, and without (the store may answer from its
                    // blocks of days then).
                    for sessions in [true, false] {
                        let query = DedicationQuery {
                            variant,
                            settings,
                            userids: &USERS,
                            course,
                            from,
                            to,
                            now,
                            sessions,
                        };
                        answered += self.compare(&query).len();
                    }
                }
            }
        }
        answered
    }

    /// The store's answer and the live read, compared; returns the users the store answered
    /// itself, and the answers.
    fn compare(&mut self, query: &DedicationQuery) -> Vec<i64> {
        let mut live: HashMap<i64, Dedication> =
            estimators::dedication_users(&mut self.conn, &self.source, query).expect("live");
        if !query.sessions {
            // Not asked for: the lists may be left out, every figure must be there.
            for course in live.values_mut().flat_map(|d| d.courses.iter_mut()) {
                course.sessions.clear();
            }
        }
        let blank = |mut d: Dedication| {
            if !query.sessions {
                for course in &mut d.courses {
                    course.sessions.clear();
                }
            }
            d
        };
        let mut state = self.store.state.get().expect("state connection");
        let direct = answer_dedication(
            Some(&mut state),
            &mut self.conn,
            &self.store,
            &self.settings,
            &self.source,
            query,
        )
        .expect("compiled answer");
        drop(state);
        for (user, answer) in &direct.answers {
            assert_eq!(
                Some(&blank(answer.clone())),
                live.get(user),
                "user {user}, {query:?}"
            );
        }
        let both = dedication_users(
            &mut self.conn,
            &self.store,
            &self.settings,
            &self.source,
            query,
        )
        .expect("compiled or live");
        let both: HashMap<i64, Dedication> = both
            .answers
            .into_iter()
            .map(|(u, d)| (u, blank(d)))
            .collect();
        assert_eq!(both, live, "{query:?}");
        let mut users: Vec<i64> = direct.answers.keys().copied().collect();
        users.sort_unstable();
        users
    }

    /// The site's dedication settings for `variant`, and the one-course question of them.
    fn ask(&mut self, variant: Variant, userids: &'static [i64]) -> DedicationQuery<'static> {
        let settings =
            dedication_settings(&mut self.conn, &self.source, variant, None).expect("settings");
        DedicationQuery {
            variant,
            settings,
            userids,
            course: Some(2),
            from: T0 - 10,
            to: T0 + 100_000,
            now: T0 + 200_000,
            sessions: true,
        }
    }

    fn total(&mut self, query: &DedicationQuery, user: i64) -> i64 {
        let live = estimators::dedication_users(&mut self.conn, &self.source, query).expect("live");
        live.get(&user).map_or(-1, Dedication::total)
    }

    /// Sessions the store holds for `user`.
    fn stored_sessions(&mut self, user: i64) -> i64 {
        let mut state = self.store.state.get().expect("state connection");
        let rows = usestats::store::state::dedication_sessions(
            &mut state,
            &[user],
            0,
            None,
            (i64::MIN, i64::MAX),
        )
        .expect("sessions");
        rows.len() as i64
    }
}

/// One random case: the plugin's settings before and after, the rows logged in turn, rows to
/// delete, the windows and the ignore limit asked (`None`: the site's).
#[derive(Debug)]
struct Case {
    plugin: Plugin,
    other_plugin: Plugin,
    first: Steps,
    appended: Steps,
    late: Steps,
    deleted: Vec<usize>,
    windows: Vec<(i64, i64, i64)>,
    ignore: Option<i64>,
}

/// Everything a case does, in order; each step's answers are compared with the live read.
fn store_equals_live(mut site: Site, case: Case) -> Result<(), TestCaseError> {
    let (windows, ignore) = (&case.windows[..], case.ignore);
    let census = site.store.deletion_check == DeletionCheck::Census;
    // Variants × courses asked × with and without session lists × users × windows.
    let all_answered = 2 * 3 * 2 * USERS.len() * windows.len();
    site.save_plugin(case.plugin);
    let mut clocks = [T0; 3];
    let first_rows = rows(&case.first, 1, &mut clocks);
    insert(&mut site.conn, &first_rows);
    site.compile();
    // Straight after a compile, the store answers for everyone: the comparisons are not of
    // two live reads.
    prop_assert_eq!(site.check(windows, ignore), all_answered);

    // Rows logged since the compile are merged in by the answer.
    let appended_rows = rows(&case.appended, 1_000, &mut clocks);
    insert(&mut site.conn, &appended_rows);
    prop_assert_eq!(site.check(windows, ignore), all_answered);
    site.compile();
    prop_assert_eq!(site.check(windows, ignore), all_answered);

    // Late rows: new ids, old times.
    let late_rows: Vec<Row> = case
        .late
        .iter()
        .enumerate()
        .map(|(i, &(user, kind, offset))| (5_000 + i as i64, USERS[user], T0 + offset, kind))
        .collect();
    insert(&mut site.conn, &late_rows);
    prop_assert_eq!(site.check(windows, ignore), all_answered);
    site.compile();
    prop_assert_eq!(site.check(windows, ignore), all_answered);

    // Deleted rows (privacy requests).
    let all: Vec<Row> = first_rows
        .iter()
        .chain(&appended_rows)
        .chain(&late_rows)
        .copied()
        .collect();
    for &pick in &case.deleted {
        if let Some(row) = all.get(pick % all.len().max(1)) {
            site.exec(&format!(
                "DELETE FROM mdl_logstore_standard_log WHERE id = {}",
                row.0
            ));
        }
    }
    if census {
        // The census of the next pass finds them.
        site.compile();
    }
    site.check(windows, ignore);
    site.compile();
    prop_assert_eq!(site.check(windows, ignore), all_answered);

    // block_dedication's settings change: a session limit other than the one compiled is
    // read live until the next pass.
    site.save_plugin(case.other_plugin);
    site.check(windows, ignore);
    site.compile();
    prop_assert_eq!(site.check(windows, ignore), all_answered);
    Ok(())
}

fn cases() -> impl Strategy<Value = Case> {
    let late = prop::collection::vec((0usize..3, 0usize..KINDS.len(), 0i64..150_000), 0..6);
    let ignore = prop::option::of(prop::sample::select(vec![0i64, 1, 60, 600]));
    (
        (plugin(), plugin()),
        (steps(), steps(), late),
        prop::collection::vec(0usize..200, 0..4),
        windows(),
        ignore,
    )
        .prop_map(
            |((plugin, other_plugin), (first, appended, late), deleted, windows, ignore)| Case {
                plugin,
                other_plugin,
                first,
                appended,
                late,
                deleted,
                windows,
                ignore,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dedication_from_the_store_equals_the_live_rule(case in cases(), census in any::<bool>()) {
        let check = if census { DeletionCheck::Census } else { DeletionCheck::Count };
        let site = site_on(false, check).expect("SQLite is always there");
        store_equals_live(site, case)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, failure_persistence: None, ..ProptestConfig::default() })]

    /// The same on PostgreSQL, as state and as source.
    #[test]
    fn dedication_from_the_store_equals_the_live_rule_on_postgres(case in cases()) {
        let Some(site) = site_on(true, DeletionCheck::Census) else { return Ok(()) };
        store_equals_live(site, case)?;
    }
}

/// Anna (3) has two sessions in course 2, 5 000 s apart; Dora (7) one; Eve (8) none.
fn small_site(check: DeletionCheck) -> Site {
    let mut site = site_on(false, check).expect("SQLite is always there");
    insert(
        &mut site.conn,
        &[
            (1, 3, T0, 0),
            (2, 3, T0 + 100, 2),
            (3, 3, T0 + 200, 0),
            (4, 3, T0 + 5_200, 0),
            (5, 3, T0 + 5_300, 0),
            (6, 7, T0 + 50, 0),
            (7, 7, T0 + 650, 0),
        ],
    );
    site.compile();
    site
}

#[test]
fn a_late_row_joining_two_sessions_is_merged_by_the_answer_and_by_the_next_pass() {
    let mut site = small_site(DeletionCheck::Count);
    let query = site.ask(Variant::Live, &USERS);
    assert_eq!(site.compare(&query), USERS.to_vec());
    let before = site.total(&query, 3);
    // 2 400 s after the first session and 2 600 s before the second: one session now.
    insert(&mut site.conn, &[(100, 3, T0 + 2_600, 0)]);
    assert_eq!(site.compare(&query), USERS.to_vec());
    assert_eq!((before, site.total(&query, 3)), (300, 5_300));
    site.compile();
    assert_eq!(site.compare(&query), USERS.to_vec());
    assert_eq!(site.stored_sessions(3), 1);
}

#[test]
fn deleted_rows_are_never_answered_from_the_store() {
    // The count check sees the deletion at once: Anna is read live until the next pass.
    let mut site = small_site(DeletionCheck::Count);
    let query = site.ask(Variant::Live, &USERS);
    site.exec("DELETE FROM mdl_logstore_standard_log WHERE userid = 3");
    assert_eq!(site.compare(&query), vec![7, 8]);
    assert_eq!(site.total(&query, 3), 0);
    site.compile();
    assert_eq!(site.compare(&query), USERS.to_vec());
    assert_eq!(site.stored_sessions(3), 0);

    // The census finds it at the next pass, which rebuilds the user's sessions.
    let mut site = small_site(DeletionCheck::Census);
    assert_eq!(site.stored_sessions(3), 2);
    site.exec("DELETE FROM mdl_logstore_standard_log WHERE id IN (4, 5)");
    site.compile();
    assert_eq!(site.stored_sessions(3), 1);
    assert_eq!(site.compare(&query), USERS.to_vec());
    assert_eq!(site.total(&query, 3), 200);
}

#[test]
fn a_new_session_limit_is_read_live_until_the_next_pass() {
    let mut site = small_site(DeletionCheck::Count);
    site.save_plugin((Some("150"), None));
    let live = site.ask(Variant::Live, &USERS);
    let legacy = site.ask(Variant::Legacy, &USERS);
    assert_eq!(live.settings.session_limit, 150);
    assert_eq!(site.compare(&live), Vec::<i64>::new());
    // The legacy rule's limit is its report form's, not the plugin's: still compiled.
    assert_eq!(site.compare(&legacy), USERS.to_vec());
    site.compile();
    assert_eq!(site.compare(&live), USERS.to_vec());
    // The ignore limit is applied by the answer: any is answered from the store.
    site.save_plugin((Some("150"), Some("150")));
    let ignoring = site.ask(Variant::Live, &USERS);
    assert_eq!(ignoring.settings.ignore_sessions_limit, 150);
    assert_eq!(site.compare(&ignoring), USERS.to_vec());
    assert_ne!(site.total(&ignoring, 3), site.total(&live, 3));
}

#[test]
fn answers_from_the_store_are_counted() {
    let mut site = small_site(DeletionCheck::Count);
    let query = site.ask(Variant::Legacy, &USERS);
    let count = || usestats::compiled::dedication::dedication_answer_counts()[0].1;
    let before = count();
    assert_eq!(site.compare(&query), USERS.to_vec());
    // Other tests answer in parallel: at least this one's users were counted.
    assert!(count() >= before + USERS.len() as u64);
}

#[test]
fn other_use_stats_settings_leave_dedication_to_the_live_rule_until_recompiled() {
    let mut site = small_site(DeletionCheck::Count);
    let query = site.ask(Variant::Live, &USERS);
    site.settings.threshold_minutes += 7;
    assert_eq!(site.compare(&query), Vec::<i64>::new());
    site.compile();
    assert_eq!(site.compare(&query), USERS.to_vec());
}

/// The embedded demo keeps the store in the source database: one connection serves both.
#[test]
fn a_store_inside_the_source_database_answers_too() {
    let source = common::TestDb::sqlite();
    let mut conn = source.connect();
    fixture(&mut conn);
    usestats::store::migrate_state(&mut conn).expect("migrate state");
    insert(
        &mut conn,
        &[(1, 3, T0, 0), (2, 3, T0 + 100, 0), (3, 7, T0 + 50, 3)],
    );
    let state = usestats::store::Db::open(&source.url(), 2).expect("state db");
    let store = CompiledStore {
        state: state.clone(),
        source_key: SOURCE_KEY.into(),
        in_source: true,
        deletion_check: DeletionCheck::Count,
    };
    let (prefix, settings) = (Source::new("mdl_").expect("prefix"), Settings::default());
    let mut own = state.get().expect("state connection");
    compiled::compile(
        &mut own,
        &mut conn,
        &prefix,
        &settings,
        SOURCE_KEY,
        T0 + 400_000,
        CompileOptions::default(),
    )
    .expect("compile");
    drop(own);
    for variant in VARIANTS {
        let query = DedicationQuery {
            variant,
            settings: dedication_settings(&mut conn, &prefix, variant, None).expect("settings"),
            userids: &USERS,
            course: None,
            from: T0 - 10,
            to: 0,
            now: T0 + 200_000,
            sessions: true,
        };
        let got = dedication_users(&mut conn, &store, &settings, &prefix, &query).expect("answer");
        let live = estimators::dedication_users(&mut conn, &prefix, &query).expect("live");
        assert_eq!(got.fallback, Vec::<i64>::new(), "{variant:?}");
        assert_eq!(got.answers, live, "{variant:?}");
        // Anna's 100 s in course 2 count for both; Dora's `cli` row only for the legacy rule.
        assert_eq!(got.answers[&3].total(), 100);
        assert_eq!(
            got.answers[&7].courses.len(),
            usize::from(variant == Variant::Legacy)
        );
    }
}

/// A MySQL/MariaDB source (the state is SQLite: it cannot be MySQL): the store's reads of the
/// source there too.
#[test]
fn a_mysql_source_is_compiled_and_answered_alike() {
    let Some(source) = common::TestDb::mysql() else {
        return;
    };
    let mut site = site_on(false, DeletionCheck::Count).expect("SQLite is always there");
    site.conn = source.connect();
    fixture(&mut site.conn);
    let mut clocks = [T0; 3];
    let steps: Steps = (0..40)
        .map(|i| (i % 3, i % KINDS.len(), [0, 60, 3600, 3601, 200][i % 5]))
        .collect();
    insert(&mut site.conn, &rows(&steps, 1, &mut clocks));
    site.compile();
    let windows = [(T0 + 100, T0 + 9_000, T0 + 20_000), (0, 0, T0 + 20_000)];
    // Variants × courses asked × with and without session lists × users × windows.
    let all_answered = 2 * 3 * 2 * USERS.len() * windows.len();
    assert_eq!(site.check(&windows, Some(60)), all_answered);
    insert(&mut site.conn, &rows(&steps[..10], 100, &mut clocks));
    assert_eq!(site.check(&windows, None), all_answered);
    drop(source);
}

#[test]
fn without_session_lists_whole_days_are_added_up_from_the_blocks() {
    const DAY: i64 = 86_400;
    let mut site = small_site(DeletionCheck::Count);
    // Rows days before, so that windows from then are not cut at the log's first row.
    insert(
        &mut site.conn,
        &[(8, 3, T0 - 3 * DAY, 0), (9, 7, T0 - 3 * DAY, 0)],
    );
    site.compile();
    for variant in VARIANTS {
        let mut query = site.ask(variant, &USERS);
        query.sessions = false;
        query.course = None;
        // From the first second of the day before to the last of the tenth day after.
        query.from = T0.div_euclid(DAY) * DAY - DAY;
        query.to = (T0.div_euclid(DAY) + 11) * DAY - 1;
        let before = usestats::compiled::dedication::block_answer_count();
        assert_eq!(site.compare(&query), USERS.to_vec());
        // Other tests run alongside and may add to the count, never take from it.
        assert!(
            usestats::compiled::dedication::block_answer_count() >= before + USERS.len() as u64,
            "{variant:?}: the blocks answered"
        );
        // A whole day, then a window ending inside a session: that one is cut from its rows.
        query.from = T0.div_euclid(DAY) * DAY - DAY;
        query.to = T0 + 5_250;
        assert_eq!(site.compare(&query), USERS.to_vec());
        // A window starting inside a session, then whole days.
        query.from = T0 + 150;
        query.to = (T0.div_euclid(DAY) + 3) * DAY - 1;
        assert_eq!(site.compare(&query), USERS.to_vec());
        // Another ignore limit than the blocks were added up with: the sessions answer.
        query.settings.ignore_sessions_limit = 30;
        assert_eq!(site.compare(&query), USERS.to_vec());
    }
}
