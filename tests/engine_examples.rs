//! The worked examples of docs/engine.md §4 with their intended numbers, and one test per
//! engine edge rule (docs/decisions.md E1–E14) and extraction filter (§2.1, D10).

use std::collections::HashMap;

use usestats::stats::{
    Engine, Estimator, LogRow, ModuleInfo, OrderError, Report, Session, SessionStats, Settings,
    Window, compute,
};

const T0: i64 = 1_700_000_000;
/// "now is long after the last row unless stated" (§4).
const LONG_AFTER: i64 = T0 + 1_000_000;

fn row(id: i64, offset: i64, course: i64, level: i64, action: &str, target: &str) -> LogRow {
    LogRow {
        id,
        userid: 5,
        time: T0 + offset,
        course: Some(course),
        context_level: level,
        action: action.into(),
        target: target.into(),
        origin: Some("web".into()),
        realuserid: None,
        module: ModuleInfo::NotModule,
    }
}

fn login(id: i64, offset: i64) -> LogRow {
    row(id, offset, 0, 10, "loggedin", "user")
}

fn logout(id: i64, offset: i64) -> LogRow {
    row(id, offset, 0, 10, "loggedout", "user")
}

fn course_view(id: i64, offset: i64, course: i64) -> LogRow {
    row(id, offset, course, 50, "viewed", "course")
}

/// The row placed in a live module context.
fn in_module(row: LogRow, cmid: i64, module: &str, section: i64) -> LogRow {
    LogRow {
        context_level: 70,
        module: ModuleInfo::Cm {
            cmid,
            module: Some(module.into()),
            section: Some(section),
        },
        ..row
    }
}

fn module_view(id: i64, offset: i64, course: i64, cmid: i64, module: &str, section: i64) -> LogRow {
    in_module(
        row(id, offset, course, 70, "viewed", "course_module"),
        cmid,
        module,
        section,
    )
}

fn window(now: i64) -> Window {
    Window {
        from: 0,
        to: now,
        now,
    }
}

fn run(settings: &Settings, now: i64, rows: Vec<LogRow>) -> Report {
    let mut engine = Engine::new(settings, window(now), HashMap::new()).keep_sessions(true);
    for row in &rows {
        engine.push(row).expect("rows are given in order");
    }
    engine.finish()
}

fn session(start: i64, end: i64, elapsed: i64, events: u64, courses: &[i64]) -> Session {
    Session {
        start: T0 + start,
        end: T0 + end,
        elapsed,
        events,
        courses: courses.to_vec(),
    }
}

/// Course, activity, other and total seconds of one course.
fn buckets(report: &Report, course: i64) -> (i64, i64, i64, i64) {
    let totals = report.course(course).expect("course has counted rows");
    (
        totals.coursetime,
        totals.activitytime,
        totals.othertime,
        totals.coursetotal,
    )
}

fn course_order(report: &Report) -> Vec<i64> {
    report.courses.iter().map(|totals| totals.course).collect()
}

fn session_elapsed(report: &Report) -> Vec<i64> {
    report
        .session_list
        .iter()
        .map(|session| session.elapsed)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// §4 worked examples
// ---------------------------------------------------------------------------------------------

fn example1_rows() -> Vec<LogRow> {
    vec![
        login(101, 0),
        course_view(102, 60, 2),
        module_view(103, 300, 2, 10, "page", 20),
        module_view(104, 900, 2, 11, "quiz", 21),
        in_module(
            row(105, 1500, 2, 70, "submitted", "attempt"),
            11,
            "quiz",
            21,
        ),
        course_view(106, 1560, 2),
        logout(107, 1800),
    ]
}

/// The examples assume the enrolment filter on, with every start at or before T0.
fn example_settings() -> Settings {
    Settings {
        enrolment_filter: true,
        ..Settings::default()
    }
}

fn example_enrolments() -> HashMap<i64, i64> {
    HashMap::from([(2, T0 - 86_400), (3, 0), (4, T0)])
}

#[test]
fn example1_one_login_session_ended_by_logout() {
    let mut engine = Engine::new(
        &example_settings(),
        window(LONG_AFTER),
        example_enrolments(),
    )
    .keep_sessions(true);
    for row in &example1_rows() {
        engine.push(row).unwrap();
    }
    let report = engine.finish();

    assert_eq!(report.rows_extracted, 7);
    assert_eq!(course_order(&report), vec![0, 2]);
    assert_eq!(buckets(&report, 2), (480, 1260, 0, 1740));
    assert_eq!(buckets(&report, 0), (0, 0, 60, 60));
    assert_eq!(report.total, 1800);

    let course2 = report.course(2).unwrap();
    assert_eq!(course2.events, 5);
    assert_eq!(
        (course2.first_time, course2.last_time),
        (T0 + 60, T0 + 1560)
    );
    let modules: Vec<_> = course2
        .modules
        .iter()
        .map(|m| (m.cmid, m.module.as_deref(), m.section, m.elapsed, m.events))
        .collect();
    assert_eq!(
        modules,
        vec![
            (10, Some("page"), Some(20), 600, 1),
            (11, Some("quiz"), Some(21), 660, 2)
        ]
    );
    assert!(report.course(0).unwrap().modules.is_empty());

    assert_eq!(
        report.session_list,
        vec![session(0, 1800, 1800, 6, &[0, 2])]
    );
    assert_eq!(
        report.sessions,
        SessionStats {
            count: 1,
            first_start: Some(T0),
            last_start: Some(T0),
            min: 1800,
            max: 1800,
            sum: 1800,
        }
    );
    assert_eq!(report.sessions.mean(), 1800);
    assert_eq!(course2.sessions, report.sessions);
}

fn example2_rows() -> Vec<LogRow> {
    vec![
        course_view(201, 0, 2),
        module_view(202, 120, 2, 10, "page", 20),
        course_view(203, 720, 3),
        module_view(204, 780, 3, 30, "forum", 40),
        module_view(205, 8000, 2, 10, "page", 20),
        course_view(206, 8300, 2),
    ]
}

#[test]
fn example2_gap_over_threshold_splits_sessions_and_every_course_is_classified() {
    let report = compute(
        &example_settings(),
        window(LONG_AFTER),
        example_enrolments(),
        example2_rows(),
    );
    assert_eq!(report.rows_extracted, 6);
    assert_eq!(course_order(&report), vec![2, 3]);
    assert_eq!(buckets(&report, 2), (1020, 900, 0, 1920));
    // D3: the forum row of course 3 is activity time, not "outoftargetcourse" other time.
    assert_eq!(buckets(&report, 3), (60, 900, 0, 960));
    assert_eq!(report.total, 2880);
    let page = report.course(2).unwrap().module(10).unwrap();
    assert_eq!(
        (page.elapsed, page.events, page.section),
        (900, 2, Some(20))
    );
    let forum = report.course(3).unwrap().module(30).unwrap();
    assert_eq!(
        (forum.elapsed, forum.events, forum.section),
        (900, 1, Some(40))
    );

    // Sessions are only kept on request.
    assert!(report.session_list.is_empty());
    assert_eq!(
        report.sessions,
        SessionStats {
            count: 2,
            first_start: Some(T0),
            last_start: Some(T0 + 8000),
            min: 1200,
            max: 1680,
            sum: 2880,
        }
    );
    assert_eq!(report.sessions.mean(), 1440);
    // D6: course 3 was only touched by the first session.
    let course3 = &report.course(3).unwrap().sessions;
    assert_eq!(
        (course3.count, course3.first_start, course3.sum),
        (1, Some(T0), 1680)
    );
    assert_eq!(report.course(2).unwrap().sessions.count, 2);

    let listed = run(&Settings::default(), LONG_AFTER, example2_rows());
    assert_eq!(
        listed.session_list,
        vec![
            session(0, 1680, 1680, 4, &[2, 3]),
            session(8000, 9200, 1200, 2, &[2]),
        ]
    );
}

#[test]
fn example2_one_session_per_course() {
    let settings = Settings {
        one_session_per_course: true,
        ..Settings::default()
    };
    let report = run(&settings, LONG_AFTER, example2_rows());
    assert_eq!(
        report.session_list,
        vec![
            session(0, 720, 720, 2, &[2]),
            session(720, 1680, 960, 2, &[3]),
            session(8000, 9200, 1200, 2, &[2]),
        ]
    );
    // The session mode never changes the buckets.
    assert_eq!(report.total, 2880);
    assert_eq!(buckets(&report, 3), (60, 900, 0, 960));
}

fn example3_rows() -> Vec<LogRow> {
    vec![
        row(301, 0, 0, 10, "loggedin", "user"),
        module_view(302, 30, 4, 50, "assign", 60),
        row(303, 630, 4, 50, "graded", "user"),
        module_view(304, 660, 4, 51, "learningtimecheck", 60),
        course_view(305, 960, 4),
        in_module(
            row(306, 1100, 4, 70, "submitted", "assessable"),
            50,
            "assign",
            60,
        ),
        row(307, 1260, 0, 10, "loggedin", "user"),
        module_view(308, 1290, 4, 50, "assign", 60),
    ]
}

#[test]
fn example3_graded_skip_capture_two_logins_and_now_cap() {
    let now = T0 + 1500;
    let mut engine =
        Engine::new(&example_settings(), window(now), example_enrolments()).keep_sessions(true);
    for row in &example3_rows() {
        engine.push(row).unwrap();
    }
    let report = engine.finish();

    assert_eq!(report.rows_extracted, 8);
    assert_eq!(course_order(&report), vec![0, 4]);
    assert_eq!(buckets(&report, 4), (440, 1000, 0, 1440));
    assert_eq!(buckets(&report, 0), (0, 0, 60, 60));
    assert_eq!(report.total, 1500);

    // The captured learningtimecheck cm is never shown; the graded row is never counted.
    let course4 = report.course(4).unwrap();
    assert_eq!(course4.modules.len(), 1);
    let assign = course4.module(50).unwrap();
    assert_eq!(
        (assign.elapsed, assign.events, assign.section),
        (1000, 3, Some(60))
    );
    assert_eq!(course4.events, 4);
    assert_eq!(report.course(0).unwrap().events, 2);

    assert_eq!(
        report.session_list,
        vec![
            session(0, 1260, 1260, 4, &[0, 4]),
            session(1260, 1500, 240, 2, &[0, 4]),
        ]
    );
    assert_eq!(
        report.sessions,
        SessionStats {
            count: 2,
            first_start: Some(T0),
            last_start: Some(T0 + 1260),
            min: 240,
            max: 1260,
            sum: 1500,
        }
    );
    assert_eq!(report.sessions.mean(), 750);
}

// ---------------------------------------------------------------------------------------------
// Laps (§2.4, D4, E2)
// ---------------------------------------------------------------------------------------------

#[test]
fn lap_equal_to_threshold_is_kept_and_one_more_second_is_replaced() {
    let at_threshold = run(
        &Settings::default(),
        LONG_AFTER,
        vec![course_view(1, 0, 2), course_view(2, 3600, 2)],
    );
    assert_eq!(at_threshold.total, 3600 + 900);
    assert_eq!(at_threshold.sessions.count, 1);

    let over = run(
        &Settings::default(),
        LONG_AFTER,
        vec![course_view(1, 0, 2), course_view(2, 3601, 2)],
    );
    assert_eq!(over.total, 900 + 900);
    assert_eq!(over.sessions.count, 2);
    assert_eq!(over.session_list[0], session(0, 900, 900, 1, &[2]));
}

#[test]
fn e2_over_threshold_credit_never_exceeds_the_real_gap() {
    // A site whose last-ping credit (30 min) is above its threshold (10 min).
    let settings = Settings {
        threshold_minutes: 10,
        lastpingcredit_minutes: 30,
        ..Settings::default()
    };
    let report = run(
        &settings,
        LONG_AFTER,
        vec![course_view(1, 0, 2), course_view(2, 1000, 2)],
    );
    // The gap of 1000 s is over 600 s: credited min(1800, 1000); the last row gets 1800.
    assert_eq!(report.total, 1000 + 1800);
    assert_eq!(report.sessions.count, 2);
    assert_eq!(report.session_list[0].end, T0 + 1000);
}

#[test]
fn e2_over_threshold_credit_is_capped_by_now() {
    // Rows after "now" (a window reaching into the future): the credit stops at now.
    let now = T0 + 300;
    let settings = Settings::default();
    let mut engine = Engine::new(
        &settings,
        Window {
            from: 0,
            to: T0 + 10_000,
            now,
        },
        HashMap::new(),
    );
    engine.push(&course_view(1, 0, 2)).unwrap();
    engine.push(&course_view(2, 5000, 2)).unwrap();
    let report = engine.finish();
    // First row: min(900, 5000, 300) = 300. Last row, 4700 s after now: 0, never negative.
    assert_eq!(report.total, 300);
    assert_eq!(buckets(&report, 2), (300, 0, 0, 300));
}

#[test]
fn last_row_credit_is_p_or_the_time_left_until_now() {
    let full = run(&Settings::default(), T0 + 901, vec![course_view(1, 0, 2)]);
    assert_eq!(full.total, 900);
    let exact = run(&Settings::default(), T0 + 900, vec![course_view(1, 0, 2)]);
    assert_eq!(exact.total, 900);
    let capped = run(&Settings::default(), T0 + 899, vec![course_view(1, 0, 2)]);
    assert_eq!(capped.total, 899);
}

#[test]
fn d4_trailing_graded_rows_make_the_row_before_them_the_last_row() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            row(2, 100, 2, 50, "graded", "user"),
            row(3, 200, 2, 50, "graded", "user"),
        ],
    );
    assert_eq!(report.rows_extracted, 3);
    assert_eq!(report.total, 900);
    assert_eq!(report.course(2).unwrap().events, 1);
}

#[test]
fn graded_rows_of_another_target_are_ordinary_rows() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            row(2, 100, 2, 50, "graded", "submission"),
            course_view(3, 250, 2),
        ],
    );
    assert_eq!(report.course(2).unwrap().events, 3);
    assert_eq!(report.total, 100 + 150 + 900);
}

#[test]
fn a_leading_graded_row_has_nothing_to_extend_and_is_processed() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![row(1, 0, 2, 50, "graded", "user"), course_view(2, 100, 2)],
    );
    assert_eq!(report.course(2).unwrap().events, 2);
    assert_eq!(report.total, 100 + 900);
}

// ---------------------------------------------------------------------------------------------
// Filtering (§2.5, D4) and sessions (D2, E1, E3, E4, E5)
// ---------------------------------------------------------------------------------------------

#[test]
fn d4_carried_time_is_added_once() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            module_view(2, 100, 2, 7, "learningtimecheck", 1),
            course_view(3, 400, 2),
            course_view(4, 500, 2),
        ],
    );
    // 100, then 100 + 300 carried, then 900 for the last row (not 900 + 300 again).
    assert_eq!(report.total, 100 + 400 + 900);
    assert_eq!(buckets(&report, 2), (1400, 0, 0, 1400));
}

#[test]
fn capture_and_ignore_lists_compare_module_names_exactly() {
    let settings = Settings {
        ignore_modules: vec!["forum".to_string()],
        ..Settings::default()
    };
    let rows = vec![
        course_view(1, 0, 2),
        module_view(2, 100, 2, 7, "forum", 1),
        module_view(3, 400, 2, 8, "Forum", 1),
        module_view(4, 500, 2, 9, "LearningTimeCheck", 1),
        course_view(5, 600, 2),
    ];
    let report = run(&settings, LONG_AFTER, rows);
    // The forum lap (300 s) is lost; the other spellings are ordinary activity rows.
    assert_eq!(buckets(&report, 2), (100 + 900, 200, 0, 1200));
    let cmids: Vec<i64> = report
        .course(2)
        .unwrap()
        .modules
        .iter()
        .map(|m| m.cmid)
        .collect();
    assert_eq!(cmids, vec![8, 9]);
    assert_eq!(report.total, session_elapsed(&report).iter().sum::<i64>());
}

#[test]
fn a_module_in_both_lists_is_carried() {
    let settings = Settings {
        capture_modules: vec!["forum".to_string()],
        ignore_modules: vec!["forum".to_string()],
        ..Settings::default()
    };
    let report = run(
        &settings,
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            module_view(2, 100, 2, 7, "forum", 1),
            course_view(3, 400, 2),
        ],
    );
    assert_eq!(report.total, 100 + 300 + 900);
}

#[test]
fn a_login_drops_carried_time() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            module_view(2, 100, 2, 7, "learningtimecheck", 1),
            login(3, 400),
            course_view(4, 460, 2),
        ],
    );
    assert_eq!(report.total, 100 + 60 + 900);
    assert_eq!(session_elapsed(&report), vec![100, 960]);
}

#[test]
fn e1_every_login_opens_a_session_holding_its_own_lap() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![login(1, 0), login(2, 10), course_view(3, 100, 2)],
    );
    assert_eq!(
        report.session_list,
        vec![
            session(0, 10, 10, 1, &[0]),
            session(10, 1000, 990, 2, &[0, 2]),
        ]
    );
    assert_eq!(report.total, 1000);
    assert_eq!(report.sessions.sum, report.total);
}

#[test]
fn e1_a_login_as_last_row_is_a_session_of_its_own() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![course_view(1, 0, 2), login(2, 100)],
    );
    assert_eq!(
        report.session_list,
        vec![
            session(0, 100, 100, 1, &[2]),
            session(100, 1000, 900, 1, &[0])
        ]
    );
}

#[test]
fn e3_captured_row_over_threshold_ends_the_session_and_carries_into_the_next() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            module_view(2, 100, 2, 7, "learningtimecheck", 1),
            course_view(3, 4100, 2),
        ],
    );
    assert_eq!(
        report.session_list,
        vec![
            session(0, 100, 100, 1, &[2]),
            session(4100, 5000, 1800, 1, &[2])
        ]
    );
    assert_eq!(report.total, 1900);
}

#[test]
fn e3_ignored_row_over_threshold_ends_the_session_and_its_time_is_lost() {
    let settings = Settings {
        ignore_modules: vec!["forum".to_string()],
        ..Settings::default()
    };
    let report = run(
        &settings,
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            module_view(2, 100, 2, 7, "forum", 1),
            course_view(3, 4100, 2),
        ],
    );
    assert_eq!(
        report.session_list,
        vec![
            session(0, 100, 100, 1, &[2]),
            session(4100, 5000, 900, 1, &[2])
        ]
    );
    assert_eq!(report.total, 1000);
}

#[test]
fn e4_session_end_leaves_carried_time_out() {
    let report = run(
        &Settings::default(),
        T0 + 460,
        vec![
            course_view(1, 0, 2),
            module_view(2, 60, 2, 7, "learningtimecheck", 1),
            course_view(3, 360, 2),
        ],
    );
    // Last row: 100 s until now, plus 300 s carried; the end is 360 + 100.
    assert_eq!(report.session_list, vec![session(0, 460, 460, 2, &[2])]);
}

#[test]
fn e4_a_logout_ends_the_session_at_the_logout_time() {
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![
            course_view(1, 0, 2),
            module_view(2, 60, 2, 7, "learningtimecheck", 1),
            logout(3, 360),
            course_view(4, 5000, 2),
        ],
    );
    // The 300 s carried into the logout are lost; the row after the logout opens a session.
    assert_eq!(
        report.session_list,
        vec![
            session(0, 360, 60, 1, &[2]),
            session(5000, 5900, 900, 1, &[2])
        ]
    );
    assert_eq!(report.total, 960);
    assert_eq!(report.rows_extracted, 4);
}

#[test]
fn e5_one_session_per_course_login_does_not_pin_the_course() {
    let settings = Settings {
        one_session_per_course: true,
        ..Settings::default()
    };
    let rows = vec![
        login(1, 0),
        course_view(2, 60, 2),
        course_view(3, 120, 3),
        login(4, 180),
        course_view(5, 240, 3),
        course_view(6, 300, 3),
    ];
    let single = run(&settings, LONG_AFTER, rows.clone());
    assert_eq!(
        single.session_list,
        vec![
            session(0, 120, 120, 2, &[0, 2]),
            session(120, 180, 60, 1, &[3]),
            session(180, 1200, 1020, 3, &[0, 3]),
        ]
    );
    let multiple = run(&Settings::default(), LONG_AFTER, rows);
    assert_eq!(
        multiple.session_list,
        vec![
            session(0, 180, 180, 3, &[0, 2, 3]),
            session(180, 1200, 1020, 3, &[0, 3]),
        ]
    );
    assert_eq!(single.total, multiple.total);
}

// ---------------------------------------------------------------------------------------------
// Classification (§2.3, D3, E14)
// ---------------------------------------------------------------------------------------------

#[test]
fn e14_gone_context_is_other_time_and_gone_cm_is_an_unnamed_module() {
    let context_gone = LogRow {
        module: ModuleInfo::ContextGone,
        ..row(1, 0, 2, 70, "viewed", "course_module")
    };
    let cm_gone = LogRow {
        module: ModuleInfo::Cm {
            cmid: 12,
            module: None,
            section: None,
        },
        ..row(2, 100, 2, 70, "viewed", "course_module")
    };
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![context_gone, cm_gone],
    );
    assert_eq!(buckets(&report, 2), (0, 900, 100, 1000));
    let modules = &report.course(2).unwrap().modules;
    assert_eq!(modules.len(), 1);
    assert_eq!(
        (
            modules[0].cmid,
            modules[0].module.clone(),
            modules[0].section
        ),
        (12, None, None)
    );
}

#[test]
fn context_levels_are_classified() {
    let rows = vec![
        row(1, 0, 2, 40, "viewed", "category"),
        row(2, 10, 2, 80, "viewed", "block"),
        row(3, 30, 2, 30, "viewed", "user"),
        row(4, 60, 2, 10, "viewed", "config"),
        LogRow {
            // The store's cm information only counts at module level.
            module: ModuleInfo::Cm {
                cmid: 99,
                module: Some("quiz".into()),
                section: Some(1),
            },
            ..row(5, 100, 2, 50, "viewed", "course")
        },
    ];
    let report = run(&Settings::default(), LONG_AFTER, rows);
    assert_eq!(buckets(&report, 2), (10 + 20 + 900, 0, 30 + 40, 1000));
    assert!(report.course(2).unwrap().modules.is_empty());
}

#[test]
fn module_names_fill_in_but_never_change() {
    let first = LogRow {
        module: ModuleInfo::Cm {
            cmid: 12,
            module: None,
            section: None,
        },
        ..row(1, 0, 2, 70, "viewed", "course_module")
    };
    let rows = vec![
        first,
        module_view(2, 100, 2, 12, "quiz", 4),
        module_view(3, 200, 2, 12, "page", 5),
    ];
    let report = run(&Settings::default(), LONG_AFTER, rows);
    let module = report.course(2).unwrap().module(12).unwrap();
    assert_eq!(
        (module.module.as_deref(), module.section, module.events),
        (Some("quiz"), Some(4), 3)
    );
}

// ---------------------------------------------------------------------------------------------
// Extraction (§2.1, D10, E6)
// ---------------------------------------------------------------------------------------------

#[test]
fn extraction_filters() {
    let base = course_view(1, 100, 2);
    let kept = vec![
        LogRow {
            id: 10,
            origin: None,
            ..base.clone()
        },
        LogRow {
            id: 11,
            origin: Some("ws".into()),
            ..base.clone()
        },
        LogRow {
            id: 12,
            time: T0,
            ..base.clone()
        },
        LogRow {
            id: 13,
            time: T0 + 1000,
            ..base.clone()
        },
        login(14, 200),
        logout(15, 300),
    ];
    let dropped = vec![
        LogRow {
            id: 20,
            origin: Some("cli".into()),
            ..base.clone()
        },
        LogRow {
            id: 21,
            time: T0 - 1,
            ..base.clone()
        },
        LogRow {
            id: 22,
            time: T0 + 1001,
            ..base.clone()
        },
        LogRow {
            id: 23,
            action: "failed".into(),
            ..base.clone()
        },
        LogRow {
            id: 24,
            course: Some(0),
            ..base.clone()
        },
        LogRow {
            id: 25,
            course: None,
            ..base.clone()
        },
        LogRow {
            id: 26,
            realuserid: Some(2),
            ..base.clone()
        },
        LogRow {
            id: 27,
            action: "failed".into(),
            ..login(27, 150)
        },
        // "login" is the renamed action; extraction tests the logged actions only.
        row(28, 160, 0, 10, "login", "user"),
    ];
    let window = Window {
        from: T0,
        to: T0 + 1000,
        now: LONG_AFTER,
    };
    let only_kept = compute(&Settings::default(), window, HashMap::new(), kept.clone());
    let all = compute(
        &Settings::default(),
        window,
        HashMap::new(),
        kept.iter().chain(dropped.iter()).cloned(),
    );
    assert_eq!(only_kept.rows_extracted, kept.len() as u64);
    assert_eq!(all, only_kept);

    let nothing = compute(&Settings::default(), window, HashMap::new(), dropped);
    assert_eq!(nothing.rows_extracted, 0);
    assert_eq!(nothing.total, 0);
    assert!(nothing.courses.is_empty());
    assert_eq!(nothing.sessions, SessionStats::default());
}

#[test]
fn e6_enrolment_filter_drops_rows_before_the_first_enrolment_start_per_course() {
    let rows = vec![
        course_view(1, 0, 2),
        course_view(2, 10, 3),
        course_view(3, 20, 5),
        course_view(4, 100, 2),
        course_view(5, 110, 3),
    ];
    // Course 2 starts at T0+100, course 5 has timestart 0, course 3 has no enrolment.
    let starts = HashMap::from([(2, T0 + 100), (5, 0)]);
    let on = Settings {
        enrolment_filter: true,
        ..Settings::default()
    };
    let filtered = compute(&on, window(LONG_AFTER), starts.clone(), rows.clone());
    assert_eq!(filtered.rows_extracted, 4);
    assert_eq!(course_order(&filtered), vec![3, 5, 2]);
    assert_eq!(filtered.course(2).unwrap().events, 1);
    assert_eq!(filtered.course(2).unwrap().first_time, T0 + 100);

    // D5: off by default, the map is then not consulted.
    let unfiltered = compute(&Settings::default(), window(LONG_AFTER), starts, rows);
    assert_eq!(unfiltered.rows_extracted, 5);
    assert_eq!(course_order(&unfiltered), vec![2, 3, 5]);
}

// ---------------------------------------------------------------------------------------------
// Streaming contract, statistics, estimator
// ---------------------------------------------------------------------------------------------

#[test]
fn out_of_order_rows_are_refused_and_change_nothing() {
    let rows = example1_rows();
    let mut engine = Engine::new(&Settings::default(), window(LONG_AFTER), HashMap::new());
    for row in &rows[..3] {
        engine.push(row).unwrap();
    }
    let earlier = row(999, 200, 2, 50, "viewed", "course");
    assert_eq!(
        engine.push(&earlier),
        Err(OrderError::OutOfOrder {
            previous: (T0 + 300, 103),
            row: (T0 + 200, 999),
        })
    );
    // Same second, lower id: out of order too (D10); the same key again: a repeat.
    assert!(
        engine
            .push(&row(50, 300, 2, 50, "viewed", "course"))
            .is_err()
    );
    assert!(engine.push(&rows[2]).is_err());
    let stranger = LogRow {
        userid: 6,
        ..row(500, 400, 2, 50, "viewed", "course")
    };
    assert_eq!(
        engine.push(&stranger),
        Err(OrderError::OtherUser {
            expected: 5,
            found: 6
        })
    );
    for row in &rows[3..] {
        engine.push(row).unwrap();
    }
    let clean = run(&Settings::default(), LONG_AFTER, rows);
    let report = engine.finish();
    assert_eq!(report.total, clean.total);
    assert_eq!(report.courses, clean.courses);
    assert_eq!(report.rows_extracted, clean.rows_extracted);
}

#[test]
fn same_second_rows_follow_their_ids() {
    let a = course_view(2, 0, 2);
    let b = module_view(1, 0, 2, 10, "page", 20);
    let c = course_view(3, 60, 2);
    let report = compute(
        &Settings::default(),
        window(LONG_AFTER),
        HashMap::new(),
        vec![a, c, b],
    );
    // id 1 (the page) comes first with a 0 s lap; id 2 then holds the 60 s.
    assert_eq!(buckets(&report, 2), (60 + 900, 0, 0, 960));
    assert_eq!(report.course(2).unwrap().module(10).unwrap().events, 1);
}

#[test]
fn e13_mean_session_rounds_half_away_from_zero() {
    let stats = |count: u64, sum: i64| SessionStats {
        count,
        sum,
        ..SessionStats::default()
    };
    assert_eq!(stats(0, 0).mean(), 0);
    assert_eq!(stats(2, 3).mean(), 2);
    assert_eq!(stats(2, 5).mean(), 3);
    assert_eq!(stats(3, 4).mean(), 1);
    assert_eq!(stats(3, 5).mean(), 2);
    assert_eq!(stats(2, -3).mean(), -2);
    assert_eq!(stats(3, -4).mean(), -1);
    assert_eq!(stats(1, i64::MAX).mean(), i64::MAX);
    assert_eq!(stats(2, i64::MIN).mean(), i64::MIN / 2);

    // Two sessions of 901 s and 900 s: a mean of 900.5 s rounds to 901.
    let report = run(
        &Settings::default(),
        LONG_AFTER,
        vec![login(1, 0), login(2, 901)],
    );
    assert_eq!(session_elapsed(&report), vec![901, 900]);
    assert_eq!(report.sessions.mean(), 901);
}

#[test]
fn e13_session_stats_first_and_last_start() {
    let mut stats = SessionStats::default();
    stats.add(10, 5);
    assert_eq!((stats.first_start, stats.last_start), (Some(10), Some(10)));
    stats.add(20, 1);
    stats.add(30, 9);
    assert_eq!(
        stats,
        SessionStats {
            count: 3,
            first_start: Some(10),
            last_start: Some(30),
            min: 1,
            max: 9,
            sum: 15,
        }
    );
}

#[test]
fn estimator_names_rule_and_parameters() {
    let report = run(&Settings::default(), LONG_AFTER, vec![]);
    assert_eq!(
        report.estimator,
        Estimator {
            rule: "use_stats.main",
            version: 1,
            threshold_s: 3600,
            lastpingcredit_s: 900,
        }
    );
    assert_eq!(
        report.estimator.to_string(),
        "use_stats.main v1 (threshold 3600 s, last ping credit 900 s)"
    );
    assert_eq!(report.window, window(LONG_AFTER));
    assert_eq!(report.rows_extracted, 0);
}

#[test]
fn settings_defaults() {
    assert_eq!(
        Settings::default(),
        Settings {
            threshold_minutes: 60,
            lastpingcredit_minutes: 15,
            one_session_per_course: false,
            capture_modules: vec!["learningtimecheck".to_string()],
            ignore_modules: vec![],
            enrolment_filter: false,
        }
    );
}

#[test]
fn extreme_values_saturate_instead_of_overflowing() {
    let at = |id: i64, time: i64| LogRow {
        time,
        ..course_view(id, 0, 2)
    };
    let rows = vec![at(1, i64::MIN), at(2, -1), at(3, i64::MAX)];
    let full = |now| Window {
        from: i64::MIN,
        to: i64::MAX,
        now,
    };
    for (threshold, credit) in [
        (i64::MAX, i64::MAX),
        (i64::MIN, i64::MIN),
        (0, i64::MAX),
        (i64::MAX, 0),
    ] {
        let settings = Settings {
            threshold_minutes: threshold,
            lastpingcredit_minutes: credit,
            ..Settings::default()
        };
        for now in [i64::MIN, 0, i64::MAX] {
            let report = compute(&settings, full(now), HashMap::new(), rows.clone());
            assert_eq!(report.rows_extracted, 3);
            assert!(report.total >= 0);
            assert_eq!(report.sessions.sum, report.total);
        }
    }
    // A threshold and credit of "forever": the gaps saturate at i64::MAX.
    let forever = Settings {
        threshold_minutes: i64::MAX,
        lastpingcredit_minutes: i64::MAX,
        ..Settings::default()
    };
    let report = compute(&forever, full(i64::MAX), HashMap::new(), rows);
    assert_eq!(report.total, i64::MAX);
}
