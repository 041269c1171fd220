//! Puts one user's rows, read in log id order, into the engine's (time, id) order.
//!
//! Moodle writes a request's events at its end, so a user's overlapping requests interleave
//! ids within seconds of each other. Rows wait here until a row `span` seconds later shows
//! that nothing earlier can still come; a row further back than that is refused, and the
//! caller reads that user again in order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::input::LogRow;

pub struct Reorder {
    span: i64,
    held: BinaryHeap<Reverse<Held>>,
    /// The latest `timecreated` seen: rows up to `span` before it are released, so `held`
    /// never holds more than that span of rows.
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

/// A row further back in time than the reorder span allows: its (time, id).
#[derive(Debug)]
pub struct TooLate {
    pub key: (i64, i64),
}

impl Reorder {
    pub fn new(span: i64) -> Reorder {
        Reorder {
            span,
            held: BinaryHeap::new(),
            latest: i64::MIN,
        }
    }

    /// Takes a row; hands `release` every held row that can no longer be preceded, in order.
    pub fn push(&mut self, row: LogRow, release: impl FnMut(LogRow)) -> Result<(), TooLate> {
        if row.time < self.latest.saturating_sub(self.span) {
            return Err(TooLate {
                key: (row.time, row.id),
            });
        }
        self.latest = self.latest.max(row.time);
        self.held.push(Reverse(Held(row)));
        self.release_upto(self.latest.saturating_sub(self.span), release);
        Ok(())
    }

    /// Hands over every held row, in order.
    pub fn drain(&mut self, release: impl FnMut(LogRow)) {
        self.release_upto(i64::MAX, release);
    }

    /// The held rows, in order, without releasing them.
    pub fn held(&self) -> Vec<&LogRow> {
        let mut rows: Vec<&LogRow> = self.held.iter().map(|h| &h.0.0).collect();
        rows.sort_unstable_by_key(|r| (r.time, r.id));
        rows
    }

    pub fn clear(&mut self) {
        self.held = BinaryHeap::new();
    }

    fn release_upto(&mut self, upto: i64, mut release: impl FnMut(LogRow)) {
        while self.held.peek().is_some_and(|h| h.0.0.time <= upto) {
            let Some(Reverse(Held(row))) = self.held.pop() else {
                break;
            };
            release(row);
        }
    }
}
