//! Runs of rows computed apart and added up: what the compiled store keeps and how an answer
//! is put together from it.
//!
//! The engine's state is "reset" (no open session, no carried capture time) right after a
//! logout, after a counted row whose gap is over the threshold, and at every login, which
//! discards what came before. None of these depends on the state before them, so the engine
//! run over any rows that start at such a row ("a cut") gives, for the rows from the cut on,
//! exactly what a run from further back gives. The rows between two cuts are a [`Segment`]:
//! computed once, they can be added to any window that holds all of them and the next cut's
//! row (whose time gives the segment's last row its gap).

use serde::{Deserialize, Serialize};

use super::input::Window;
use super::report::{CourseTotals, Estimator, Report, Session, SessionStats};

/// A row's place in the engine's order: `(timecreated, id)`.
pub type Key = (i64, i64);

/// What the engine computed over a run of rows: a [`Report`] without the parts that belong to
/// the whole answer (estimator, window, grand total).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    pub rows_extracted: u64,
    /// In order of each course's first counted row.
    pub courses: Vec<CourseTotals>,
    pub sessions: SessionStats,
    pub session_list: Vec<Session>,
}

impl Partial {
    /// Adds the run of rows that comes right after this one: the result is what one run over
    /// both would give, provided the later run starts at a cut.
    pub fn append(&mut self, later: Partial) {
        self.rows_extracted = self.rows_extracted.saturating_add(later.rows_extracted);
        // A later run names few courses and modules: finding each by a scan costs less than
        // building an index of every course on each call (the compiler appends per segment).
        for course in later.courses {
            match self.courses.iter_mut().find(|c| c.course == course.course) {
                Some(mine) => append_course(mine, course),
                None => self.courses.push(course),
            }
        }
        self.sessions.append(&later.sessions);
        self.session_list.extend(later.session_list);
    }

    pub fn into_report(self, estimator: Estimator, window: Window) -> Report {
        let total = self
            .courses
            .iter()
            .fold(0i64, |sum, totals| sum.saturating_add(totals.coursetotal));
        Report {
            estimator,
            window,
            rows_extracted: self.rows_extracted,
            total,
            courses: self.courses,
            sessions: self.sessions,
            session_list: self.session_list,
        }
    }
}

/// Laps are never negative, so saturating sums can be taken in any grouping.
fn append_course(mine: &mut CourseTotals, later: CourseTotals) {
    mine.coursetime = mine.coursetime.saturating_add(later.coursetime);
    mine.activitytime = mine.activitytime.saturating_add(later.activitytime);
    mine.othertime = mine.othertime.saturating_add(later.othertime);
    mine.coursetotal = mine.coursetotal.saturating_add(later.coursetotal);
    if mine.events == 0 {
        mine.first_time = later.first_time;
    }
    if later.events > 0 {
        mine.last_time = later.last_time;
    }
    mine.events = mine.events.saturating_add(later.events);
    for module in later.modules {
        match mine.modules.iter_mut().find(|m| m.cmid == module.cmid) {
            Some(m) => {
                // As in the engine: the first known name and section win.
                if m.module.is_none() {
                    m.module = module.module;
                }
                if m.section.is_none() {
                    m.section = module.section;
                }
                m.elapsed = m.elapsed.saturating_add(module.elapsed);
                m.events = m.events.saturating_add(module.events);
            }
            None => mine.modules.push(module),
        }
    }
    mine.sessions.append(&later.sessions);
}

/// The rows from one cut to the next, computed on their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Key of its first extracted row.
    pub first: Key,
    /// Key of the next segment's first row, whose time ended this segment's last lap.
    pub next: Key,
    pub partial: Partial,
}

/// Where the compiled segments `[interior]` sit in a window, and what must be read around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Segments used as compiled; empty when none fits the window.
    pub interior: std::ops::Range<usize>,
    /// With an interior: rows from the window's start up to (not including) this key are run
    /// on their own, their last lap ending at this key's time.
    pub left_until: Option<Key>,
    /// Rows from this key to the window's end are run on their own (the last run).
    pub right_from: Key,
}

/// Chooses the compiled segments an answer over `window` can use. `segments` are in order and
/// contiguous (each `next` is the following `first`). A segment is used when the window holds
/// its first row and the next segment's first row, and that row is no later than `now`: then
/// every lap inside it, over-threshold credits included, is the one the compile computed.
pub fn plan(segments: &[(Key, Key)], window: Window) -> Plan {
    let start = (window.from, i64::MIN);
    let limit = window.to.min(window.now);
    let k = segments.partition_point(|(first, _)| *first < start);
    let mut m = k;
    while segments.get(m).is_some_and(|(_, next)| next.0 <= limit) {
        m += 1;
    }
    if m == k {
        return Plan {
            interior: k..k,
            left_until: None,
            right_from: start,
        };
    }
    let left_until = segments.get(k).map(|(first, _)| *first);
    let right_from = segments.get(m - 1).map(|(_, next)| *next).unwrap_or(start);
    Plan {
        interior: k..m,
        left_until,
        right_from,
    }
}
