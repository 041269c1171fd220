//! Glue between the source database and the pure engine: stream a user's extracted log
//! through [`Engine`] and hand back the report. Shared by the MNET methods, the web
//! services and the command line so all three give the same numbers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::config::EngineConfig;
use crate::stats::{Engine, LogRow, Report, Settings, Window};
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
            // Not `Task`: a worker that panicked is a bug, not an outage.
            ReportError::Store(StoreError::Connect { .. } | StoreError::Pool(_))
        ) || matches!(self, ReportError::Source(SourceError::Query(e)) | ReportError::Store(StoreError::Query(e)) if is_connection_error(e))
    }
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
    // A window that ends before it starts (E15: a start later than now) holds no row.
    if window.from > window.to {
        return Ok(Engine::new(settings, window, HashMap::new()).finish());
    }
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

/// How far back in time a user's row may arrive in the batch's id order and still be put in
/// (time, id) order in memory. Moodle writes a request's events at its end, so a user's
/// overlapping requests interleave ids within seconds of each other; a row later than this
/// sends the user to a read of their own.
const REORDER_SECONDS: i64 = 300;

/// One user's part of a batch: rows wait in `held` until a row `REORDER_SECONDS` later
/// shows that nothing earlier can still come; `None` once a row came too late.
struct Pending {
    engine: Option<Engine>,
    held: BinaryHeap<Reverse<Held>>,
    /// The latest `timecreated` seen for this user: rows up to `REORDER_SECONDS` before it
    /// are handed to the engine, so `held` never holds more than that span of rows.
    latest: i64,
}

/// A held row, ordered by (time, id) as the engine takes them.
struct Held(LogRow);

impl Held {
    fn key(&self) -> (i64, i64) {
        (self.0.time, self.0.id)
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl Pending {
    /// Hands the engine every held row up to `upto` (time), in (time, id) order. A row the
    /// engine refuses is earlier than one it already has: this user's rows are then read again
    /// on their own.
    fn release(&mut self, upto: i64) {
        while self.held.peek().is_some_and(|h| h.0.0.time <= upto) {
            let Some(Reverse(Held(row))) = self.held.pop() else {
                break;
            };
            if let Some(engine) = self.engine.as_mut()
                && engine.push(&row).is_err()
            {
                self.engine = None;
                self.held.clear();
            }
        }
    }
}

/// Up to this many users, a batch reads each user's rows through Moodle's `(userid)` index, one
/// query each, instead of a pass over the whole log: a few users' rows are a small share of a
/// production log.
pub const USERS_READ_ONE_BY_ONE: usize = 100;

/// Reports for many users. Up to [`USERS_READ_ONE_BY_ONE`] users, one indexed read each;
/// beyond, ONE pass over the log (in id order, see [`Source::for_each_users_log`]), so
/// thousands of users cost one read of the log instead of one query each. Each user has an engine of their own, fed in (time, id) order through a
/// small reorder window; a user whose rows are out of id order by more than that window is
/// read again alone, so every report equals [`user_report`]'s. Users without rows get an empty
/// report.
pub fn users_reports(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    userids: &[i64],
    window: Window,
) -> Result<HashMap<i64, Report>, ReportError> {
    // As in `user_report`; here it also spares a pass over the whole log.
    if window.from > window.to {
        return Ok(userids
            .iter()
            .map(|user| {
                (
                    *user,
                    Engine::new(settings, window, HashMap::new()).finish(),
                )
            })
            .collect());
    }
    let mut distinct = userids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= USERS_READ_ONE_BY_ONE {
        let mut done = HashMap::with_capacity(distinct.len());
        for user in distinct {
            done.insert(
                user,
                user_report(conn, source, settings, user, window, false)?,
            );
        }
        return Ok(done);
    }
    let mut starts = if settings.enrolment_filter {
        source.enrolment_starts_for_users(conn, userids)?
    } else {
        HashMap::new()
    };
    let mut pending: HashMap<i64, Pending> = HashMap::with_capacity(userids.len());
    source.for_each_users_log(conn, userids, window.from, window.to, |row| {
        let user = pending.entry(row.userid).or_insert_with(|| Pending {
            engine: Some(Engine::new(
                settings,
                window,
                starts.remove(&row.userid).unwrap_or_default(),
            )),
            held: BinaryHeap::new(),
            latest: i64::MIN,
        });
        if user.engine.is_none() {
            return;
        }
        if row.time < user.latest.saturating_sub(REORDER_SECONDS) {
            // Earlier than rows that may have reached the engine already: this user is read
            // again alone. Giving up now, rather than holding on, keeps memory to the window
            // even for a log written newest first (a restore, a bulk import).
            user.engine = None;
            user.held = BinaryHeap::new();
            return;
        }
        user.latest = user.latest.max(row.time);
        let upto = user.latest.saturating_sub(REORDER_SECONDS);
        user.held.push(Reverse(Held(row)));
        user.release(upto);
    })?;
    let mut done: HashMap<i64, Report> = HashMap::with_capacity(userids.len());
    let mut again = Vec::new();
    for (user, mut part) in pending {
        part.release(i64::MAX);
        match part.engine {
            Some(engine) => {
                done.insert(user, engine.finish());
            }
            None => again.push(user),
        }
    }
    if !again.is_empty() {
        tracing::debug!(
            users = again.len(),
            "log rows far out of id order: those users read one by one"
        );
    }
    for user in again {
        let report = user_report(conn, source, settings, user, window, false)?;
        done.insert(user, report);
    }
    for userid in userids {
        done.entry(*userid)
            .or_insert_with(|| Engine::new(settings, window, HashMap::new()).finish());
    }
    Ok(done)
}
