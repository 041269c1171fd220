//! Dedication in the compiled store (docs/engine.md §7.6): per user, variant and course, the
//! sessions of the whole log under the session limit compiled, each with its rows' `(time, id)`.
//!
//! A window's sessions are the whole log's sessions cut to the window: rows inside a window
//! keep the gaps they have in the log. So an answer takes the stored sessions the window holds
//! whole as they are, and runs the rule again only on the rows of the sessions that cross the
//! window's edges or lie near rows logged since the compile. The ignore limit is the answer's,
//! so it may vary per request; a session limit other than the one compiled is a live read.

mod answer;
mod blocks;
mod build;
mod summed;

pub use answer::{
    DedicationAnswers, answer_dedication, dedication_answer_counts, dedication_users,
};
pub(super) use build::{Pass as DedicationPass, compile_dedication, forget};
pub use summed::block_answer_count;

use crate::stats::dedication::{self, DedicationRow, DedicationSettings, Span, Variant};
use crate::store::state::DedicationSessionRow;

/// The variants kept, and their number in the state tables.
const VARIANTS: [(Variant, i32); 2] = [(Variant::Live, 0), (Variant::Legacy, 1)];

fn variant_code(variant: Variant) -> i32 {
    match variant {
        Variant::Live => 0,
        Variant::Legacy => 1,
    }
}

/// The session limits the store is compiled with: the site's for the live rule (its
/// `config_plugins`), the report form's default for the legacy rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    live: i64,
    legacy: i64,
    /// The live rule's ignore limit, which the blocks judge sessions with.
    live_ignore: i64,
}

impl Limits {
    pub(super) fn new(live: DedicationSettings) -> Limits {
        Limits {
            live: live.session_limit,
            legacy: DedicationSettings::legacy(None).session_limit,
            live_ignore: live.ignore_sessions_limit.max(0),
        }
    }

    fn of(&self, variant: Variant) -> i64 {
        match variant {
            Variant::Live => self.live,
            Variant::Legacy => self.legacy,
        }
    }
}

/// A session's rows as deltas from the one before, so most take two or three bytes.
fn encode_rows(rows: &[(i64, i64)]) -> Vec<u8> {
    let mut last = (0i64, 0i64);
    let deltas: Vec<(i64, i64)> = rows
        .iter()
        .map(|&(t, id)| {
            let d = (t.wrapping_sub(last.0), id.wrapping_sub(last.1));
            last = (t, id);
            d
        })
        .collect();
    // Encoding plain owned data into a Vec cannot fail.
    postcard::to_allocvec(&deltas).unwrap_or_default()
}

fn decode_rows(bytes: &[u8]) -> Option<Vec<(i64, i64)>> {
    let deltas: Vec<(i64, i64)> = postcard::from_bytes(bytes).ok()?;
    let mut last = (0i64, 0i64);
    Some(
        deltas
            .into_iter()
            .map(|(dt, did)| {
                last = (last.0.wrapping_add(dt), last.1.wrapping_add(did));
                last
            })
            .collect(),
    )
}

fn span_of(row: &DedicationSessionRow) -> Span {
    Span {
        start: row.start_time,
        end: row.end_time,
        rows: u64::try_from(row.row_count).unwrap_or(0),
        first_id: row.first_id,
        days: u64::try_from(row.days).unwrap_or(0),
    }
}

/// The counted rows of each course under `variant`, each course's in `(time, id)` order.
fn counted_by_course(
    rows: &[DedicationRow],
    variant: Variant,
) -> std::collections::BTreeMap<i64, Vec<(i64, i64)>> {
    let mut out: std::collections::BTreeMap<i64, Vec<(i64, i64)>> = Default::default();
    for row in rows {
        if let Some(course) = row.course
            && dedication::counts(row, course, variant)
        {
            out.entry(course).or_default().push((row.time, row.id));
        }
    }
    for list in out.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    out
}

/// Cuts one course's counted rows into the rows to store, one per session.
fn session_rows(
    user: i64,
    variant: i32,
    course: i64,
    counted: &[(i64, i64)],
    limit: i64,
) -> Vec<DedicationSessionRow> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for span in dedication::spans(counted, limit) {
        let n = usize::try_from(span.rows).unwrap_or(0);
        let rows = counted.get(at..at + n).unwrap_or_default();
        at += n;
        out.push(DedicationSessionRow {
            userid: user,
            variant,
            course,
            start_time: span.start,
            first_id: span.first_id,
            end_time: span.end,
            row_count: i64::try_from(span.rows).unwrap_or(i64::MAX),
            days: i64::try_from(span.days).unwrap_or(i64::MAX),
            row_data: encode_rows(rows),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_their_encoding() {
        let rows = vec![(-5, 9), (0, 3), (0, 4), (86_400, 2), (i64::MAX, i64::MIN)];
        assert_eq!(decode_rows(&encode_rows(&rows)), Some(rows));
        assert_eq!(decode_rows(&[0xff, 0xff]), None);
    }

    #[test]
    fn stored_sessions_cut_rows_as_the_rule_does() {
        let counted = vec![(0, 1), (10, 2), (10, 3), (100, 4), (150, 5)];
        let stored = session_rows(7, 0, 2, &counted, 10);
        let starts: Vec<(i64, i64, i64)> = stored
            .iter()
            .map(|s| (s.start_time, s.end_time, s.row_count))
            .collect();
        assert_eq!(starts, vec![(0, 10, 3), (100, 100, 1), (150, 150, 1)]);
        assert_eq!(
            decode_rows(&stored[0].row_data),
            Some(counted[..3].to_vec())
        );
    }
}
