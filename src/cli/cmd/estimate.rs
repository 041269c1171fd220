//! The dedication estimators on the command line (docs/engine.md §8): computed for `stats` and
//! `report` next to use_stats' numbers, shown as JSON or tables.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::bail;
use serde_json::{Value as Json, json};

use crate::app::App;
use crate::cli::EstimatorOptions;
use crate::cli::output::{self, Table};
use crate::estimators::EstimatorName;
use crate::reports::{DedicationAsk, DedicationError};
use crate::stats::dedication::{CourseDedication, Dedication, DedicationEstimator, Variant};
use crate::store::source::Course;

/// One dedication estimator's answers, per user.
pub(super) struct DedicationRun {
    pub name: EstimatorName,
    pub estimator: DedicationEstimator,
    pub answers: HashMap<i64, Dedication>,
}

/// The dedication variants among `names`, each for `users` (over `course` only when given),
/// and the courses they name. `from`/`to` 0 take the rule's defaults.
pub(super) async fn dedications(
    app: &Arc<App>,
    names: &[EstimatorName],
    options: &EstimatorOptions,
    users: Vec<i64>,
    course: Option<i64>,
    from: i64,
    to: i64,
) -> anyhow::Result<(Vec<DedicationRun>, HashMap<i64, Course>)> {
    let variants: Vec<Variant> = names
        .iter()
        .filter_map(|n| match n {
            EstimatorName::Dedication(v) => Some(*v),
            EstimatorName::UseStats => None,
        })
        .collect();
    if variants.is_empty() {
        if options.session_limit.is_some() || options.ignore_sessions_limit.is_some() {
            bail!(
                "--session-limit and --ignore-sessions-limit apply to --estimator dedication, dedication.legacy or all"
            );
        }
        return Ok((Vec::new(), HashMap::new()));
    }
    if variants == [Variant::Legacy] && options.ignore_sessions_limit.is_some() {
        bail!("--ignore-sessions-limit: dedication.legacy counts every session");
    }
    let answer = app
        .reports
        .dedications(DedicationAsk {
            variants: variants.clone(),
            session_limit: options.session_limit,
            ignore_sessions_limit: options.ignore_sessions_limit,
            users,
            course,
            from,
            to,
            now: app.now(),
            course_names: true,
            sessions: true,
        })
        .await
        .map_err(|e| match e {
            DedicationError::Prefix(e) => {
                anyhow::Error::new(e).context("checking the source table prefix")
            }
            e => anyhow::Error::new(e)
                .context("reading the source database for the dedication estimators"),
        })?;
    let runs = variants
        .into_iter()
        .zip(answer.runs)
        .map(|(variant, (estimator, answers))| DedicationRun {
            name: EstimatorName::Dedication(variant),
            estimator,
            answers,
        })
        .collect();
    Ok((runs, answer.courses))
}

/// A course's dedication as JSON: its window, total, and every session kept or dropped.
pub(super) fn course_json(c: &CourseDedication, courses: &HashMap<i64, Course>) -> Json {
    let mut out = json!({
        "id": c.course,
        "shortname": courses.get(&c.course).map(|c| c.shortname.clone()),
        "window": {"from": c.window.from, "to": c.window.to},
        "total": c.total,
        "rows": c.rows,
        "kept": c.kept,
        "dropped": c.dropped,
        "sessions": c.sessions.iter().map(|s| json!({
            "start": s.start,
            "end": s.end,
            "rows": s.rows,
            "duration": s.duration,
            "kept": s.dropped.is_none(),
            "dropped": s.dropped.map(|d| d.as_str()),
        })).collect::<Vec<_>>(),
    });
    if let (Some(legacy), Some(object)) = (c.legacy, out.as_object_mut()) {
        object.insert(
            "legacy".into(),
            json!({
                "user_report_total": legacy.user_report_total,
                "days_with_rows": legacy.days_with_rows,
                "days_in_period": legacy.days_in_period,
                "connection_ratio": legacy.connection_ratio(),
            }),
        );
    }
    out
}

/// One learner's answer under one dedication estimator, as JSON.
pub(super) fn learner_json(
    run: &DedicationRun,
    answer: Option<&Dedication>,
    courses: &HashMap<i64, Course>,
) -> Json {
    json!({
        "name": run.name.as_str(),
        "estimator": run.estimator.to_string(),
        "total": answer.map(Dedication::total).unwrap_or(0),
        "courses": answer
            .map(|a| a.courses.iter().map(|c| course_json(c, courses)).collect::<Vec<_>>())
            .unwrap_or_default(),
    })
}

/// One learner's answer under one dedication estimator, as tables: courses, then sessions.
pub(super) fn print_learner(
    run: &DedicationRun,
    answer: Option<&Dedication>,
    courses: &HashMap<i64, Course>,
) {
    let total = answer.map(Dedication::total).unwrap_or(0);
    println!("\nestimator  {}", run.estimator);
    println!(
        "total      {} ({} s), courses added up (they may overlap)",
        output::duration(total),
        total
    );
    let list: &[CourseDedication] = answer.map(|a| a.courses.as_slice()).unwrap_or_default();
    let mut table = Table::new(&[
        "course",
        "shortname",
        "from",
        "to",
        "total",
        "kept",
        "dropped",
    ]);
    for c in list {
        table.row(vec![
            c.course.to_string(),
            courses
                .get(&c.course)
                .map(|c| c.shortname.clone())
                .unwrap_or_else(|| "?".into()),
            output::time(c.window.from),
            output::time(c.window.to),
            output::duration(c.total),
            c.kept.to_string(),
            c.dropped.to_string(),
        ]);
    }
    println!("\n{}", table.render());
    let mut sessions = Table::new(&["course", "start", "end", "rows", "duration", "outcome"]);
    for c in list {
        for s in &c.sessions {
            sessions.row(vec![
                c.course.to_string(),
                output::time(s.start),
                output::time(s.end),
                s.rows.to_string(),
                output::duration(s.duration),
                match s.dropped {
                    None => "kept".into(),
                    Some(why) => format!("dropped: {}", why.as_str()),
                },
            ]);
        }
    }
    if !sessions.is_empty() {
        print!("{}", sessions.render());
    }
}
