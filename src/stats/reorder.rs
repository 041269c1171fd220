//! Puts one user's rows, read in log id order, into the engine's (time, id) order.
//!
//! Moodle writes a request's events at its end, so a user's overlapping requests interleave
//! ids within seconds of each other. Rows wait here until a row `span` seconds later shows
//! that nothing earlier can still come; a row further back than that is refused, and the
//! caller reads that user again in order.

use std::collections::VecDeque;

use super::input::LogRow;

/// One user's rows waiting for their turn, kept sorted by (time, id). Rows mostly come in
/// order, so a row nearly always joins at the back and leaves at the front: each row moves
/// twice, where a heap moved these wide rows on every level of every push and pop.
pub struct Reorder {
    span: i64,
    held: VecDeque<LogRow>,
    /// The latest `timecreated` seen: rows up to `span` before it are released, so `held`
    /// never holds more than that span of rows.
    latest: i64,
}

fn key(row: &LogRow) -> (i64, i64) {
    (row.time, row.id)
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
            held: VecDeque::new(),
            latest: i64::MIN,
        }
    }

    /// Takes a row; hands `release` every held row that can no longer be preceded, in order.
    pub fn push(&mut self, row: LogRow, release: impl FnMut(LogRow)) -> Result<(), TooLate> {
        if row.time < self.latest.saturating_sub(self.span) {
            return Err(TooLate { key: key(&row) });
        }
        self.latest = self.latest.max(row.time);
        let k = key(&row);
        if self.held.back().is_none_or(|last| key(last) <= k) {
            self.held.push_back(row);
        } else {
            let at = self.held.partition_point(|held| key(held) <= k);
            self.held.insert(at, row);
        }
        self.release_upto(self.latest.saturating_sub(self.span), release);
        Ok(())
    }

    /// Hands over every held row, in order.
    pub fn drain(&mut self, release: impl FnMut(LogRow)) {
        self.release_upto(i64::MAX, release);
    }

    /// The held rows, in order, without releasing them.
    pub fn held(&self) -> Vec<&LogRow> {
        self.held.iter().collect()
    }

    pub fn clear(&mut self) {
        self.held = VecDeque::new();
    }

    fn release_upto(&mut self, upto: i64, mut release: impl FnMut(LogRow)) {
        while self.held.front().is_some_and(|row| row.time <= upto) {
            let Some(row) = self.held.pop_front() else {
                break;
            };
            release(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stats::ModuleInfo;

    fn row(id: i64, time: i64) -> LogRow {
        LogRow {
            id,
            userid: 1,
            time,
            course: Some(2),
            context_level: 50,
            action: "viewed".into(),
            target: "course".into(),
            origin: None,
            realuserid: None,
            module: ModuleInfo::NotModule,
        }
    }

    proptest! {
        /// Whatever the arrival order, the rows come out in (time, id) order, each once, and
        /// a row is refused exactly when it is further back than the span from the latest.
        #[test]
        fn releases_in_order_or_refuses(
            times in proptest::collection::vec(0i64..2_000, 0..200),
            span in 0i64..600,
        ) {
            let mut order = Reorder::new(span);
            let mut out: Vec<(i64, i64)> = Vec::new();
            let mut accepted: Vec<(i64, i64)> = Vec::new();
            let mut latest = i64::MIN;
            for (id, time) in times.into_iter().enumerate() {
                let id = id as i64;
                let result = order.push(row(id, time), |r| out.push((r.time, r.id)));
                let too_late = time < latest.saturating_sub(span);
                prop_assert_eq!(result.is_err(), too_late);
                if !too_late {
                    latest = latest.max(time);
                    accepted.push((time, id));
                }
                let held: Vec<(i64, i64)> = order.held().iter().map(|r| (r.time, r.id)).collect();
                prop_assert!(held.windows(2).all(|w| w[0] < w[1]));
            }
            order.drain(|r| out.push((r.time, r.id)));
            accepted.sort_unstable();
            prop_assert_eq!(out, accepted);
        }
    }
}
