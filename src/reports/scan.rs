//! The engine over the source database: a user's rows streamed through [`Engine`], or many
//! users' in one pass, or the compiled store's answer where it can give one.

use std::collections::HashMap;

use super::ReportError;
use crate::compiled::{self, Answers, CompiledError, CompiledStore};
use crate::stats::{Engine, LogRow, Reorder, Report, Settings, Window};
use crate::store::DbConnection;
use crate::store::source::Source;

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
/// (time, id) order in memory (see [`Reorder`]); a row later than this sends the user to a read
/// of their own.
pub const REORDER_SECONDS: i64 = 300;

/// One user's part of a batch; `engine` is `None` once a row came too late.
struct Pending {
    engine: Option<Engine>,
    order: Reorder,
}

impl Pending {
    /// Feeds the engine a released row. A row the engine refuses is earlier than one it already
    /// has: this user's rows are then read again on their own.
    fn feed(engine: &mut Option<Engine>, row: LogRow) {
        if let Some(e) = engine.as_mut()
            && e.push(&row).is_err()
        {
            *engine = None;
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
            order: Reorder::new(REORDER_SECONDS),
        });
        if user.engine.is_none() {
            return;
        }
        let engine = &mut user.engine;
        if user
            .order
            .push(row, |row| Pending::feed(engine, row))
            .is_err()
        {
            // Earlier than rows that may have reached the engine already: this user is read
            // again alone. Giving up now, rather than holding on, keeps memory to the window
            // even for a log written newest first (a restore, a bulk import).
            user.engine = None;
            user.order.clear();
        }
    })?;
    let mut done: HashMap<i64, Report> = HashMap::with_capacity(userids.len());
    let mut again = Vec::new();
    for (user, mut part) in pending {
        let engine = &mut part.engine;
        part.order.drain(|row| Pending::feed(engine, row));
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

/// One user's report, from the compiled store when it can answer (see `compiled`), else by
/// [`user_report`]'s full scan. Both give the same report.
pub fn answer_user(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    compiled: Option<&CompiledStore>,
    userid: i64,
    window: Window,
    keep_sessions: bool,
) -> Result<Report, ReportError> {
    if window.from <= window.to
        && let Some(store) = compiled
        && let Some(mut answers) = compiled_answers(
            conn,
            source,
            settings,
            store,
            &[userid],
            window,
            keep_sessions,
        )?
        && let Some(report) = answers.reports.remove(&userid)
    {
        return Ok(report);
    }
    user_report(conn, source, settings, userid, window, keep_sessions)
}

/// Reports for many users, from the compiled store where it can answer, the others by
/// [`users_reports`].
pub fn answer_users(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    compiled: Option<&CompiledStore>,
    userids: &[i64],
    window: Window,
) -> Result<HashMap<i64, Report>, ReportError> {
    let Some(store) = compiled.filter(|_| window.from <= window.to) else {
        return users_reports(conn, source, settings, userids, window);
    };
    let mut distinct = userids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let Some(answers) = compiled_answers(conn, source, settings, store, &distinct, window, false)?
    else {
        return users_reports(conn, source, settings, userids, window);
    };
    let mut done = answers.reports;
    if !answers.fallback.is_empty() {
        done.extend(users_reports(
            conn,
            source,
            settings,
            &answers.fallback,
            window,
        )?);
    }
    Ok(done)
}

/// The compiled store's answers; `None` when the state database cannot be read, in which case
/// the answer is a full scan (slower, never wrong).
fn compiled_answers(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    store: &CompiledStore,
    userids: &[i64],
    window: Window,
    keep_sessions: bool,
) -> Result<Option<Answers>, ReportError> {
    let mut own = None;
    if !store.in_source {
        match store.state.get() {
            Ok(state) => own = Some(state),
            Err(e) => {
                tracing::warn!(error = %e, "compiled stats unavailable, answering by full scan");
                return Ok(None);
            }
        }
    }
    let question = compiled::Question {
        source,
        settings,
        source_key: &store.source_key,
        check: store.deletion_check,
        userids,
        window,
        keep_sessions,
    };
    match compiled::answer(own.as_deref_mut(), conn, &question) {
        Ok(answers) => Ok(Some(answers)),
        Err(CompiledError::Source(e)) => Err(e.into()),
        Err(e @ (CompiledError::Store(_) | CompiledError::Concurrent)) => {
            tracing::warn!(error = %e, "compiled stats unreadable, answering by full scan");
            Ok(None)
        }
    }
}
