//! Users named by a field, each with their report or dedication, the names of the courses
//! those name, and their grades: what a web-service call reads, in one go.

use std::collections::HashMap;

use super::ReportError;
use super::handle::{Basis, DedicationAsk, dedication};
use crate::stats::dedication::{Dedication, DedicationEstimator, Variant};
use crate::stats::{Report, Window};
use crate::store::source::{Course, CourseField, SourceError, User, UserField};
use crate::store::{DbConnection, StoreError};

/// Which estimator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimate {
    /// use_stats, from the compiled store where it can answer.
    UseStats,
    /// A dedication variant, with the settings asked for instead of the site's.
    Dedication {
        variant: Variant,
        session_limit: Option<i64>,
        ignore_sessions_limit: Option<i64>,
        /// Each course's session list is wanted, not only the figures.
        sessions: bool,
    },
}

/// Users asked for by `field`, over `from`..`to` (0: now; for dedication, 0 takes the rule's
/// defaults), at `now`.
#[derive(Debug, Clone)]
pub struct UsersAsk {
    pub field: UserField,
    pub uids: Vec<String>,
    /// Only this course, found by a field.
    pub course: Option<(CourseField, String)>,
    pub estimate: Estimate,
    pub grades: bool,
    pub from: i64,
    pub to: i64,
    pub now: i64,
}

#[derive(Debug)]
pub struct UsersAnswer {
    /// In the order asked.
    pub users: Vec<User>,
    pub course: Option<Course>,
    /// use_stats' reports by user (empty when dedication was asked for).
    pub reports: HashMap<i64, Report>,
    /// The courses the answers name.
    pub courses: HashMap<i64, Course>,
    pub site_course: i64,
    /// Each (user, course)'s final grade, as text.
    pub grades: HashMap<(i64, i64), String>,
    /// use_stats' window: `to` 0 made now.
    pub window: Window,
    /// Asked for with a dedication variant: per user, instead of `reports`.
    pub dedication: Option<(DedicationEstimator, HashMap<i64, Dedication>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The configured table prefix is refused.
    #[error(transparent)]
    Prefix(SourceError),
    /// No user has the `uids[n]` asked for.
    #[error("no user {0} of those asked")]
    NoUser(usize),
    #[error("no such course")]
    NoCourse,
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl From<StoreError> for UsersError {
    fn from(e: StoreError) -> Self {
        UsersError::Report(e.into())
    }
}

impl From<SourceError> for UsersError {
    fn from(e: SourceError) -> Self {
        UsersError::Report(e.into())
    }
}

pub(super) fn users_answer(
    conn: &mut DbConnection,
    basis: Basis,
    ask: &UsersAsk,
) -> Result<UsersAnswer, UsersError> {
    let source = basis.source;
    let window = Window {
        from: ask.from,
        to: if ask.to == 0 { ask.now } else { ask.to },
        now: ask.now,
    };
    let mut users = Vec::with_capacity(ask.uids.len());
    for (at, user) in source
        .find_users(conn, ask.field, &ask.uids)?
        .into_iter()
        .enumerate()
    {
        users.push(user.ok_or(UsersError::NoUser(at))?);
    }
    let course = match &ask.course {
        None => None,
        Some((field, cid)) => Some(
            source
                .find_course(conn, *field, cid)?
                .ok_or(UsersError::NoCourse)?,
        ),
    };
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let (reports, dedication) = match ask.estimate {
        Estimate::Dedication {
            variant,
            session_limit,
            ignore_sessions_limit,
            sessions,
        } => {
            let asked = DedicationAsk {
                variants: vec![variant],
                session_limit,
                ignore_sessions_limit,
                users: ids.clone(),
                course: course.as_ref().map(|c| c.id),
                from: ask.from,
                to: ask.to,
                now: ask.now,
                course_names: false,
                sessions,
            };
            let run = dedication(conn, basis, variant, &asked)?;
            (HashMap::new(), Some(run))
        }
        Estimate::UseStats => (
            super::answer_users(conn, source, basis.settings, basis.compiled, &ids, window)?,
            None,
        ),
    };
    let mut course_ids: Vec<i64> = reports
        .values()
        .flat_map(|r| r.courses.iter().map(|c| c.course))
        .chain(
            dedication
                .iter()
                .flat_map(|(_, d)| d.values())
                .flat_map(|d| d.courses.iter().map(|c| c.course)),
        )
        .collect();
    course_ids.sort_unstable();
    course_ids.dedup();
    let courses = source.courses_by_ids(conn, &course_ids)?;
    let site_course = source.site_course_id(conn)?;
    let grades = if !ask.grades {
        HashMap::new()
    } else if let Some(course) = &course {
        source
            .users_course_grades(conn, &ids, course.id)?
            .into_iter()
            .map(|(user, grade)| ((user, course.id), grade))
            .collect()
    } else {
        source.grades_for_users(conn, &ids)?
    };
    Ok(UsersAnswer {
        users,
        course,
        reports,
        courses,
        site_course,
        grades,
        window,
        dedication,
    })
}
