//! The dedication rules (docs/engine.md §8), each rule and corner case as a worked example, then
//! properties that must hold for any log.

mod common;

use diesel::connection::SimpleConnection;
use proptest::prelude::*;
use usestats::estimators::{DedicationQuery, EstimatorName, dedication_settings, dedication_users};
use usestats::stats::dedication::{
    CourseDedication, DEFAULT_SESSION_LIMIT, DedicationEstimator, DedicationRow,
    DedicationSettings, DedicationWindow, Dropped, Variant, course_sessions, courses_of,
    event_name_ok, learner, resolve_window,
};

const T0: i64 = 1_772_352_000; // 2026-03-01T08:00:00Z
const C: i64 = 7;
const VIEWED: &str = "\\core\\event\\course_viewed";

fn row(id: i64, time: i64) -> DedicationRow {
    DedicationRow::new(id, time, Some(C), Some("web"), VIEWED)
}

fn rows_at(offsets: &[i64]) -> Vec<DedicationRow> {
    offsets
        .iter()
        .enumerate()
        .map(|(i, &off)| row(i as i64 + 1, T0 + off))
        .collect()
}

fn all_time() -> DedicationWindow {
    DedicationWindow {
        from: 1,
        to: i64::MAX,
    }
}

fn settings(session_limit: i64, ignore: i64) -> DedicationSettings {
    DedicationSettings {
        session_limit,
        ignore_sessions_limit: ignore,
    }
}

fn live(rows: &[DedicationRow], s: DedicationSettings) -> CourseDedication {
    course_sessions(rows, C, all_time(), Variant::Live, s)
}

fn durations(out: &CourseDedication) -> Vec<(i64, Option<Dropped>)> {
    out.sessions
        .iter()
        .map(|s| (s.duration, s.dropped))
        .collect()
}

// --- §3 sessions: strictly greater splits ---------------------------------------------------

#[test]
fn gap_equal_to_the_limit_stays_in_the_session() {
    let out = live(&rows_at(&[0, 3600, 7200]), settings(3600, 0));
    assert_eq!(out.sessions.len(), 1);
    assert_eq!(out.total, 7200);
    assert_eq!(out.sessions[0].start, T0);
    assert_eq!(out.sessions[0].end, T0 + 7200);
    assert_eq!(out.sessions[0].rows, 3);
}

#[test]
fn gap_one_second_over_the_limit_splits() {
    let out = live(&rows_at(&[0, 600, 4201, 4500]), settings(3600, 0));
    assert_eq!(
        durations(&out),
        vec![(600, None), (299, None)],
        "the 3601 s gap is not credited anywhere"
    );
    assert_eq!(out.total, 899);
}

#[test]
fn equal_timestamps_never_split_even_with_a_zero_limit() {
    let out = live(&rows_at(&[0, 0, 0, 1]), settings(0, 0));
    assert_eq!(out.sessions.len(), 2);
    assert_eq!(out.sessions[0].rows, 3);
    assert_eq!(out.sessions[1].rows, 1);
}

// --- §4/§5 duration, kept sessions ----------------------------------------------------------

#[test]
fn duration_equal_to_the_ignore_threshold_is_dropped() {
    let out = live(&rows_at(&[0, 120]), settings(3600, 120));
    assert_eq!(
        durations(&out),
        vec![(120, Some(Dropped::NotOverIgnoreLimit))]
    );
    assert_eq!(out.total, 0);
    assert_eq!((out.kept, out.dropped), (0, 1));

    let out = live(&rows_at(&[0, 121]), settings(3600, 120));
    assert_eq!(durations(&out), vec![(121, None)]);
    assert_eq!(out.total, 121);
}

#[test]
fn one_row_sessions_last_zero_and_are_always_dropped() {
    // Ignore limit 0 (never saved): a 0 s session is still not over it.
    let out = live(&rows_at(&[0, 5000, 5030, 10_000]), settings(3600, 0));
    assert_eq!(
        durations(&out),
        vec![
            (0, Some(Dropped::OneRow)),
            (30, None),
            (0, Some(Dropped::OneRow))
        ]
    );
    assert_eq!(out.total, 30);
    // Several rows in the same second are not one row, but still 0 s.
    let out = live(&rows_at(&[0, 0]), settings(3600, 0));
    assert_eq!(
        durations(&out),
        vec![(0, Some(Dropped::NotOverIgnoreLimit))]
    );
    // A negative limit given by hand does not keep 0 s sessions either.
    let out = live(&rows_at(&[0]), settings(3600, -5));
    assert_eq!(out.total, 0);
    assert_eq!(out.dropped, 1);
}

#[test]
fn no_credit_after_the_last_row() {
    // use_stats would add up to its last-ping credit after t+300; dedication stops there.
    let out = live(&rows_at(&[0, 100, 300]), settings(3600, 0));
    assert_eq!(out.total, 300);
}

// --- §1 rows ---------------------------------------------------------------------------------

#[test]
fn null_origin_and_cli_are_excluded_by_the_live_rule_only() {
    let rows = vec![
        DedicationRow::new(1, T0, Some(C), Some("web"), VIEWED),
        DedicationRow::new(2, T0 + 1000, Some(C), None, VIEWED),
        DedicationRow::new(3, T0 + 2000, Some(C), Some("cli"), VIEWED),
        DedicationRow::new(4, T0 + 2500, Some(C), Some("ws"), VIEWED),
    ];
    // Live: only rows 1 and 4 (gap 2500 s, one session).
    let out = live(&rows, settings(3600, 0));
    assert_eq!(out.rows, 2);
    assert_eq!(out.total, 2500);
    // A NULL origin does not bridge a gap either: with limit 1500 rows 1 and 4 are apart.
    let out = live(&rows, settings(1500, 0));
    assert_eq!(out.total, 0);
    assert_eq!(out.sessions.len(), 2);
    // Legacy: no origin filter, the NULL and cli rows bridge the gaps.
    let out = course_sessions(&rows, C, all_time(), Variant::Legacy, settings(1500, 0));
    assert_eq!(out.rows, 4);
    assert_eq!(out.total, 2500);
}

#[test]
fn event_names_of_the_documented_form_only() {
    for good in [
        "\\core\\event\\course_viewed",
        "\\mod_quiz\\event\\attempt_submitted",
        "\\core\\event\\course_module_viewed",
        "\\block_dedication\\event\\x_y",
        "\\local_x2\\event\\Thing_Done",
    ] {
        assert!(event_name_ok(good), "{good} is well formed");
    }
    for bad in [
        "",
        "course_viewed",
        "core\\event\\course_viewed",
        "\\core\\event\\courseviewed",
        "\\core\\event\\_viewed",
        "\\core\\event\\course_",
        "\\core\\events\\course_viewed",
        "\\core\\event\\sub\\course_viewed",
        "\\\\event\\course_viewed",
        "\\core\\event\\course viewed",
        "\\core\\event\\course-viewed_x",
        "\\mod-quiz\\event\\attempt_submitted",
        "\\core\\event\\",
        "\\core\\event\\course_viewed\\",
        "\\core\\event\\cours\u{e9}_viewed",
    ] {
        assert!(!event_name_ok(bad), "{bad:?} is malformed");
    }
}

#[test]
fn malformed_event_names_are_skipped_by_both_rules() {
    let rows = vec![
        DedicationRow::new(1, T0, Some(C), Some("web"), VIEWED),
        DedicationRow::new(2, T0 + 1000, Some(C), Some("web"), "\\legacy\\add_log"),
        DedicationRow::new(3, T0 + 2000, Some(C), Some("web"), VIEWED),
    ];
    for variant in [Variant::Live, Variant::Legacy] {
        // The malformed row neither counts nor bridges the 2000 s gap under a 1500 s limit.
        let out = course_sessions(&rows, C, all_time(), variant, settings(1500, 0));
        assert_eq!(out.rows, 2, "{variant:?}");
        assert_eq!(out.sessions.len(), 2, "{variant:?}");
        assert_eq!(out.total, 0, "{variant:?}");
    }
}

#[test]
fn rows_are_ordered_by_time_then_id_whatever_the_order_given() {
    let mut rows = rows_at(&[0, 50, 100, 5000, 5100]);
    let forward = live(&rows, settings(3600, 0));
    rows.reverse();
    assert_eq!(live(&rows, settings(3600, 0)), forward);
    assert_eq!(forward.total, 200);
}

// --- §7 per course only -------------------------------------------------------------------

#[test]
fn overlapping_courses_are_each_credited() {
    // The learner alternates between courses 7 and 8 every 10 minutes for an hour.
    let mut rows = Vec::new();
    for i in 0..7 {
        let course = if i % 2 == 0 { 7 } else { 8 };
        rows.push(DedicationRow::new(
            i + 1,
            T0 + i * 600,
            Some(course),
            Some("web"),
            VIEWED,
        ));
    }
    let s = settings(3600, 0);
    let seven = course_sessions(&rows, 7, all_time(), Variant::Live, s);
    let eight = course_sessions(&rows, 8, all_time(), Variant::Live, s);
    assert_eq!(seven.total, 3600); // rows at 0, 1200, 2400, 3600
    assert_eq!(eight.total, 2400); // rows at 600, 1800, 3000
    let both = learner(&rows, None, Variant::Live, s, |_| all_time());
    assert_eq!(
        both.courses.iter().map(|c| c.course).collect::<Vec<_>>(),
        [7, 8]
    );
    assert_eq!(
        both.total(),
        6000,
        "more than the 3600 s between first and last row"
    );
}

#[test]
fn rows_of_other_courses_do_not_break_a_session() {
    let rows = vec![
        DedicationRow::new(1, T0, Some(C), Some("web"), VIEWED),
        DedicationRow::new(2, T0 + 2000, Some(99), Some("web"), VIEWED),
        DedicationRow::new(3, T0 + 3000, Some(C), Some("web"), VIEWED),
    ];
    let out = live(&rows, settings(3600, 0));
    assert_eq!(out.sessions.len(), 1);
    assert_eq!(out.total, 3000);
}

#[test]
fn course_zero_and_null_never_count_the_front_page_does() {
    let rows = vec![
        DedicationRow::new(1, T0, Some(0), Some("web"), "\\core\\event\\user_loggedin"),
        DedicationRow::new(
            2,
            T0 + 60,
            None,
            Some("web"),
            "\\core\\event\\dashboard_viewed",
        ),
        DedicationRow::new(3, T0 + 120, Some(1), Some("web"), VIEWED),
        DedicationRow::new(4, T0 + 420, Some(1), Some("web"), VIEWED),
    ];
    let s = settings(3600, 0);
    assert_eq!(courses_of(&rows, Variant::Live), vec![1]);
    assert_eq!(
        course_sessions(&rows, 0, all_time(), Variant::Live, s).rows,
        0
    );
    assert_eq!(
        course_sessions(&rows, 0, all_time(), Variant::Legacy, s).rows,
        0
    );
    assert_eq!(
        course_sessions(&rows, 1, all_time(), Variant::Live, s).total,
        300
    );
}

// --- §8 window edges; §2 window defaults -----------------------------------------------------

#[test]
fn window_edges_are_inclusive_and_clip_a_session_to_its_rows_inside() {
    let rows = rows_at(&[0, 600, 1200, 1800]);
    let s = settings(3600, 0);
    let w = |from: i64, to: i64| DedicationWindow {
        from: T0 + from,
        to: T0 + to,
    };
    let out = course_sessions(&rows, C, w(0, 1800), Variant::Live, s);
    assert_eq!((out.rows, out.total), (4, 1800), "both edges included");
    let out = course_sessions(&rows, C, w(1, 1799), Variant::Live, s);
    assert_eq!(
        (out.rows, out.total),
        (2, 600),
        "the session is cut to 600..1200"
    );
    assert_eq!(out.sessions[0].start, T0 + 600);
    let out = course_sessions(&rows, C, w(1800, 600), Variant::Live, s);
    assert_eq!(
        (out.rows, out.total),
        (0, 0),
        "a reversed window holds nothing"
    );
}

#[test]
fn window_defaults() {
    let now = T0 + 1_000_000;
    let start = T0 - 5_000_000;
    // from = 0: the course's start date.
    assert_eq!(
        resolve_window(0, 0, now, Some(start)),
        DedicationWindow {
            from: start,
            to: now
        }
    );
    // No start date, or no such course: now - 90 days.
    let ninety = now - 90 * 86_400;
    assert_eq!(
        resolve_window(0, T0, now, Some(0)),
        DedicationWindow {
            from: ninety,
            to: T0
        }
    );
    assert_eq!(
        resolve_window(0, T0, now, None),
        DedicationWindow {
            from: ninety,
            to: T0
        }
    );
    // Given values are kept, even a start date is not a floor.
    assert_eq!(
        resolve_window(5, 6, now, Some(start)),
        DedicationWindow { from: 5, to: 6 }
    );
}

// --- §9 settings ------------------------------------------------------------------------------

#[test]
fn settings_never_saved() {
    let s = DedicationSettings::from_plugin_config(None, None);
    assert_eq!(s, settings(3600, 0));
    assert_eq!(DedicationSettings::default(), s);
    // The 0 s sessions are still dropped, a 1 s session is kept.
    let out = live(&rows_at(&[0, 9000, 9001]), s);
    assert_eq!(durations(&out), vec![(0, Some(Dropped::OneRow)), (1, None)]);
}

#[test]
fn settings_saved() {
    let f = |a: Option<&str>, b: Option<&str>| DedicationSettings::from_plugin_config(a, b);
    assert_eq!(f(Some("1800"), Some("120")), settings(1800, 120));
    assert_eq!(f(Some(""), Some("120")), settings(3600, 120));
    assert_eq!(f(Some("0"), Some("60")), settings(3600, 60));
    assert_eq!(f(None, Some("300")), settings(3600, 300));
    assert_eq!(f(Some("900"), None), settings(900, 0));
    assert_eq!(f(Some(" 900 "), Some("")), settings(900, 0));
    // Our reading where the plugin leaves it open: unreadable or negative is the default.
    assert_eq!(f(Some("1h"), Some("-3")), settings(3600, 0));
    assert_eq!(f(Some("-60"), Some("two")), settings(3600, 0));
    assert_eq!(DEFAULT_SESSION_LIMIT, 3600);
}

#[test]
fn estimators_are_named_with_version_and_settings() {
    let s = settings(1800, 120);
    assert_eq!(
        DedicationEstimator::new(Variant::Live, s).to_string(),
        "dedication v1 (session limit 1800 s, sessions of 120 s or less ignored)"
    );
    assert_eq!(
        DedicationEstimator::new(Variant::Legacy, DedicationSettings::legacy(None)).to_string(),
        "dedication.legacy v1 (session limit 3600 s, every session counted)"
    );
}

// --- dedication.legacy ------------------------------------------------------------------------

#[test]
fn legacy_sums_every_session_and_reports_the_user_report_total_and_ratio() {
    // Day 1: a 59 s session and a 60 s one; day 3: a one-row session.
    let rows = rows_at(&[0, 59, 10_000, 10_060, 2 * 86_400]);
    let s = DedicationSettings::legacy(Some(3600));
    let window = DedicationWindow {
        from: T0 - 3600,
        to: T0 + 3 * 86_400,
    };
    let out = course_sessions(&rows, C, window, Variant::Legacy, s);
    assert_eq!(durations(&out), vec![(59, None), (60, None), (0, None)]);
    assert_eq!(out.total, 119);
    assert_eq!(out.kept, 3);
    let legacy = out.legacy.expect("legacy figures");
    assert_eq!(
        legacy.user_report_total, 60,
        "≤ 59 s left out of the per-user report"
    );
    assert_eq!(legacy.days_with_rows, 2);
    assert_eq!(legacy.days_in_period, 4);
    assert!((legacy.connection_ratio() - 0.5).abs() < 1e-9);
    // The live rule with the same limit keeps only what is over its ignore limit.
    let out = course_sessions(&rows, C, window, Variant::Live, settings(3600, 59));
    assert_eq!(out.total, 60);
    assert!(out.legacy.is_none());
}

#[test]
fn a_course_asked_for_without_rows_is_a_zero_row() {
    let out = learner(
        &rows_at(&[0, 10]),
        Some(42),
        Variant::Live,
        settings(3600, 0),
        |_| all_time(),
    );
    assert_eq!(out.courses.len(), 1);
    assert_eq!((out.courses[0].course, out.courses[0].total), (42, 0));
}

// --- from a Moodle-shaped database ---------------------------------------------------------

/// A course starting at T0, one learner (3) with rows of every kind, another (4) with none.
fn site(conn: &mut usestats::store::DbConnection) {
    usestats::store::source::migrate_source(conn, "mdl_").expect("migrate");
    let sql = r#"
INSERT INTO mdl_course (id, category, fullname, shortname, startdate) VALUES
  (1, 0, 'Site', 'site', 0), (7, 1, 'Seven', 'C7', 1772352000), (8, 1, 'Eight', 'C8', 0);
INSERT INTO mdl_user (id, auth, mnethostid, username) VALUES (3, 'manual', 1, 'ann'), (4, 'manual', 1, 'bob');
INSERT INTO mdl_logstore_standard_log
  (id, eventname, component, action, target, crud, edulevel, contextid, contextlevel,
   contextinstanceid, userid, courseid, timecreated, origin, realuserid) VALUES
  (1, '\core\event\course_viewed', 'core', 'viewed', 'course', 'r', 2, 2, 50, 7, 3, 7, 1772351999, 'web', NULL),
  (2, '\core\event\course_viewed', 'core', 'viewed', 'course', 'r', 2, 2, 50, 7, 3, 7, 1772352000, 'web', NULL),
  (3, '\core\event\course_viewed', 'core', 'viewed', 'course', 'r', 2, 2, 50, 7, 3, 7, 1772352600, 'web', 2),
  (4, '\core\event\course_viewed', 'core', 'viewed', 'course', 'r', 2, 2, 50, 7, 3, 7, 1772353200, NULL, NULL),
  (5, '\core\event\course_viewed', 'core', 'viewed', 'course', 'r', 2, 2, 50, 7, 3, 7, 1772353300, 'cli', NULL),
  (6, 'not an event', 'core', 'viewed', 'course', 'r', 2, 2, 50, 7, 3, 7, 1772353400, 'web', NULL),
  (7, '\core\event\user_loggedin', 'core', 'loggedin', 'user', 'r', 0, 1, 10, 0, 3, 0, 1772353500, 'web', NULL),
  (8, '\core\event\course_viewed', 'core', 'viewed', 'course', 'r', 2, 2, 50, 8, 3, 8, 1772353000, 'ws', NULL),
  (9, '\core\event\course_viewed', 'core', 'viewed', 'course', 'r', 2, 2, 50, 8, 3, 8, 1772353060, 'ws', NULL);
"#;
    // Moodle's event names hold backslashes, which MySQL's string literals would eat: the
    // fixture's literals are taken as written there too.
    if matches!(conn, usestats::store::DbConnection::Mysql(_)) {
        conn.batch_execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            .expect("sql_mode");
    }
    conn.batch_execute(sql).expect("fixture");
}

#[test]
fn settings_and_rows_from_the_database() {
    for db in common::source_dbs() {
        let mut conn = db.connect();
        site(&mut conn);
        let source = usestats::store::source::Source::new("mdl_").unwrap();
        let live = Variant::Live;
        // Never saved: the plugin's defaults.
        assert_eq!(
            dedication_settings(&mut conn, &source, live, None).unwrap(),
            settings(3600, 0)
        );
        // The legacy rule's limit comes from its report form, not from config_plugins.
        assert_eq!(
            dedication_settings(&mut conn, &source, Variant::Legacy, Some(600)).unwrap(),
            settings(600, 0)
        );
        let now = T0 + 86_400;
        // from = 0: course 7 from its start date T0 (row 1 one second before is out); course 8
        // has no start date: now - 90 days. Row 3 ("logged in as") counts; rows 4 (NULL
        // origin), 5 (cli), 6 (malformed), 7 (course 0) do not.
        let out = dedication_users(
            &mut conn,
            &source,
            &DedicationQuery {
                variant: live,
                settings: settings(3600, 0),
                userids: &[3, 4],
                course: None,
                from: 0,
                to: 0,
                now,
                sessions: true,
            },
        )
        .unwrap();
        let ann = &out[&3];
        assert_eq!(
            ann.courses.iter().map(|c| c.course).collect::<Vec<_>>(),
            [7, 8]
        );
        let seven = ann.course(7).unwrap();
        assert_eq!((seven.rows, seven.total), (2, 600));
        assert_eq!(seven.window, DedicationWindow { from: T0, to: now });
        let eight = ann.course(8).unwrap();
        assert_eq!((eight.rows, eight.total), (2, 60));
        assert_eq!(eight.window.from, now - 90 * 86_400);
        assert_eq!(ann.total(), 660);
        assert!(
            out[&4].courses.is_empty(),
            "a learner without rows has no course"
        );
        // Legacy: NULL and cli origins count, the malformed row still does not.
        let out = dedication_users(
            &mut conn,
            &source,
            &DedicationQuery {
                variant: Variant::Legacy,
                settings: settings(3600, 0),
                userids: &[3],
                course: Some(7),
                from: 0,
                to: 0,
                now,
                sessions: true,
            },
        )
        .unwrap();
        let seven = out[&3].course(7).unwrap();
        assert_eq!((seven.rows, seven.total), (4, 1300));

        // Saved settings: a 100 s ignore limit drops course 8's 60 s session.
        conn.batch_execute(
            "INSERT INTO mdl_config_plugins (plugin, name, value) VALUES \
             ('block_dedication', 'session_limit', '1800'), \
             ('block_dedication', 'ignore_sessions_limit', '100'), \
             ('block_other', 'session_limit', '5')",
        )
        .unwrap();
        let s = dedication_settings(&mut conn, &source, live, None).unwrap();
        assert_eq!(s, settings(1800, 100));
        let out = dedication_users(
            &mut conn,
            &source,
            &DedicationQuery {
                variant: live,
                settings: s,
                userids: &[3],
                course: None,
                from: T0,
                to: T0 + 3600,
                now,
                sessions: true,
            },
        )
        .unwrap();
        assert_eq!(out[&3].course(7).unwrap().total, 600);
        assert_eq!(out[&3].course(8).unwrap().total, 0);
        assert_eq!(out[&3].course(8).unwrap().dropped, 1);
        // Saved empty: the session limit falls back to 3600, the ignore limit to 0.
        conn.batch_execute(
            "UPDATE mdl_config_plugins SET value = '' WHERE plugin = 'block_dedication'",
        )
        .unwrap();
        assert_eq!(
            dedication_settings(&mut conn, &source, live, None).unwrap(),
            settings(3600, 0)
        );
    }
}

#[test]
fn estimator_names() {
    assert_eq!(
        "dedication".parse(),
        Ok(EstimatorName::Dedication(Variant::Live))
    );
    assert_eq!(
        "dedication.legacy".parse(),
        Ok(EstimatorName::Dedication(Variant::Legacy))
    );
    assert_eq!("use_stats".parse(), Ok(EstimatorName::UseStats));
    let e = "dedication2".parse::<EstimatorName>().unwrap_err();
    assert!(e.to_string().contains("dedication2"));
}

// --- properties -------------------------------------------------------------------------------

fn any_row() -> impl Strategy<Value = DedicationRow> {
    let course = prop_oneof![8 => (0i64..4).prop_map(Some), 1 => Just(None)];
    let origin = prop::sample::select(vec![
        None,
        Some("web"),
        Some("web"),
        Some("ws"),
        Some("cli"),
    ]);
    let name = prop::sample::select(vec![VIEWED, VIEWED, VIEWED, "\\x\\y", ""]);
    (0i64..1000, 0i64..20_000, course, origin, name).prop_map(|(id, t, course, origin, name)| {
        DedicationRow::new(id, T0 + t, course, origin, name)
    })
}

fn any_settings() -> impl Strategy<Value = DedicationSettings> {
    (
        prop_oneof![Just(3600i64), 0i64..5000, -10i64..10],
        -10i64..600,
    )
        .prop_map(|(l, i)| settings(l, i))
}

fn any_window() -> impl Strategy<Value = DedicationWindow> {
    (-100i64..21_000, -100i64..21_000).prop_map(|(a, b)| DedicationWindow {
        from: T0 + a.min(b),
        to: T0 + a.max(b),
    })
}

/// The rule written the plainest way: filter, sort, split, sum.
fn reference(
    rows: &[DedicationRow],
    course: i64,
    w: DedicationWindow,
    variant: Variant,
    s: DedicationSettings,
) -> (i64, usize) {
    let mut times: Vec<(i64, i64)> = rows
        .iter()
        .filter(|r| r.course == Some(course) && course != 0 && r.event_ok)
        .filter(|r| {
            variant == Variant::Legacy || r.origin == usestats::stats::dedication::Origin::Other
        })
        .filter(|r| w.from <= r.time && r.time <= w.to)
        .map(|r| (r.time, r.id))
        .collect();
    times.sort();
    let mut sessions: Vec<(i64, i64)> = Vec::new();
    for (t, _) in times {
        match sessions.last_mut() {
            Some((_, end)) if t - *end <= s.session_limit || t == *end => *end = t,
            _ => sessions.push((t, t)),
        }
    }
    let kept: Vec<i64> = sessions
        .iter()
        .map(|(a, b)| b - a)
        .filter(|d| variant == Variant::Legacy || *d > s.ignore_sessions_limit.max(0))
        .collect();
    (kept.iter().sum(), sessions.len())
}

proptest! {
    #[test]
    fn matches_the_plain_reference(
        rows in prop::collection::vec(any_row(), 0..60),
        course in 0i64..4,
        w in any_window(),
        s in any_settings(),
        legacy in any::<bool>(),
    ) {
        let variant = if legacy { Variant::Legacy } else { Variant::Live };
        let out = course_sessions(&rows, course, w, variant, s);
        prop_assert_eq!((out.total, out.sessions.len()), reference(&rows, course, w, variant, s));
    }

    #[test]
    fn input_order_does_not_matter(
        rows in prop::collection::vec(any_row(), 0..60),
        w in any_window(),
        s in any_settings(),
        seed in any::<u64>(),
    ) {
        let mut shuffled = rows.clone();
        // A deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for variant in [Variant::Live, Variant::Legacy] {
            let a = learner(&rows, None, variant, s, |_| w);
            let b = learner(&shuffled, None, variant, s, |_| w);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn totals_and_sessions_agree(
        rows in prop::collection::vec(any_row(), 0..60),
        course in 0i64..4,
        w in any_window(),
        s in any_settings(),
    ) {
        for variant in [Variant::Live, Variant::Legacy] {
            let out = course_sessions(&rows, course, w, variant, s);
            let kept: i64 = out.sessions.iter().filter(|x| x.dropped.is_none()).map(|x| x.duration).sum();
            prop_assert_eq!(out.total, kept);
            prop_assert_eq!(out.kept + out.dropped, out.sessions.len() as u64);
            prop_assert_eq!(out.sessions.iter().map(|x| x.rows).sum::<u64>(), out.rows);
            for x in &out.sessions {
                prop_assert!(w.from <= x.start && x.start <= x.end && x.end <= w.to);
                prop_assert_eq!(x.duration, x.end - x.start);
                if variant == Variant::Live {
                    prop_assert_eq!(x.dropped.is_none(), x.duration > s.ignore_sessions_limit.max(0));
                } else {
                    prop_assert!(x.dropped.is_none());
                }
            }
            for pair in out.sessions.windows(2) {
                prop_assert!(pair[1].start - pair[0].end > s.session_limit && pair[1].start > pair[0].end);
            }
        }
    }

    #[test]
    fn legacy_never_totals_less_than_live_with_the_same_limit(
        rows in prop::collection::vec(any_row(), 0..60),
        course in 1i64..4,
        w in any_window(),
        s in any_settings(),
    ) {
        let live = course_sessions(&rows, course, w, Variant::Live, s);
        let legacy = course_sessions(&rows, course, w, Variant::Legacy, s);
        prop_assert!(legacy.total >= live.total);
    }

    #[test]
    fn never_panics_on_extreme_values(
        rows in prop::collection::vec(
            (any::<i64>(), any::<i64>(), prop::option::of(any::<i64>()), any::<bool>()),
            0..30,
        ),
        from in any::<i64>(),
        to in any::<i64>(),
        now in any::<i64>(),
        start in prop::option::of(any::<i64>()),
        limit in any::<i64>(),
        ignore in any::<i64>(),
        name in ".{0,40}",
    ) {
        let rows: Vec<DedicationRow> = rows
            .into_iter()
            .map(|(id, t, c, web)| DedicationRow::new(id, t, c, web.then_some("web"), &name))
            .collect();
        let w = resolve_window(from, to, now, start);
        for variant in [Variant::Live, Variant::Legacy] {
            let out = learner(&rows, None, variant, settings(limit, ignore), |_| w);
            let _ = out.total();
        }
    }
}

// --- the worked examples of docs/engine.md §8.5 -------------------------------------------------

/// 2026-03-02T09:00:00Z.
const NINE: i64 = 1_772_442_000;

/// One learner's course-page views at `NINE + minutes`, in `course`, with an origin.
fn views(list: &[(i64, i64, Option<&str>)]) -> (Vec<DedicationRow>, Vec<usestats::stats::LogRow>) {
    let mut dedication = Vec::new();
    let mut use_stats = Vec::new();
    for (i, &(minutes, course, origin)) in list.iter().enumerate() {
        let (id, time) = (i as i64 + 1, NINE + minutes * 60);
        dedication.push(DedicationRow::new(id, time, Some(course), origin, VIEWED));
        use_stats.push(usestats::stats::LogRow {
            id,
            userid: 3,
            time,
            course: Some(course),
            context_level: 50,
            action: "viewed".into(),
            target: "course".into(),
            origin: origin.map(Into::into),
            realuserid: None,
            module: usestats::stats::ModuleInfo::NotModule,
        });
    }
    (dedication, use_stats)
}

/// use_stats' total per course (default settings, "now" a day later).
fn use_stats_totals(rows: Vec<usestats::stats::LogRow>) -> Vec<(i64, i64)> {
    let window = usestats::stats::Window {
        from: 0,
        to: NINE + 86_400,
        now: NINE + 86_400,
    };
    let report = usestats::stats::compute(
        &usestats::stats::Settings::default(),
        window,
        Default::default(),
        rows,
    );
    report
        .courses
        .iter()
        .map(|c| (c.course, c.coursetotal))
        .collect()
}

fn totals(rows: &[DedicationRow], variant: Variant, s: DedicationSettings) -> Vec<(i64, i64)> {
    learner(rows, None, variant, s, |_| all_time())
        .courses
        .iter()
        .map(|c| (c.course, c.total))
        .collect()
}

#[test]
fn worked_example_1_one_morning() {
    let web = Some("web");
    let (d, u) = views(&[
        (0, 2, web),
        (10, 2, web),
        (40, 2, web),
        (120, 2, web),
        (125, 2, web),
        (300, 2, web),
    ]);
    assert_eq!(use_stats_totals(u), [(2, 5400)]);
    let never_saved = DedicationSettings::default();
    let out = course_sessions(&d, 2, all_time(), Variant::Live, never_saved);
    assert_eq!(
        durations(&out),
        [(2400, None), (300, None), (0, Some(Dropped::OneRow))]
    );
    assert_eq!(out.total, 2700);
    assert_eq!(totals(&d, Variant::Live, settings(3600, 120)), [(2, 2700)]);
    // The 300 s session is not strictly over an ignore limit of 300 s.
    assert_eq!(totals(&d, Variant::Live, settings(3600, 300)), [(2, 2400)]);
    assert_eq!(
        totals(&d, Variant::Legacy, DedicationSettings::legacy(None)),
        [(2, 2700)]
    );
}

#[test]
fn worked_example_2_a_gap_equal_to_the_limit() {
    let web = Some("web");
    let (d, u) = views(&[(0, 2, web), (60, 2, web)]);
    assert_eq!(use_stats_totals(u), [(2, 4500)]);
    assert_eq!(
        totals(&d, Variant::Live, DedicationSettings::default()),
        [(2, 3600)]
    );
    let (d, _) = views(&[(0, 2, web), (61, 2, web)]);
    assert_eq!(
        totals(&d, Variant::Live, DedicationSettings::default()),
        [(2, 0)]
    );
}

#[test]
fn worked_example_3_two_courses_in_turn() {
    let web = Some("web");
    let (d, u) = views(&[(0, 2, web), (20, 3, web), (40, 2, web), (60, 3, web)]);
    assert_eq!(use_stats_totals(u), [(2, 2400), (3, 2100)]);
    assert_eq!(
        totals(&d, Variant::Live, DedicationSettings::default()),
        [(2, 2400), (3, 2400)]
    );
}

#[test]
fn worked_example_4_a_row_without_origin() {
    let (d, u) = views(&[(0, 2, Some("web")), (30, 2, None), (75, 2, Some("web"))]);
    assert_eq!(use_stats_totals(u), [(2, 5400)]);
    assert_eq!(
        totals(&d, Variant::Live, DedicationSettings::default()),
        [(2, 0)]
    );
    assert_eq!(
        totals(&d, Variant::Legacy, DedicationSettings::legacy(None)),
        [(2, 4500)]
    );
}

// --- the database read equals the rule on the same rows ---------------------------------------

fn db_row() -> impl Strategy<Value = (i64, Option<i64>, Option<&'static str>, &'static str, bool)> {
    (
        0i64..30_000,
        prop_oneof![1 => Just(None), 1 => Just(Some(0i64)), 8 => (1i64..5).prop_map(Some)],
        prop::sample::select(vec![None, Some("web"), Some("web"), Some("cli")]),
        prop::sample::select(vec![
            VIEWED,
            VIEWED,
            "\\mod_quiz\\event\\attempt_started",
            "bad name",
        ]),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// `dedication_users` (SQL read, course start dates, per-course window defaults) gives
    /// what the pure rule gives on the same rows, for random logs, windows and settings.
    #[test]
    fn the_database_read_equals_the_rule(
        rows in prop::collection::vec(db_row(), 0..40),
        from in prop_oneof![Just(0i64), 0i64..30_000],
        to in prop_oneof![Just(0i64), 0i64..40_000],
        s in any_settings(),
        legacy in any::<bool>(),
        course in prop::option::of(1i64..5),
    ) {
        let variant = if legacy { Variant::Legacy } else { Variant::Live };
        let (from, to) = (if from == 0 { 0 } else { T0 + from }, if to == 0 { 0 } else { T0 + to });
        // now − 90 days falls inside the log: courses without a start date lose its first rows.
        let now = T0 + 90 * 86_400 + 10_000;
        let db = common::TestDb::sqlite();
        let mut conn = db.connect();
        usestats::store::source::migrate_source(&mut conn, "mdl_").unwrap();
        // Course 2 starts at T0 + 5000, 1 and 3 have no start date, 4 does not exist.
        let mut sql = format!(
            "INSERT INTO mdl_course (id, category, fullname, shortname, startdate) VALUES \
             (1, 0, 'Site', 's', 0), (2, 1, 'Two', 'c2', {}), (3, 1, 'Three', 'c3', 0);",
            T0 + 5000
        );
        let mut memory = Vec::new();
        for (i, (t, c, origin, name, other_user)) in rows.iter().enumerate() {
            let id = i as i64 + 1;
            let user = if *other_user { 4 } else { 3 };
            let quote = |v: Option<&str>| v.map_or("NULL".to_string(), |v| format!("'{v}'"));
            sql.push_str(&format!(
                "INSERT INTO mdl_logstore_standard_log (id, eventname, edulevel, contextid, contextlevel, \
                 contextinstanceid, userid, courseid, timecreated, origin) VALUES \
                 ({id}, '{name}', 0, 1, 50, 1, {user}, {}, {}, {});",
                c.map_or("NULL".to_string(), |c| c.to_string()),
                T0 + t,
                quote(*origin),
            ));
            if user == 3 {
                memory.push(DedicationRow::new(id, T0 + t, *c, *origin, name));
            }
        }
        conn.batch_execute(&sql).unwrap();
        let source = usestats::store::source::Source::new("mdl_").unwrap();
        let read = dedication_users(
            &mut conn,
            &source,
            &DedicationQuery {
                variant,
                settings: s,
                userids: &[3],
                course,
                from,
                to,
                now,
                sessions: true,
            },
        ).unwrap();
        let starts = |c: i64| match c {
            2 => Some(T0 + 5000),
            1 | 3 => Some(0),
            _ => None,
        };
        let expected = learner(&memory, course, variant, s, |c| resolve_window(from, to, now, starts(c)));
        prop_assert_eq!(&read[&3], &expected);
    }
}
