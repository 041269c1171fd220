//! The learner page's list of sessions: start, end, duration and the courses each touched,
//! newest first, the latest [`SHOWN`] of them. They are the rows `usestats stats USER
//! --sessions` prints ([`LearnerReport::session_rows`]), over the same window.

use super::window::{self, Picked};
use crate::reports::LearnerReport;
use crate::timefmt::{hms, iso, time};

/// Sessions listed at most: a busy learner has thousands over a year, and the latest are the
/// ones people look for; a narrower window (or the presets) reaches the others.
pub const SHOWN: usize = 100;

/// The sessions shown and how many there are in the window.
pub struct SessionList {
    pub rows: Vec<SessionLine>,
    /// Sessions in the window, shown or not.
    pub total: usize,
}

impl SessionList {
    /// More sessions than were listed.
    pub fn capped(&self) -> bool {
        self.total > self.rows.len()
    }
}

pub struct SessionLine {
    pub start: i64,
    pub end: i64,
    /// ISO 8601 in `datetime`, and as people read it.
    pub start_iso: String,
    pub end_iso: String,
    pub start_text: String,
    pub end_text: String,
    pub seconds: i64,
    /// `h:mm:ss`.
    pub duration: String,
    pub courses: Vec<SessionCourseLink>,
}

/// A course a session touched, with a link to its page over the same window (none for the
/// site's own row).
pub struct SessionCourseLink {
    pub shortname: String,
    pub href: String,
}

/// The latest [`SHOWN`] sessions of `found`, newest first.
pub fn sessions(found: &LearnerReport, picked: &Picked) -> SessionList {
    let all = found.session_rows();
    let total = all.len();
    let rows = all
        .into_iter()
        .rev()
        .take(SHOWN)
        .map(|s| SessionLine {
            start: s.start,
            end: s.end,
            start_iso: iso(s.start).unwrap_or_default(),
            end_iso: iso(s.end).unwrap_or_default(),
            start_text: time(s.start),
            end_text: time(s.end),
            seconds: s.elapsed,
            duration: hms(s.elapsed),
            courses: s
                .courses
                .into_iter()
                .map(|c| SessionCourseLink {
                    href: if found.courses.contains_key(&c.id) {
                        window::course_href(c.id, picked)
                    } else {
                        String::new()
                    },
                    shortname: c.shortname,
                })
                .collect(),
        })
        .collect();
    SessionList { rows, total }
}
