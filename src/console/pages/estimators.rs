//! The estimators side by side on the learner and course pages (docs/engine.md §8): each
//! dedication variant over the page's window, next to use_stats', with a sentence on why the
//! totals differ.

use std::sync::Arc;

use crate::app::App;
use crate::estimators::Differences;
use crate::reports::{DedicationAsk, DedicationError};
use crate::stats::Window;
use crate::stats::dedication::Variant;
use crate::timefmt::duration;

/// One estimator's row in a side-by-side table.
pub(super) struct EstimatorRow {
    pub name: &'static str,
    pub label: String,
    pub total: i64,
    pub total_text: String,
    pub kept: String,
    pub dropped: String,
    pub why: String,
}

impl EstimatorRow {
    /// use_stats' row: its total and session count.
    pub fn use_stats(label: String, total: i64, sessions: u64) -> EstimatorRow {
        EstimatorRow {
            name: "use_stats",
            label,
            total,
            total_text: duration(total),
            kept: sessions.to_string(),
            dropped: "-".into(),
            why: "The default: up to the last-ping credit after a session's last click, site time included.".into(),
        }
    }
}

/// Both dedication variants for `users` over `window` (`course` only, when given).
pub(super) use crate::reports::Dedications;

/// Computes [`Dedications`]; the error is a sentence for the page (the use_stats numbers are
/// shown whatever happens here).
pub(super) async fn dedications(
    app: &Arc<App>,
    users: Vec<i64>,
    course: Option<i64>,
    window: Window,
) -> Result<Dedications, String> {
    let asked = DedicationAsk {
        variants: vec![Variant::Live, Variant::Legacy],
        users,
        course,
        from: window.from,
        to: window.to,
        now: window.now,
        // The console shows the sessions and counts what was dropped and why.
        sessions: true,
        ..DedicationAsk::default()
    };
    match app.reports.dedications(asked).await {
        Ok(answer) => Ok(answer.runs),
        Err(DedicationError::Prefix(e)) => Err(e.to_string()),
        Err(DedicationError::Compute(e) | DedicationError::CourseNames(e)) => Err(format!(
            "The dedication estimators could not be computed: {e}"
        )),
        Err(DedicationError::Store(e)) => Err(format!(
            "The dedication estimators could not be computed: {e}"
        )),
    }
}

/// The rows of the dedication variants: totals, sessions and why, over every user given,
/// compared with use_stats' `use_stats_total` (the same users, the same course or courses).
pub(super) fn rows(dedications: &Dedications, use_stats_total: i64) -> Vec<EstimatorRow> {
    dedications
        .iter()
        .map(|(estimator, answers)| {
            let mut differences = Differences::default();
            for answer in answers.values() {
                differences.add(Differences::of(answer));
            }
            EstimatorRow {
                name: estimator.rule,
                label: estimator.to_string(),
                total: differences.total,
                total_text: duration(differences.total),
                kept: differences.kept.to_string(),
                dropped: (differences.one_row + differences.short).to_string(),
                why: differences.sentence(estimator, use_stats_total),
            }
        })
        .collect()
}
