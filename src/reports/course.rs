//! A course's report: every learner enrolled in it, with their time in it over a window (what
//! block_dedication shows teachers). The same rows feed `usestats report`, the console's
//! course page and its CSV export, so all three give the same numbers as `usestats stats`.

use serde::Serialize;

use super::ReportError;
use super::export::{self, Cell, Format, Sheet};
use super::handle::Basis;
use crate::stats::{CourseTotals, Window};
use crate::store::source::{Course, CourseField, Group, Source, SourceError};
use crate::store::{DbConnection, StoreError};

/// A course's report asked for: the course as a person names it (see [`find_course`]), and
/// optionally one of its groups (see [`find_group`]), to keep only that group's members.
#[derive(Debug, Clone)]
pub struct CourseAsk {
    pub course: String,
    pub window: Window,
    pub group: Option<String>,
}

/// Why a course's report could not be given.
#[derive(Debug, thiserror::Error)]
pub enum CourseError {
    /// The configured table prefix is refused.
    #[error(transparent)]
    Prefix(SourceError),
    /// The source database could not be reached or its worker failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lookup(#[from] CourseLookupError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Group(#[from] GroupLookupError),
}

/// Why a group of the course could not be found from what a person typed.
#[derive(Debug, thiserror::Error)]
pub enum GroupLookupError {
    #[error("course {course} has no group {text}")]
    NotFound { course: String, text: String },
    /// A bare text that is one group's id and another group's name.
    #[error(
        "group {text} is ambiguous: it is group id {id} and the name of group id {name_of}; say `id:{text}` or `name:{text}`"
    )]
    Ambiguous { text: String, id: i64, name_of: i64 },
}

/// Why a course could not be found from what a person typed.
#[derive(Debug, thiserror::Error)]
pub enum CourseLookupError {
    #[error("looking up course {text}")]
    Lookup {
        text: String,
        #[source]
        source: SourceError,
    },
    /// A bare text that is one course's id and another course's shortname.
    #[error(
        "course {text} is ambiguous: it is course id {id} and the shortname of course id {shortname_of}; say `id:{text}` or `shortname:{text}`"
    )]
    Ambiguous {
        text: String,
        id: i64,
        shortname_of: i64,
    },
    #[error("no course {0}")]
    NotFound(String),
}

/// The course a person names: an id or a shortname, or `id:N` / `shortname:S` to say which.
/// A bare text that is one course's id and another's shortname is refused, not guessed.
/// `usestats stats --course`, `usestats report --course` and the console all read it so.
pub fn find_course(
    conn: &mut DbConnection,
    source: &Source,
    text: &str,
) -> Result<Course, CourseLookupError> {
    let mut find = |field, value| {
        source
            .find_course(conn, field, value)
            .map_err(|source| CourseLookupError::Lookup {
                text: text.to_string(),
                source,
            })
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
        (Some(a), Some(b)) if a.id != b.id => Err(CourseLookupError::Ambiguous {
            text: text.to_string(),
            id: a.id,
            shortname_of: b.id,
        }),
        (Some(course), _) | (None, Some(course)) => Ok(course),
        (None, None) => Err(CourseLookupError::NotFound(text.to_string())),
    }
}

/// One enrolled learner's time in the course. A learner with no time has a zero row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearnerRow {
    pub userid: i64,
    pub username: String,
    pub firstname: String,
    pub lastname: String,
    /// Time in course-level contexts, outside activities.
    pub coursetime: i64,
    /// Time in the course's activities.
    pub activitytime: i64,
    pub othertime: i64,
    /// `coursetime + activitytime + othertime`: the learner's time in the course.
    pub coursetotal: i64,
    pub events: u64,
    /// Sessions that touched the course.
    pub sessions: u64,
    /// First and last counted row in the course; `None` without one.
    pub first_access: Option<i64>,
    pub last_access: Option<i64>,
}

/// One activity (course module) of the course: its learners' time and hits in it, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityRow {
    pub cmid: i64,
    /// The instance's name; empty when its course_modules row is gone (shown as N.C., E14).
    pub name: String,
    /// `modules.name` (`quiz`, `page`…); empty when unknown.
    pub module: String,
    pub elapsed: i64,
    pub events: u64,
    /// Learners with time or hits in it.
    pub learners: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CourseReport {
    pub course: Course,
    pub window: Window,
    /// The group the report was cut to, if one was asked for.
    pub group: Option<Group>,
    /// Every group of the course (what a group filter offers).
    pub groups: Vec<Group>,
    /// Most time first; equal times by last name, first name, id.
    pub learners: Vec<LearnerRow>,
    /// The course's activities over the same learners, most time first.
    pub activities: Vec<ActivityRow>,
}

impl CourseReport {
    pub fn total(&self) -> i64 {
        self.learners.iter().map(|l| l.coursetotal).sum()
    }
}

/// The report of the course asked for: its enrolled learners' reports (from the compiled
/// store where it can answer, as every other path), cut to this course.
pub(super) fn course_report(
    conn: &mut DbConnection,
    basis: Basis,
    ask: &CourseAsk,
) -> Result<CourseReport, CourseError> {
    let Basis {
        source,
        settings,
        compiled,
    } = basis;
    let course = find_course(conn, source, &ask.course)?;
    let window = ask.window;
    let groups = source
        .course_groups(conn, course.id)
        .map_err(ReportError::from)?;
    let group = ask
        .group
        .as_deref()
        .map(|text| find_group(&groups, &ask.course, text))
        .transpose()?;
    let mut users = source
        .enrolled_users(conn, course.id)
        .map_err(ReportError::from)?;
    if let Some(group) = &group {
        let members: std::collections::HashSet<i64> = source
            .group_members(conn, group.id)
            .map_err(ReportError::from)?
            .into_iter()
            .collect();
        users.retain(|u| members.contains(&u.id));
    }
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let reports = super::answer_users(conn, source, settings, compiled, &ids, window)?;
    let totals: Vec<&CourseTotals> = reports
        .values()
        .filter_map(|r| r.course(course.id))
        .collect();
    let activities = activities(conn, source, &totals)?;
    let mut learners: Vec<LearnerRow> = users
        .into_iter()
        .map(|user| {
            let totals = reports.get(&user.id).and_then(|r| r.course(course.id));
            let counted = totals.filter(|t| t.events > 0);
            LearnerRow {
                userid: user.id,
                username: user.username,
                firstname: user.firstname,
                lastname: user.lastname,
                coursetime: totals.map_or(0, |t| t.coursetime),
                activitytime: totals.map_or(0, |t| t.activitytime),
                othertime: totals.map_or(0, |t| t.othertime),
                coursetotal: totals.map_or(0, |t| t.coursetotal),
                events: totals.map_or(0, |t| t.events),
                sessions: totals.map_or(0, |t| t.sessions.count),
                first_access: counted.map(|t| t.first_time),
                last_access: counted.map(|t| t.last_time),
            }
        })
        .collect();
    // The enrolled users came ordered by name: a stable sort keeps that order within a time.
    learners.sort_by_key(|l| std::cmp::Reverse(l.coursetotal));
    Ok(CourseReport {
        course,
        window,
        group,
        groups,
        learners,
        activities,
    })
}

/// The group of the course a person names: an id or a name, or `id:N` / `name:S` to say
/// which, as [`find_course`] reads a course. Only the course's own groups are looked at, so
/// another course's group id is "no such group", never its members.
pub fn find_group(groups: &[Group], course: &str, text: &str) -> Result<Group, GroupLookupError> {
    let text = text.trim();
    let by_id = |id: &str| {
        id.parse::<i64>()
            .ok()
            .and_then(|id| groups.iter().find(|g| g.id == id))
    };
    let by_name = |name: &str| groups.iter().find(|g| g.name == name);
    let (id, name) = match (text.strip_prefix("id:"), text.strip_prefix("name:")) {
        (Some(id), _) => (by_id(id), None),
        (_, Some(name)) => (None, by_name(name)),
        _ => (by_id(text), by_name(text)),
    };
    match (id, name) {
        (Some(a), Some(b)) if a.id != b.id => Err(GroupLookupError::Ambiguous {
            text: text.to_string(),
            id: a.id,
            name_of: b.id,
        }),
        (Some(group), _) | (None, Some(group)) => Ok(group.clone()),
        (None, None) => Err(GroupLookupError::NotFound {
            course: course.to_string(),
            text: text.to_string(),
        }),
    }
}

/// The learners' time and hits per activity of the course, added up, with the activities'
/// names. Summed here from each learner's own per-activity totals (those the learner page
/// shows), so the activities add up to the learners' activity time.
fn activities(
    conn: &mut DbConnection,
    source: &Source,
    totals: &[&CourseTotals],
) -> Result<Vec<ActivityRow>, ReportError> {
    let mut by_cmid: std::collections::BTreeMap<i64, ActivityRow> = Default::default();
    for module in totals.iter().flat_map(|t| &t.modules) {
        let row = by_cmid.entry(module.cmid).or_insert_with(|| ActivityRow {
            cmid: module.cmid,
            name: String::new(),
            module: module.module.clone().unwrap_or_default(),
            elapsed: 0,
            events: 0,
            learners: 0,
        });
        row.elapsed += module.elapsed;
        row.events += module.events;
        row.learners += 1;
    }
    let cmids: Vec<i64> = by_cmid.keys().copied().collect();
    let labels = source.module_labels(conn, &cmids)?;
    let mut rows: Vec<ActivityRow> = by_cmid
        .into_values()
        .map(|mut row| {
            if let Some(label) = labels.get(&row.cmid) {
                row.name = label.name.clone();
                row.module = label.modname.clone();
            }
            row
        })
        .collect();
    rows.sort_by_key(|r| (std::cmp::Reverse(r.elapsed), r.cmid));
    Ok(rows)
}

/// The columns of every export (CSV, XLSX, ODS), in order: the raw ones first, as the CSV
/// always had them, then the same durations as `h:mm:ss` and the times as ISO 8601.
pub const CSV_HEADER: [&str; 18] = [
    "userid",
    "username",
    "firstname",
    "lastname",
    "coursetime",
    "activitytime",
    "othertime",
    "coursetotal",
    "events",
    "sessions",
    "first_access",
    "last_access",
    "coursetime_hms",
    "activitytime_hms",
    "othertime_hms",
    "coursetotal_hms",
    "first_access_iso",
    "last_access_iso",
];

/// The report as a sheet, one row per learner in the report's order. `usestats report` and
/// the console's downloads both write this sheet (`export::write`), so they give the same
/// cells in every format.
pub fn to_sheet(report: &CourseReport) -> Sheet {
    let rows = report
        .learners
        .iter()
        .map(|l| {
            vec![
                Cell::Number(l.userid),
                Cell::Text(l.username.clone()),
                Cell::Text(l.firstname.clone()),
                Cell::Text(l.lastname.clone()),
                Cell::Number(l.coursetime),
                Cell::Number(l.activitytime),
                Cell::Number(l.othertime),
                Cell::Number(l.coursetotal),
                Cell::Number(count(l.events)),
                Cell::Number(count(l.sessions)),
                Cell::unix(l.first_access),
                Cell::unix(l.last_access),
                Cell::Duration(l.coursetime),
                Cell::Duration(l.activitytime),
                Cell::Duration(l.othertime),
                Cell::Duration(l.coursetotal),
                Cell::iso(l.first_access),
                Cell::iso(l.last_access),
            ]
        })
        .collect();
    Sheet {
        headers: CSV_HEADER.map(String::from).to_vec(),
        rows,
    }
}

/// A count as a cell: no log holds 2^63 rows.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The report as CSV (RFC 4180: comma, CRLF): see [`to_sheet`]. Names come from the Moodle
/// site's users, who choose their own: each is defused for a spreadsheet under any separator a
/// locale may use (`text::spreadsheet`).
pub fn to_csv(report: &CourseReport) -> Vec<u8> {
    export::write_csv(&to_sheet(report))
}

/// The report's file name in `format`: `course-<shortname>-<first day>_<last day>.<ext>`.
pub fn file_name(report: &CourseReport, format: Format) -> String {
    export::file_name("course", &report.course.shortname, &report.window, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, seconds: i64) -> LearnerRow {
        LearnerRow {
            userid: 1,
            username: name.into(),
            firstname: "A, \"B\"".into(),
            lastname: "=HYPERLINK(\"x\")".into(),
            coursetime: seconds,
            activitytime: 0,
            othertime: 0,
            coursetotal: seconds,
            events: 2,
            sessions: 1,
            first_access: Some(10),
            last_access: None,
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let report = CourseReport {
            course: Course {
                id: 2,
                category: 1,
                fullname: "F".into(),
                shortname: "S".into(),
                idnumber: String::new(),
            },
            window: Window {
                from: 0,
                to: 1,
                now: 1,
            },
            group: None,
            groups: Vec::new(),
            learners: vec![row("u1", 60)],
            activities: Vec::new(),
        };
        let text = String::from_utf8(to_csv(&report)).unwrap();
        let mut lines = text.split("\r\n");
        assert_eq!(lines.next().unwrap(), CSV_HEADER.join(","));
        assert_eq!(
            lines.next().unwrap(),
            "1,u1,\"A, \"\"B\"\"\",\"'=HYPERLINK(\"\"x\"\")\",60,0,0,60,2,1,10,,0:01:00,0:00:00,0:00:00,0:01:00,1970-01-01T00:00:10Z,"
        );
        assert_eq!(lines.next(), Some(""));
    }
}
