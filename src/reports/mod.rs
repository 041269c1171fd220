//! Where every front end gets its numbers: the MNET methods, the web services, the command
//! line, the console and `collect` ask the [`Reports`] handle, which reads the source database
//! (or the compiled store) through the engine, so all of them give the same numbers.
//!
//! `scan` is the engine over the source database; `learner`, `course` and `users` are the
//! questions the front ends ask, each read in one trip to the database's blocking pool;
//! `export` writes a report as CSV, XLSX or ODS for the command line and the console alike.

pub mod course;
pub mod export;
mod handle;
pub mod learner;
mod scan;
pub mod users;

pub use course::{CourseAsk, CourseError, CourseLookupError, CourseReport, GroupLookupError};
pub use handle::{
    Basis, CourseIndexAsk, DedicationAnswer, DedicationAsk, DedicationError, Dedications, Reports,
};
pub use learner::{LearnerAsk, LearnerError, LearnerReport, SessionCourse, SessionRow};
pub use scan::{
    REORDER_SECONDS, USERS_READ_ONE_BY_ONE, answer_user, answer_users, user_report, users_reports,
};
pub use users::{Estimate, UsersAnswer, UsersAsk, UsersError};

use crate::config::EngineConfig;
use crate::stats::Settings;
use crate::store::StoreError;
use crate::store::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReportError {
    /// The database could not be reached (connection, pool), as opposed to a query or a
    /// configuration that fails whenever it is tried.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ReportError::Store(e) => store_unavailable(e),
            ReportError::Source(e) => source_unavailable(e),
        }
    }
}

/// An error that can tell an unreachable database ("try again later") from the rest.
pub trait Unavailable: std::fmt::Display {
    fn is_unavailable(&self) -> bool;
}

impl Unavailable for ReportError {
    fn is_unavailable(&self) -> bool {
        ReportError::is_unavailable(self)
    }
}

impl Unavailable for LearnerError {
    fn is_unavailable(&self) -> bool {
        LearnerError::is_unavailable(self)
    }
}

impl Unavailable for StoreError {
    fn is_unavailable(&self) -> bool {
        store_unavailable(self)
    }
}

impl Unavailable for SourceError {
    fn is_unavailable(&self) -> bool {
        source_unavailable(self)
    }
}

/// The state or source database's pool could not be reached (as
/// [`ReportError::is_unavailable`]).
pub fn store_unavailable(e: &StoreError) -> bool {
    // Not `Task`: a worker that panicked is a bug, not an outage.
    matches!(e, StoreError::Connect { .. } | StoreError::Pool(_))
        || matches!(e, StoreError::Query(e) if is_connection_error(e))
}

/// The source database could not be reached (as [`ReportError::is_unavailable`]).
pub fn source_unavailable(e: &SourceError) -> bool {
    matches!(e, SourceError::Query(e) if is_connection_error(e))
}

/// A lost or busy connection means "try again later". Diesel names some of them
/// (`ClosedConnection`, `UnableToSendCommand`); MySQL's "server has gone away" (2006), "lost
/// connection during query" (2013, 2055) and SQLite's "database is locked" arrive as
/// unrecognised errors, known by their text.
fn is_connection_error(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            [
                "server has gone away",
                "lost connection",
                "database is locked",
                "database is busy",
                "terminating connection",
                "connection refused",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        _ => false,
    }
}

pub fn settings(config: &EngineConfig) -> Settings {
    config.settings()
}
