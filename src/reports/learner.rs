//! One learner's report over a window, with the names it shows: what `usestats stats` prints and
//! the console's learner page draws. Both read it here, so both give the same numbers.

use std::collections::HashMap;

use super::course::{self, CourseLookupError};
use super::handle::Basis;
use super::{ReportError, store_unavailable};
use crate::stats::{CourseTotals, Report, SessionStats, Window};
use crate::store::source::{Course, ModuleLabel, SourceError, User};
use crate::store::{DbConnection, StoreError};

/// A learner's report asked for.
#[derive(Debug, Clone)]
pub struct LearnerAsk {
    pub username: String,
    /// A course as a person names it (see [`course::find_course`]): the report is cut to it.
    pub course: Option<String>,
    pub window: Window,
    /// Keep the session list (the console draws it).
    pub sessions: bool,
    /// Read the activities' names.
    pub labels: bool,
}

/// A learner's report and the names it needs, read in one go from the source database.
#[derive(Debug, Clone)]
pub struct LearnerReport {
    pub user: User,
    /// With the session list when it was asked for.
    pub report: Report,
    /// Names of the report's courses (and of the course asked for), by id.
    pub courses: HashMap<i64, Course>,
    /// Names of the report's activities, by cmid.
    pub labels: HashMap<i64, ModuleLabel>,
    /// The course the report was cut to, if one was asked for.
    pub course_filter: Option<Course>,
}

#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// The configured table prefix is refused.
    #[error(transparent)]
    Prefix(SourceError),
    /// The source database could not be reached or its worker failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("looking up user {username}")]
    Lookup {
        username: String,
        #[source]
        source: SourceError,
    },
    #[error("no user {0} in the source database")]
    NoUser(String),
    #[error(transparent)]
    Course(#[from] CourseLookupError),
    #[error("computing the time of {username}")]
    Report {
        username: String,
        #[source]
        source: ReportError,
    },
    #[error("reading course names")]
    CourseNames(#[source] SourceError),
    #[error("reading activity names")]
    ActivityNames(#[source] SourceError),
}

impl LearnerError {
    /// The database could not be reached: try again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            LearnerError::Report { source, .. } => source.is_unavailable(),
            LearnerError::Lookup { source, .. }
            | LearnerError::CourseNames(source)
            | LearnerError::ActivityNames(source)
            | LearnerError::Course(CourseLookupError::Lookup { source, .. }) => {
                super::source_unavailable(source)
            }
            LearnerError::Store(e) => store_unavailable(e),
            LearnerError::Prefix(_) | LearnerError::NoUser(_) | LearnerError::Course(_) => false,
        }
    }
}

/// The report asked for (from the compiled store where it can answer, as every other path),
/// with course and activity names. With a course, it is looked up as
/// [`course::find_course`] does, and its names are read even when it has no time in the
/// window.
pub(super) fn learner_report(
    conn: &mut DbConnection,
    basis: Basis,
    ask: &LearnerAsk,
) -> Result<LearnerReport, LearnerError> {
    let Basis {
        source,
        settings,
        compiled,
    } = basis;
    let username = ask.username.as_str();
    let user = source
        .find_user_for_rpc(conn, username)
        .map_err(|source| LearnerError::Lookup {
            username: username.to_string(),
            source,
        })?
        .ok_or_else(|| LearnerError::NoUser(username.to_string()))?;
    let course_filter = ask
        .course
        .as_deref()
        .map(|text| course::find_course(conn, source, text))
        .transpose()?;
    let report = super::answer_user(
        conn,
        source,
        settings,
        compiled,
        user.id,
        ask.window,
        ask.sessions,
    )
    .map_err(|source| LearnerError::Report {
        username: username.to_string(),
        source,
    })?;
    let mut ids: Vec<i64> = report.courses.iter().map(|c| c.course).collect();
    // The course asked for may have no time: its zero row still wants its names.
    ids.extend(course_filter.as_ref().map(|c| c.id));
    let courses = source
        .courses_by_ids(conn, &ids)
        .map_err(LearnerError::CourseNames)?;
    let cmids: Vec<i64> = report
        .courses
        .iter()
        .flat_map(|c| c.modules.iter().map(|m| m.cmid))
        .collect();
    let labels = if ask.labels {
        source
            .module_labels(conn, &cmids)
            .map_err(LearnerError::ActivityNames)?
    } else {
        HashMap::new()
    };
    Ok(LearnerReport {
        user,
        report,
        courses,
        labels,
        course_filter,
    })
}

/// One session of the learner as the front ends list it (use_stats' engine, §2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub start: i64,
    pub end: i64,
    /// Its time in seconds: the counted laps it holds (the sessions add up to the total).
    pub elapsed: i64,
    pub events: u64,
    /// The courses of its counted rows, in order of first appearance.
    pub courses: Vec<SessionCourse>,
}

/// A course a session touched: its id and the short name people know it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCourse {
    pub id: i64,
    /// `(site)` for course 0 (logins, the front page), `course N` for a course gone since.
    pub shortname: String,
}

impl LearnerReport {
    /// The sessions of the report (asked for with `sessions: true`), oldest first, with the
    /// short names of their courses. With a course filter, only the sessions that touched it,
    /// as [`LearnerReport::shown`] counts them (D6).
    pub fn session_rows(&self) -> Vec<SessionRow> {
        let filter = self.course_filter.as_ref().map(|c| c.id);
        self.report
            .session_list
            .iter()
            .filter(|s| filter.is_none_or(|id| s.courses.contains(&id)))
            .map(|s| SessionRow {
                start: s.start,
                end: s.end,
                elapsed: s.elapsed,
                events: s.events,
                courses: s
                    .courses
                    .iter()
                    .map(|&id| SessionCourse {
                        id,
                        shortname: match self.courses.get(&id) {
                            Some(course) => course.shortname.clone(),
                            None if id == 0 => "(site)".into(),
                            None => format!("course {id}"),
                        },
                    })
                    .collect(),
            })
            .collect()
    }

    /// The course rows shown and the session figures that go with them. Without a course
    /// filter: every course and every session. With one, the same scoping as the web services
    /// (D6): that course's row only (a zero row when it has no time), and only the sessions
    /// that touched it.
    pub fn shown(&self) -> (Vec<CourseTotals>, SessionStats) {
        match &self.course_filter {
            None => (self.report.courses.clone(), self.report.sessions.clone()),
            Some(filter) => match self.report.course(filter.id) {
                Some(row) => (vec![row.clone()], row.sessions.clone()),
                None => (
                    vec![CourseTotals::empty(filter.id)],
                    SessionStats::default(),
                ),
            },
        }
    }
}
