//! `usestats stats USER --sessions`: one row per session of use_stats in the window (start,
//! end, duration, the courses it touched), as a table or JSON. The sessions are those of the
//! learner's report ([`LearnerReport::session_rows`]), the same the console's learner page
//! lists, so their durations add up to the report's total.

use serde_json::json;

use super::common::print_json;
use crate::cli::output::Table;
use crate::reports::{LearnerReport, SessionRow};
use crate::timefmt::{Span, hms, iso};

/// Prints the sessions of `found` over `span`: JSON, or a table (oldest first in both).
pub(super) fn print(found: &LearnerReport, span: &Span, json_out: bool) {
    let rows = found.session_rows();
    if json_out {
        print_json(&as_json(found, span, &rows));
    } else {
        print_table(found, span, &rows);
    }
}

fn as_json(found: &LearnerReport, span: &Span, rows: &[SessionRow]) -> serde_json::Value {
    let user = &found.user;
    json!({
        "user": {"id": user.id, "username": user.username, "firstname": user.firstname, "lastname": user.lastname},
        "window": {"from": span.from, "to": span.to, "from_iso": iso(span.from), "to_iso": iso(span.to)},
        "estimator": found.report.estimator.to_string(),
        "course": found.course_filter.as_ref().map(|c| json!({"id": c.id, "shortname": c.shortname})),
        "count": rows.len(),
        "total": rows.iter().map(|s| s.elapsed).sum::<i64>(),
        "sessions": rows.iter().map(|s| json!({
            "start": s.start,
            "start_iso": iso(s.start),
            "end": s.end,
            "end_iso": iso(s.end),
            "duration": s.elapsed,
            "events": s.events,
            "courses": s.courses.iter().map(|c| json!({"id": c.id, "shortname": c.shortname})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn print_table(found: &LearnerReport, span: &Span, rows: &[SessionRow]) {
    let user = &found.user;
    println!(
        "user       {} ({} {}), id {}",
        user.username, user.firstname, user.lastname, user.id
    );
    println!("window     {}", span.described());
    if span.from_day || span.to_day {
        // A day's bounds, to the second: a date as the end runs through its last second.
        println!("           {}", span.exact());
    }
    if let Some(course) = &found.course_filter {
        println!(
            "course     {} (id {}): the sessions that touched it",
            course.shortname, course.id
        );
    }
    println!("estimator  {}", found.report.estimator);
    if rows.is_empty() {
        println!("\nno sessions for {} in this window", user.username);
        return;
    }
    let total: i64 = rows.iter().map(|s| s.elapsed).sum();
    println!(
        "sessions   {}, {} in all ({} s)",
        rows.len(),
        hms(total),
        total
    );
    let mut table = Table::new(&["start", "end", "duration", "events", "courses"]);
    for s in rows {
        table.row(vec![
            iso(s.start).unwrap_or_default(),
            iso(s.end).unwrap_or_default(),
            hms(s.elapsed),
            s.events.to_string(),
            s.courses
                .iter()
                .map(|c| c.shortname.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    print!("\n{}", table.render());
}
