//! The census: deleted log rows found once per compile pass, at the cost of counting the log's
//! ids by range (docs/engine.md §7.3).
//!
//! For every range of 65 536 ids up to the high-water mark the store keeps how many rows it
//! held when compiled and, per user, how many and the newest row's time. A pass counts the
//! ranges again (on PostgreSQL and MySQL the primary key alone is read); a range whose count
//! moved is counted per user, and a user whose count moved is compiled again. Rows older than
//! the log's oldest row are not looked for: every answer cuts its window there, which is what
//! Moodle's retention (the oldest rows first) removes, so retention alone sends nobody to be
//! compiled again.

use std::collections::BTreeMap;

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

/// Per user in a range: (rows, newest time).
type Users = BTreeMap<i64, (i64, i64)>;

fn encode(users: &Users) -> Vec<u8> {
    let list: Vec<(i64, i64, i64)> = users.iter().map(|(u, (n, t))| (*u, *n, *t)).collect();
    postcard::to_allocvec(&list).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Option<Users> {
    let list: Vec<(i64, i64, i64)> = postcard::from_bytes(bytes).ok()?;
    Some(list.into_iter().map(|(u, n, t)| (u, (n, t))).collect())
}

/// The rows a pass read since its last commit, per range and user.
#[derive(Default)]
pub struct Census {
    read: BTreeMap<i64, Users>,
}

impl Census {
    pub fn count(&mut self, row: &LogRow) {
        let entry = self
            .read
            .entry(bucket_of(row.id))
            .or_default()
            .entry(row.userid)
            .or_insert((0, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.max(row.time);
    }

    /// Adds what was read to the census rows, in the caller's transaction.
    pub fn write(&self, conn: &mut DbConnection) -> Result<(), CompiledError> {
        if self.read.is_empty() {
            return Ok(());
        }
        let buckets: Vec<i64> = self.read.keys().copied().collect();
        let mut stored: BTreeMap<i64, Users> = BTreeMap::new();
        for (bucket, _, bytes) in state::census_rows(conn, &buckets)? {
            // An unreadable row counts as empty: the next census then finds the range changed
            // and counts it again, which only costs a recompile.
            stored.insert(bucket, decode(&bytes).unwrap_or_default());
        }
        for (bucket, read) in &self.read {
            let mut users = stored.remove(bucket).unwrap_or_default();
            for (user, (n, newest)) in read {
                let entry = users.entry(*user).or_insert((0, i64::MIN));
                entry.0 += n;
                entry.1 = entry.1.max(*newest);
            }
            let total = users.values().map(|(n, _)| n).sum();
            state::put_census(conn, *bucket, total, &encode(&users))?;
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
/// The whole log is counted when a cheap check says rows may be gone (PostgreSQL's count of
/// the table's deleted and updated tuples moved; on SQLite and MySQL, the rows up to the mark
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
    let (census_at, old_mark) = meta.map_or((0, -1), |m| (m.census_at, m.census_mark));
    let stored: BTreeMap<i64, i64> = state::census_totals(state)?.into_iter().collect();
    let mark = source.log_change_mark(conn, high_water)?;
    let moved = match mark {
        ChangeMark::Counter(n) => n < 0 || n != old_mark,
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
    let new_mark = match mark {
        ChangeMark::Counter(n) => n,
        ChangeMark::RowsUpTo(_) => -1,
    };
    if changed.is_empty() {
        if full {
            state::set_census(state, now, new_mark)?;
        }
        return Ok(0);
    }
    // Rows older than the oldest row are gone by retention, which answers see for themselves.
    let (oldest, _) = source.log_overview(conn)?;
    let oldest = oldest.unwrap_or(i64::MAX);
    let mut before: BTreeMap<i64, Users> = BTreeMap::new();
    for (bucket, _, bytes) in state::census_rows(state, &changed)? {
        before.insert(bucket, decode(&bytes).unwrap_or_default());
    }
    let mut stale: Vec<i64> = Vec::new();
    let mut rewrite: Vec<(i64, i64, Users)> = Vec::new();
    for bucket in changed {
        let lo = bucket << SHIFT;
        let hi = ((bucket + 1) << SHIFT).min(high_water.saturating_add(1));
        let now_users: Users = source
            .log_census_users(conn, lo, hi)?
            .into_iter()
            .map(|(u, n, t)| (u, (n, t)))
            .collect();
        let old = before.remove(&bucket).unwrap_or_default();
        for user in old.keys().chain(now_users.keys()) {
            let expected = match old.get(user) {
                Some((n, newest)) if *newest >= oldest => *n,
                _ => 0,
            };
            let found = now_users.get(user).map_or(0, |(n, _)| *n);
            if expected != found {
                stale.push(*user);
            }
        }
        let total = now_users.values().map(|(n, _)| n).sum();
        rewrite.push((bucket, total, now_users));
    }
    stale.sort_unstable();
    stale.dedup();
    // A user with rows under the mark but none compiled (rows committed out of id order) gets
    // a stale row of their own, so that answers scan them and the pass compiles them.
    let known: std::collections::HashSet<i64> = state::compiled_users(state, &stale)?
        .into_iter()
        .map(|u| u.userid)
        .collect();
    let unknown: Vec<i64> = stale
        .iter()
        .filter(|u| !known.contains(u))
        .copied()
        .collect();
    crate::store::write_transaction::<_, CompiledError, _>(state, |state| {
        state::mark_compiled_stale(state, &stale)?;
        for user in &unknown {
            state::put_compiled_user(state, &super::stale_placeholder(*user))?;
        }
        for (bucket, total, users) in &rewrite {
            state::put_census(state, *bucket, *total, &encode(users))?;
        }
        if full {
            state::set_census(state, now, new_mark)?;
        }
        Ok(())
    })?;
    if !stale.is_empty() {
        tracing::info!(
            users = stale.len(),
            "log rows deleted or added under the compiled mark: those users are compiled again"
        );
    }
    Ok(stale.len())
}
