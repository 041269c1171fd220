//! A user's block sums read back, for a recompile that keeps the segments before a late row.

use super::{CompiledError, decode_partial};
use crate::stats::{BLOCK_FANOUT, BLOCK_LEVELS, Partial, block_start};
use crate::store::DbConnection;
use crate::store::state;

/// The sums the blocks above segment `keep` were being filled with, and the user's sum of
/// segments `[0, keep)`, read back from the blocks: at most 15 units of each level.
pub(super) fn sums_before(
    state: &mut DbConnection,
    user: i64,
    keep: usize,
) -> Result<Option<(Vec<Partial>, Partial)>, CompiledError> {
    let mut picks: Vec<[i64; 4]> = Vec::new();
    // Level l (from 1) is filled with the whole units of level l - 1 from the start of the
    // level-l block that holds `keep` up to `keep`.
    for level in 1..=BLOCK_LEVELS {
        let unit = block_start(level - 1, 1);
        let block = block_start(level, 1);
        let lo = (keep / block) * BLOCK_FANOUT;
        let hi = keep / unit;
        picks.push([user, i64::from(level - 1), lo as i64, hi as i64]);
    }
    // Whole top-level blocks before that.
    let top = block_start(BLOCK_LEVELS, 1);
    picks.push([user, i64::from(BLOCK_LEVELS), 0, (keep / top) as i64]);
    let mut found = state::parts(state, &picks)?;
    found.sort_unstable_by_key(|p| (p.level, p.idx));
    let mut open = vec![Partial::default(); BLOCK_LEVELS as usize];
    let mut tops = Partial::default();
    let mut count = 0usize;
    for part in found {
        let Some(decoded) = decode_partial(&part.part) else {
            return Ok(None);
        };
        let level = u32::try_from(part.level).unwrap_or(u32::MAX);
        if level == BLOCK_LEVELS {
            tops.append(super::compile::without_sessions(&decoded));
        } else if let Some(slot) = open.get_mut(level as usize) {
            slot.append(super::compile::without_sessions(&decoded));
        }
        count += block_start(level, 1);
    }
    if count != keep {
        // A unit is missing: the store is not what it should be; compile the user in full.
        return Ok(None);
    }
    let mut total = tops;
    for slot in open.iter().rev() {
        total.append(slot.clone());
    }
    Ok(Some((open, total)))
}
