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

/// Adds many runs in order, as [`Partial::append`] does one after the other, without a linear
/// search per course and module: an answer's interior adds dozens of block sums that each
/// name every course and activity of the learner.
#[derive(Debug, Default)]
pub struct PartialSum {
    total: Partial,
    courses: std::collections::HashMap<i64, usize>,
    /// (course slot, cmid) → module slot.
    modules: std::collections::HashMap<(usize, i64), usize>,
}

impl PartialSum {
    pub fn add(&mut self, later: Partial) {
        let total = &mut self.total;
        total.rows_extracted = total.rows_extracted.saturating_add(later.rows_extracted);
        for course in later.courses {
            match self.courses.get(&course.course) {
                Some(&slot) => {
                    let Some(mine) = total.courses.get_mut(slot) else {
                        continue;
                    };
                    let modules = std::mem::take(&mut mine.modules);
                    let mut later_course = course;
                    let later_modules = std::mem::take(&mut later_course.modules);
                    append_course(mine, later_course);
                    mine.modules = modules;
                    for module in later_modules {
                        match self.modules.get(&(slot, module.cmid)) {
                            Some(&m) => {
                                if let Some(m) = mine.modules.get_mut(m) {
                                    add_module(m, module);
                                }
                            }
                            None => {
                                self.modules.insert((slot, module.cmid), mine.modules.len());
                                mine.modules.push(module);
                            }
                        }
                    }
                }
                None => {
                    let slot = total.courses.len();
                    self.courses.insert(course.course, slot);
                    for (i, module) in course.modules.iter().enumerate() {
                        self.modules.entry((slot, module.cmid)).or_insert(i);
                    }
                    total.courses.push(course);
                }
            }
        }
        total.sessions.append(&later.sessions);
        total.session_list.extend(later.session_list);
    }

    pub fn finish(self) -> Partial {
        self.total
    }
}

/// As the engine: the first known name and section win.
fn add_module(m: &mut super::report::ModuleTotals, module: super::report::ModuleTotals) {
    if m.module.is_none() {
        m.module = module.module;
    }
    if m.section.is_none() {
        m.section = module.section;
    }
    m.elapsed = m.elapsed.saturating_add(module.elapsed);
    m.events = m.events.saturating_add(module.events);
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
            Some(m) => add_module(m, module),
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
    /// Its first row is a login: a run that reaches it may stop there, whatever its state.
    pub login: bool,
    pub partial: Partial,
}

/// Where a user's compiled segments stand against a window, as the store finds them with one
/// seek each into its `(user, first row)` index. Every count is capped at `segments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probes {
    /// Segments an answer may use: all of them, or those before a late row.
    pub segments: usize,
    /// The first segment whose first row is at or after the window's start.
    pub from: usize,
    /// The first segment whose first row is after `min(to, now)`, the last instant at which
    /// every lap is the one the compile saw.
    pub after_limit: usize,
    /// The first segment whose first row is after the window's end.
    pub after_to: usize,
    /// Key of the first row after the segments used (the next segment's, or the tail's); None
    /// when there is no segment.
    pub boundary: Option<Key>,
}

impl Probes {
    /// Probes of a window that holds every segment: no seek needed.
    pub fn everything(segments: usize, boundary: Option<Key>) -> Probes {
        Probes {
            segments,
            from: 0,
            after_limit: segments,
            after_to: segments,
            boundary,
        }
    }
}

/// How an answer over a window is put together from a user's segments (docs/engine.md §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// With an interior: the segment holding the window's start, whose rows from the start on
    /// are run on their own and end where the interior begins.
    pub left: Option<usize>,
    /// Segments used as compiled, summed; empty when none fits the window.
    pub interior: std::ops::Range<usize>,
    /// Segments whose rows are run after the interior (or alone), up to the window's end.
    pub right: std::ops::Range<usize>,
    /// The rows after the segments (the tail and the rows logged since) are run last.
    pub loose: bool,
}

/// Chooses the segments an answer over `window` can use as compiled. A segment is used when the
/// window holds its first row and the next segment's first row, and that row is no later than
/// `now`: then every lap inside it, over-threshold credits included, is the one the compile
/// computed. Its rows before that are run from the window's start; its rows after, to the end.
pub fn plan(probes: Probes, window: Window) -> Plan {
    let n = probes.segments;
    let limit = window.to.min(window.now);
    let k = probes.from.min(n);
    // Segments whose next row is no later than `limit`: segment i ends where i + 1 starts, the
    // last one where the boundary is.
    let after_limit = probes.after_limit.min(n);
    let m = if after_limit < n {
        after_limit.saturating_sub(1)
    } else if probes.boundary.is_some_and(|b| b.0 <= limit) {
        n
    } else {
        n.saturating_sub(1)
    };
    let after_to = probes.after_to.min(n);
    let loose = after_to == n && probes.boundary.is_none_or(|b| b.0 <= window.to);
    if k < m {
        Plan {
            left: k.checked_sub(1),
            interior: k..m,
            right: m..after_to.max(m),
            loose,
        }
    } else {
        // No segment fits: one run over the rows of the window.
        let start = k.saturating_sub(1);
        Plan {
            left: None,
            interior: start..start,
            right: start..after_to.max(start),
            loose,
        }
    }
}

/// Segments per block of the next level. An answer sums a window's segments as at most 15
/// units of each level on either side plus whole blocks of the top level, so its cost does not
/// grow with the number of segments it covers.
pub const BLOCK_FANOUT: usize = 16;
/// Levels of blocks above the segments: the top level's blocks hold 16^4 = 65 536 segments.
pub const BLOCK_LEVELS: u32 = 4;

/// Splits segments `[a, b)` into runs of whole units, in order: `(level, first, end)` covers the
/// level's units `first..end`, a unit of level `l` being segments `[i·16^l, (i+1)·16^l)`.
pub fn blocks(a: usize, b: usize) -> Vec<(u32, usize, usize)> {
    let mut left = Vec::new();
    let mut right = Vec::new();
    let (mut lo, mut hi) = (a, b);
    for level in 0..=BLOCK_LEVELS {
        if lo >= hi {
            break;
        }
        let up_lo = lo.div_ceil(BLOCK_FANOUT);
        let up_hi = hi / BLOCK_FANOUT;
        if level == BLOCK_LEVELS || up_lo >= up_hi {
            left.push((level, lo, hi));
            break;
        }
        if lo < up_lo * BLOCK_FANOUT {
            left.push((level, lo, up_lo * BLOCK_FANOUT));
        }
        if up_hi * BLOCK_FANOUT < hi {
            right.push((level, up_hi * BLOCK_FANOUT, hi));
        }
        lo = up_lo;
        hi = up_hi;
    }
    left.extend(right.into_iter().rev());
    left
}

/// The first segment a unit of `level` at `index` covers.
pub fn block_start(level: u32, index: usize) -> usize {
    index.saturating_mul(BLOCK_FANOUT.saturating_pow(level))
}
