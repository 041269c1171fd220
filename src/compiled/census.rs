//! The census: deleted log rows found by a compile pass, at the cost of counting the log's ids
//! by range (docs/engine.md §7.3).
//!
//! For every range of 65 536 ids up to the high-water mark the store keeps how many rows it held
//! when compiled, and each row's id, user and time (delta-coded, about five bytes a row). A
//! pass counts the ranges again when a cheap check says rows may be gone (on PostgreSQL and
//! MySQL the primary key alone is read); a range whose count moved is read again (id, user,
//! time) and compared row by row. A row gone that is older than the log's oldest row went by
//! Moodle's retention, which every answer sees for itself (it starts its window there): it
//! sends nobody to be compiled again. Any other row gone, a row added under the mark, or a row
//! whose user or time changed, marks its user stale.

use super::varint::{Reader, put, put_signed};
use std::collections::{BTreeMap, HashSet};

use super::CompiledError;
use crate::stats::LogRow;
use crate::store::DbConnection;
use crate::store::source::{ChangeMark, Source};
use crate::store::state;

/// Ids per range: 2^16.
pub const SHIFT: u32 = 16;

fn bucket_of(id: i64) -> i64 {
    id >> SHIFT
}

/// A range's rows: (id, user, time), in id order.
type Rows = Vec<(i64, i64, i64)>;

fn encode(rows: &Rows) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 6 + 4);
    put(&mut out, rows.len() as u64);
    let (mut id, mut time) = (0i64, 0i64);
    for &(row_id, user, row_time) in rows {
        put_signed(&mut out, row_id.wrapping_sub(id));
        put_signed(&mut out, user);
        put_signed(&mut out, row_time.wrapping_sub(time));
        id = row_id;
        time = row_time;
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Rows> {
    let mut r = Reader::new(bytes);
    let n = r.get_usize()?;
    if n > bytes.len() {
        return None;
    }
    let mut rows = Vec::with_capacity(n);
    let (mut id, mut time) = (0i64, 0i64);
    for _ in 0..n {
        id = id.wrapping_add(r.get_signed()?);
        let user = r.get_signed()?;
        time = time.wrapping_add(r.get_signed()?);
        rows.push((id, user, time));
    }
    Some(rows)
}

/// The rows a pass read since its last commit, per range.
#[derive(Default)]
pub struct Census {
    read: BTreeMap<i64, Rows>,
}

impl Census {
    pub fn count(&mut self, row: &LogRow) {
        self.read
            .entry(bucket_of(row.id))
            .or_default()
            .push((row.id, row.userid, row.time));
    }

    /// Adds what was read to the census rows, in the caller's transaction.
    pub fn write(&self, conn: &mut DbConnection) -> Result<(), CompiledError> {
        if self.read.is_empty() {
            return Ok(());
        }
        let buckets: Vec<i64> = self.read.keys().copied().collect();
        let mut stored: BTreeMap<i64, Rows> = BTreeMap::new();
        for (bucket, _, bytes) in state::census_rows(conn, &buckets)? {
            // An unreadable row counts as empty: the next census then finds the range changed
            // and reads it again, which only costs recompiles.
            stored.insert(bucket, decode(&bytes).unwrap_or_default());
        }
        for (bucket, read) in &self.read {
            let mut rows = stored.remove(bucket).unwrap_or_default();
            rows.extend(read.iter().copied());
            rows.sort_unstable();
            rows.dedup_by_key(|r| r.0);
            state::put_census(conn, *bucket, rows.len() as i64, &encode(&rows))?;
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.read.clear();
    }
}

/// Counts the log's ranges up to `high_water` against the census, marks the users whose rows
/// changed (deleted, or committed under the mark since) stale, and brings the census up to
/// date. Returns how many users were marked.
///
/// The whole log is counted when a cheap check says rows may be gone (the rows up to the mark
/// are not the census's total), and at least every `interval` seconds; otherwise only the two
/// ranges below the mark, where rows committed out of id order land.
pub fn check(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    source: &Source,
    high_water: i64,
    now: i64,
    interval: i64,
) -> Result<usize, CompiledError> {
    let meta = state::compiled_meta(state)?;
    let census_at = meta.as_ref().map_or(0, |m| m.census_at);
    let horizon = meta.as_ref().map_or(NO_HORIZON, |m| m.census_mark);
    let stored: BTreeMap<i64, i64> = state::census_totals(state)?.into_iter().collect();
    let mark = source.log_change_mark(conn, high_water)?;
    let moved = match mark {
        ChangeMark::RowsUpTo(n) => n != stored.values().sum::<i64>(),
    };
    let full = moved || now.saturating_sub(census_at) >= interval;
    let lowest = if full {
        i64::MIN
    } else {
        ((high_water >> SHIFT) - 1).max(0) << SHIFT
    };
    let counted: BTreeMap<i64, i64> = source
        .log_census(conn, lowest, high_water, SHIFT)?
        .into_iter()
        .collect();
    let in_range = |b: &i64| full || *b >= bucket_of(lowest);
    let mut changed: Vec<i64> = counted
        .iter()
        .filter(|(b, n)| stored.get(b) != Some(n))
        .map(|(b, _)| *b)
        .chain(
            stored
                .keys()
                .filter(|b| in_range(b) && !counted.contains_key(b))
                .copied(),
        )
        .collect();
    changed.sort_unstable();
    changed.dedup();
    let stamp_at = if full { now } else { census_at };
    if changed.is_empty() {
        if full {
            state::set_census(state, now, horizon)?;
        }
        return Ok(0);
    }
    // Rows older than the oldest row are gone by retention, which answers see for themselves.
    let (oldest, _) = source.log_overview(conn)?;
    let oldest = oldest.unwrap_or(i64::MAX);
    let mut before: BTreeMap<i64, Rows> = BTreeMap::new();
    for (bucket, _, bytes) in state::census_rows(state, &changed)? {
        before.insert(bucket, decode(&bytes).unwrap_or_default());
    }
    let mut stale: Vec<i64> = Vec::new();
    let mut rewrite: Vec<(i64, Rows)> = Vec::new();
    let mut dismissed = false;
    for bucket in changed {
        let lo = bucket << SHIFT;
        let hi = ((bucket + 1) << SHIFT).min(high_water.saturating_add(1));
        let now_rows: Rows = source.log_census_rows(conn, lo, hi)?;
        let old = before.remove(&bucket).unwrap_or_default();
        let range = users_changed(&old, &now_rows, oldest);
        stale.extend(range.stale);
        dismissed |= range.dismissed;
        rewrite.push((bucket, now_rows));
    }
    // Rows taken as retention stay in the store, hidden by answers starting at the log's oldest
    // row. A row older than the horizon (committed late with an old time) would bring them back
    // into sight: every user whose compiled rows start before it is compiled again, and then
    // none of them holds such a row any more.
    let mut kept_horizon = horizon;
    if horizon != NO_HORIZON && oldest < horizon {
        stale.extend(state::compiled_users_starting_before(state, horizon)?);
        kept_horizon = NO_HORIZON;
    }
    let new_horizon = if dismissed {
        kept_horizon.max(oldest)
    } else {
        kept_horizon
    };
    stale.sort_unstable();
    stale.dedup();
    record(state, &stale, &rewrite, (stamp_at, new_horizon))?;
    if !stale.is_empty() {
        tracing::info!(
            users = stale.len(),
            "log rows deleted or added under the compiled mark: those users are compiled again"
        );
    }
    Ok(stale.len())
}

/// No row was taken as retention since the users holding such rows were last compiled again.
const NO_HORIZON: i64 = -1;

/// What one range's comparison found.
struct RangeChange {
    /// Users whose rows changed.
    stale: Vec<i64>,
    /// Some row was gone by retention (older than the log's oldest row) and left in the store.
    dismissed: bool,
}

/// The users whose rows in one range differ between what the census kept (`old`) and the log
/// now: a row gone (unless retention took it: older than the log's oldest row), a row whose
/// user or time changed (both users), a row that appeared (committed under the mark since).
fn users_changed(old: &Rows, now_rows: &Rows, oldest: i64) -> RangeChange {
    let now_ids: std::collections::HashMap<i64, (i64, i64)> = now_rows
        .iter()
        .map(|&(id, user, time)| (id, (user, time)))
        .collect();
    let old_ids: HashSet<i64> = old.iter().map(|r| r.0).collect();
    let mut stale = Vec::new();
    let mut dismissed = false;
    for &(id, user, time) in old {
        match now_ids.get(&id) {
            None if time < oldest => dismissed = true,
            None => stale.push(user),
            Some(&(now_user, now_time)) if (now_user, now_time) != (user, time) => {
                stale.push(user);
                stale.push(now_user);
            }
            Some(_) => {}
        }
    }
    stale.extend(
        now_rows
            .iter()
            .filter(|r| !old_ids.contains(&r.0))
            .map(|r| r.1),
    );
    RangeChange { stale, dismissed }
}

/// Marks `stale` users, rewrites the ranges read again, and stamps the census with the time of
/// its last whole count and the retention horizon, in one transaction. A user with rows under the mark but none compiled
/// (rows committed out of id order) gets a stale row of their own, so that answers scan them
/// and the pass compiles them.
fn record(
    state: &mut DbConnection,
    stale: &[i64],
    rewrite: &[(i64, Rows)],
    (census_at, horizon): (i64, i64),
) -> Result<(), CompiledError> {
    let known: std::collections::HashSet<i64> = state::compiled_users(state, stale)?
        .into_iter()
        .map(|u| u.userid)
        .collect();
    let unknown: Vec<i64> = stale
        .iter()
        .filter(|u| !known.contains(u))
        .copied()
        .collect();
    crate::store::write_transaction::<_, CompiledError, _>(state, |state| {
        state::mark_compiled_stale(state, stale)?;
        for user in &unknown {
            state::put_compiled_user(state, &super::stale_placeholder(*user))?;
        }
        for (bucket, rows) in rewrite {
            state::put_census(state, *bucket, rows.len() as i64, &encode(rows))?;
        }
        state::set_census(state, census_at, horizon)?;
        Ok(())
    })
}
