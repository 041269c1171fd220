//! `usestats report --course C`: every enrolled learner's time in a course, as a table, JSON,
//! or an export (CSV, XLSX, ODS: the console's downloads, cell for cell) to standard output or
//! a file named after the course and the window.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use super::estimate::{self, DedicationRun};
use super::stats::{course_error, window_args};
use crate::app::App;
use crate::cli::output::{self, Table};
use crate::cli::{ReportArgs, ReportFormat};
use crate::estimators::EstimatorName;
use crate::reports::course::{self, CourseReport};
use crate::reports::export::{self, Cell, Format, Sheet};
use crate::reports::{CourseAsk, CourseError, GroupLookupError};
use crate::stats::Window;

pub(super) async fn run(app: &Arc<App>, args: ReportArgs, json_out: bool) -> CmdResult {
    let now = app.now();
    let span = window_args(&args.from, &args.to, &args.last, now)?;
    let (from, to) = (span.from, span.to);
    let window = Window { from, to, now };
    let asked = CourseAsk {
        course: args.course.clone(),
        window,
        group: args.group.clone(),
    };
    let report = app.reports.course(asked).await.map_err(|e| match e {
        CourseError::Prefix(e) => anyhow::Error::new(e).context("checking the source table prefix"),
        CourseError::Store(e) => anyhow::Error::new(e).context("opening the source database"),
        CourseError::Lookup(e) => course_error(e),
        CourseError::Report(e) => {
            anyhow::Error::new(e).context(format!("computing the report of course {}", args.course))
        }
        CourseError::Group(e @ GroupLookupError::Ambiguous { .. }) => anyhow::anyhow!("--{e}"),
        CourseError::Group(e) => e.into(),
    })?;
    let names = args.estimators.estimator.names();
    let ids: Vec<i64> = report.learners.iter().map(|l| l.userid).collect();
    let (runs, _) = estimate::dedications(
        app,
        &names,
        &args.estimators,
        ids,
        Some(report.course.id),
        from,
        to,
    )
    .await?;
    let use_stats = names.contains(&EstimatorName::UseStats);
    let side_by_side = names != [EstimatorName::UseStats];
    let sheet = || {
        if side_by_side {
            side_by_side_sheet(&report, use_stats, &runs)
        } else {
            course::to_sheet(&report)
        }
    };
    let export = match args.format {
        ReportFormat::Csv => Some(Format::Csv),
        ReportFormat::Xlsx => Some(Format::Xlsx),
        ReportFormat::Ods => Some(Format::Ods),
        ReportFormat::Table | ReportFormat::Json => None,
    };
    match (export, args.output) {
        (None, Some(_)) => bail!("--output takes the csv, xlsx and ods formats"),
        // A file, or a spreadsheet to a pipe.
        (Some(format), output) if output.is_some() || format.is_binary() => {
            let sheet = sheet();
            let bytes = export::write(&sheet, format)?;
            let target = output.unwrap_or_else(|| course::file_name(&report, format).into());
            deliver(&target, format, &bytes, sheet.rows.len(), json_out)
        }
        _ if json_out || args.format == ReportFormat::Json => {
            print_json(&if side_by_side {
                side_by_side_json(&report, use_stats, &runs)
            } else {
                to_json(&report)
            });
            Ok(())
        }
        (Some(format), _) => std::io::stdout()
            .write_all(&export::write(&sheet(), format)?)
            .context("writing to standard output"),
        (None, _) if side_by_side => {
            print_side_by_side(&report, use_stats, &runs);
            Ok(())
        }
        (None, _) => {
            print_table(&report);
            Ok(())
        }
    }
}

/// An export's bytes to `target`, `-` for standard output (never a binary format on a
/// terminal, where it would be noise), then a line saying where it went.
fn deliver(target: &Path, format: Format, bytes: &[u8], rows: usize, json_out: bool) -> CmdResult {
    let ext = format.extension();
    if target == Path::new("-") {
        if format.is_binary() && std::io::stdout().is_terminal() {
            bail!(
                "an {ext} file is binary and standard output is a terminal: give --output FILE, or redirect the output"
            );
        }
        return std::io::stdout()
            .write_all(bytes)
            .context("writing to standard output");
    }
    // Personal data: readable by its owner only, as the other files we write.
    crate::files::write_private(target, bytes)
        .with_context(|| format!("writing {}", target.display()))?;
    if json_out {
        print_json(&json!({
            "file": target.display().to_string(),
            "format": ext,
            "learners": rows,
            "bytes": bytes.len(),
        }));
    } else {
        println!(
            "wrote {} ({ext}, {rows} learners)",
            crate::text::terminal(&target.display().to_string())
        );
    }
    Ok(())
}

pub fn to_json(report: &CourseReport) -> serde_json::Value {
    let mut out = json!({
        "course": {
            "id": report.course.id,
            "shortname": report.course.shortname,
            "fullname": report.course.fullname,
        },
        "window": {"from": report.window.from, "to": report.window.to},
        "total": report.total(),
        "learners": report.learners,
        "activities": report.activities,
    });
    add_group(&mut out, report);
    out
}

/// Names the group a report was cut to, so a filtered answer never passes for the course's.
fn add_group(out: &mut serde_json::Value, report: &CourseReport) {
    if let (Some(group), Some(object)) = (&report.group, out.as_object_mut()) {
        object.insert(
            "group".into(),
            json!({"id": group.id, "name": group.name, "idnumber": group.idnumber}),
        );
    }
}

fn print_table(report: &CourseReport) {
    println!(
        "course     {} ({}), id {}",
        report.course.shortname, report.course.fullname, report.course.id
    );
    println!(
        "window     {} → {}",
        if report.window.from == 0 {
            "the beginning of the log".to_string()
        } else {
            output::time(report.window.from)
        },
        output::time(report.window.to)
    );
    if let Some(group) = &report.group {
        println!("group      {} (id {})", group.name, group.id);
    }
    println!(
        "learners   {} enrolled, total {}",
        report.learners.len(),
        output::duration(report.total())
    );
    let mut table = Table::new(&[
        "username",
        "name",
        "in course",
        "activities",
        "other",
        "total",
        "sessions",
        "last access",
    ]);
    for l in &report.learners {
        table.row(vec![
            l.username.clone(),
            format!("{} {}", l.firstname, l.lastname),
            output::duration(l.coursetime),
            output::duration(l.activitytime),
            output::duration(l.othertime),
            output::duration(l.coursetotal),
            l.sessions.to_string(),
            l.last_access.map(output::time).unwrap_or_default(),
        ]);
    }
    println!("\n{}", table.render());
}

/// A learner's total in the course under one dedication estimator.
fn dedication_of(run: &DedicationRun, user: i64, course: i64) -> Option<&CourseDedicationRef> {
    run.answers.get(&user).and_then(|a| a.course(course))
}

type CourseDedicationRef = crate::stats::dedication::CourseDedication;

/// Learners in order of the first estimator's total, largest first.
fn ordered<'a>(
    report: &'a CourseReport,
    use_stats: bool,
    runs: &[DedicationRun],
) -> Vec<&'a crate::reports::course::LearnerRow> {
    let mut learners: Vec<_> = report.learners.iter().collect();
    if let (false, Some(run)) = (use_stats, runs.first()) {
        learners.sort_by_key(|l| {
            std::cmp::Reverse(dedication_of(run, l.userid, report.course.id).map_or(0, |c| c.total))
        });
    }
    learners
}

fn side_by_side_json(
    report: &CourseReport,
    use_stats: bool,
    runs: &[DedicationRun],
) -> serde_json::Value {
    let course = report.course.id;
    let mut estimators = Vec::new();
    if use_stats {
        estimators.push(json!({"name": "use_stats", "total": report.total()}));
    }
    for run in runs {
        let total: i64 = report
            .learners
            .iter()
            .filter_map(|l| dedication_of(run, l.userid, course))
            .map(|c| c.total)
            .sum();
        estimators.push(json!({
            "name": run.name.as_str(),
            "estimator": run.estimator.to_string(),
            "total": total,
        }));
    }
    let learners: Vec<serde_json::Value> = ordered(report, use_stats, runs)
        .into_iter()
        .map(|l| {
            let mut row = if use_stats {
                serde_json::to_value(l).unwrap_or_default()
            } else {
                json!({"userid": l.userid, "username": l.username, "firstname": l.firstname, "lastname": l.lastname})
            };
            if let Some(object) = row.as_object_mut() {
                for run in runs {
                    let c = dedication_of(run, l.userid, course);
                    object.insert(
                        run.name.as_str().into(),
                        json!({
                            "total": c.map_or(0, |c| c.total),
                            "kept": c.map_or(0, |c| c.kept),
                            "dropped": c.map_or(0, |c| c.dropped),
                            "window": c.map(|c| json!({"from": c.window.from, "to": c.window.to})),
                        }),
                    );
                }
            }
            row
        })
        .collect();
    let mut out = json!({
        "course": {
            "id": report.course.id,
            "shortname": report.course.shortname,
            "fullname": report.course.fullname,
        },
        "window": {"from": report.window.from, "to": report.window.to},
        "estimators": estimators,
        "learners": learners,
    });
    add_group(&mut out, report);
    out
}

/// The learners with use_stats' and each dedication estimator's totals: the raw seconds first,
/// then each total as `h:mm:ss`, as every export has them.
fn side_by_side_sheet(report: &CourseReport, use_stats: bool, runs: &[DedicationRun]) -> Sheet {
    let mut headers: Vec<String> = ["userid", "username", "firstname", "lastname"]
        .map(String::from)
        .to_vec();
    let mut totals: Vec<String> = Vec::new();
    if use_stats {
        headers.push("use_stats".into());
        totals.push("use_stats_hms".into());
    }
    for run in runs {
        let name = run.name.as_str();
        headers.extend([
            name.to_string(),
            format!("{name}_kept"),
            format!("{name}_dropped"),
        ]);
        totals.push(format!("{name}_hms"));
    }
    headers.extend(totals);
    let rows = ordered(report, use_stats, runs)
        .into_iter()
        .map(|l| {
            let mut cells = vec![
                Cell::Number(l.userid),
                Cell::Text(l.username.clone()),
                Cell::Text(l.firstname.clone()),
                Cell::Text(l.lastname.clone()),
            ];
            let mut durations = Vec::new();
            if use_stats {
                cells.push(Cell::Number(l.coursetotal));
                durations.push(Cell::Duration(l.coursetotal));
            }
            for run in runs {
                let c = dedication_of(run, l.userid, report.course.id);
                let total = c.map_or(0, |c| c.total);
                let count = |n: u64| Cell::Number(i64::try_from(n).unwrap_or(i64::MAX));
                cells.extend([
                    Cell::Number(total),
                    count(c.map_or(0, |c| c.kept)),
                    count(c.map_or(0, |c| c.dropped)),
                ]);
                durations.push(Cell::Duration(total));
            }
            cells.extend(durations);
            cells
        })
        .collect();
    Sheet { headers, rows }
}

fn print_side_by_side(report: &CourseReport, use_stats: bool, runs: &[DedicationRun]) {
    println!(
        "course     {} ({}), id {}",
        report.course.shortname, report.course.fullname, report.course.id
    );
    println!(
        "window     {} → {}",
        if report.window.from == 0 {
            "the beginning of the log (dedication: the course's start date)".to_string()
        } else {
            output::time(report.window.from)
        },
        output::time(report.window.to)
    );
    println!("learners   {} enrolled", report.learners.len());
    if use_stats {
        println!(
            "estimator  use_stats: total {}",
            output::duration(report.total())
        );
    }
    for run in runs {
        println!("estimator  {}", run.estimator);
    }
    let mut headers = vec!["username", "name"];
    if use_stats {
        headers.push("use_stats");
    }
    let labels: Vec<String> = runs
        .iter()
        .map(|r| format!("{} (kept/dropped)", r.name))
        .collect();
    headers.extend(labels.iter().map(String::as_str));
    let mut table = Table::new(&headers);
    for l in ordered(report, use_stats, runs) {
        let mut cells = vec![
            l.username.clone(),
            format!("{} {}", l.firstname, l.lastname),
        ];
        if use_stats {
            cells.push(output::duration(l.coursetotal));
        }
        for run in runs {
            let c = dedication_of(run, l.userid, report.course.id);
            cells.push(format!(
                "{} ({}/{})",
                output::duration(c.map_or(0, |c| c.total)),
                c.map_or(0, |c| c.kept),
                c.map_or(0, |c| c.dropped)
            ));
        }
        table.row(cells);
    }
    println!("\n{}", table.render());
}
