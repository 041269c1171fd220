//! A course's learners: every enrolled learner's time, as a table sorted on the server (no
//! script) and a chart, and the same as a download.
//! `GET /console/course?course=ID|SHORTNAME&from=&to=&sort=time|name` and
//! `GET /console/course.{csv,xlsx,ods}?course=&from=&to=`, whose cells are
//! `usestats report --course C --from F --to T --format csv|xlsx|ods`'s (the CSV byte for
//! byte): both come from [`crate::reports::Reports::course`], answered from the compiled store
//! where it can, and are written by [`crate::reports::export`].

use askama::Template;
use hyper::StatusCode;

use super::estimators::{self, EstimatorRow};
use super::window::{self, Picked};
use super::{html, layout};
use crate::console::charts::{self, Bar};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::reports::course::{self, CourseLookupError, CourseReport};
use crate::reports::export::{self, Format};
use crate::reports::{CourseAsk, CourseError};
use crate::timefmt::{duration, time};

/// The chart shows this many learners at most, those with the most time; the table has all.
const CHART_LEARNERS: usize = 40;

#[derive(Template)]
#[template(path = "console/course.html")]
struct CoursePage {
    layout: Layout,
    course: String,
    from: String,
    to: String,
    sort: &'static str,
    found: Option<Shown>,
}

struct Shown {
    id: i64,
    shortname: String,
    fullname: String,
    window: String,
    total: i64,
    total_text: String,
    learners: Vec<LearnerRow>,
    chart: String,
    /// Set when the chart leaves learners out.
    chart_note: String,
    csv_href: String,
    xlsx_href: String,
    ods_href: String,
    by_time_href: String,
    by_name_href: String,
    /// use_stats and the dedication estimators side by side (docs/engine.md §8).
    estimators: Vec<EstimatorRow>,
    estimators_note: String,
    /// Each learner's total under every estimator, in the table's order.
    per_learner: Vec<LearnerEstimates>,
}

struct LearnerEstimates {
    name: String,
    use_stats: String,
    dedication: String,
    legacy: String,
    why: String,
}

struct LearnerRow {
    userid: i64,
    username: String,
    name: String,
    href: String,
    coursetime: String,
    activitytime: String,
    othertime: String,
    total: i64,
    total_text: String,
    sessions: u64,
    last_access: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    /// Most time first, then by name (the report's order).
    Time,
    /// By last name, first name, id.
    Name,
}

pub async fn page(request: &ConsoleRequest) -> Reply {
    let picked = match window::pick(request) {
        Ok(picked) => picked,
        Err(reply) => return reply,
    };
    let sort = match request.query("sort") {
        None | Some("time") => Sort::Time,
        Some("name") => Sort::Name,
        Some(_) => {
            return Reply::Error(
                StatusCode::BAD_REQUEST,
                "The table sorts by time or by name (sort=time or sort=name).".into(),
            );
        }
    };
    let text = request.query("course").unwrap_or("").trim().to_string();
    let mut page = CoursePage {
        layout: layout(request, "course"),
        course: text.clone(),
        from: picked.from_date.clone(),
        to: picked.to_date.clone(),
        sort: match sort {
            Sort::Time => "time",
            Sort::Name => "name",
        },
        found: None,
    };
    if text.is_empty() {
        return html(&page);
    }
    let report = match report(request, &text, &picked).await {
        Ok(report) => report,
        // Not an id or a short name: part of a name, perhaps. The course index finds it, or
        // says no course matches.
        Err(Reply::Error(StatusCode::NOT_FOUND, _)) => {
            return Reply::Redirect(window::href("/console/courses", &[("q", &text)]));
        }
        Err(reply) => return reply,
    };
    let ids: Vec<i64> = report.learners.iter().map(|l| l.userid).collect();
    let course_id = report.course.id;
    let dedications =
        estimators::dedications(&request.app, ids, Some(course_id), picked.window).await;
    let use_stats: std::collections::HashMap<i64, i64> = report
        .learners
        .iter()
        .map(|l| (l.userid, l.coursetotal))
        .collect();
    let (total, sessions) = (
        report.total(),
        report.learners.iter().map(|l| l.sessions).sum::<u64>(),
    );
    let mut shown = shown(report, sort, &picked);
    shown.estimators.push(EstimatorRow::use_stats(
        request.app.reports.estimator().to_string(),
        total,
        sessions,
    ));
    match dedications {
        Ok(d) => {
            shown.estimators.extend(estimators::rows(&d, total));
            let text = |i: usize, user: i64| {
                d.get(i)
                    .and_then(|(_, answers)| answers.get(&user))
                    .map(|a| crate::timefmt::duration(a.total()))
                    .unwrap_or_default()
            };
            shown.per_learner = shown
                .learners
                .iter()
                .map(|l| LearnerEstimates {
                    name: l.name.clone(),
                    use_stats: l.total_text.clone(),
                    dedication: text(0, l.userid),
                    legacy: text(1, l.userid),
                    why: d
                        .first()
                        .and_then(|(_, answers)| answers.get(&l.userid))
                        .map(|a| {
                            crate::estimators::why_they_differ(
                                use_stats.get(&l.userid).copied().unwrap_or(0),
                                a,
                            )
                        })
                        .unwrap_or_default(),
                })
                .collect();
        }
        Err(note) => shown.estimators_note = note,
    }
    page.found = Some(shown);
    html(&page)
}

/// The course's report as a file in `format`: the cells of `usestats report --format …` (the
/// CSV byte for byte), named after the course and the window.
pub async fn download(request: &ConsoleRequest, format: Format) -> Reply {
    let picked = match window::pick(request) {
        Ok(picked) => picked,
        Err(reply) => return reply,
    };
    let text = request.query("course").unwrap_or("").trim().to_string();
    if text.is_empty() {
        return Reply::Error(
            StatusCode::BAD_REQUEST,
            "Which course? Give its id or shortname (course=…).".into(),
        );
    }
    let report = match report(request, &text, &picked).await {
        Ok(report) => report,
        Err(reply) => return reply,
    };
    match export::write(&course::to_sheet(&report), format) {
        Ok(bytes) => Reply::File(
            format.content_type(),
            course::file_name(&report, format),
            bytes,
        ),
        Err(e) => {
            tracing::error!(error = %e, "console: an export could not be written");
            Reply::Error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The file could not be made; the daemon's log says why.".into(),
            )
        }
    }
}

/// The report of the course `text` names, or the message page that says why there is none.
async fn report(
    request: &ConsoleRequest,
    text: &str,
    picked: &Picked,
) -> Result<CourseReport, Reply> {
    let asked = CourseAsk {
        course: text.to_string(),
        window: picked.window,
    };
    match request.app.reports.course(asked).await {
        Ok(report) => Ok(report),
        Err(CourseError::Lookup(CourseLookupError::NotFound(_))) => Err(Reply::Error(
            StatusCode::NOT_FOUND,
            format!("There is no course “{text}”: give a course id or shortname."),
        )),
        Err(CourseError::Lookup(CourseLookupError::Ambiguous {
            id, shortname_of, ..
        })) => Err(Reply::Error(
            StatusCode::BAD_REQUEST,
            format!(
                "“{text}” is course id {id} and the shortname of course id {shortname_of}: say id:{text} or shortname:{text}."
            ),
        )),
        Err(CourseError::Lookup(e @ CourseLookupError::Lookup { .. })) => {
            let unavailable = match &e {
                CourseLookupError::Lookup { source, .. } => {
                    crate::reports::source_unavailable(source)
                }
                _ => false,
            };
            Err(window::failed("course's report", unavailable, &e))
        }
        Err(CourseError::Report(e)) => {
            Err(window::failed("course's report", e.is_unavailable(), &e))
        }
        Err(CourseError::Prefix(e)) => Err(window::failed("course's report", false, &e)),
        Err(CourseError::Store(e)) => Err(window::failed("course's report", true, &e)),
    }
}

fn shown(report: CourseReport, sort: Sort, picked: &Picked) -> Shown {
    let course_key = format!("id:{}", report.course.id);
    let link = |sort: &str| {
        window::href(
            "/console/course",
            &[
                ("course", &course_key),
                ("from", &picked.from_text),
                ("to", &picked.to_text),
                ("sort", sort),
            ],
        )
    };
    let download_href = |extension: &str| {
        window::href(
            &format!("/console/course.{extension}"),
            &[
                ("course", &course_key),
                ("from", &picked.from_text),
                ("to", &picked.to_text),
            ],
        )
    };
    // The chart: the learners with the most time (the report's order), whatever the table's.
    let bars: Vec<Bar> = report
        .learners
        .iter()
        .take(CHART_LEARNERS)
        .map(|l| Bar {
            key: l.userid.to_string(),
            label: format!("{} {}", l.firstname, l.lastname),
            seconds: l.coursetotal,
        })
        .collect();
    let mut learners = report.learners.clone();
    if sort == Sort::Name {
        learners.sort_by(|a, b| {
            (&a.lastname, &a.firstname, a.userid).cmp(&(&b.lastname, &b.firstname, b.userid))
        });
    }
    let rows = learners
        .into_iter()
        .map(|l| LearnerRow {
            href: window::href(
                "/console/learner",
                &[
                    ("user", &l.username),
                    ("from", &picked.from_text),
                    ("to", &picked.to_text),
                ],
            ),
            userid: l.userid,
            name: format!("{} {}", l.firstname, l.lastname),
            username: l.username,
            coursetime: duration(l.coursetime),
            activitytime: duration(l.activitytime),
            othertime: duration(l.othertime),
            total: l.coursetotal,
            total_text: duration(l.coursetotal),
            sessions: l.sessions,
            last_access: l.last_access.map(time).unwrap_or_default(),
        })
        .collect();
    let total = report.total();
    Shown {
        estimators: Vec::new(),
        estimators_note: String::new(),
        per_learner: Vec::new(),
        id: report.course.id,
        window: picked.described.clone(),
        total,
        total_text: duration(total),
        chart: charts::bars("learner-chart", "Time per learner in the course", &bars),
        chart_note: if report.learners.len() > CHART_LEARNERS {
            format!(
                "The chart shows the {CHART_LEARNERS} learners with the most time; the table has all {}.",
                report.learners.len()
            )
        } else {
            String::new()
        },
        csv_href: download_href("csv"),
        xlsx_href: download_href("xlsx"),
        ods_href: download_href("ods"),
        by_time_href: link("time"),
        by_name_href: link("name"),
        learners: rows,
        shortname: report.course.shortname,
        fullname: report.course.fullname,
    }
}
