//! Blocks of days (docs/engine.md §7.6): per user and variant, each course's sessions that
//! start in a block added up. A block of level `l` is `16^l` UTC days from day `idx · 16^l`;
//! levels 0 to 3, so that any run of days is a few dozen blocks at most. A session belongs to
//! the block of its start, so the blocks of a level split a user's sessions, and a block is
//! its 16 children added up in order.

use std::collections::{BTreeMap, BTreeSet};

use super::{Limits, span_of};
use crate::compiled::CompiledError;
use crate::stats::dedication::{DedicationSettings, Summary, Variant};
use crate::store::DbConnection;
use crate::store::state::{self, DedicationBlockRow, DedicationSessionRow};

pub(super) const DAY: i64 = 86_400;
const FANOUT: i64 = 16;
const TOP_LEVEL: i32 = 3;

/// Days in a block of `level`.
pub(super) fn days_in(level: i32) -> i64 {
    FANOUT.pow(u32::try_from(level).unwrap_or(0))
}

/// The blocks `(level, idx)` that cover the days `[first, end)` exactly, largest first where
/// they fit, in time order.
pub(super) fn cover(first: i64, end: i64) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    let mut day = first;
    while day < end {
        let mut level = TOP_LEVEL;
        while level > 0 && (day.rem_euclid(days_in(level)) != 0 || day + days_in(level) > end) {
            level -= 1;
        }
        out.push((level, day.div_euclid(days_in(level))));
        day += days_in(level);
    }
    out
}

/// Each course's sums in a block, by course.
pub(super) type Sums = BTreeMap<i64, Summary>;

pub(super) fn encode(sums: &Sums) -> Vec<u8> {
    // Encoding plain owned data into a Vec cannot fail.
    postcard::to_allocvec(sums).unwrap_or_default()
}

pub(super) fn decode(bytes: &[u8]) -> Option<Sums> {
    postcard::from_bytes(bytes).ok()
}

/// The settings the blocks of `variant` judge sessions with.
fn settings(limits: Limits, variant: Variant) -> DedicationSettings {
    DedicationSettings {
        session_limit: limits.of(variant),
        ignore_sessions_limit: limits.live_ignore,
    }
}

fn variant_of(code: i32) -> Variant {
    if code == 1 {
        Variant::Legacy
    } else {
        Variant::Live
    }
}

/// Sessions in `(start, first id)` order added up per course.
fn sums_of<'a>(sessions: impl Iterator<Item = &'a DedicationSessionRow>, limits: Limits) -> Sums {
    let mut out = Sums::new();
    for s in sessions {
        let variant = variant_of(s.variant);
        out.entry(s.course).or_default().then(&Summary::of_span(
            &span_of(s),
            variant,
            settings(limits, variant),
        ));
    }
    out
}

/// Every block of the sessions given (whole histories of their users).
pub(super) fn blocks_of(
    sessions: &[DedicationSessionRow],
    limits: Limits,
) -> Vec<DedicationBlockRow> {
    let mut by_owner: BTreeMap<(i64, i32), Vec<&DedicationSessionRow>> = BTreeMap::new();
    for s in sessions {
        by_owner.entry((s.userid, s.variant)).or_default().push(s);
    }
    let mut out = Vec::new();
    for ((user, code), mut list) in by_owner {
        list.sort_unstable_by_key(|s| (s.start_time, s.first_id));
        for level in 0..=TOP_LEVEL {
            let mut at = 0;
            while at < list.len() {
                let idx = list[at]
                    .start_time
                    .div_euclid(DAY)
                    .div_euclid(days_in(level));
                let n = list[at..]
                    .iter()
                    .take_while(|s| s.start_time.div_euclid(DAY).div_euclid(days_in(level)) == idx)
                    .count();
                let sums = sums_of(list[at..at + n].iter().copied(), limits);
                out.push(DedicationBlockRow {
                    userid: user,
                    variant: code,
                    level,
                    idx,
                    sums: encode(&sums),
                });
                at += n;
            }
        }
    }
    out
}

/// Makes again the blocks of `(user, variant)` holding `days`, from the sessions stored now:
/// level 0 from the sessions, each level above from the one below. `None` when a block below
/// cannot be read (the user is then rebuilt whole).
pub(super) fn refresh(
    state: &mut DbConnection,
    (user, code): (i64, i32),
    days: &BTreeSet<i64>,
    limits: Limits,
) -> Result<Option<()>, CompiledError> {
    for level in 0..=TOP_LEVEL {
        let idxs: BTreeSet<i64> = days.iter().map(|d| d.div_euclid(days_in(level))).collect();
        let mut keys = Vec::new();
        let mut rows = Vec::new();
        for idx in idxs {
            let sums = if level == 0 {
                let from = idx.saturating_mul(DAY);
                let sessions = state::dedication_sessions_starting(
                    state,
                    user,
                    code,
                    (from, from.saturating_add(DAY - 1)),
                )?;
                sums_of(sessions.iter(), limits)
            } else {
                let first = idx.saturating_mul(FANOUT);
                let pick = [
                    user,
                    i64::from(code),
                    i64::from(level - 1),
                    first,
                    first + FANOUT - 1,
                ];
                let mut children = state::dedication_blocks(state, &[pick])?;
                children.sort_unstable_by_key(|b| b.idx);
                let mut sums = Sums::new();
                for child in children {
                    let Some(decoded) = decode(&child.sums) else {
                        return Ok(None);
                    };
                    for (course, summary) in decoded {
                        sums.entry(course).or_default().then(&summary);
                    }
                }
                sums
            };
            keys.push([user, i64::from(code), i64::from(level), idx]);
            if !sums.is_empty() {
                rows.push(DedicationBlockRow {
                    userid: user,
                    variant: code,
                    level,
                    idx,
                    sums: encode(&sums),
                });
            }
        }
        crate::store::write_transaction::<_, CompiledError, _>(state, |s| {
            Ok(state::replace_dedication_blocks(s, &keys, &rows)?)
        })?;
    }
    Ok(Some(()))
}

/// The courses with a session starting in `[from, to]` for any of `users`, read from the
/// blocks of the top level that span it.
pub(super) fn courses_in(
    state: &mut DbConnection,
    users: &[i64],
    code: i32,
    (from, to): (i64, i64),
) -> Result<Vec<i64>, CompiledError> {
    let top = days_in(TOP_LEVEL);
    let (lo, hi) = (
        from.div_euclid(DAY).div_euclid(top),
        to.div_euclid(DAY).div_euclid(top),
    );
    let picks: Vec<[i64; 5]> = users
        .iter()
        .map(|u| [*u, i64::from(code), i64::from(TOP_LEVEL), lo, hi])
        .collect();
    let mut courses = BTreeSet::new();
    for block in state::dedication_blocks(state, &picks)? {
        // An unreadable block: its user is answered session by session (its courses have no
        // window here, so the summed answer hands them on).
        if let Some(sums) = decode(&block.sums) {
            courses.extend(sums.into_keys());
        }
    }
    Ok(courses.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cover_is_exact_and_short() {
        for (first, end) in [
            (0, 1),
            (3, 4100),
            (-20, 300),
            (4096, 8192),
            (17, 17),
            (5, 9000),
        ] {
            let blocks = cover(first, end);
            let mut day = first;
            for (level, idx) in &blocks {
                assert_eq!(idx * days_in(*level), day, "{first}..{end}: {blocks:?}");
                day += days_in(*level);
            }
            assert_eq!(day, end.max(first));
            assert!(blocks.len() <= 2 * 15 * 4, "{}", blocks.len());
        }
        assert_eq!(cover(4096, 8192), vec![(3, 1)]);
    }
}
