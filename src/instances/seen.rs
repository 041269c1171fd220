//! The instances seen lately, as `doctor` and `/metrics` show them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{LIVE_WITHIN_SECS, SEEN_WITHIN_SECS};
use crate::store::state::{self, InstanceRow};
use crate::store::{Db, StoreError};

/// The instances that beat in the last [`SEEN_WITHIN_SECS`], oldest start first.
pub async fn seen(state: &Db, now: i64) -> Result<Vec<InstanceRow>, StoreError> {
    let since = now - SEEN_WITHIN_SECS;
    state
        .run(move |c| state::instances_seen_since(c, since))
        .await
}

/// Whether `row`'s instance beat recently enough to count as running.
pub fn is_live(row: &InstanceRow, now: i64) -> bool {
    now - row.seen_at <= LIVE_WITHIN_SECS
}

/// The live instances grouped by one of their fields (`value` of a row): each value with the
/// ids showing it, in order of value. More than one group is a disagreement.
pub fn spread(
    rows: &[InstanceRow],
    now: i64,
    value: impl Fn(&InstanceRow) -> &str,
) -> Vec<(String, Vec<String>)> {
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for row in rows.iter().filter(|r| is_live(r, now)) {
        groups.entry(value(row)).or_default().push(row.id.clone());
    }
    groups
        .into_iter()
        .map(|(value, ids)| (value.to_string(), ids))
        .collect()
}

/// [`seen`] kept for a few seconds, so that a Prometheus scrape (every instance, every few
/// seconds) costs the state database one query per instance per TTL at most.
pub struct SeenCache {
    ttl: Duration,
    kept: Mutex<Option<(Instant, Arc<Vec<InstanceRow>>)>>,
}

impl Default for SeenCache {
    fn default() -> Self {
        SeenCache::new(Duration::from_secs(5))
    }
}

impl SeenCache {
    pub fn new(ttl: Duration) -> SeenCache {
        SeenCache {
            ttl,
            kept: Mutex::new(None),
        }
    }

    /// The instances seen, read again when the copy kept is older than the TTL. Two scrapes
    /// that find it old both read: cheaper than making one wait for the other.
    pub async fn get(&self, state: &Db, now: i64) -> Result<Arc<Vec<InstanceRow>>, StoreError> {
        if let Ok(kept) = self.kept.lock()
            && let Some((at, rows)) = kept.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(rows.clone());
        }
        let rows = Arc::new(seen(state, now).await?);
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some((Instant::now(), rows.clone()));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, version: &str, key: &str, seen_at: i64) -> InstanceRow {
        InstanceRow {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            version: version.into(),
            listen: "127.0.0.1:1".into(),
            key_fingerprint: key.into(),
            started_at: 0,
            seen_at,
        }
    }

    #[test]
    fn spread_groups_live_instances_only() {
        let now = 1_000;
        let rows = [
            row("a", "1.0", "k1", now - 2),
            row("b", "1.1", "k1", now - 5),
            row("c", "1.0", "k2", now - 3),
            // Stopped two minutes ago on an old key: not a disagreement of the running ones.
            row("d", "0.9", "k0", now - 120),
        ];
        assert_eq!(
            spread(&rows, now, |r| &r.key_fingerprint),
            vec![
                ("k1".to_string(), vec!["a".to_string(), "b".to_string()]),
                ("k2".to_string(), vec!["c".to_string()]),
            ]
        );
        assert_eq!(spread(&rows, now, |r| &r.version).len(), 2);
        assert_eq!(spread(&rows[..1], now, |r| &r.version).len(), 1);
        assert!(is_live(&rows[0], now) && !is_live(&rows[3], now));
        assert!(is_live(&row("e", "1", "k", now - LIVE_WITHIN_SECS), now));
    }
}
