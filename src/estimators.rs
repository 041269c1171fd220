//! Estimators by name (docs/engine.md §8): `use_stats` (the default, the reports handle's),
//! `dedication` and `dedication.legacy`, read live from the source database through the pure
//! rule of [`crate::stats::dedication`]. Shared by the web services and the command line.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::stats::dedication::{self, Dedication, DedicationSettings, Variant};
use crate::store::DbConnection;
use crate::store::source::{Source, SourceError};

/// One estimator, as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EstimatorName {
    /// `use_stats.main v1`, today's and the default.
    UseStats,
    Dedication(Variant),
}

impl EstimatorName {
    pub const ALL: [EstimatorName; 3] = [
        EstimatorName::UseStats,
        EstimatorName::Dedication(Variant::Live),
        EstimatorName::Dedication(Variant::Legacy),
    ];

    /// The name requests use.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimatorName::UseStats => "use_stats",
            EstimatorName::Dedication(v) => v.name(),
        }
    }
}

impl fmt::Display for EstimatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An estimator name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown estimator {0:?}: one of use_stats, dedication, dedication.legacy")]
pub struct UnknownEstimator(pub String);

impl FromStr for EstimatorName {
    type Err = UnknownEstimator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "use_stats" | "use_stats.main" => Ok(EstimatorName::UseStats),
            "dedication" => Ok(EstimatorName::Dedication(Variant::Live)),
            "dedication.legacy" => Ok(EstimatorName::Dedication(Variant::Legacy)),
            other => Err(UnknownEstimator(other.to_owned())),
        }
    }
}

/// The settings a variant runs with: the live rule's from `config_plugins` (plugin
/// `block_dedication`, defaults when never saved); the legacy rule's from its report form,
/// 3600 s unless `legacy_limit` says otherwise.
pub fn dedication_settings(
    conn: &mut DbConnection,
    source: &Source,
    variant: Variant,
    legacy_limit: Option<i64>,
) -> Result<DedicationSettings, SourceError> {
    Ok(match variant {
        Variant::Live => source.dedication_settings(conn)?,
        Variant::Legacy => DedicationSettings::legacy(legacy_limit),
    })
}

/// One dedication variant asked for some users, over the window the request gave: `from`/`to`
/// 0 take the rule's defaults per course (its start date or now − 90 days; now).
#[derive(Debug, Clone, Copy)]
pub struct DedicationQuery<'a> {
    pub variant: Variant,
    pub settings: DedicationSettings,
    pub userids: &'a [i64],
    /// Only this course, when given.
    pub course: Option<i64>,
    pub from: i64,
    pub to: i64,
    pub now: i64,
    /// Each course's session list is wanted. Without it the compiled store may answer from
    /// its sums, and the lists are empty.
    pub sessions: bool,
}

/// The times a dedication answer reads rows between (both included), before each course's
/// window: with `from` 0 each course's window starts at its start date, or now − 90 days, so
/// the read starts at the earliest of those, which no course's window can start before.
pub fn read_bounds(
    conn: &mut DbConnection,
    source: &Source,
    from: i64,
    to: i64,
    now: i64,
) -> Result<(i64, i64), SourceError> {
    let read_from = if from == 0 {
        let default = now.saturating_sub(dedication::DEFAULT_WINDOW_S);
        source
            .earliest_course_start(conn)?
            .map_or(default, |start| start.min(default))
    } else {
        from
    };
    Ok((read_from, if to == 0 { now } else { to }))
}

/// Dedication for each user (every user asked is in the answer). One read of the log for all
/// users.
pub fn dedication_users(
    conn: &mut DbConnection,
    source: &Source,
    query: &DedicationQuery,
) -> Result<HashMap<i64, Dedication>, SourceError> {
    let DedicationQuery {
        variant,
        settings,
        userids,
        course,
        from,
        to,
        now,
        sessions: _,
    } = *query;
    let (read_from, read_to) = read_bounds(conn, source, from, to, now)?;
    let mut rows = source.users_dedication_rows(conn, userids, course, read_from, read_to)?;
    let mut courses: Vec<i64> = rows
        .values()
        .flat_map(|r| r.iter().filter_map(|row| row.course))
        .chain(course)
        .collect();
    courses.sort_unstable();
    courses.dedup();
    let starts = if from == 0 {
        source.course_start_dates(conn, &courses)?
    } else {
        HashMap::new()
    };
    let window_of = |c: i64| dedication::resolve_window(from, to, now, starts.get(&c).copied());
    Ok(userids
        .iter()
        .map(|&user| {
            let user_rows = rows.remove(&user).unwrap_or_default();
            (
                user,
                dedication::learner(&user_rows, course, variant, settings, window_of),
            )
        })
        .collect())
}

/// What a dedication answer left out, counted from its sessions: the facts behind
/// [`why_they_differ`]. Adds up over learners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Differences {
    pub kept: u64,
    /// Sessions of one row, dropped.
    pub one_row: u64,
    /// Sessions of several rows not over the ignore limit, dropped.
    pub short: u64,
    /// Seconds credited in more than one course (courses visited in turn).
    pub overlap_s: i64,
    pub total: i64,
    /// Learners with no counted row at all.
    pub without_rows: u64,
}

impl Differences {
    pub fn of(dedication: &Dedication) -> Differences {
        let sessions = || dedication.courses.iter().flat_map(|c| c.sessions.iter());
        let count =
            |d: Option<dedication::Dropped>| sessions().filter(|s| s.dropped == d).count() as u64;
        // The kept sessions added up, less their union.
        let mut spans: Vec<(i64, i64)> = sessions()
            .filter(|s| s.dropped.is_none())
            .map(|s| (s.start, s.end))
            .collect();
        spans.sort_unstable();
        let mut union = 0i64;
        let mut open: Option<(i64, i64)> = None;
        for (start, end) in spans {
            open = match open {
                Some((a, b)) if start <= b => Some((a, b.max(end))),
                Some((a, b)) => {
                    union = union.saturating_add(b - a);
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((a, b)) = open {
            union = union.saturating_add(b - a);
        }
        let total = dedication.total();
        Differences {
            kept: count(None),
            one_row: count(Some(dedication::Dropped::OneRow)),
            short: count(Some(dedication::Dropped::NotOverIgnoreLimit)),
            overlap_s: total.saturating_sub(union).max(0),
            total,
            without_rows: u64::from(dedication.courses.iter().all(|c| c.rows == 0)),
        }
    }

    pub fn add(&mut self, other: Differences) {
        self.kept += other.kept;
        self.one_row += other.one_row;
        self.short += other.short;
        self.overlap_s = self.overlap_s.saturating_add(other.overlap_s);
        self.total = self.total.saturating_add(other.total);
        self.without_rows += other.without_rows;
    }

    /// The sentence: what `estimator` leaves out or adds, compared with use_stats' total.
    pub fn sentence(
        &self,
        estimator: &dedication::DedicationEstimator,
        use_stats_total: i64,
    ) -> String {
        let rule = estimator.rule;
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        if self.kept + self.one_row + self.short == 0 {
            return format!(
                "{rule} counts no row here: it has no site-level time and needs a course"
            );
        }
        let mut parts = vec![format!(
            "{rule} gives no credit after the last click of a session ({} session{} kept)",
            self.kept,
            plural(self.kept)
        )];
        if self.one_row > 0 {
            parts.push(format!(
                "{} session{} of one click dropped",
                self.one_row,
                plural(self.one_row)
            ));
        }
        if self.short > 0 {
            let limit = estimator.ignore_sessions_limit_s.unwrap_or(0);
            parts.push(format!(
                "{} session{} of {limit} s or less dropped",
                self.short,
                plural(self.short)
            ));
        }
        if self.overlap_s > 0 {
            parts.push(format!(
                "{} s are credited in more than one course (courses visited in turn)",
                self.overlap_s
            ));
        }
        if self.total > use_stats_total {
            parts.push(format!(
                "it comes out higher: its session limit ({} s) may bridge gaps where use_stats ends a session",
                estimator.session_limit_s
            ));
        }
        let mut sentence = parts.join("; ");
        sentence.push('.');
        sentence
    }
}

/// One sentence on why a dedication total differs from use_stats' for one learner (or one
/// course of theirs): what the rule leaves out, counted from its sessions.
pub fn why_they_differ(use_stats_total: i64, dedication: &Dedication) -> String {
    Differences::of(dedication).sentence(&dedication.estimator, use_stats_total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::dedication::{DedicationRow, DedicationWindow, learner};

    #[test]
    fn the_reason_counts_what_was_dropped() {
        let row = |id: i64, t: i64| {
            DedicationRow::new(id, t, Some(2), Some("web"), "\\core\\event\\course_viewed")
        };
        let rows = vec![row(1, 0), row(2, 10_000), row(3, 10_030), row(4, 20_000)];
        let settings = DedicationSettings {
            session_limit: 3600,
            ignore_sessions_limit: 60,
        };
        let d = learner(&rows, None, Variant::Live, settings, |_| DedicationWindow {
            from: 0,
            to: 30_000,
        });
        assert_eq!(
            why_they_differ(900, &d),
            "dedication gives no credit after the last click of a session (0 sessions kept); \
             2 sessions of one click dropped; 1 session of 60 s or less dropped."
        );
        let none = learner(&[], None, Variant::Live, settings, |_| DedicationWindow {
            from: 0,
            to: 1,
        });
        assert!(why_they_differ(60, &none).contains("no site-level time"));
    }

    #[test]
    fn names_round_trip() {
        for name in EstimatorName::ALL {
            assert_eq!(name.as_str().parse::<EstimatorName>(), Ok(name));
        }
        assert!("dedication.v2".parse::<EstimatorName>().is_err());
        assert!("".parse::<EstimatorName>().is_err());
    }
}
