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

/// Reports for many users in ONE scan ordered by (time, id), so thousands of users cost one
/// pass over the log instead of one query each. Every user's rows come in their own order, so
/// each user has an engine of their own, alive until the scan ends. Users without rows get an
/// empty report.
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
    let mut engines: HashMap<i64, Engine> = HashMap::with_capacity(userids.len());
    source.for_each_users_log(conn, userids, window.from, window.to, |row| {
        let engine = engines.entry(row.userid).or_insert_with(|| {
            let user_starts = starts.remove(&row.userid).unwrap_or_default();
            Engine::new(settings, window, user_starts)
        });
        if let Err(e) = engine.push(&row) {
            tracing::warn!(error = %e, userid = row.userid, "log row out of order, skipped");
        }
    })?;
    let mut done: HashMap<i64, Report> = engines
        .into_iter()
        .map(|(user, engine)| (user, engine.finish()))
        .collect();
    for userid in userids {
        done.entry(*userid)
            .or_insert_with(|| Engine::new(settings, window, HashMap::new()).finish());
    }
    Ok(done)
}
