//! An answer from the compiled store: checks, then segments plus short runs of the engine.

use std::collections::{HashMap, HashSet};

use super::{
    CompiledError, DeletionCheck, Summary, decode_partial, decode_rows, decode_summary,
    enrolment_key, settings_key,
};
use crate::stats::{Engine, Estimator, Key, LogRow, ModuleInfo, Partial, Report, Settings, Window};
use crate::store::DbConnection;
use crate::store::source::Source;
use crate::store::state::{self, CompiledUser};

/// Reports the store could give, and the users it could not answer for, whom the caller
/// answers with a full scan.
#[derive(Debug, Default)]
pub struct Answers {
    pub reports: HashMap<i64, Report>,
    pub fallback: Vec<i64>,
}

/// One user's compiled rows, decoded and checked.
struct Usable {
    row: Option<CompiledUser>,
    summary: Summary,
    tail: Vec<LogRow>,
    /// Rows logged after the compile's high-water mark.
    new_rows: Vec<LogRow>,
    starts: HashMap<i64, i64>,
}

/// The state database's connection: its own, or `None` when the compiled store lives in the
/// source database itself (the embedded demo), whose connection then serves both. One
/// connection per answer keeps a shared pool from waiting on itself.
macro_rules! state_conn {
    ($state:ident, $conn:ident) => {
        match $state.as_deref_mut() {
            Some(own) => own,
            None => &mut *$conn,
        }
    };
}

/// Answers `userids` (distinct) over `window` from the compiled store where it can.
#[allow(clippy::too_many_arguments)]
pub fn answer(
    mut state: Option<&mut DbConnection>,
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    source_key: &str,
    check: DeletionCheck,
    userids: &[i64],
    window: Window,
    keep_sessions: bool,
) -> Result<Answers, CompiledError> {
    let mut answers = Answers::default();
    let meta = state::compiled_meta(state_conn!(state, conn))?;
    let Some(meta) =
        meta.filter(|m| m.settings_key == settings_key(settings) && m.source_key == source_key)
    else {
        answers.fallback = userids.to_vec();
        return Ok(answers);
    };
    let high_water = meta.high_water;
    let mut rows: HashMap<i64, CompiledUser> =
        state::compiled_users(state_conn!(state, conn), userids)?
            .into_iter()
            .map(|u| (u.userid, u))
            .collect();

    let mut new_rows: HashMap<i64, Vec<LogRow>> = HashMap::new();
    for row in source.logs_after(conn, userids, high_water)? {
        new_rows.entry(row.userid).or_default().push(row);
    }
    // Deleted rows: every row counted, or the lowest and highest id compared (see
    // `DeletionCheck`).
    let counts = match check {
        DeletionCheck::Count => source.log_counts(conn, userids)?,
        DeletionCheck::Ends => HashMap::new(),
    };
    let mut ends = HashMap::new();
    if check == DeletionCheck::Ends {
        for &user in userids {
            ends.insert(user, source.log_id_ends(conn, user, high_water)?);
        }
    }
    let mut starts = if settings.enrolment_filter {
        source.enrolment_starts_for_users(conn, userids)?
    } else {
        HashMap::new()
    };

    let mut usable: HashMap<i64, Usable> = HashMap::new();
    let mut stale = Vec::new();
    for &user in userids {
        let compiled = rows.remove(&user);
        let fresh = new_rows.remove(&user).unwrap_or_default();
        let total = counts.get(&user).copied().unwrap_or(0);
        let user_ends = ends.get(&user).copied().unwrap_or((None, None));
        let none_deleted = |raw_rows: i64, min_id: Option<i64>, max_id: Option<i64>| match check {
            DeletionCheck::Count => total == raw_rows.saturating_add(fresh.len() as i64),
            DeletionCheck::Ends => user_ends == (min_id, max_id),
        };
        let user_starts = starts.remove(&user).unwrap_or_default();
        let checked = match compiled {
            // No row up to the high-water mark when it was compiled: still none, or some were
            // added since with old ids (a restore), which only a full scan sees.
            None if none_deleted(0, None, None) => Some(Usable {
                row: None,
                summary: Summary::default(),
                tail: Vec::new(),
                new_rows: fresh,
                starts: user_starts,
            }),
            None => None,
            Some(row) => {
                let intact = !row.stale
                    // Rows deleted (log retention, a privacy request) or inserted under the mark.
                    && none_deleted(row.raw_rows, row.min_id, row.max_id)
                    && row.enrolment_key == enrolment_key(settings, &user_starts);
                let decoded = if intact {
                    decode_summary(&row.summary).zip(decode_rows(&row.tail))
                } else {
                    None
                };
                match decoded {
                    Some((summary, tail)) => Some(Usable {
                        row: Some(row),
                        summary,
                        tail,
                        new_rows: fresh,
                        starts: user_starts,
                    }),
                    None => {
                        if !row.stale {
                            stale.push(user);
                        }
                        None
                    }
                }
            }
        };
        match checked {
            Some(u) => {
                usable.insert(user, u);
            }
            None => answers.fallback.push(user),
        }
    }

    // Activities deleted or moved since the compile change how rows were classified.
    let mut cmids: HashSet<i64> = HashSet::new();
    for u in usable.values() {
        cmids.extend(u.summary.modules.keys());
        for row in &u.tail {
            if let ModuleInfo::Cm { cmid, .. } = row.module
                && cmid != 0
            {
                cmids.insert(cmid);
            }
        }
    }
    let mut cmids: Vec<i64> = cmids.into_iter().collect();
    cmids.sort_unstable();
    let now_states = source.module_states(conn, &cmids)?;
    let moved = |u: &Usable| {
        if u.summary.mixed {
            return true;
        }
        let summary = u
            .summary
            .modules
            .iter()
            .map(|(cmid, state)| (*cmid, state.clone()));
        let tail = u.tail.iter().filter_map(|r| match &r.module {
            ModuleInfo::Cm {
                cmid,
                module,
                section,
            } if *cmid != 0 => Some((*cmid, (module.clone(), *section))),
            _ => None,
        });
        summary
            .chain(tail)
            .any(|(cmid, state)| now_states.get(&cmid) != Some(&state))
    };
    let mut answerable = Vec::new();
    for (user, u) in usable {
        if moved(&u) {
            stale.push(user);
            answers.fallback.push(user);
        } else {
            answerable.push((user, u));
        }
    }

    for (user, u) in answerable {
        let report = user_answer(
            state.as_deref_mut(),
            conn,
            source,
            settings,
            high_water,
            user,
            u,
            window,
            keep_sessions,
        )?;
        answers.reports.insert(user, report);
    }
    {
        use std::sync::atomic::Ordering::Relaxed;
        super::ANSWERED.fetch_add(answers.reports.len() as u64, Relaxed);
        super::FELL_BACK.fetch_add(answers.fallback.len() as u64, Relaxed);
    }
    for user in stale {
        // The next compile pass rebuilds them; until then they are answered by full scans.
        if let Err(e) = state::mark_compiled_stale(state_conn!(state, conn), user) {
            tracing::warn!(error = %e, user, "could not mark compiled stats stale");
        }
    }
    Ok(answers)
}

#[allow(clippy::too_many_arguments)]
fn user_answer(
    mut state: Option<&mut DbConnection>,
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    high_water: i64,
    user: i64,
    u: Usable,
    window: Window,
    keep_sessions: bool,
) -> Result<Report, CompiledError> {
    let run = |starts: &HashMap<i64, i64>| {
        Engine::new(settings, window, starts.clone()).keep_sessions(keep_sessions)
    };
    let estimator = Estimator::for_settings(settings);
    let (segments, first, tail_start) = match &u.row {
        Some(row) => (row.segments, row.first(), row.tail_start()),
        None => (0, None, None),
    };
    // A new row earlier than the tail's start is late: segments from the one it falls in on
    // are not trusted, nor is the tail.
    let late: Option<Key> = tail_start.and_then(|start| {
        u.new_rows
            .iter()
            .map(|r| (r.time, r.id))
            .filter(|k| *k < start)
            .min()
    });
    let limit = window.to.min(window.now);
    // The stored sum has no session list: an answer that lists sessions reads the segments.
    let all_segments_fit = late.is_none()
        && !keep_sessions
        && segments > 0
        && first.is_some_and(|f| f.0 >= window.from)
        && tail_start.is_some_and(|t| t.0 <= limit);

    let mut total = Partial::default();
    let mut right_from: Key = (window.from, i64::MIN);
    // A left run that reaches the last segment goes on as the last run.
    let mut carried_on: Option<Engine> = None;
    let tail_trusted = late.is_none();
    if all_segments_fit {
        // The common case (the MNET window, a web service call without dates): every segment,
        // already summed. No row comes before the first segment (it starts at the user's
        // first row), so there is no left run.
        total = u.summary.partial;
        right_from = tail_start.unwrap_or(right_from);
    } else if segments > 0 && u.row.is_some() {
        let mut bounds = state::segment_bounds(state_conn!(state, conn), user)?;
        if let Some(late) = late {
            bounds.retain(|(_, next)| *next < late);
        }
        let plan = crate::stats::plan(&bounds, window);
        let (mut k, m) = (plan.interior.start, plan.interior.end);
        if k < m {
            right_from = plan.right_from;
        }
        if k < m && k > 0 {
            // Before the first segment there is no row (see above); before a later one, the
            // rows from the window's start are read and run on their own. The run must end
            // in the state the segment starts from: it may not when its first row is a
            // `graded` row, which a run processes when nothing comes before it (§2.4). The
            // segment's rows then join the left run, until a cut holds.
            let mut left = run(&u.starts);
            let mut cursor = (window.from, i64::MIN);
            // Segments are contiguous: segment k starts where k - 1 ends.
            let start_of = |k: usize| match bounds.get(k) {
                Some(&(first, _)) => Some(first),
                None => k.checked_sub(1).and_then(|j| bounds.get(j)).map(|b| b.1),
            };
            while let Some(first) = start_of(k) {
                source.for_each_user_log_between(
                    conn,
                    user,
                    cursor,
                    Some(first),
                    window.to,
                    high_water,
                    |row| push(&mut left, &row),
                )?;
                cursor = first;
                if k == m || left.ends_reset_before(first.0) {
                    break;
                }
                k += 1;
            }
            if k == m {
                carried_on = Some(left);
            } else if let Some(first) = start_of(k) {
                total.append(left.finish_partial(Some(first.0)));
            }
        }
        if k < m {
            let (Some(first), Some(last)) = (bounds.get(k), bounds.get(m - 1)) else {
                return Err(CompiledError::Store(crate::store::StoreError::Invalid(
                    "segment plan out of range".into(),
                )));
            };
            if k == 0 && m as i64 == segments && tail_trusted && !keep_sessions {
                total.append(u.summary.partial);
            } else {
                for bytes in state::segment_parts(state_conn!(state, conn), user, first.0, last.1)?
                {
                    let Some(part) = decode_partial(&bytes) else {
                        return Err(CompiledError::Store(crate::store::StoreError::Invalid(
                            "undecodable compiled segment".into(),
                        )));
                    };
                    total.append(part);
                }
            }
        }
    }

    // The last run: from `right_from` to the window's end.
    let mut right = carried_on.unwrap_or_else(|| run(&u.starts));
    match tail_start {
        Some(start) if tail_trusted => {
            if right_from < start {
                source.for_each_user_log_between(
                    conn,
                    user,
                    right_from,
                    Some(start),
                    window.to,
                    high_water,
                    |row| push(&mut right, &row),
                )?;
            }
            let mut rows: Vec<LogRow> = u.tail;
            rows.extend(u.new_rows);
            rows.sort_unstable_by_key(|r| (r.time, r.id));
            for row in rows.iter().filter(|r| (r.time, r.id) >= right_from) {
                push(&mut right, row);
            }
        }
        Some(_) => {
            // Late rows: what follows the trusted segments is read as it is now.
            source.for_each_user_log_between(
                conn,
                user,
                right_from,
                None,
                window.to,
                i64::MAX,
                |row| push(&mut right, &row),
            )?;
        }
        None => {
            // Nothing compiled for this user: only rows logged since.
            let mut rows = u.new_rows;
            rows.sort_unstable_by_key(|r| (r.time, r.id));
            for row in rows.iter().filter(|r| (r.time, r.id) >= right_from) {
                push(&mut right, row);
            }
        }
    }
    total.append(right.finish_partial(None));
    if !keep_sessions {
        total.session_list.clear();
    }
    Ok(total.into_report(estimator, window))
}

/// Rows reach a run in (time, id) order by construction; one that does not would be a database
/// bug, and is skipped as the full scan skips it.
fn push(engine: &mut Engine, row: &LogRow) {
    if let Err(e) = engine.push(row) {
        tracing::warn!(error = %e, "log row out of order, skipped");
    }
}
