//! `usestats stats`: one user's time on this site, from the source database, as a table,
//! JSON or the use_stats XML message.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::output::{self, Table};
use crate::cli::{StatsArgs, StatsFormat};
use crate::stats::{Report, Settings, Window};
use crate::store::DbConnection;
use crate::store::source::{Course, CourseField, ModuleLabel, Source, User};

pub(super) async fn run(app: &Arc<App>, args: StatsArgs, json_out: bool) -> CmdResult {
    let now = app.now();
    let (from, to) = window_args(args.from.as_deref(), args.to.as_deref(), now)?;
    let source =
        Source::new(&app.config.source.prefix).context("checking the source table prefix")?;
    let settings = crate::reports::settings(&app.config.engine);
    let username = args.username.clone();
    let course_text = args.course.clone();
    let window = Window { from, to, now };
    let compiled = crate::compiled::CompiledStore::for_config(&app.config, &app.state);
    // The report's own errors ride inside the store's Ok, so that they reach the operator
    // whole rather than as the store's text.
    let Found {
        user,
        report,
        courses,
        labels,
        course_filter,
    } = app
        .source
        .run(move |conn| -> Result<_, crate::store::StoreError> {
            Ok(find(
                conn,
                &source,
                &settings,
                compiled.as_ref(),
                &username,
                course_text.as_deref(),
                window,
            ))
        })
        .await
        .context("opening the source database")??;
    // With --course, the same scoping as the web services (D6): that course's row only, a
    // zero row when it has no time, and only the sessions that touched it.
    let zero_row;
    let (shown, sessions): (Vec<&crate::stats::CourseTotals>, _) = match &course_filter {
        None => (report.courses.iter().collect(), report.sessions.clone()),
        Some(filter) => match report.course(filter.id) {
            Some(row) => (vec![row], row.sessions.clone()),
            None => {
                zero_row = crate::stats::CourseTotals::empty(filter.id);
                (vec![&zero_row], Default::default())
            }
        },
    };
    match (args.format, json_out) {
        (StatsFormat::Json, _) | (_, true) => {
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
            print_json(&json!({
                "user": {"id": user.id, "username": user.username, "firstname": user.firstname, "lastname": user.lastname},
                "window": {"from": from, "to": to},
                "estimator": report.estimator.to_string(),
                "total": report.total,
                "rows": report.rows_extracted,
                "sessions": {
                    "count": sessions.count, "first": sessions.first_start,
                    "last": sessions.last_start, "min": sessions.min,
                    "max": sessions.max, "mean": sessions.mean(),
                },
                "courses": courses_json,
            }));
        }
        (StatsFormat::Xml, false) => {
            let message = if report.rows_extracted == 0 {
                "<USE_STATS><EMPTYSET /></USE_STATS>".to_string()
            } else {
                crate::rpc::stats_message(
                    &user,
                    &report,
                    crate::rpc::Scope::Modules,
                    &from.to_string(),
                    &courses,
                    &labels,
                )
            };
            println!("{message}");
        }
        (StatsFormat::Table, false) => {
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
            for c in &shown {
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
            for c in &shown {
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
        }
    }
    Ok(())
}

/// What `stats` shows, read in one go from the source database.
struct Found {
    user: User,
    report: Report,
    courses: HashMap<i64, Course>,
    labels: HashMap<i64, ModuleLabel>,
    course_filter: Option<Course>,
}

/// `--from` and `--to` as a window: from the beginning of the log to now by default.
pub(super) fn window_args(
    from: Option<&str>,
    to: Option<&str>,
    now: i64,
) -> anyhow::Result<(i64, i64)> {
    let from = from.map(output::parse_time).transpose()?.unwrap_or(0);
    let to_given = to.map(output::parse_time).transpose()?;
    // E15: only an explicit --to can be before --from. Without one the window ends now, and
    // a --from later than now is a window in which nothing has happened yet (an empty report).
    if to_given.is_some_and(|to| to < from) {
        bail!("--to is before --from");
    }
    Ok((from, to_given.unwrap_or(now)))
}

fn find(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    compiled: Option<&crate::compiled::CompiledStore>,
    username: &str,
    course_text: Option<&str>,
    window: Window,
) -> anyhow::Result<Found> {
    let user = source
        .find_user_for_rpc(conn, username)
        .with_context(|| format!("looking up user {username}"))?
        .with_context(|| format!("no user {username} in the source database"))?;
    let course_filter = course_text
        .map(|text| course_for_cli(conn, source, text))
        .transpose()?;
    let report =
        crate::reports::answer_user(conn, source, settings, compiled, user.id, window, true)
            .with_context(|| format!("computing the time of {username}"))?;
    let mut ids: Vec<i64> = report.courses.iter().map(|c| c.course).collect();
    // The course asked for may have no time: its zero row still wants its names.
    ids.extend(course_filter.as_ref().map(|c| c.id));
    let courses = source
        .courses_by_ids(conn, &ids)
        .context("reading course names")?;
    let cmids: Vec<i64> = report
        .courses
        .iter()
        .flat_map(|c| c.modules.iter().map(|m| m.cmid))
        .collect();
    let labels = source
        .module_labels(conn, &cmids)
        .context("reading activity names")?;
    Ok(Found {
        user,
        report,
        courses,
        labels,
        course_filter,
    })
}

/// The course `--course` names: an id or a shortname, or `id:N` / `shortname:S` to say which.
/// A bare text that is one course's id and another's shortname is refused, not guessed.
pub(super) fn course_for_cli(
    conn: &mut DbConnection,
    source: &Source,
    text: &str,
) -> anyhow::Result<Course> {
    let mut find = |field, value| {
        source
            .find_course(conn, field, value)
            .with_context(|| format!("looking up course {text}"))
    };
    let (by_id, by_shortname) = match (text.strip_prefix("id:"), text.strip_prefix("shortname:")) {
        (Some(id), _) => (find(CourseField::Id, id)?, None),
        (_, Some(shortname)) => (None, find(CourseField::ShortName, shortname)?),
        _ => (
            find(CourseField::Id, text)?,
            find(CourseField::ShortName, text)?,
        ),
    };
    match (by_id, by_shortname) {
        (Some(a), Some(b)) if a.id != b.id => bail!(
            "--course {text} is ambiguous: it is course id {} and the shortname of course id {}; say `id:{text}` or `shortname:{text}`",
            a.id,
            b.id
        ),
        (Some(course), _) | (None, Some(course)) => Ok(course),
        (None, None) => bail!("no course {text}"),
    }
}
