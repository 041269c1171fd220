//! Dedication from the compiled store against the live read: on random logs in a Moodle-shaped
//! database, for random windows and block_dedication settings, both variants' answers from the
//! store equal the live rule's, field for field, after the compile, with rows logged since,
//! late rows, deleted rows, and after a change of the plugin's settings (docs/engine.md §7.5).

mod common;

use std::collections::HashMap;

use common::db::TestDb;
use diesel::connection::SimpleConnection;
use proptest::prelude::*;
use usestats::compiled::dedication::{answer_dedication, dedication_users};
use usestats::compiled::{self, CompileOptions, CompiledStore, DeletionCheck};
use usestats::estimators::{self, DedicationQuery, dedication_settings};
use usestats::stats::Settings;
use usestats::stats::dedication::{Dedication, Variant};
use usestats::store::source::{Source, migrate_source};
use usestats::store::{Db, DbConnection, migrate_state};

const USERS: [i64; 3] = [3, 7, 8];
const T0: i64 = 1_000_000;
const SOURCE_KEY: &str = "test-source";
const VARIANTS: [Variant; 2] = [Variant::Live, Variant::Legacy];

fn fixture(conn: &mut DbConnection) {
    migrate_source(conn, "mdl_").expect("migrate source");
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
    ("\\mod_page\\event\\course_module_viewed", Some(2), Some("ws")),
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
    for chunk in values.chunks(200) {
        conn.batch_execute(&format!(
            "INSERT INTO mdl_logstore_standard_log \
             (id, eventname, component, action, target, crud, edulevel, contextid, contextlevel, \
              contextinstanceid, userid, courseid, timecreated, origin, realuserid) VALUES {}",
            chunk.join(", ")
        ))
        .expect("insert log rows");
    }
}

type Steps = Vec<(usize, usize, i64)>;

/// Rows of the three users, each moving forward by steps that include 0 (equal times) and
/// gaps exactly equal to the limits tried; ids follow insertion.
fn rows(steps: &Steps, first_id: i64, clocks: &mut [i64; 3]) -> Vec<Row> {
    steps
        .iter()
        .enumerate()
        .map(|(i, &(user, kind, step))| {
            clocks[user] += step;
            (first_id + i as i64, USERS[user], clocks[user], kind)
        })
        .collect()
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

/// Windows as `(from, to, now)`: offsets from T0, 0 for the rule's defaults.
fn windows() -> impl Strategy<Value = Vec<(i64, i64, i64)>> {
    let edge = prop_oneof![1 => Just(None), 4 => (-1_000i64..250_000).prop_map(Some)];
    prop::collection::vec((edge.clone(), edge, 0i64..300_000), 3).prop_map(|ws| {
        ws.into_iter()
            .map(|(from, to, now)| {
                let (from, to) = match (from, to) {
                    (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                    other => other,
                };
                (from.map_or(0, |f| T0 + f), to.map_or(0, |t| T0 + t), T0 + now)
            })
            .collect()
    })
}

struct Site {
    _source: TestDb,
    _state: Option<TestDb>,
    _state_dir: tempfile::TempDir,
    conn: DbConnection,
    store: CompiledStore,
    source: Source,
    settings: Settings,
}

/// A Moodle-shaped source and a state database, both SQLite or both PostgreSQL (None when
/// PostgreSQL is not configured and not required).
fn site_on(postgres: bool, check: DeletionCheck) -> Option<Site> {
    let (source_db, state_db) = if postgres {
        (TestDb::postgres()?, TestDb::postgres())
    } else {
        (TestDb::sqlite(), None)
    };
    let mut conn = source_db.connect();
    fixture(&mut conn);
    let dir = tempfile::tempdir().expect("tempdir");
    let state_url = match &state_db {
        Some(db) => db.url(),
        None => dir.path().join("state.db").to_string_lossy().into_owned(),
    };
    let state = Db::open(&state_url, 2).expect("state db");
    migrate_state(&mut state.get().expect("state connection")).expect("migrate state");
    Some(Site {
        _source: source_db,
        _state: state_db,
        _state_dir: dir,
        conn,
        store: CompiledStore {
            state,
            source_key: SOURCE_KEY.into(),
            in_source: false,
            deletion_check: check,
        },
        source: Source::new("mdl_").expect("prefix"),
        settings: Settings::default(),
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
                    let query = DedicationQuery {
                        variant,
                        settings,
                        userids: &USERS,
                        course,
                        from,
                        to,
                        now,
                    };
                    answered += self.compare(&query);
                }
            }
        }
        answered
    }

    fn compare(&mut self, query: &DedicationQuery) -> usize {
        let live: HashMap<i64, Dedication> =
            estimators::dedication_users(&mut self.conn, &self.source, query).expect("live");
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
            assert_eq!(Some(answer), live.get(user), "user {user}, {query:?}");
        }
        let both = dedication_users(
            &mut self.conn,
            &self.store,
            &self.settings,
            &self.source,
            query,
        )
        .expect("compiled or live");
        assert_eq!(both.answers, live, "{query:?}");
        direct.answers.len()
    }
}

/// Everything a case does, in order; each step's answers are compared with the live read.
fn store_equals_live(
    mut site: Site,
    plugin: Plugin,
    other_plugin: Plugin,
    first: &Steps,
    appended: &Steps,
    late: &[(usize, usize, i64)],
    deleted: &[usize],
    windows: &[(i64, i64, i64)],
    ignore: Option<i64>,
) -> Result<(), TestCaseError> {
    let census = site.store.deletion_check == DeletionCheck::Census;
    let all_answered = 2 * 3 * USERS.len() * windows.len();
    site.save_plugin(plugin);
    let mut clocks = [T0; 3];
    let first_rows = rows(first, 1, &mut clocks);
    insert(&mut site.conn, &first_rows);
    site.compile();
    // Straight after a compile, the store answers for everyone: the comparisons are not of
    // two live reads.
    prop_assert_eq!(site.check(windows, ignore), all_answered);

    // Rows logged since the compile are merged in by the answer.
    let appended_rows = rows(appended, 1_000, &mut clocks);
    insert(&mut site.conn, &appended_rows);
    prop_assert_eq!(site.check(windows, ignore), all_answered);
    site.compile();
    prop_assert_eq!(site.check(windows, ignore), all_answered);

    // Late rows: new ids, old times.
    let late_rows: Vec<Row> = late
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
    for &pick in deleted {
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
    site.save_plugin(other_plugin);
    site.check(windows, ignore);
    site.compile();
    prop_assert_eq!(site.check(windows, ignore), all_answered);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dedication_from_the_store_equals_the_live_rule(
        plugin in plugin(),
        other_plugin in plugin(),
        first in steps(),
        appended in steps(),
        late in prop::collection::vec((0usize..3, 0usize..KINDS.len(), 0i64..150_000), 0..6),
        deleted in prop::collection::vec(0usize..200, 0..4),
        windows in windows(),
        ignore in prop::option::of(prop::sample::select(vec![0i64, 1, 60, 600])),
        census in any::<bool>(),
    ) {
        let check = if census { DeletionCheck::Census } else { DeletionCheck::Count };
        let site = site_on(false, check).expect("SQLite is always there");
        store_equals_live(site, plugin, other_plugin, &first, &appended, &late, &deleted, &windows, ignore)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, failure_persistence: None, ..ProptestConfig::default() })]

    /// The same on PostgreSQL, as state and as source.
    #[test]
    fn dedication_from_the_store_equals_the_live_rule_on_postgres(
        plugin in plugin(),
        other_plugin in plugin(),
        first in steps(),
        appended in steps(),
        late in prop::collection::vec((0usize..3, 0usize..KINDS.len(), 0i64..150_000), 0..6),
        deleted in prop::collection::vec(0usize..200, 0..4),
        windows in windows(),
        ignore in prop::option::of(prop::sample::select(vec![0i64, 1, 60, 600])),
    ) {
        let Some(site) = site_on(true, DeletionCheck::Census) else { return Ok(()) };
        store_equals_live(site, plugin, other_plugin, &first, &appended, &late, &deleted, &windows, ignore)?;
    }
}
