//! The compile pass's reader: the log by primary-key slices, on a thread of its own.

use std::collections::HashMap;

use super::CompiledError;
use crate::stats::{LogRow, Settings};
use crate::store::DbConnection;
use crate::store::source::{IDS_PER_BATCH_QUERY, Source};

/// One primary-key slice of the log, `start <= id < end`, as the reader hands it over.
pub(super) struct Slice {
    pub start: i64,
    pub end: i64,
    pub rows: Vec<LogRow>,
    /// Users seen for the first time in this pass, sorted, with their enrolment starts when
    /// the enrolment filter is on.
    pub new_users: Vec<i64>,
    pub starts: HashMap<i64, HashMap<i64, i64>>,
}

/// Reads the log from id `from` to `hi` in slices of [`IDS_PER_BATCH_QUERY`] ids, until done,
/// an error (sent on), or the receiver gone.
pub(super) fn read_slices(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    (from, hi): (i64, i64),
    out: std::sync::mpsc::SyncSender<Result<Slice, CompiledError>>,
) {
    let mut seen: std::collections::HashSet<i64, foldhash::fast::RandomState> = Default::default();
    let mut start = from;
    while start <= hi {
        let end = start
            .saturating_add(IDS_PER_BATCH_QUERY)
            .min(hi.saturating_add(1));
        let slice = (|| -> Result<Slice, CompiledError> {
            let rows = source.logs_in_ids(conn, start, end)?;
            let mut new_users: Vec<i64> = rows
                .iter()
                .map(|r| r.userid)
                .filter(|u| !seen.contains(u))
                .collect();
            new_users.sort_unstable();
            new_users.dedup();
            seen.extend(new_users.iter().copied());
            let starts = if settings.enrolment_filter && !new_users.is_empty() {
                source.enrolment_starts_for_users(conn, &new_users)?
            } else {
                HashMap::new()
            };
            Ok(Slice {
                start,
                end,
                rows,
                new_users,
                starts,
            })
        })();
        let failed = slice.is_err();
        if out.send(slice).is_err() || failed {
            return;
        }
        start = end;
    }
}
