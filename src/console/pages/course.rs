//! A course's learners: every enrolled learner's time (or a group's), as a table filtered,
//! sorted and paged on the server (no script; `course_table` reads the query), a chart of
//! those with the most time, the time per activity, and the same as CSV.
//! `GET /console/course?course=ID|SHORTNAME&from=&to=&group=&q=&sort=&dir=&per_page=&page=`
//! and `GET /console/course.{csv,xlsx,ods}?course=&from=&to=&group=`, whose cells are
//! `usestats report --course C --group G --from F --to T --format csv|xlsx|ods`'s (the CSV
//! byte for byte): both come from [`crate::reports::Reports::course`], answered from the
//! compiled store where it can, and are written by [`crate::reports::export`].

use askama::Template;
use hyper::StatusCode;

use super::course_table::{self, Column, TableAsk};
use super::estimators::{self, EstimatorRow};
use super::window::{self, Picked, PresetLink, ShownWindow};
use super::{html, layout};
use crate::console::charts::{self, Bar};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::reports::course::{self, CourseLookupError, CourseReport};
use crate::reports::export::{self, Format};
use crate::reports::{CourseAsk, CourseError, GroupLookupError};
use crate::timefmt::{duration, time};

/// The chart shows this many learners at most, those with the most time; the table pages
/// through all of them.
const CHART_LEARNERS: usize = 20;

#[derive(Template)]
#[template(path = "console/course.html")]
struct CoursePage {
    layout: Layout,
    course: String,
    from: String,
    to: String,
    /// The table's state, carried by the form so that a new window or group keeps it.
    presets: Vec<PresetLink>,
    q: String,
    sort: &'static str,
    dir: &'static str,
    per_page: usize,
    per_page_choices: [usize; 2],
    found: Option<Shown>,
}

struct Shown {
    id: i64,
    shortname: String,
    fullname: String,
    window: ShownWindow,
    /// The group the report is cut to, in words; empty for the whole course.
    group_name: String,
    groups: Vec<GroupOption>,
    /// Learners in the report (the group's, when one is picked).
    enrolled: usize,
    total: i64,
    total_text: String,
    /// Learners the filter keeps, and the page's share of them (1-based, inclusive).
    matching: usize,
    first: usize,
    last: usize,
    past_the_end: bool,
    learners: Vec<LearnerRow>,
    columns: Vec<ColumnHead>,
    pager: Vec<PageLink>,
    previous: String,
    next: String,
    chart: String,
    chart_note: String,
    activities: Vec<ActivityShown>,
    activities_total: i64,
    activities_total_text: String,
    csv_href: String,
    xlsx_href: String,
    ods_href: String,
    /// use_stats and the dedication estimators side by side (docs/engine.md §8).
    estimators: Vec<EstimatorRow>,
    estimators_note: String,
    /// Each learner's total under every estimator, for the page's learners.
    per_learner: Vec<LearnerEstimates>,
}

struct GroupOption {
    id: i64,
    name: String,
    selected: bool,
}

/// A sortable heading: its link, and `aria-sort` when the table is sorted by it.
struct ColumnHead {
    key: &'static str,
    label: &'static str,
    href: String,
    numeric: bool,
    aria_sort: &'static str,
}

/// A pager entry: a page's number and link, or a gap (number 0).
struct PageLink {
    number: usize,
    href: String,
    current: bool,
}

struct ActivityShown {
    cmid: i64,
    name: String,
    module: String,
    elapsed: i64,
    elapsed_text: String,
    events: u64,
    learners: u64,
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
    coursetime: i64,
    coursetime_text: String,
    activitytime: i64,
    activitytime_text: String,
    othertime: i64,
    othertime_text: String,
    total: i64,
    total_text: String,
    sessions: u64,
    last_access: String,
    last_access_time: i64,
}

pub async fn page(request: &ConsoleRequest) -> Reply {
    let picked = match window::pick(request) {
        Ok(picked) => picked,
        Err(reply) => return reply,
    };
    let table = match TableAsk::parse(request) {
        Ok(table) => table,
        Err(reply) => return reply,
    };
    let text = request.query("course").unwrap_or("").trim().to_string();
    let group = request.query("group").unwrap_or("").trim().to_string();
    let mut page = CoursePage {
        layout: layout(request, "course"),
        course: text.clone(),
        from: picked.from_date.clone(),
        to: picked.to_date.clone(),
        presets: picked.presets.clone(),
        q: table.q.clone(),
        sort: table.sort.key(),
        dir: if table.descending { "desc" } else { "asc" },
        per_page: table.per_page,
        per_page_choices: course_table::PER_PAGE,
        found: None,
    };
    if text.is_empty() {
        return html(&page);
    }
    let report = match report(request, &text, &group, &picked).await {
        Ok(report) => report,
        // Not an id or a short name: part of a name, perhaps. The course index finds it, or
        // says no course matches.
        Err(Failed::NoCourse) => {
            return Reply::Redirect(window::href("/console/courses", &[("q", &text)]));
        }
        Err(failed) => return failed.reply(&text),
    };
    let ids: Vec<i64> = report.learners.iter().map(|l| l.userid).collect();
    let dedications =
        estimators::dedications(&request.app, ids, Some(report.course.id), picked.window).await;
    let (total, sessions) = (
        report.total(),
        report.learners.iter().map(|l| l.sessions).sum::<u64>(),
    );
    let mut shown = shown(&report, &table, &picked);
    shown.estimators.push(EstimatorRow::use_stats(
        request.app.reports.estimator().to_string(),
        total,
        sessions,
    ));
    match dedications {
        Ok(d) => {
            shown.estimators.extend(estimators::rows(&d, total));
            shown.per_learner = per_learner(&shown.learners, &d);
        }
        Err(note) => shown.estimators_note = note,
    }
    page.found = Some(shown);
    html(&page)
}

/// The page's learners under every estimator, with why dedication's total differs.
fn per_learner(rows: &[LearnerRow], d: &estimators::Dedications) -> Vec<LearnerEstimates> {
    let text = |i: usize, user: i64| {
        d.get(i)
            .and_then(|(_, answers)| answers.get(&user))
            .map(|a| duration(a.total()))
            .unwrap_or_default()
    };
    rows.iter()
        .map(|l| LearnerEstimates {
            name: l.name.clone(),
            use_stats: l.total_text.clone(),
            dedication: text(0, l.userid),
            legacy: text(1, l.userid),
            why: d
                .first()
                .and_then(|(_, answers)| answers.get(&l.userid))
                .map(|a| crate::estimators::why_they_differ(l.total, a))
                .unwrap_or_default(),
        })
        .collect()
}

/// The course's report as CSV, byte for byte what `usestats report --format csv` prints (with
/// The course's report as a file in `format`: the cells of `usestats report --format …` (the
/// CSV byte for byte, with `--group` when the page has one), named after the course and the
/// window.
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
    let group = request.query("group").unwrap_or("").trim().to_string();
    let report = match report(request, &text, &group, &picked).await {
        Ok(report) => report,
        Err(failed) => return failed.reply(&text),
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

/// Why a page has no report: no course by that name (the course page then looks for one in
/// the index), or the page that says what else went wrong.
enum Failed {
    NoCourse,
    Other(Reply),
}

impl Failed {
    fn reply(self, text: &str) -> Reply {
        match self {
            Failed::NoCourse => Reply::Error(
                StatusCode::NOT_FOUND,
                format!("There is no course “{text}”: give a course id or shortname."),
            ),
            Failed::Other(reply) => reply,
        }
    }
}

/// The report of the course `text` names (cut to its group `group`, unless empty).
async fn report(
    request: &ConsoleRequest,
    text: &str,
    group: &str,
    picked: &Picked,
) -> Result<CourseReport, Failed> {
    let asked = CourseAsk {
        course: text.to_string(),
        window: picked.window,
        group: (!group.is_empty()).then(|| group.to_string()),
    };
    let error = |status, message: String| Err(Failed::Other(Reply::Error(status, message)));
    match request.app.reports.course(asked).await {
        Ok(report) => Ok(report),
        Err(CourseError::Lookup(CourseLookupError::NotFound(_))) => Err(Failed::NoCourse),
        Err(CourseError::Lookup(CourseLookupError::Ambiguous {
            id, shortname_of, ..
        })) => error(
            StatusCode::BAD_REQUEST,
            format!(
                "“{text}” is course id {id} and the shortname of course id {shortname_of}: say id:{text} or shortname:{text}."
            ),
        ),
        Err(CourseError::Group(GroupLookupError::NotFound { .. })) => error(
            StatusCode::NOT_FOUND,
            format!(
                "Course “{text}” has no group “{group}”: pick one of its groups from the list, or all learners."
            ),
        ),
        Err(CourseError::Group(GroupLookupError::Ambiguous { id, name_of, .. })) => error(
            StatusCode::BAD_REQUEST,
            format!(
                "“{group}” is group id {id} and the name of group id {name_of}: say id:{group} or name:{group}."
            ),
        ),
        Err(CourseError::Lookup(e @ CourseLookupError::Lookup { .. })) => {
            let unavailable = match &e {
                CourseLookupError::Lookup { source, .. } => {
                    crate::reports::source_unavailable(source)
                }
                _ => false,
            };
            Err(Failed::Other(window::failed(
                "course's report",
                unavailable,
                &e,
            )))
        }
        Err(CourseError::Report(e)) => Err(Failed::Other(window::failed(
            "course's report",
            e.is_unavailable(),
            &e,
        ))),
        Err(CourseError::Prefix(e)) => {
            Err(Failed::Other(window::failed("course's report", false, &e)))
        }
        Err(CourseError::Store(e)) => {
            Err(Failed::Other(window::failed("course's report", true, &e)))
        }
    }
}

/// What the page shows of the report: the table's page, its pager and headings, the chart, the
/// group picker and the activities.
fn shown(report: &CourseReport, table: &TableAsk, picked: &Picked) -> Shown {
    let course_key = format!("id:{}", report.course.id);
    let group_key = report
        .group
        .as_ref()
        .map(|g| g.id.to_string())
        .unwrap_or_default();
    let download_href = |extension: &str| download_href(extension, &course_key, &group_key, picked);
    let per_page = table.per_page.to_string();
    let link = |sort: Column, descending: bool, page: usize| {
        window::href(
            "/console/course",
            &[
                ("course", &course_key),
                ("from", &picked.from_text),
                ("to", &picked.to_text),
                ("group", &group_key),
                ("q", &table.q),
                ("sort", sort.key()),
                ("dir", if descending { "desc" } else { "asc" }),
                ("per_page", &per_page),
                ("page", &page.to_string()),
            ],
        )
    };
    let mut matching = table.filter(&report.learners);
    let (chart, chart_note) = chart(&matching);
    table.sort(&mut matching);
    let pages = table.pages(matching.len());
    let offset = table.offset();
    let rows: Vec<LearnerRow> = matching
        .iter()
        .skip(offset)
        .take(table.per_page)
        .map(|l| learner_row(l, picked))
        .collect();
    let past_the_end = rows.is_empty() && table.page > 1;
    let columns = column_heads(table, &link);
    let pager = course_table::page_numbers(table.page.min(pages), pages)
        .into_iter()
        .map(|n| PageLink {
            number: n.unwrap_or(0),
            href: n
                .map(|n| link(table.sort, table.descending, n))
                .unwrap_or_default(),
            current: n == Some(table.page),
        })
        .collect();
    let (activities, activities_total) = activities(report);
    let total = report.total();
    Shown {
        id: report.course.id,
        shortname: report.course.shortname.clone(),
        fullname: report.course.fullname.clone(),
        window: picked.shown(),
        group_name: report
            .group
            .as_ref()
            .map(|g| g.name.clone())
            .unwrap_or_default(),
        groups: group_options(report),
        enrolled: report.learners.len(),
        total,
        total_text: duration(total),
        matching: matching.len(),
        first: if rows.is_empty() { 0 } else { offset + 1 },
        last: offset + rows.len(),
        past_the_end,
        learners: rows,
        columns,
        pager,
        previous: if table.page > 1 && table.page <= pages {
            link(table.sort, table.descending, table.page - 1)
        } else {
            String::new()
        },
        next: if table.page < pages {
            link(table.sort, table.descending, table.page + 1)
        } else {
            String::new()
        },
        chart,
        chart_note,
        activities,
        activities_total,
        activities_total_text: duration(activities_total),
        csv_href: download_href("csv"),
        xlsx_href: download_href("xlsx"),
        ods_href: download_href("ods"),
        estimators: Vec::new(),
        estimators_note: String::new(),
        per_learner: Vec::new(),
    }
}

/// The chart of the matching learners with the most time (they come in the report's order),
/// whatever the table's order and page, and the note that says when it leaves some out.
fn chart(matching: &[&course::LearnerRow]) -> (String, String) {
    let bars: Vec<Bar> = matching
        .iter()
        .take(CHART_LEARNERS)
        .map(|l| Bar {
            key: l.userid.to_string(),
            label: format!("{} {}", l.firstname, l.lastname),
            seconds: l.coursetotal,
        })
        .collect();
    if matching.len() > CHART_LEARNERS {
        (
            charts::bars(
                "learner-chart",
                &format!("The {CHART_LEARNERS} learners with the most time"),
                &bars,
            ),
            format!(
                "The chart shows the {CHART_LEARNERS} learners with the most time; the table pages through all {}.",
                matching.len()
            ),
        )
    } else {
        (
            charts::bars("learner-chart", "Time per learner", &bars),
            String::new(),
        )
    }
}

/// A download of the page's report: its course, window and group.
fn download_href(extension: &str, course: &str, group: &str, picked: &Picked) -> String {
    window::href(
        &format!("/console/course.{extension}"),
        &[
            ("course", course),
            ("from", &picked.from_text),
            ("to", &picked.to_text),
            ("group", group),
        ],
    )
}

/// The table's headings, each a link that sorts by its column: the sorted one's link turns
/// the order round, the others sort their own default way; every sort starts at page 1.
fn column_heads(table: &TableAsk, link: &dyn Fn(Column, bool, usize) -> String) -> Vec<ColumnHead> {
    Column::ALL
        .iter()
        .map(|&c| {
            let current = c == table.sort;
            let descending = if current {
                !table.descending
            } else {
                c.default_descending()
            };
            ColumnHead {
                key: c.key(),
                label: c.label(),
                href: link(c, descending, 1),
                numeric: c.numeric(),
                aria_sort: match (current, table.descending) {
                    (false, _) => "",
                    (true, true) => "descending",
                    (true, false) => "ascending",
                },
            }
        })
        .collect()
}

/// The activities as the page shows them, and their time added up.
fn activities(report: &CourseReport) -> (Vec<ActivityShown>, i64) {
    let rows = report
        .activities
        .iter()
        .map(|a| ActivityShown {
            cmid: a.cmid,
            name: if a.name.is_empty() {
                "N.C.".to_string()
            } else {
                a.name.clone()
            },
            module: a.module.clone(),
            elapsed: a.elapsed,
            elapsed_text: duration(a.elapsed),
            events: a.events,
            learners: a.learners,
        })
        .collect();
    (rows, report.activities.iter().map(|a| a.elapsed).sum())
}

fn group_options(report: &CourseReport) -> Vec<GroupOption> {
    report
        .groups
        .iter()
        .map(|g| GroupOption {
            id: g.id,
            name: g.name.clone(),
            selected: report.group.as_ref().is_some_and(|s| s.id == g.id),
        })
        .collect()
}

fn learner_row(l: &course::LearnerRow, picked: &Picked) -> LearnerRow {
    LearnerRow {
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
        username: l.username.clone(),
        coursetime: l.coursetime,
        coursetime_text: duration(l.coursetime),
        activitytime: l.activitytime,
        activitytime_text: duration(l.activitytime),
        othertime: l.othertime,
        othertime_text: duration(l.othertime),
        total: l.coursetotal,
        total_text: duration(l.coursetotal),
        sessions: l.sessions,
        last_access: l.last_access.map(time).unwrap_or_default(),
        last_access_time: l.last_access.unwrap_or(0),
    }
}
