//! Sessions of one course added up in time order: all an answer without its session list
//! needs. The compiled store keeps these sums over blocks of days (docs/engine.md §7.6), so
//! that a window of a year adds up a few dozen of them instead of every session.

use serde::{Deserialize, Serialize};

use super::{DAY, DedicationSettings, Dropped, LEGACY_USER_REPORT_MINIMUM, Span, Variant};
use crate::stats::report::SessionStats;

/// A run of one course's sessions, in time order, under one variant and ignore limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub sessions: u64,
    /// Counted rows.
    pub rows: u64,
    /// `(start, first id)` of the first session.
    pub first: Option<(i64, i64)>,
    /// Time of the last session's last row.
    pub last_end: i64,
    pub dropped: u64,
    /// Dropped sessions of one row.
    pub one_row: u64,
    /// The kept sessions: count, first and last start, shortest, longest, sum.
    pub kept: SessionStats,
    /// Durations over [`LEGACY_USER_REPORT_MINIMUM`] added up, kept or not.
    pub report_total: i64,
    /// Distinct UTC days with a row.
    pub days: u64,
    /// The UTC day of the first session's start, and of the last one's end.
    pub first_day: i64,
    pub last_day: i64,
}

/// Whether `variant` drops a session of `rows` rows lasting `duration`, and why.
pub(super) fn judge(
    duration: i64,
    rows: u64,
    variant: Variant,
    settings: DedicationSettings,
) -> Option<Dropped> {
    match variant {
        // A 0 s session is always dropped, whatever the limit.
        Variant::Live if duration <= settings.ignore_sessions_limit.max(0) => Some(if rows == 1 {
            Dropped::OneRow
        } else {
            Dropped::NotOverIgnoreLimit
        }),
        Variant::Live | Variant::Legacy => None,
    }
}

impl Summary {
    /// One session.
    pub fn of_span(span: &Span, variant: Variant, settings: DedicationSettings) -> Summary {
        let duration = span.end.saturating_sub(span.start);
        let dropped = judge(duration, span.rows, variant, settings);
        let mut kept = SessionStats::default();
        if dropped.is_none() {
            kept.add(span.start, duration);
        }
        Summary {
            sessions: 1,
            rows: span.rows,
            first: Some((span.start, span.first_id)),
            last_end: span.end,
            dropped: u64::from(dropped.is_some()),
            one_row: u64::from(dropped == Some(Dropped::OneRow)),
            kept,
            report_total: if duration > LEGACY_USER_REPORT_MINIMUM {
                duration
            } else {
                0
            },
            days: span.days,
            first_day: span.start.div_euclid(DAY),
            last_day: span.end.div_euclid(DAY),
        }
    }

    /// Adds the sessions of `later`, all after these: a day the last of these ends on and the
    /// first of `later` starts on is counted once.
    pub fn then(&mut self, later: &Summary) {
        if later.sessions == 0 {
            return;
        }
        if self.sessions == 0 {
            *self = later.clone();
            return;
        }
        let shared = u64::from(self.last_day == later.first_day);
        self.days = (self.days + later.days).saturating_sub(shared);
        self.sessions += later.sessions;
        self.rows += later.rows;
        self.last_end = later.last_end;
        self.dropped += later.dropped;
        self.one_row += later.one_row;
        self.kept.append(&later.kept);
        self.report_total = self.report_total.saturating_add(later.report_total);
        self.last_day = later.last_day;
    }

    /// Spans in time order, added up.
    pub fn of_spans(spans: &[Span], variant: Variant, settings: DedicationSettings) -> Summary {
        let mut out = Summary::default();
        for span in spans {
            out.then(&Summary::of_span(span, variant, settings));
        }
        out
    }
}

/// Kept sessions of several courses, which may overlap in time: first and last start are the
/// earliest and latest of any course's.
pub fn kept_across<'a>(courses: impl Iterator<Item = &'a SessionStats>) -> SessionStats {
    let mut out = SessionStats::default();
    for stats in courses.filter(|s| s.count > 0) {
        if out.count == 0 {
            out = stats.clone();
            continue;
        }
        out.first_start = out.first_start.min(stats.first_start);
        out.last_start = out.last_start.max(stats.last_start);
        out.min = out.min.min(stats.min);
        out.max = out.max.max(stats.max);
        out.count = out.count.saturating_add(stats.count);
        out.sum = out.sum.saturating_add(stats.sum);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: i64, end: i64, rows: u64) -> Span {
        Span {
            start,
            end,
            rows,
            first_id: start,
            days: (end.div_euclid(DAY) - start.div_euclid(DAY) + 1) as u64,
        }
    }

    #[test]
    fn adding_up_in_any_grouping_gives_the_same() {
        let settings = DedicationSettings {
            session_limit: 3600,
            ignore_sessions_limit: 60,
        };
        let spans = [
            span(0, 0, 1),
            span(5_000, 5_030, 3),
            span(80_000, 90_000, 9),
            span(90_000 + 4_000, 90_000 + 4_100, 2),
            span(400_000, 400_000, 1),
        ];
        for variant in [Variant::Live, Variant::Legacy] {
            let whole = Summary::of_spans(&spans, variant, settings);
            for cut in 0..=spans.len() {
                let mut left = Summary::of_spans(&spans[..cut], variant, settings);
                left.then(&Summary::of_spans(&spans[cut..], variant, settings));
                assert_eq!(left, whole, "{variant:?} cut at {cut}");
            }
        }
        let live = Summary::of_spans(&spans, Variant::Live, settings);
        assert_eq!((live.sessions, live.dropped, live.one_row), (5, 3, 2));
        assert_eq!(live.kept.count, 2);
        assert_eq!(live.kept.sum, 10_000 + 100);
        // Days 0, 1 (the second span ends on day 1, the third starts on it), 4.
        assert_eq!(live.days, 3);
    }
}
