//! Finding: `GET /console/learners?q=TEXT` (people, by part of a name, username, email or
//! idnumber, across MNET hosts) and `GET /console/courses` (the course index: filtered,
//! sorted and paged on the server). Both are [`Source`] searches, as `usestats users` and
//! `usestats courses` run them.

use askama::Template;

use super::window;
use super::{html, layout};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::reports::CourseIndexAsk;
use crate::store::source::CourseOrder;

/// Matches shown on the learners page.
const LEARNER_MATCHES: usize = 100;

#[derive(Template)]
#[template(path = "console/learners.html")]
struct LearnersPage {
    layout: Layout,
    q: String,
    searched: bool,
    rows: Vec<LearnerRow>,
    truncated: bool,
}

struct LearnerRow {
    href: String,
    name: String,
    username: String,
    email: String,
    idnumber: String,
    host: String,
    suspended: bool,
    exact: bool,
}

pub async fn learners(request: &ConsoleRequest) -> Reply {
    let q = request.query("q").unwrap_or("").trim().to_string();
    let mut page = LearnersPage {
        layout: layout(request, "learners"),
        q: q.clone(),
        searched: !q.is_empty(),
        rows: Vec::new(),
        truncated: false,
    };
    if q.is_empty() {
        return html(&page);
    }
    let found = request.app.reports.find_users(q, LEARNER_MATCHES).await;
    let found = match found {
        Ok(found) => found,
        Err(e) => return window::failed("search", e.is_unavailable(), &e),
    };
    page.truncated = found.truncated;
    page.rows = found
        .users
        .into_iter()
        .map(|f| LearnerRow {
            href: window::href("/console/learner", &[("user", &f.user.username)]),
            name: format!("{} {}", f.user.firstname, f.user.lastname),
            username: f.user.username,
            email: f.user.email,
            idnumber: f.user.idnumber,
            host: if f.local {
                format!("{} (this site)", f.host)
            } else {
                f.host
            },
            suspended: f.user.suspended,
            exact: f.exact,
        })
        .collect();
    html(&page)
}

#[derive(Template)]
#[template(path = "console/courses.html")]
struct CoursesPage {
    layout: Layout,
    q: String,
    sort: &'static str,
    per_page: i64,
    total: i64,
    first: i64,
    last: i64,
    rows: Vec<CourseRow>,
    columns: Vec<Column>,
    previous: String,
    next: String,
}

struct CourseRow {
    href: String,
    id: i64,
    shortname: String,
    fullname: String,
    learners: i64,
}

/// A sortable column heading: its link, and whether the list is sorted by it.
struct Column {
    label: &'static str,
    href: String,
    current: bool,
    numeric: bool,
}

const SORTS: [(&str, &str, CourseOrder, bool); 4] = [
    ("id", "Id", CourseOrder::Id, true),
    ("shortname", "Short name", CourseOrder::ShortName, false),
    ("fullname", "Full name", CourseOrder::FullName, false),
    ("learners", "Learners", CourseOrder::Learners, true),
];

pub async fn courses(request: &ConsoleRequest) -> Reply {
    let q = request.query("q").unwrap_or("").trim().to_string();
    let (sort, order) = SORTS
        .iter()
        .find(|s| Some(s.0) == request.query("sort"))
        .map_or(("shortname", CourseOrder::ShortName), |s| (s.0, s.2));
    let per_page = match request.query("per_page") {
        Some("100") => 100,
        _ => 50,
    };
    let page_no = request
        .query("page")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1 && *p <= 1_000_000)
        .unwrap_or(1);
    let offset = (page_no - 1) * per_page;
    let found = request
        .app
        .reports
        .course_index(CourseIndexAsk {
            search: q.clone(),
            order,
            offset,
            per_page,
        })
        .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => return window::failed("course index", e.is_unavailable(), &e),
    };
    let link = |sort: &str, page: i64| {
        window::href(
            "/console/courses",
            &[
                ("q", &q),
                ("sort", sort),
                ("per_page", &per_page.to_string()),
                ("page", &page.to_string()),
            ],
        )
    };
    let shown = found.courses.len() as i64;
    let page = CoursesPage {
        layout: layout(request, "courses"),
        sort,
        per_page,
        total: found.total,
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset + shown,
        columns: SORTS
            .iter()
            .map(|s| Column {
                label: s.1,
                href: link(s.0, 1),
                current: s.0 == sort,
                numeric: s.3,
            })
            .collect(),
        previous: if page_no > 1 {
            link(sort, page_no - 1)
        } else {
            String::new()
        },
        next: if offset + shown < found.total {
            link(sort, page_no + 1)
        } else {
            String::new()
        },
        rows: found
            .courses
            .into_iter()
            .map(|c| CourseRow {
                href: window::href(
                    "/console/course",
                    &[("course", &format!("id:{}", c.course.id))],
                ),
                id: c.course.id,
                shortname: c.course.shortname,
                fullname: c.course.fullname,
                learners: c.learners,
            })
            .collect(),
        q,
    };
    html(&page)
}
