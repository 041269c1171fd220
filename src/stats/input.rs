//! What the engine is fed: settings, the window, and log rows as the store reads them.

use serde::{Deserialize, Serialize};

/// Engine settings (docs/engine.md §2.2). Missing or empty values are resolved to the defaults
/// by the config layer (E12); the engine takes whatever it is given and stays panic-free even for
/// nonsensical values such as negative minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub threshold_minutes: i64,
    pub lastpingcredit_minutes: i64,
    pub one_session_per_course: bool,
    /// Rows in these modules are dropped and their time is carried to the next counted row.
    pub capture_modules: Vec<String>,
    /// Rows in these modules are dropped together with their time.
    pub ignore_modules: Vec<String>,
    pub enrolment_filter: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold_minutes: 60,
            lastpingcredit_minutes: 15,
            one_session_per_course: false,
            capture_modules: vec!["learningtimecheck".to_string()],
            ignore_modules: Vec::new(),
            enrolment_filter: false,
        }
    }
}

/// The log window, both ends inclusive, and the instant the answer is computed at. `now` caps
/// the credit of the last row, so it is a parameter and never read from a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: i64,
    pub to: i64,
    pub now: i64,
}

/// The short words a log row carries (action, target, origin, module name). Almost all fit in
/// the 24 bytes of the value itself, so reading or copying a row allocates nothing: at a
/// million rows a second, one allocation per string was a fifth of the compiler's time.
pub type LogText = compact_str::CompactString;

/// How the store resolved a row's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModuleInfo {
    /// Context level is not 70 (module).
    NotModule,
    /// Level 70, but the context row no longer exists: the cm cannot be known.
    ContextGone,
    /// Level 70 with a live context. `module` is `modules.name`, `None` when the
    /// `course_modules` row is gone (shown as "N.C."); `section` is `course_modules.section`.
    Cm {
        cmid: i64,
        module: Option<LogText>,
        section: Option<i64>,
    },
}

/// One `logstore_standard_log` row, as read by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRow {
    pub id: i64,
    pub userid: i64,
    /// `timecreated`.
    pub time: i64,
    /// `courseid`, which Moodle allows to be NULL.
    pub course: Option<i64>,
    pub context_level: i64,
    pub action: LogText,
    pub target: LogText,
    pub origin: Option<LogText>,
    pub realuserid: Option<i64>,
    pub module: ModuleInfo,
}

/// Moodle's context levels (`CONTEXT_*` in lib/accesslib.php), as `contextlevel` in a
/// log row carries them.
pub const CONTEXT_SYSTEM: i64 = 10;
pub const CONTEXT_USER: i64 = 30;
pub const CONTEXT_COURSECAT: i64 = 40;
pub const CONTEXT_COURSE: i64 = 50;
pub const CONTEXT_MODULE: i64 = 70;
