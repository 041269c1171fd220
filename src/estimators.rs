//! Estimators by name (docs/engine.md §8): `use_stats` (the default, [`crate::reports`]),
//! `dedication` and `dedication.legacy`, read live from the source database through the pure
//! rule of [`crate::stats::dedication`]. Shared by the web services and the command line.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::reports::ReportError;
use crate::stats::dedication::{self, Dedication, DedicationSettings, Variant};
use crate::store::DbConnection;
use crate::store::source::Source;

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
) -> Result<DedicationSettings, ReportError> {
    Ok(match variant {
        Variant::Live => source.dedication_settings(conn)?,
        Variant::Legacy => DedicationSettings::legacy(legacy_limit),
    })
}

/// Dedication for each user (every user asked is in the answer), over the window the request
/// gave: `from`/`to` 0 take the rule's defaults per course (its start date or now − 90 days;
/// now). One read of the log for all users.
#[allow(clippy::too_many_arguments)]
pub fn dedication_users(
    conn: &mut DbConnection,
    source: &Source,
    variant: Variant,
    settings: DedicationSettings,
    userids: &[i64],
    course: Option<i64>,
    from: i64,
    to: i64,
    now: i64,
) -> Result<HashMap<i64, Dedication>, ReportError> {
    // Per course windows can start at any start date: with `from` 0 the read starts at 0.
    let read_to = if to == 0 { now } else { to };
    let mut rows = source.users_dedication_rows(conn, userids, course, from, read_to)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in EstimatorName::ALL {
            assert_eq!(name.as_str().parse::<EstimatorName>(), Ok(name));
        }
        assert!("dedication.v2".parse::<EstimatorName>().is_err());
        assert!("".parse::<EstimatorName>().is_err());
    }
}
