//! `usestats stats`: one user's time on this site, from the source database, as a table,
//! JSON or the use_stats XML message.

use std::sync::Arc;

use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use super::estimate;
use crate::app::App;
use crate::cli::output::{self, Table};
use crate::cli::{StatsArgs, StatsFormat};
use crate::estimators::{EstimatorName, why_they_differ};
use crate::reports::{CourseLookupError, LearnerAsk, LearnerError, LearnerReport};
use crate::stats::{CourseTotals, SessionStats, Window};
use crate::store::source::Course;
use crate::timefmt::{Preset, Span};
use std::collections::HashMap;

pub(super) async fn run(app: &Arc<App>, args: StatsArgs, json_out: bool) -> CmdResult {
    let now = app.now();
    let span = window_args(&args.from, &args.to, &args.last, now)?;
    let (from, to) = (span.from, span.to);
    let names = args.estimators.estimator.names();
    let only_use_stats = names == [EstimatorName::UseStats];
    if args.format == StatsFormat::Xml && !json_out && !only_use_stats {
        anyhow::bail!(
            "--format xml is use_stats' MNET message: use --format json or table for the other estimators"
        );
    }
    if args.sessions && (!only_use_stats || args.format == StatsFormat::Xml) {
        anyhow::bail!(
            "--sessions lists use_stats' sessions as a table or JSON: leave out --estimator and --format xml (the dedication estimators list their sessions in their own output)"
        );
    }
    let asked = LearnerAsk {
        username: args.username.clone(),
        course: args.course.clone(),
        window: Window { from, to, now },
        sessions: true,
        labels: true,
    };
    let found = app.reports.learner(asked).await.map_err(learner_error)?;
    if args.sessions {
        super::sessions::print(&found, &span, json_out || args.format == StatsFormat::Json);
        return Ok(());
    }
    // With --course, the same scoping as the web services (D6): that course's row only, a
    // zero row when it has no time, and only the sessions that touched it.
    let (shown, sessions) = found.shown();
    let (runs, dedication_courses) = estimate::dedications(
        app,
        &names,
        &args.estimators,
        vec![found.user.id],
        found.course_filter.as_ref().map(|c| c.id),
        from,
        to,
    )
    .await?;
    let use_stats = names.contains(&EstimatorName::UseStats);
    let use_stats_total = if found.course_filter.is_some() {
        shown.iter().map(|c| c.coursetotal).sum()
    } else {
        found.report.total
    };
    let printed = Printed {
        found,
        shown,
        sessions,
        runs,
        dedication_courses,
        from,
        to,
        use_stats,
        only_use_stats,
        use_stats_total,
    };
    match (args.format, json_out) {
        (StatsFormat::Json, _) | (_, true) => print_stats_json(&printed),
        (StatsFormat::Xml, false) => print_stats_xml(&printed),
        (StatsFormat::Table, false) => print_stats_table(&printed),
    }
    Ok(())
}

/// What `stats` prints, in whichever format.
struct Printed {
    found: LearnerReport,
    /// The course rows shown and their sessions (see [`LearnerReport::shown`]).
    shown: Vec<CourseTotals>,
    sessions: SessionStats,
    runs: Vec<estimate::DedicationRun>,
    dedication_courses: HashMap<i64, Course>,
    from: i64,
    to: i64,
    use_stats: bool,
    only_use_stats: bool,
    use_stats_total: i64,
}

fn print_stats_json(p: &Printed) {
    let LearnerReport {
        user,
        report,
        courses,
        labels,
        ..
    } = &p.found;
    let Printed {
        shown,
        sessions,
        runs,
        dedication_courses,
        ..
    } = p;
    let (from, to, use_stats, use_stats_total) = (p.from, p.to, p.use_stats, p.use_stats_total);
    let courses_json: Vec<_> = shown
        .iter()
        .map(|c| {
            let course = courses.get(&c.course);
            json!({
                "id": c.course,
                "shortname": course.map(|c| c.shortname.clone()),
                "fullname": course.map(|c| c.fullname.clone()),
                "coursetime": c.coursetime, "activitytime": c.activitytime,
                "othertime": c.othertime, "coursetotal": c.coursetotal,
                "events": c.events,
                "modules": c.modules.iter().map(|m| json!({
                    "cmid": m.cmid,
                    "type": m.module,
                    "name": labels.get(&m.cmid).map(|l| l.name.clone()),
                    "elapsed": m.elapsed,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let user_json = json!({"id": user.id, "username": user.username, "firstname": user.firstname, "lastname": user.lastname});
    let use_stats_json = json!({
        "estimator": report.estimator.to_string(),
        "total": report.total,
        "rows": report.rows_extracted,
        "sessions": {
            "count": sessions.count, "first": sessions.first_start,
            "last": sessions.last_start, "min": sessions.min,
            "max": sessions.max, "mean": sessions.mean(),
        },
        "courses": courses_json,
    });
    if p.only_use_stats {
        let mut out = json!({"user": user_json, "window": {"from": from, "to": to}});
        if let (Some(out), Some(fields)) = (out.as_object_mut(), use_stats_json.as_object()) {
            out.extend(fields.clone());
        }
        print_json(&out);
        return;
    }
    let mut blocks = Vec::new();
    if use_stats {
        let mut block = json!({"name": "use_stats"});
        if let (Some(block), Some(fields)) = (block.as_object_mut(), use_stats_json.as_object()) {
            block.extend(fields.clone());
        }
        blocks.push(block);
    }
    for run in runs {
        let answer = run.answers.get(&user.id);
        let mut block = estimate::learner_json(run, answer, dedication_courses);
        if let (true, Some(answer), Some(object)) = (use_stats, answer, block.as_object_mut()) {
            object.insert(
                "why".into(),
                json!(why_they_differ(use_stats_total, answer)),
            );
        }
        blocks.push(block);
    }
    print_json(&json!({
        "user": user_json,
        "window": {"from": from, "to": to},
        "estimators": blocks,
    }));
}

fn print_stats_xml(p: &Printed) {
    let LearnerReport {
        user,
        report,
        courses,
        labels,
        ..
    } = &p.found;
    let from = p.from;
    let message = if report.rows_extracted == 0 {
        "<USE_STATS><EMPTYSET /></USE_STATS>".to_string()
    } else {
        crate::services::use_stats::stats_message(
            user,
            report,
            crate::services::use_stats::Scope::Modules,
            &from.to_string(),
            courses,
            labels,
        )
    };
    println!("{message}");
}

fn print_stats_table(p: &Printed) {
    let LearnerReport {
        user,
        report,
        courses,
        labels,
        course_filter,
    } = &p.found;
    let Printed {
        shown,
        sessions,
        runs,
        dedication_courses,
        ..
    } = p;
    let (from, to, use_stats, use_stats_total) = (p.from, p.to, p.use_stats, p.use_stats_total);
    println!(
        "user       {} ({} {}), id {}",
        user.username, user.firstname, user.lastname, user.id
    );
    println!(
        "window     {} → {}",
        if from == 0 {
            "the beginning of the log".to_string()
        } else {
            output::time(from)
        },
        output::time(to)
    );
    if !use_stats {
        print_dedications(runs, user.id, dedication_courses, None);
        return;
    }
    println!("estimator  {}", report.estimator);
    println!("log rows   {}", report.rows_extracted);
    println!(
        "total      {} ({} s){}",
        output::duration(report.total),
        report.total,
        if course_filter.is_some() {
            ", all courses"
        } else {
            ""
        }
    );
    println!(
        "sessions   {} (first {}, last {}, shortest {}, longest {}, mean {})",
        sessions.count,
        output::time(sessions.first_start.unwrap_or(0)),
        output::time(sessions.last_start.unwrap_or(0)),
        output::duration(sessions.min),
        output::duration(sessions.max),
        output::duration(sessions.mean()),
    );
    let mut table = Table::new(&[
        "course",
        "shortname",
        "in course",
        "activities",
        "other",
        "total",
    ]);
    for c in shown {
        let course = courses.get(&c.course);
        table.row(vec![
            c.course.to_string(),
            course.map(|c| c.shortname.clone()).unwrap_or_else(|| {
                if c.course == 0 {
                    "(site, logins)".into()
                } else {
                    "?".into()
                }
            }),
            output::duration(c.coursetime),
            output::duration(c.activitytime),
            output::duration(c.othertime),
            output::duration(c.coursetotal),
        ]);
    }
    println!("\n{}", table.render());
    let mut modules = Table::new(&["course", "cmid", "type", "activity", "time"]);
    for c in shown {
        for m in &c.modules {
            let label = labels.get(&m.cmid);
            modules.row(vec![
                c.course.to_string(),
                m.cmid.to_string(),
                m.module.clone().unwrap_or_else(|| "N.C.".into()),
                label
                    .map(|l| l.name.clone())
                    .unwrap_or_else(|| "N.C.".into()),
                output::duration(m.elapsed),
            ]);
        }
    }
    if !modules.is_empty() {
        print!("{}", modules.render());
    }
    print_dedications(runs, user.id, dedication_courses, Some(use_stats_total));
}

/// Each dedication estimator's tables, then, next to use_stats' total when it was asked for,
/// the totals side by side and why they differ.
fn print_dedications(
    runs: &[estimate::DedicationRun],
    user: i64,
    courses: &std::collections::HashMap<i64, crate::store::source::Course>,
    use_stats_total: Option<i64>,
) {
    for run in runs {
        estimate::print_learner(run, run.answers.get(&user), courses);
    }
    let Some(use_stats_total) = use_stats_total.filter(|_| !runs.is_empty()) else {
        return;
    };
    println!(
        "
side by side"
    );
    let mut table = Table::new(&["estimator", "total", "why"]);
    table.row(vec![
        EstimatorName::UseStats.to_string(),
        output::duration(use_stats_total),
        String::new(),
    ]);
    for run in runs {
        let answer = run.answers.get(&user);
        table.row(vec![
            run.name.to_string(),
            output::duration(answer.map(|a| a.total()).unwrap_or(0)),
            answer
                .map(|a| why_they_differ(use_stats_total, a))
                .unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
}

/// `--from` and `--to` (or `--last`) as a window: from the beginning of the log to now by
/// default; a date as `--to` runs through the end of that day (E15: an explicit `--to` before
/// `--from` is refused). `--last N` is the last N days, today included, as the console's
/// presets are (clap keeps it apart from `--from` and `--to`).
pub(super) fn window_args(
    from: &Option<String>,
    to: &Option<String>,
    last: &Option<String>,
    now: i64,
) -> anyhow::Result<Span> {
    let (from, to) = (from.as_deref(), to.as_deref());
    let days = match last {
        Some(text) => Some(Preset::parse_last(text)?.days(now).ok_or_else(|| {
            anyhow::anyhow!("--last: the clock is outside the years 1970 to 9999")
        })?),
        None => None,
    };
    let (from, to) = match &days {
        Some((first, last)) => (Some(first.as_str()), Some(last.as_str())),
        None => (from, to),
    };
    crate::timefmt::window(from, to, now).map_err(|e| match e {
        crate::timefmt::WindowError::Reversed => anyhow::anyhow!("--to is before --from"),
        e => e.into(),
    })
}

/// A learner's report's error as the command line words it.
fn learner_error(e: LearnerError) -> anyhow::Error {
    match e {
        LearnerError::Prefix(e) => {
            anyhow::Error::new(e).context("checking the source table prefix")
        }
        LearnerError::Store(e) => anyhow::Error::new(e).context("opening the source database"),
        LearnerError::Course(e) => course_error(e),
        e => e.into(),
    }
}

/// A course lookup's error as the command line words it: the option by name.
pub(super) fn course_error(e: CourseLookupError) -> anyhow::Error {
    match e {
        CourseLookupError::Ambiguous { .. } => anyhow::anyhow!("--{e}"),
        e => e.into(),
    }
}
