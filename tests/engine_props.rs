//! Properties of the time engine that must hold for any input.

use std::collections::HashMap;

use proptest::prelude::*;
use usestats::stats::{
    BLOCK_FANOUT, Engine, Estimator, LogRow, ModuleInfo, Partial, PartialSum, Plan, Probes, Report,
    Segment, Settings, Window, block_start, blocks, compute, plan,
};

const T0: i64 = 1_700_000_000;
const USER: i64 = 5;

/// Rows whose fields are drawn from the values the engine distinguishes, with times packed
/// closely enough for same-second ties and both short and over-threshold gaps.
fn realistic_row() -> impl Strategy<Value = LogRow> {
    let course = prop_oneof![
        8 => (0i64..5).prop_map(Some),
        1 => Just(None),
    ];
    let level = prop::sample::select(vec![10i64, 30, 40, 50, 50, 70, 70, 70, 80]);
    let action = prop::sample::select(vec![
        "viewed",
        "viewed",
        "viewed",
        "submitted",
        "loggedin",
        "loggedout",
        "login",
        "graded",
        "failed",
    ]);
    let target = prop::sample::select(vec!["user", "course", "course_module"]);
    let origin = prop::sample::select(vec![
        None,
        Some("web"),
        Some("web"),
        Some("ws"),
        Some("cli"),
    ]);
    let realuserid = prop_oneof![9 => Just(None), 1 => Just(Some(2i64))];
    let module = prop_oneof![
        6 => (
            1i64..7,
            prop::sample::select(vec![
                Some("page"),
                Some("quiz"),
                Some("forum"),
                Some("learningtimecheck"),
                None,
            ]),
            prop::option::of(1i64..4),
        )
            .prop_map(|(cmid, module, section)| ModuleInfo::Cm {
                cmid,
                module: module.map(Into::into),
                section,
            }),
        1 => Just(ModuleInfo::ContextGone),
        1 => Just(ModuleInfo::NotModule),
    ];
    (
        0i64..20_000,
        course,
        level,
        action,
        target,
        origin,
        realuserid,
        module,
    )
        .prop_map(
            |(offset, course, level, action, target, origin, realuserid, module)| LogRow {
                id: 0,
                userid: USER,
                time: T0 + offset,
                course,
                context_level: level,
                action: action.into(),
                target: target.into(),
                origin: origin.map(Into::into),
                realuserid,
                // The store only resolves a cm for module-level rows.
                module: if level == 70 {
                    module
                } else {
                    ModuleInfo::NotModule
                },
            },
        )
}

/// Ids are unique in the log. Times are drawn independently, so id order is unrelated to time
/// order.
fn with_unique_ids(mut rows: Vec<LogRow>) -> Vec<LogRow> {
    for (index, row) in rows.iter_mut().enumerate() {
        row.id = index as i64 + 1;
    }
    rows
}

fn realistic_rows() -> impl Strategy<Value = Vec<LogRow>> {
    prop::collection::vec(realistic_row(), 0..60).prop_map(with_unique_ids)
}

fn settings() -> impl Strategy<Value = Settings> {
    let capture = prop::sample::select(vec![
        vec![],
        vec!["learningtimecheck"],
        vec!["learningtimecheck", "forum"],
    ]);
    let ignore = prop::sample::select(vec![vec![], vec!["forum"], vec!["quiz", "course"]]);
    (
        1i64..90,
        0i64..90,
        any::<bool>(),
        capture,
        ignore,
        any::<bool>(),
    )
        .prop_map(
            |(threshold, credit, single, capture, ignore, enrolment_filter)| Settings {
                threshold_minutes: threshold,
                lastpingcredit_minutes: credit,
                one_session_per_course: single,
                capture_modules: capture.into_iter().map(str::to_string).collect(),
                ignore_modules: ignore.into_iter().map(str::to_string).collect(),
                enrolment_filter,
            },
        )
}

/// A window inside the rows' span; `now` may fall before `to`.
fn window() -> impl Strategy<Value = Window> {
    (0i64..3_000, 0i64..25_000, -3_000i64..10_000).prop_map(|(from, length, after)| Window {
        from: T0 + from,
        to: T0 + from + length,
        now: T0 + from + length + after,
    })
}

fn enrolments() -> impl Strategy<Value = HashMap<i64, i64>> {
    prop::collection::hash_map(
        1i64..5,
        prop_oneof![Just(0i64), (0i64..20_000).prop_map(|s| T0 + s)],
        0..3,
    )
}

fn sorted(mut rows: Vec<LogRow>) -> Vec<LogRow> {
    rows.sort_by_key(|row| (row.time, row.id));
    rows
}

fn stream(
    settings: &Settings,
    window: Window,
    enrolments: HashMap<i64, i64>,
    rows: &[LogRow],
) -> Report {
    let mut engine = Engine::new(settings, window, enrolments).keep_sessions(true);
    for row in rows {
        engine
            .push(row)
            .expect("sorted rows with unique ids are accepted");
    }
    engine.finish()
}

proptest! {
    // Integration tests have no lib.rs beside them for proptest to persist failures next to.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn buckets_add_up_and_are_never_negative(
        settings in settings(), window in window(), enrolments in enrolments(), rows in realistic_rows()
    ) {
        let report = compute(&settings, window, enrolments, rows);
        let mut grand_total = 0i128;
        for course in &report.courses {
            prop_assert!(course.coursetime >= 0);
            prop_assert!(course.activitytime >= 0);
            prop_assert!(course.othertime >= 0);
            prop_assert_eq!(
                course.coursetotal,
                course.coursetime + course.activitytime + course.othertime
            );
            let module_sum: i64 = course.modules.iter().map(|module| module.elapsed).sum();
            prop_assert!(course.modules.iter().all(|module| module.elapsed >= 0));
            prop_assert_eq!(module_sum, course.activitytime);
            prop_assert!(course.events > 0);
            prop_assert!(course.first_time <= course.last_time);
            grand_total += i128::from(course.coursetotal);
        }
        prop_assert_eq!(grand_total, i128::from(report.total));
        prop_assert!(report.total >= 0);
    }

    #[test]
    fn sessions_hold_the_whole_total(
        settings in settings(), window in window(), enrolments in enrolments(), rows in realistic_rows()
    ) {
        let report = stream(&settings, window, enrolments, &sorted(rows));
        let listed: i64 = report.session_list.iter().map(|session| session.elapsed).sum();
        prop_assert_eq!(listed, report.total);
        prop_assert_eq!(report.sessions.sum, report.total);
        prop_assert_eq!(report.sessions.count, report.session_list.len() as u64);
        let session_events: u64 = report.session_list.iter().map(|session| session.events).sum();
        let course_events: u64 = report.courses.iter().map(|course| course.events).sum();
        prop_assert_eq!(session_events, course_events);
        for pair in report.session_list.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "sessions overlap: {:?}", pair);
        }
        for session in &report.session_list {
            prop_assert!(session.start <= session.end);
            prop_assert!(session.elapsed >= 0);
            prop_assert!(!session.courses.is_empty());
        }
        // D6: each course's statistics cover exactly the sessions that list it.
        for course in &report.courses {
            let touching: Vec<_> = report
                .session_list
                .iter()
                .filter(|session| session.courses.contains(&course.course))
                .collect();
            prop_assert_eq!(course.sessions.count, touching.len() as u64);
            prop_assert_eq!(course.sessions.sum, touching.iter().map(|s| s.elapsed).sum::<i64>());
            prop_assert_eq!(course.sessions.first_start, touching.first().map(|s| s.start));
            prop_assert_eq!(course.sessions.last_start, touching.last().map(|s| s.start));
        }
        if report.rows_extracted == 0 {
            prop_assert_eq!(report.total, 0);
            prop_assert!(report.courses.is_empty());
        }
    }

    #[test]
    fn input_order_does_not_matter(
        settings in settings(),
        window in window(),
        enrolments in enrolments(),
        (rows, shuffled) in realistic_rows().prop_flat_map(|rows| {
            let shuffled = Just(rows.clone()).prop_shuffle();
            (Just(rows), shuffled)
        })
    ) {
        let from_sorted = compute(&settings, window, enrolments.clone(), sorted(rows));
        let from_shuffled = compute(&settings, window, enrolments, shuffled);
        prop_assert_eq!(from_sorted, from_shuffled);
    }

    #[test]
    fn same_second_rows_are_ordered_by_id(
        settings in settings(),
        rows in prop::collection::vec(realistic_row(), 0..30).prop_map(|rows| {
            // Three distinct seconds only, so most rows tie.
            let rows: Vec<LogRow> = rows
                .into_iter()
                .map(|row| LogRow { time: T0 + (row.time - T0) % 3 * 1000, ..row })
                .collect();
            with_unique_ids(rows)
        }).prop_shuffle()
    ) {
        let window = Window { from: T0, to: T0 + 5000, now: T0 + 5000 };
        let by_key = stream(&settings, window, HashMap::new(), &sorted(rows.clone()));
        let mut reversed_ids = rows;
        reversed_ids.sort_by_key(|row| (row.time, std::cmp::Reverse(row.id)));
        let result = compute(&settings, window, HashMap::new(), reversed_ids);
        prop_assert_eq!(by_key.courses, result.courses);
        prop_assert_eq!(by_key.total, result.total);
    }

    #[test]
    fn streaming_equals_compute(
        settings in settings(), window in window(), enrolments in enrolments(), rows in realistic_rows()
    ) {
        let streamed = stream(&settings, window, enrolments.clone(), &sorted(rows.clone()));
        let mut engine = Engine::new(&settings, window, enrolments.clone());
        for row in sorted(rows.clone()) {
            engine.push(&row).expect("sorted rows are accepted");
        }
        let without_list = engine.finish();
        let computed = compute(&settings, window, enrolments, rows);
        prop_assert!(without_list.session_list.is_empty());
        prop_assert_eq!(&without_list, &computed);
        prop_assert_eq!(streamed.courses, computed.courses);
        prop_assert_eq!(streamed.sessions, computed.sessions);
        prop_assert_eq!(streamed.total, computed.total);
    }

    #[test]
    fn an_ordinary_row_never_lowers_the_total(
        settings in settings(),
        window in window(),
        enrolments in enrolments(),
        rows in realistic_rows(),
        extra_offset in 1i64..25_000,
        extra_course in 1i64..5,
        extra_activity in prop::option::of((1i64..7, prop::sample::select(vec!["page", "quiz"]))),
    ) {
        // The added row must be ordinary: neither captured nor ignored.
        let mut settings = settings;
        let extra_module = extra_activity.map_or("course", |(_, module)| module);
        settings.ignore_modules.retain(|module| module != extra_module);
        settings.capture_modules.retain(|module| module != extra_module);
        // Credit is capped by now only after the last row, where adding a row cannot cost time.
        let window = Window { now: window.now.max(window.to), ..window };
        // A leading graded row is processed because nothing precedes it; a row inserted before
        // it would turn it into a skipped echo. An ordinary first row keeps that case out.
        let anchor = LogRow {
            id: 0,
            userid: USER,
            time: window.from,
            course: Some(9),
            context_level: 50,
            action: "viewed".into(),
            target: "course".into(),
            origin: Some("web".into()),
            realuserid: None,
            module: ModuleInfo::NotModule,
        };
        let mut base = rows;
        base.push(anchor.clone());
        let extra = LogRow {
            id: base.len() as i64 + 100_000,
            time: (window.from + extra_offset).min(window.to),
            course: Some(extra_course),
            context_level: if extra_activity.is_some() { 70 } else { 50 },
            module: match extra_activity {
                Some((cmid, module)) => ModuleInfo::Cm {
                    cmid,
                    module: Some(module.into()),
                    section: Some(1),
                },
                None => ModuleInfo::NotModule,
            },
            ..anchor
        };
        let before = compute(&settings, window, enrolments.clone(), base.clone());
        base.push(extra);
        let after = compute(&settings, window, enrolments, base);
        prop_assert!(
            after.total >= before.total,
            "total went from {} to {}",
            before.total,
            after.total
        );
    }

    #[test]
    fn never_panics_on_arbitrary_rows(
        settings in (any::<i64>(), any::<i64>(), any::<bool>(), any::<bool>()).prop_map(
            |(threshold, credit, single, enrolment_filter)| Settings {
                threshold_minutes: threshold,
                lastpingcredit_minutes: credit,
                one_session_per_course: single,
                enrolment_filter,
                ..Settings::default()
            }
        ),
        window in prop_oneof![
            // The whole time line, so that extreme rows are extracted.
            any::<i64>().prop_map(|now| Window { from: i64::MIN, to: i64::MAX, now }),
            prop::sample::select(vec![i64::MIN, i64::MAX, 0])
                .prop_map(|now| Window { from: i64::MIN, to: i64::MAX, now }),
            (any::<i64>(), any::<i64>(), any::<i64>())
                .prop_map(|(from, to, now)| Window { from, to, now }),
        ],
        enrolments in prop::collection::hash_map(any::<i64>(), any::<i64>(), 0..4),
        rows in prop::collection::vec(
            (
                any::<i64>(),
                prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>()],
                prop::option::of(prop_oneof![Just(0i64), any::<i64>()]),
                prop_oneof![Just(70i64), Just(10i64), any::<i64>()],
                prop::sample::select(vec!["loggedin", "loggedout", "graded", "viewed", ""]),
                prop::sample::select(vec!["user", "course"]),
                prop_oneof![
                    Just(ModuleInfo::NotModule),
                    Just(ModuleInfo::ContextGone),
                    (any::<i64>(), prop::option::of(".{0,3}"), prop::option::of(any::<i64>()))
                        .prop_map(|(cmid, module, section)| ModuleInfo::Cm { cmid, module: module.map(Into::into), section }),
                ],
                prop::option::of(prop::sample::select(vec!["web", "cli"])),
            )
                .prop_map(|(id, time, course, level, action, target, module, origin)| LogRow {
                    id,
                    userid: USER,
                    time,
                    course,
                    context_level: level,
                    action: action.into(),
                    target: target.into(),
                    origin: origin.map(Into::into),
                    realuserid: None,
                    module,
                }),
            0..40,
        ),
    ) {
        let report = compute(&settings, window, enrolments.clone(), rows.clone());
        prop_assert!(report.total >= 0);
        for course in &report.courses {
            prop_assert!(course.coursetime >= 0 && course.activitytime >= 0 && course.othertime >= 0);
            prop_assert!(course.coursetotal >= 0);
        }
        let _ = report.sessions.mean();
        // Unsorted input through the streaming interface: refusals, never panics.
        let mut engine = Engine::new(&settings, window, enrolments).keep_sessions(true);
        for row in &rows {
            let _ = engine.push(row);
        }
        let streamed = engine.finish();
        prop_assert!(streamed.session_list.iter().all(|session| session.elapsed >= 0));
    }

    /// The compiled store's premise (stats::partial): segments compiled once over all rows,
    /// with runs of their own before and after them, equal one run over the window.
    #[test]
    fn segments_compose_to_the_full_run(
        settings in settings(),
        window in any_window(),
        enrolments in enrolments(),
        rows in realistic_rows(),
    ) {
        let rows = sorted(rows);
        let full = stream(&settings, window, enrolments.clone(), &rows);
        let composed_rows = composed(&settings, window, &enrolments, &rows, false);
        prop_assert_eq!(&composed_rows, &full);
        // Summed by blocks, which keep no session list.
        let mut by_blocks = composed(&settings, window, &enrolments, &rows, true);
        let mut without = full.clone();
        without.session_list.clear();
        by_blocks.session_list.clear();
        prop_assert_eq!(by_blocks, without);
    }

    /// Adding many runs at once gives what adding them one after the other gives.
    #[test]
    fn a_sum_of_many_runs_equals_appending_them(
        settings in settings(),
        rows in realistic_rows(),
    ) {
        let rows = sorted(rows);
        let everything = Window { from: i64::MIN, to: i64::MAX, now: i64::MAX };
        let mut compiler = Engine::new(&settings, everything, HashMap::new()).segmenting();
        let mut parts = Vec::new();
        for row in &rows {
            if let Some(segment) = compiler.push_segmented(row).expect("sorted rows") {
                parts.push(segment.partial);
            }
        }
        parts.push(compiler.finish_partial(None));
        let mut appended = Partial::default();
        let mut summed = PartialSum::default();
        for part in parts {
            appended.append(part.clone());
            summed.add(part);
        }
        prop_assert_eq!(summed.finish(), appended);
    }

    /// Blocks cover a range of segments exactly once, in order, with whole units only.
    #[test]
    fn blocks_tile_their_range(a in 0usize..100_000, len in 0usize..100_000) {
        let b = a + len;
        let mut at = a;
        for (level, lo, hi) in blocks(a, b) {
            prop_assert!(lo < hi);
            prop_assert_eq!(block_start(level, lo), at);
            at = block_start(level, hi);
            // At most 15 units of a level on either side, but for the top level.
            if level < usestats::stats::BLOCK_LEVELS {
                prop_assert!(hi - lo < 2 * BLOCK_FANOUT);
            }
        }
        prop_assert_eq!(at, b);
    }
}

/// A window that may also start before the first row and end after the last.
fn any_window() -> impl Strategy<Value = Window> {
    (-2_000i64..21_000, 0i64..25_000, -3_000i64..10_000).prop_map(|(from, length, after)| Window {
        from: T0 + from,
        to: T0 + from + length,
        now: T0 + from + length + after,
    })
}

fn composed(
    settings: &Settings,
    window: Window,
    enrolments: &HashMap<i64, i64>,
    rows: &[LogRow],
    by_blocks: bool,
) -> Report {
    let everything = Window {
        from: i64::MIN,
        to: i64::MAX,
        now: i64::MAX,
    };
    let mut compiler = Engine::new(settings, everything, enrolments.clone()).segmenting();
    let mut segments: Vec<Segment> = Vec::new();
    for row in rows {
        if let Some(segment) = compiler.push_segmented(row).expect("sorted rows") {
            segments.push(segment);
        }
    }
    for pair in segments.windows(2) {
        assert_eq!(pair[0].next, pair[1].first, "segments are contiguous");
    }
    // What the store's probes find: one seek each into the segments' first keys.
    let limit = window.to.min(window.now);
    let probes = Probes {
        segments: segments.len(),
        from: segments.partition_point(|s| s.first < (window.from, i64::MIN)),
        after_limit: segments.partition_point(|s| s.first.0 <= limit),
        after_to: segments.partition_point(|s| s.first.0 <= window.to),
        boundary: segments.last().map(|s| s.next),
    };
    let plan = plan(probes, window);
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && window.from <= first.time
        && window.to.min(window.now) >= last.time
        && !segments.is_empty()
    {
        // A window over every row is answered from the segments alone.
        assert_eq!(plan.interior, 0..segments.len());
    }
    let rows_of = |k: usize| -> Vec<&LogRow> {
        let s = &segments[k];
        rows.iter()
            .filter(|r| (r.time, r.id) >= s.first && (r.time, r.id) < s.next)
            .collect()
    };
    let run = || Engine::new(settings, window, enrolments.clone()).keep_sessions(true);
    let mut total = Partial::default();
    let mut carried = None;
    let Plan {
        left,
        mut interior,
        right,
        loose,
    } = plan;
    if let Some(left) = left {
        // As `compiled::answer`: a left run that does not end where a cut is takes in the
        // next segment.
        let mut engine = run();
        for row in rows_of(left) {
            engine.push(row).expect("sorted rows");
        }
        let mut next = left + 1;
        loop {
            if next >= interior.end {
                carried = Some(engine);
                interior = interior.end..interior.end;
                break;
            }
            let segment = &segments[next];
            if engine.ends_reset_before(segment.first.0, segment.login) {
                total.append(engine.finish_partial(Some(segment.first.0)));
                interior = next..interior.end;
                break;
            }
            for row in rows_of(next) {
                engine.push(row).expect("sorted rows");
            }
            next += 1;
        }
    }
    if by_blocks {
        for (level, lo, hi) in blocks(interior.start, interior.end) {
            for unit in lo..hi {
                let (a, b) = (block_start(level, unit), block_start(level, unit + 1));
                let mut block = Partial::default();
                for segment in &segments[a..b] {
                    let mut part = segment.partial.clone();
                    part.session_list.clear();
                    block.append(part);
                }
                total.append(block);
            }
        }
    } else {
        for segment in &segments[interior.clone()] {
            total.append(segment.partial.clone());
        }
    }
    let mut last = carried.unwrap_or_else(run);
    for k in right {
        for row in rows_of(k) {
            last.push(row).expect("sorted rows");
        }
    }
    if loose {
        let boundary = segments.last().map_or((i64::MIN, i64::MIN), |s| s.next);
        for row in rows.iter().filter(|r| (r.time, r.id) >= boundary) {
            last.push(row).expect("sorted rows");
        }
    }
    total.append(last.finish_partial(None));
    total.into_report(Estimator::for_settings(settings), window)
}
