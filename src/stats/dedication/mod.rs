//! block_dedication's rule, beside use_stats' (docs/engine.md §8): one learner's rows in one
//! course cut into sessions wherever the gap to the previous row is over a limit, each session
//! worth its last row's time minus its first's.
//!
//! Pure, as the use_stats engine: rows, settings and a resolved window in, sessions and totals
//! out. The window's defaults need the course's start date and "now": [`resolve_window`] applies
//! them, the caller reads both.

use std::fmt;

use serde::{Deserialize, Serialize};

mod summary;
pub use summary::{Summary, kept_across};

/// Which of block_dedication's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Variant {
    /// `dedication v1`: the 4.x plugin's rule, computed live.
    Live,
    /// `dedication.legacy v1`: the 3.x plugin's rule.
    Legacy,
}

impl Variant {
    pub const VERSION: u32 = 1;

    pub fn name(self) -> &'static str {
        match self {
            Variant::Live => "dedication",
            Variant::Legacy => "dedication.legacy",
        }
    }
}

/// The rule's two settings, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DedicationSettings {
    /// A gap strictly longer than this starts a new session.
    pub session_limit: i64,
    /// Live rule: a session is kept when it lasts strictly longer than this. The legacy rule
    /// keeps every session and ignores it.
    pub ignore_sessions_limit: i64,
}

/// The plugin's session limit when none is saved (or an empty or zero one is).
pub const DEFAULT_SESSION_LIMIT: i64 = 3600;
/// The value block_dedication's settings page proposes for `ignore_sessions_limit`. It only
/// applies once an administrator saved the page: never saved, the plugin ignores nothing but
/// sessions of 0 s (see [`DedicationSettings::from_plugin_config`]).
pub const DEFAULT_IGNORE_SESSIONS_LIMIT: i64 = 120;
/// The 3.x per-user report leaves out sessions of this many seconds or less.
pub const LEGACY_USER_REPORT_MINIMUM: i64 = 59;
/// `from = 0` on a course without a start date means this long before now.
pub const DEFAULT_WINDOW_S: i64 = 90 * 86_400;

impl DedicationSettings {
    /// What the plugin uses given its rows in `config_plugins` (plugin `block_dedication`),
    /// each `None` when the row does not exist.
    ///
    /// `session_limit`: empty, `0`, missing — and, our reading, negative or not a whole number
    /// — is [`DEFAULT_SESSION_LIMIT`]. `ignore_sessions_limit` never saved keeps every session
    /// longer than 0 s, i.e. 0; saved empty, negative or not a whole number counts as 0 too.
    pub fn from_plugin_config(session_limit: Option<&str>, ignore: Option<&str>) -> Self {
        let number = |v: &str| v.trim().parse::<i64>().ok();
        let session_limit = session_limit
            .and_then(number)
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_SESSION_LIMIT);
        let ignore_sessions_limit = ignore.and_then(number).unwrap_or(0).max(0);
        DedicationSettings {
            session_limit,
            ignore_sessions_limit,
        }
    }

    /// The 3.x rule: the report form's limit (3600 unless asked); every session is summed, as
    /// its course report and block do.
    pub fn legacy(session_limit: Option<i64>) -> Self {
        DedicationSettings {
            session_limit: session_limit
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_SESSION_LIMIT),
            ignore_sessions_limit: 0,
        }
    }
}

impl Default for DedicationSettings {
    /// The settings of a site that never saved block_dedication's settings page.
    fn default() -> Self {
        DedicationSettings::from_plugin_config(None, None)
    }
}

/// Names a dedication figure: rule, version and the settings that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DedicationEstimator {
    pub rule: &'static str,
    pub version: u32,
    pub session_limit_s: i64,
    /// `None` for the legacy rule, which drops nothing from its totals.
    pub ignore_sessions_limit_s: Option<i64>,
}

impl DedicationEstimator {
    pub fn new(variant: Variant, settings: DedicationSettings) -> Self {
        DedicationEstimator {
            rule: variant.name(),
            version: Variant::VERSION,
            session_limit_s: settings.session_limit,
            ignore_sessions_limit_s: match variant {
                Variant::Live => Some(settings.ignore_sessions_limit),
                Variant::Legacy => None,
            },
        }
    }
}

impl fmt::Display for DedicationEstimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} v{} (session limit {} s",
            self.rule, self.version, self.session_limit_s
        )?;
        match self.ignore_sessions_limit_s {
            Some(ignore) => write!(f, ", sessions of {ignore} s or less ignored)"),
            None => write!(f, ", every session counted)"),
        }
    }
}

/// A log row's `origin`, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    Null,
    Cli,
    Other,
}

impl Origin {
    pub fn of(origin: Option<&str>) -> Origin {
        match origin {
            None => Origin::Null,
            Some("cli") => Origin::Cli,
            Some(_) => Origin::Other,
        }
    }
}

/// One log row, as the rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedicationRow {
    pub id: i64,
    /// `timecreated`.
    pub time: i64,
    /// `courseid`, which Moodle allows to be NULL.
    pub course: Option<i64>,
    pub origin: Origin,
    /// `eventname` has the form `\<component>\event\<target>_<action>` (see [`event_name_ok`]).
    pub event_ok: bool,
}

impl DedicationRow {
    pub fn new(
        id: i64,
        time: i64,
        course: Option<i64>,
        origin: Option<&str>,
        eventname: &str,
    ) -> Self {
        DedicationRow {
            id,
            time,
            course,
            origin: Origin::of(origin),
            event_ok: event_name_ok(eventname),
        }
    }
}

/// Whether Moodle could restore an event from this name: `\component\event\class`, component
/// and class made of ASCII letters, digits and underscores, the class holding an underscore
/// between a non-empty target and a non-empty action. A row whose name is not of that form is
/// skipped by both rules.
pub fn event_name_ok(name: &str) -> bool {
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let mut parts = name.split('\\');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(""), Some(component), Some("event"), Some(class), None) => {
            word(component)
                && word(class)
                && class
                    .rsplit_once('_')
                    .is_some_and(|(target, action)| !target.is_empty() && !action.is_empty())
        }
        _ => false,
    }
}

/// Whether a row counts in course `course` under `variant`, its time aside.
pub fn counts(row: &DedicationRow, course: i64, variant: Variant) -> bool {
    if row.course != Some(course) || course == 0 || !row.event_ok {
        return false;
    }
    match variant {
        // `origin <> 'cli'` is not true for NULL either.
        Variant::Live => row.origin == Origin::Other,
        Variant::Legacy => true,
    }
}

/// A window, both ends included, once its defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedicationWindow {
    pub from: i64,
    pub to: i64,
}

/// The plugin's window defaults: `from = 0` is the course's start date, or `now` − 90 days
/// when the course has none (`course_start` `None`: no such course; `Some(0)`: no date);
/// `to = 0` is `now`. Any other value is kept as given.
pub fn resolve_window(from: i64, to: i64, now: i64, course_start: Option<i64>) -> DedicationWindow {
    let from = if from == 0 {
        match course_start {
            Some(start) if start != 0 => start,
            _ => now.saturating_sub(DEFAULT_WINDOW_S),
        }
    } else {
        from
    };
    let to = if to == 0 { now } else { to };
    DedicationWindow { from, to }
}

/// Why a session adds nothing to the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dropped {
    /// A session of one row lasts 0 s, which is never over the ignore limit.
    OneRow,
    /// It lasted `ignore_sessions_limit` seconds or less.
    NotOverIgnoreLimit,
}

impl Dropped {
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::OneRow => "one row",
            Dropped::NotOverIgnoreLimit => "not over the ignore limit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedicationSession {
    /// Time of the first row.
    pub start: i64,
    /// Time of the last row.
    pub end: i64,
    pub rows: u64,
    /// `end - start`: no credit after the last row.
    pub duration: i64,
    /// `None` when the session counts.
    pub dropped: Option<Dropped>,
}

/// What only the 3.x rule reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyFigures {
    /// The total its per-user report shows: sessions of 59 s or less left out (its course
    /// report and block show the full total).
    pub user_report_total: i64,
    /// Distinct days (UTC) with a counted row: the connection ratio's numerator.
    pub days_with_rows: u64,
    /// Days (UTC) the window touches, first and last included: its denominator.
    pub days_in_period: u64,
}

impl LegacyFigures {
    /// `days_with_rows / days_in_period`, 0 for an empty period.
    pub fn connection_ratio(&self) -> f64 {
        if self.days_in_period == 0 {
            0.0
        } else {
            self.days_with_rows as f64 / self.days_in_period as f64
        }
    }
}

/// One course's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseDedication {
    pub course: i64,
    pub window: DedicationWindow,
    /// The kept sessions' durations added up.
    pub total: i64,
    pub kept: u64,
    pub dropped: u64,
    /// Counted rows.
    pub rows: u64,
    /// `(time, id)` of the first counted row.
    pub first_row: Option<(i64, i64)>,
    /// In time order, kept and dropped.
    pub sessions: Vec<DedicationSession>,
    /// `Some` for the legacy rule only.
    pub legacy: Option<LegacyFigures>,
    /// The sessions added up (all the figures above come from it).
    pub summary: Summary,
}

const DAY: i64 = 86_400;

/// Walks one learner's rows for one course over `window` (both ends included), in
/// `(time, id)` order whatever the order given. Rows of other courses never break a session
/// here; a session crossing an edge keeps only its rows inside the window.
pub fn course_sessions(
    rows: &[DedicationRow],
    course: i64,
    window: DedicationWindow,
    variant: Variant,
    settings: DedicationSettings,
) -> CourseDedication {
    let mut counted: Vec<(i64, i64)> = rows
        .iter()
        .filter(|row| row.time >= window.from && row.time <= window.to)
        .filter(|row| counts(row, course, variant))
        .map(|row| (row.time, row.id))
        .collect();
    counted.sort_unstable();
    let spans = spans(&counted, settings.session_limit);
    from_spans(course, window, &spans, variant, settings)
}

/// A run of counted rows of one course with no gap over the session limit: a session before
/// the ignore limit judges it. What the compiled store keeps (docs/engine.md §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Time of the first row.
    pub start: i64,
    /// Time of the last row.
    pub end: i64,
    pub rows: u64,
    /// Id of the first row in `(time, id)` order.
    pub first_id: i64,
    /// Distinct UTC days its rows fall on.
    pub days: u64,
}

/// Whether a row at `time` goes on the session whose last row is at `last`: strictly greater
/// splits, so a gap equal to the limit, or of 0 s, stays.
pub fn continues(last: i64, time: i64, session_limit: i64) -> bool {
    time.saturating_sub(last) <= session_limit || time == last
}

/// Cuts counted `(time, id)` rows, in that order, into spans.
pub fn spans(counted: &[(i64, i64)], session_limit: i64) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for &(time, id) in counted {
        let day = time.div_euclid(DAY);
        match out.last_mut() {
            Some(open) if continues(open.end, time, session_limit) => {
                if open.end.div_euclid(DAY) != day {
                    open.days += 1;
                }
                open.end = time;
                open.rows += 1;
            }
            _ => out.push(Span {
                start: time,
                end: time,
                rows: 1,
                first_id: id,
                days: 1,
            }),
        }
    }
    out
}

/// One course's answer over `window` from its spans there, in time order: each span a session,
/// kept or dropped by the variant's rule.
pub fn from_spans(
    course: i64,
    window: DedicationWindow,
    spans: &[Span],
    variant: Variant,
    settings: DedicationSettings,
) -> CourseDedication {
    let sessions = spans
        .iter()
        .map(|span| {
            let duration = span.end.saturating_sub(span.start);
            DedicationSession {
                start: span.start,
                end: span.end,
                rows: span.rows,
                duration,
                dropped: summary::judge(duration, span.rows, variant, settings),
            }
        })
        .collect();
    let summary = Summary::of_spans(spans, variant, settings);
    CourseDedication::from_summary(course, window, summary, sessions, variant)
}

impl CourseDedication {
    /// One course's answer from its sessions added up; `sessions` is their list, or empty when
    /// the answer goes without it.
    pub fn from_summary(
        course: i64,
        window: DedicationWindow,
        summary: Summary,
        sessions: Vec<DedicationSession>,
        variant: Variant,
    ) -> CourseDedication {
        let legacy = (variant == Variant::Legacy).then(|| {
            let span = window.to.div_euclid(DAY) - window.from.div_euclid(DAY);
            let days_in_period = if window.to < window.from {
                0
            } else {
                u64::try_from(span.saturating_add(1)).unwrap_or(0)
            };
            LegacyFigures {
                user_report_total: summary.report_total,
                days_with_rows: summary.days,
                days_in_period,
            }
        });
        CourseDedication {
            course,
            window,
            total: summary.kept.sum,
            kept: summary.kept.count,
            dropped: summary.dropped,
            rows: summary.rows,
            first_row: summary.first,
            sessions,
            legacy,
            summary,
        }
    }
}

/// Every course the rows name (but course 0), in order of their first counted row, in
/// `(time, id)` order. Window aside: each course has its own.
pub fn courses_of(rows: &[DedicationRow], variant: Variant) -> Vec<i64> {
    let mut ordered: Vec<&DedicationRow> = rows.iter().collect();
    ordered.sort_unstable_by_key(|row| (row.time, row.id));
    let mut seen = Vec::new();
    for row in ordered {
        if let Some(course) = row.course
            && counts(row, course, variant)
            && !seen.contains(&course)
        {
            seen.push(course);
        }
    }
    seen
}

/// One learner's answer over several courses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dedication {
    pub estimator: DedicationEstimator,
    /// In order of each course's first counted row in its own window; a course asked for
    /// with no row is there with 0.
    pub courses: Vec<CourseDedication>,
}

impl Dedication {
    /// The courses' totals added up. Courses may overlap in time (a session in each of two
    /// courses visited in turn), so this can be more than the time between first and last row.
    pub fn total(&self) -> i64 {
        self.courses
            .iter()
            .fold(0i64, |sum, c| sum.saturating_add(c.total))
    }

    pub fn course(&self, course: i64) -> Option<&CourseDedication> {
        self.courses.iter().find(|c| c.course == course)
    }
}

/// Every course with counted rows in its own window `window_of(course)` (or only `course`
/// when given, even without rows).
pub fn learner(
    rows: &[DedicationRow],
    course: Option<i64>,
    variant: Variant,
    settings: DedicationSettings,
    mut window_of: impl FnMut(i64) -> DedicationWindow,
) -> Dedication {
    let courses = match course {
        Some(c) => vec![c],
        None => courses_of(rows, variant),
    };
    let mut courses: Vec<CourseDedication> = courses
        .into_iter()
        .map(|c| course_sessions(rows, c, window_of(c), variant, settings))
        // A course not asked for shows only when it has rows in its own window.
        .filter(|c| course.is_some() || c.rows > 0)
        .collect();
    // Windows differ per course: the order is that of the rows inside them, whatever rows
    // outside them were given (a read of the window alone gives the same answer).
    courses.sort_by_key(|c| c.first_row);
    Dedication {
        estimator: DedicationEstimator::new(variant, settings),
        courses,
    }
}
