//! A learner's time: total, per course (chart and table), per activity, sessions over time.
//! `GET /console/learner?user=NAME&from=&to=`. The numbers are `usestats stats`'s: both come
//! from [`crate::reports::Reports::learner`], over the same window.

use askama::Template;

use super::estimators::{self, EstimatorRow};
use super::session_list::{self, SessionList};
use super::window::{self, Picked, PresetLink, ShownWindow};
use super::{html, layout};
use crate::console::charts::{self, Bar};
use crate::console::{ConsoleRequest, Layout, Reply};
use std::collections::HashMap;

use crate::reports::{LearnerAsk, LearnerError, LearnerReport};
use crate::stats::CourseTotals;
use crate::store::source::{Course, ModuleLabel};
use crate::timefmt::{duration, time};

#[derive(Template)]
#[template(path = "console/learner.html")]
struct LearnerPage {
    layout: Layout,
    user: String,
    from: String,
    to: String,
    presets: Vec<PresetLink>,
    found: Option<Shown>,
}

struct Shown {
    userid: i64,
    username: String,
    fullname: String,
    window: ShownWindow,
    estimator: String,
    rows: u64,
    total: i64,
    total_text: String,
    course_chart: String,
    courses: Vec<CourseRow>,
    sessions_chart: String,
    sessions: SessionFigures,
    /// The latest sessions, newest first.
    session_list: SessionList,
    /// use_stats and the dedication estimators side by side (docs/engine.md §8).
    estimators: Vec<EstimatorRow>,
    /// Why the dedication rows are missing, when they are.
    estimators_note: String,
}

struct CourseRow {
    id: i64,
    shortname: String,
    fullname: String,
    coursetime: String,
    activitytime: String,
    othertime: String,
    total: i64,
    total_text: String,
    href: String,
    modules: Vec<ModuleRow>,
}

struct ModuleRow {
    cmid: i64,
    kind: String,
    name: String,
    elapsed: i64,
    elapsed_text: String,
}

struct SessionFigures {
    count: u64,
    mean: String,
    longest: String,
    shortest: String,
    first: String,
    last: String,
}

pub async fn page(request: &ConsoleRequest) -> Reply {
    let picked = match window::pick(request) {
        Ok(picked) => picked,
        Err(reply) => return reply,
    };
    let username = request.query("user").unwrap_or("").trim().to_string();
    let mut page = LearnerPage {
        layout: layout(request, "learner"),
        user: username.clone(),
        from: picked.from_date.clone(),
        to: picked.to_date.clone(),
        presets: picked.presets.clone(),
        found: None,
    };
    if username.is_empty() {
        return html(&page);
    }
    let app = &request.app;
    let asked = LearnerAsk {
        username: username.clone(),
        course: None,
        window: picked.window,
        sessions: true,
        labels: true,
    };
    let found = match app.reports.learner(asked).await {
        Ok(found) => found,
        // Not a username: a name, an email, an id number… The search page finds them, or says
        // nobody matches.
        Err(LearnerError::NoUser(_)) => {
            return Reply::Redirect(window::href("/console/learners", &[("q", &username)]));
        }
        Err(LearnerError::Prefix(e)) => return window::failed("learner's report", false, &e),
        Err(LearnerError::Store(e)) => return window::failed("learner's report", true, &e),
        Err(e) => return window::failed("learner's report", e.is_unavailable(), &e),
    };
    let (userid, use_stats_total) = (found.user.id, found.report.total);
    let dedications = estimators::dedications(app, vec![userid], None, picked.window).await;
    let mut shown = shown(found, &picked);
    match dedications {
        Ok(d) => shown
            .estimators
            .extend(estimators::rows(&d, use_stats_total)),
        Err(note) => shown.estimators_note = note,
    }
    page.found = Some(shown);
    html(&page)
}

fn shown(found: LearnerReport, picked: &Picked) -> Shown {
    let (courses, sessions) = found.shown();
    let session_list = session_list::sessions(&found, picked);
    let LearnerReport {
        user,
        report,
        courses: names,
        labels,
        ..
    } = found;
    let mut rows: Vec<CourseRow> = courses
        .iter()
        .map(|c| course_row(c, &names, &labels, picked))
        .collect();
    // Most time first; the report's order (first counted row) within a time.
    rows.sort_by_key(|r| std::cmp::Reverse(r.total));
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar {
            key: r.id.to_string(),
            label: r.shortname.clone(),
            seconds: r.total,
        })
        .collect();
    let session_points: Vec<(i64, i64)> = report
        .session_list
        .iter()
        .map(|s| (s.start, s.elapsed))
        .collect();
    let estimators = vec![EstimatorRow::use_stats(
        report.estimator.to_string(),
        report.total,
        sessions.count,
    )];
    Shown {
        estimators,
        estimators_note: String::new(),
        userid: user.id,
        fullname: format!("{} {}", user.firstname, user.lastname),
        username: user.username,
        window: picked.shown(),
        estimator: report.estimator.to_string(),
        rows: report.rows_extracted,
        total: report.total,
        total_text: duration(report.total),
        course_chart: charts::bars("course-chart", "Time per course", &bars),
        courses: rows,
        sessions_chart: charts::calendar_with_table(
            "sessions-chart",
            "Time per day, by the day each session started (UTC)",
            &session_points,
        ),
        session_list,
        sessions: SessionFigures {
            count: sessions.count,
            mean: duration(sessions.mean()),
            longest: duration(sessions.max),
            shortest: duration(sessions.min),
            first: sessions.first_start.map(time).unwrap_or_else(|| "-".into()),
            last: sessions.last_start.map(time).unwrap_or_else(|| "-".into()),
        },
    }
}

/// One course's row: its names, times, a link to its page, and its activities (most time
/// first).
fn course_row(
    c: &CourseTotals,
    names: &HashMap<i64, Course>,
    labels: &HashMap<i64, ModuleLabel>,
    picked: &Picked,
) -> CourseRow {
    let course = names.get(&c.course);
    let mut modules: Vec<ModuleRow> = c
        .modules
        .iter()
        .map(|m| ModuleRow {
            cmid: m.cmid,
            kind: m.module.clone().unwrap_or_else(|| "N.C.".into()),
            name: labels
                .get(&m.cmid)
                .map(|l| l.name.clone())
                .unwrap_or_else(|| "N.C.".into()),
            elapsed: m.elapsed,
            elapsed_text: duration(m.elapsed),
        })
        .collect();
    modules.sort_by_key(|m| std::cmp::Reverse(m.elapsed));
    CourseRow {
        id: c.course,
        shortname: course.map(|c| c.shortname.clone()).unwrap_or_else(|| {
            if c.course == 0 {
                "(site, logins)".into()
            } else {
                format!("course {}", c.course)
            }
        }),
        fullname: course.map(|c| c.fullname.clone()).unwrap_or_default(),
        coursetime: duration(c.coursetime),
        activitytime: duration(c.activitytime),
        othertime: duration(c.othertime),
        total: c.coursetotal,
        total_text: duration(c.coursetotal),
        href: if course.is_some() {
            window::course_href(c.course, picked)
        } else {
            String::new()
        },
        modules,
    }
}
