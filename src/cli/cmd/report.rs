//! `usestats report --course C`: every enrolled learner's time in a course, as a table, CSV
//! (the console's export, byte for byte) or JSON.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use super::stats::{course_for_cli, window_args};
use crate::app::App;
use crate::cli::output::{self, Table};
use crate::cli::{ReportArgs, ReportFormat};
use crate::course_report::{self, CourseReport};
use crate::stats::Window;
use crate::store::source::Source;

pub(super) async fn run(app: &Arc<App>, args: ReportArgs, json_out: bool) -> CmdResult {
    let now = app.now();
    let (from, to) = window_args(args.from.as_deref(), args.to.as_deref(), now)?;
    let window = Window { from, to, now };
    let source =
        Source::new(&app.config.source.prefix).context("checking the source table prefix")?;
    let settings = crate::reports::settings(&app.config.engine);
    let compiled = crate::compiled::CompiledStore::for_config(&app.config, &app.state);
    let course_text = args.course.clone();
    let report = app
        .source
        .run(move |conn| -> Result<_, crate::store::StoreError> {
            Ok((|| {
                let course = course_for_cli(conn, &source, &course_text)?;
                course_report::course_report(
                    conn,
                    &source,
                    &settings,
                    compiled.as_ref(),
                    course,
                    window,
                )
                .with_context(|| format!("computing the report of course {course_text}"))
            })())
        })
        .await
        .context("opening the source database")??;
    match (args.format, json_out) {
        (ReportFormat::Json, _) | (_, true) => print_json(&to_json(&report)),
        (ReportFormat::Csv, false) => {
            let csv = course_report::to_csv(&report);
            std::io::stdout()
                .write_all(&csv)
                .context("writing to standard output")?;
        }
        (ReportFormat::Table, false) => print_table(&report),
    }
    Ok(())
}

pub fn to_json(report: &CourseReport) -> serde_json::Value {
    json!({
        "course": {
            "id": report.course.id,
            "shortname": report.course.shortname,
            "fullname": report.course.fullname,
        },
        "window": {"from": report.window.from, "to": report.window.to},
        "total": report.total(),
        "learners": report.learners,
    })
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
