//! The compile pass's dedication step: sessions extended with the rows the pass read, or
//! rebuilt for the users the pass recompiled (or for everyone, when the store cannot be
//! extended).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Limits, VARIANTS, blocks, counted_by_course, decode_rows, session_rows};
use crate::compiled::CompiledError;
use crate::store::source::{IDS_PER_BATCH_QUERY, RowsByUser, Source};
use crate::store::state::{self, DedicationMeta, DedicationSessionRow};
use crate::store::{DbConnection, write_transaction};

/// Users whose whole history is read at once when their sessions are rebuilt.
const USERS_PER_REBUILD: usize = 100;

/// Takes the dedication mark away, returning it: done before a pass recompiles anyone, so
/// that no answer reads their sessions until the step below has rebuilt them too.
pub(in crate::compiled) fn forget(
    state: &mut DbConnection,
) -> Result<Option<DedicationMeta>, CompiledError> {
    let old = state::dedication_meta(state)?;
    write_transaction::<_, CompiledError, _>(state, |s| Ok(state::forget_dedication_meta(s)?))?;
    Ok(old)
}

/// What the use_stats part of the pass did, which the dedication step follows.
pub(in crate::compiled) struct Pass<'a> {
    pub source: &'a Source,
    pub source_key: &'a str,
    /// The mark taken by [`forget`].
    pub old: Option<DedicationMeta>,
    /// The store's mark when the pass started, and when it ended.
    pub start_mark: i64,
    pub high_water: i64,
    /// Users read again in full by the pass.
    pub recompiled: &'a [i64],
    pub from_scratch: bool,
}

/// Brings the dedication sessions to the pass's mark, then sets the dedication mark.
pub(in crate::compiled) fn compile_dedication(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    pass: &Pass<'_>,
) -> Result<(), CompiledError> {
    let limits = Limits::new(pass.source.dedication_settings(conn)?);
    let mut meta = DedicationMeta {
        source_key: pass.source_key.to_owned(),
        high_water: pass.high_water,
        live_limit: limits.live,
        legacy_limit: limits.legacy,
        live_ignore: limits.live_ignore,
        max_span: 0,
    };
    let extendable = !pass.from_scratch
        && pass.old.as_ref().is_some_and(|old| {
            old.source_key == meta.source_key
                && old.high_water == pass.start_mark
                && (old.live_limit, old.legacy_limit, old.live_ignore)
                    == (meta.live_limit, meta.legacy_limit, meta.live_ignore)
                && old.max_span >= 0
        });
    if extendable {
        // Sessions only grow by merging: the longest stored stays a bound.
        meta.max_span = pass.old.as_ref().map_or(0, |old| old.max_span);
        let mut again: Vec<i64> = pass.recompiled.to_vec();
        let (unreadable, span) = append(state, conn, pass, limits)?;
        again.extend(unreadable);
        again.sort_unstable();
        again.dedup();
        let rebuilt = rebuild_users(state, conn, pass.source, limits, &again, pass.high_water)?;
        meta.max_span = meta.max_span.max(span).max(rebuilt);
    } else {
        let started = std::time::Instant::now();
        write_transaction::<_, CompiledError, _>(state, |s| Ok(state::clear_dedication(s)?))?;
        let users = state::compiled_user_ids(state)?;
        meta.max_span = rebuild_users(state, conn, pass.source, limits, &users, pass.high_water)?;
        // Once per store rebuilt: what the dedication step adds to a first compile.
        tracing::info!(
            users = users.len(),
            seconds = started.elapsed().as_secs_f64(),
            "compiled dedication sessions rebuilt"
        );
    }
    write_transaction::<_, CompiledError, _>(state, |s| {
        if state::compiled_meta(s)?.map(|m| m.high_water) != Some(pass.high_water) {
            return Err(CompiledError::Concurrent);
        }
        Ok(state::set_dedication_meta(s, &meta)?)
    })
}

/// Reads the user's whole history up to `high_water` and replaces their sessions and blocks.
/// Returns the longest session written.
pub(in crate::compiled) fn rebuild_users(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    source: &Source,
    limits: Limits,
    users: &[i64],
    high_water: i64,
) -> Result<i64, CompiledError> {
    let mut longest = 0i64;
    for chunk in users.chunks(USERS_PER_REBUILD) {
        let rows = source.users_dedication_rows_upto(conn, chunk, high_water)?;
        let mut sessions = Vec::new();
        for (user, rows) in &rows {
            for (variant, code) in VARIANTS {
                for (course, counted) in counted_by_course(rows, variant) {
                    let limit = limits.of(variant);
                    sessions.extend(session_rows(*user, code, course, &counted, limit));
                }
            }
        }
        longest = longest.max(longest_span(&sessions));
        let blocks = blocks::blocks_of(&sessions, limits);
        write_transaction::<_, CompiledError, _>(state, |s| {
            state::delete_dedication_users(s, chunk)?;
            state::insert_dedication_sessions(s, &sessions)?;
            Ok(state::insert_dedication_blocks(s, &blocks)?)
        })?;
    }
    Ok(longest)
}

fn longest_span(sessions: &[DedicationSessionRow]) -> i64 {
    sessions
        .iter()
        .map(|s| s.end_time.saturating_sub(s.start_time))
        .max()
        .unwrap_or(0)
}

/// Adds the rows of ids `(start_mark, high_water]` to the sessions of the users not
/// recompiled. Returns the users whose stored rows could not be read (to rebuild), and the
/// longest session written.
fn append(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    pass: &Pass<'_>,
    limits: Limits,
) -> Result<(Vec<i64>, i64), CompiledError> {
    let skip: HashSet<i64> = pass.recompiled.iter().copied().collect();
    let mut unreadable = Vec::new();
    let mut longest = 0i64;
    let mut after = pass.start_mark;
    while after < pass.high_water {
        let upto = after
            .saturating_add(IDS_PER_BATCH_QUERY.saturating_mul(4))
            .min(pass.high_water);
        let mut rows = pass.source.dedication_rows_in_ids(conn, after, upto)?;
        rows.retain(|user, _| !skip.contains(user));
        let (bad, span) = merge_rows(state, &rows, limits)?;
        unreadable.extend(bad);
        longest = longest.max(span);
        after = upto;
    }
    Ok((unreadable, longest))
}

/// The new rows of one (user, variant, course), in `(time, id)` order.
type Group = ((i64, i32, i64), Vec<(i64, i64)>);

/// Merges new rows into the stored sessions they could join: those within the session limit
/// of the earliest and latest new row, and everything between. Sessions further away are
/// separated from every new row by more than the limit, so they stand. Then makes again the
/// blocks of the days where a session went or came. Returns the users to rebuild, and the
/// longest session written.
fn merge_rows(
    state: &mut DbConnection,
    rows: &RowsByUser,
    limits: Limits,
) -> Result<(Vec<i64>, i64), CompiledError> {
    let mut groups: Vec<Group> = Vec::new();
    for (user, rows) in rows {
        for (variant, code) in VARIANTS {
            for (course, counted) in counted_by_course(rows, variant) {
                groups.push(((*user, code, course), counted));
            }
        }
    }
    let limit_of = |code: i32| {
        VARIANTS
            .iter()
            .find(|(_, c)| *c == code)
            .map_or(limits.live, |(v, _)| limits.of(*v))
    };
    let picks: Vec<[i64; 5]> = groups
        .iter()
        .filter_map(|((user, code, course), new)| {
            let limit = limit_of(*code);
            let (first, last) = (new.first()?.0, new.last()?.0);
            Some([
                *user,
                i64::from(*code),
                *course,
                first.saturating_sub(limit),
                last.saturating_add(limit),
            ])
        })
        .collect();
    let mut touched: HashMap<(i64, i32, i64), Vec<DedicationSessionRow>> = HashMap::new();
    for row in state::dedication_sessions_with_rows(state, &picks)? {
        touched
            .entry((row.userid, row.variant, row.course))
            .or_default()
            .push(row);
    }
    let (mut gone, mut written, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
    for ((user, code, course), mut all) in groups {
        for old in touched.remove(&(user, code, course)).unwrap_or_default() {
            gone.push(old.key());
            match decode_rows(&old.row_data) {
                Some(rows) => all.extend(rows),
                None => unreadable.push(user),
            }
        }
        all.sort_unstable();
        all.dedup();
        written.extend(session_rows(user, code, course, &all, limit_of(code)));
    }
    write_transaction::<_, CompiledError, _>(state, |s| {
        state::delete_dedication_sessions(s, &gone)?;
        Ok(state::insert_dedication_sessions(s, &written)?)
    })?;
    let mut days: BTreeMap<(i64, i32), BTreeSet<i64>> = BTreeMap::new();
    for [user, code, _, start, _] in gone.iter().copied() {
        let code = i32::try_from(code).unwrap_or(i32::MAX);
        days.entry((user, code))
            .or_default()
            .insert(start.div_euclid(blocks::DAY));
    }
    for s in &written {
        days.entry((s.userid, s.variant))
            .or_default()
            .insert(s.start_time.div_euclid(blocks::DAY));
    }
    for (owner, days) in days {
        if unreadable.contains(&owner.0) {
            continue;
        }
        if blocks::refresh(state, owner, &days, limits)?.is_none() {
            unreadable.push(owner.0);
        }
    }
    Ok((unreadable, longest_span(&written)))
}
