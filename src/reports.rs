//! Glue between the source database and the pure engine: stream a user's extracted log
//! through [`Engine`] and hand back the report. Shared by the MNET methods, the web
//! services and the command line so all three give the same numbers.

use std::collections::HashMap;

use crate::config::EngineConfig;
use crate::stats::{Engine, Report, Settings, Window};
use crate::store::source::{Source, SourceError};
use crate::store::{DbConnection, StoreError};

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
        matches!(
            self,
            ReportError::Store(
                StoreError::Connect { .. } | StoreError::Pool(_) | StoreError::Task(_)
            )
        ) || matches!(self, ReportError::Source(SourceError::Query(e)) | ReportError::Store(StoreError::Query(e)) if is_connection_error(e))
    }
}

/// Diesel reports a lost connection as a database error of kind `ClosedConnection` or as
/// an unrecognised one from the driver; both mean "try again later".
fn is_connection_error(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ClosedConnection
                | diesel::result::DatabaseErrorKind::UnableToSendCommand,
            _
        ) | diesel::result::Error::BrokenTransactionManager
    )
}

pub fn settings(config: &EngineConfig) -> Settings {
    config.clone()
}

/// One user's report over `window`, in one ordered scan of the log.
pub fn user_report(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    userid: i64,
    window: Window,
    keep_sessions: bool,
) -> Result<Report, ReportError> {
    let starts = if settings.enrolment_filter {
        source.enrolment_starts(conn, userid)?
    } else {
        HashMap::new()
    };
    let mut engine = Engine::new(settings, window, starts).keep_sessions(keep_sessions);
    source.for_each_user_log(conn, userid, window.from, window.to, |row| {
        // The scan is ordered by (time, id); an out-of-order row would be a database bug
        // and is skipped rather than trusted.
        if let Err(e) = engine.push(&row) {
            tracing::warn!(error = %e, userid, "log row out of order, skipped");
        }
    })?;
    Ok(engine.finish())
}

/// Reports for many users in ONE ordered scan (userid, time, id), so thousands of users
/// cost one pass over the log instead of one query each. Users without rows get an empty
/// report. Order of the result follows `userids`.
pub fn users_reports(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    userids: &[i64],
    window: Window,
) -> Result<HashMap<i64, Report>, ReportError> {
    let mut starts = if settings.enrolment_filter {
        source.enrolment_starts_for_users(conn, userids)?
    } else {
        HashMap::new()
    };
    let mut done: HashMap<i64, Report> = HashMap::with_capacity(userids.len());
    let mut current: Option<(i64, Engine)> = None;
    source.for_each_users_log(conn, userids, window.from, window.to, |row| {
        if current.as_ref().is_none_or(|(user, _)| *user != row.userid) {
            if let Some((user, engine)) = current.take() {
                done.insert(user, engine.finish());
            }
            let user_starts = starts.remove(&row.userid).unwrap_or_default();
            current = Some((row.userid, Engine::new(settings, window, user_starts)));
        }
        if let Some((_, engine)) = current.as_mut()
            && let Err(e) = engine.push(&row)
        {
            tracing::warn!(error = %e, userid = row.userid, "log row out of order, skipped");
        }
    })?;
    if let Some((user, engine)) = current.take() {
        done.insert(user, engine.finish());
    }
    for userid in userids {
        done.entry(*userid)
            .or_insert_with(|| Engine::new(settings, window, HashMap::new()).finish());
    }
    Ok(done)
}
