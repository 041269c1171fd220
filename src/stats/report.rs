//! What the engine hands back: totals per course and module, and sessions.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::input::{Settings, Window};

/// Names the rule and the parameters that produced a set of numbers, so every answer can say
/// how its figures were estimated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Estimator {
    pub rule: &'static str,
    pub version: u32,
    pub threshold_s: i64,
    pub lastpingcredit_s: i64,
}

impl Estimator {
    pub const RULE: &'static str = "use_stats.main";
    pub const VERSION: u32 = 1;

    pub fn for_settings(settings: &Settings) -> Estimator {
        Estimator {
            rule: Self::RULE,
            version: Self::VERSION,
            threshold_s: settings.threshold_minutes.saturating_mul(60),
            lastpingcredit_s: settings.lastpingcredit_minutes.saturating_mul(60),
        }
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} v{} (threshold {} s, last ping credit {} s)",
            self.rule, self.version, self.threshold_s, self.lastpingcredit_s
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub estimator: Estimator,
    pub window: Window,
    /// Rows that passed the extraction filters (§2.1, enrolment filter included), skipped
    /// `graded` rows included. 0 means "no logs".
    pub rows_extracted: u64,
    /// Grand total in seconds: the sum of `coursetotal` over every course, course 0 included.
    pub total: i64,
    /// In order of each course's first counted row.
    pub courses: Vec<CourseTotals>,
    pub sessions: SessionStats,
    /// Filled only when the engine was asked to keep sessions.
    pub session_list: Vec<Session>,
}

impl Report {
    pub fn course(&self, course: i64) -> Option<&CourseTotals> {
        self.courses.iter().find(|totals| totals.course == course)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseTotals {
    pub course: i64,
    /// Time in course-level contexts (category, course, block, ...), outside activities.
    pub coursetime: i64,
    /// Time in module contexts whose cm is known.
    pub activitytime: i64,
    /// Everything else: logins, system and user contexts, module contexts whose context is gone.
    pub othertime: i64,
    /// Always `coursetime + activitytime + othertime`.
    pub coursetotal: i64,
    /// Counted rows.
    pub events: u64,
    pub first_time: i64,
    pub last_time: i64,
    /// Per cmid, in order of the first counted row within the course.
    pub modules: Vec<ModuleTotals>,
    /// Sessions that touched this course (D6).
    pub sessions: SessionStats,
}

impl CourseTotals {
    /// The row of a course with no counted row, timed at `time`.
    pub fn empty_at(course: i64, time: i64) -> CourseTotals {
        CourseTotals {
            course,
            coursetime: 0,
            activitytime: 0,
            othertime: 0,
            coursetotal: 0,
            events: 0,
            first_time: time,
            last_time: time,
            modules: Vec::new(),
            sessions: SessionStats::default(),
        }
    }

    /// The zero row of a course that was asked for but has no time (D6).
    pub fn empty(course: i64) -> CourseTotals {
        CourseTotals::empty_at(course, 0)
    }

    pub fn module(&self, cmid: i64) -> Option<&ModuleTotals> {
        self.modules.iter().find(|module| module.cmid == cmid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleTotals {
    pub cmid: i64,
    /// `modules.name`; `None` when the cm row is gone ("N.C.").
    pub module: Option<String>,
    /// `course_modules.section` (a `course_sections.id`).
    pub section: Option<i64>,
    pub elapsed: i64,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub start: i64,
    pub end: i64,
    /// Sum of the counted laps the session holds, login laps and carried capture time included.
    pub elapsed: i64,
    pub events: u64,
    /// Courses of the session's counted rows, in order of first appearance.
    pub courses: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    pub count: u64,
    pub first_start: Option<i64>,
    /// Start of the last session (D8); equals `first_start` when there is one session.
    pub last_start: Option<i64>,
    /// 0 when there is no session.
    pub min: i64,
    pub max: i64,
    pub sum: i64,
}

impl SessionStats {
    /// Sessions must be added in time order so that first/last are right.
    pub fn add(&mut self, start: i64, elapsed: i64) {
        if self.count == 0 {
            self.first_start = Some(start);
            self.min = elapsed;
            self.max = elapsed;
        } else {
            self.min = self.min.min(elapsed);
            self.max = self.max.max(elapsed);
        }
        self.last_start = Some(start);
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(elapsed);
    }

    /// Adds the sessions of a later run of rows, as if each had been added here in turn.
    pub fn append(&mut self, later: &SessionStats) {
        if later.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = later.clone();
            return;
        }
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.last_start = later.last_start;
        self.count = self.count.saturating_add(later.count);
        self.sum = self.sum.saturating_add(later.sum);
    }

    /// Mean session length, rounded half away from zero (E13); 0 when there is no session.
    pub fn mean(&self) -> i64 {
        if self.count == 0 {
            return 0;
        }
        let sum = i128::from(self.sum);
        let count = i128::from(self.count);
        let quotient = sum / count;
        let remainder = sum % count;
        let rounded = if 2 * remainder.abs() >= count {
            quotient + sum.signum()
        } else {
            quotient
        };
        // |mean| <= |sum|, so the result always fits back into i64.
        i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
    }
}
