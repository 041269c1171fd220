//! The replay_keys table: the keys of recent requests, so a replayed one is refused.

use diesel::prelude::*;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

/// Claim a replay key for this request, in one statement: true when nobody had it since
/// `since` (new, or only an expired entry not yet pruned). The request runs only after this
/// returned true, so the key is in the database before the call runs: on SQLite the statement
/// is synced to disk before it returns (`synchronous = FULL` for it alone; the connection's
/// other writes stay `NORMAL`), so neither a killed process nor a power cut forgets a key whose
/// request was answered. Several instances sharing a PostgreSQL state claim here too, so of two
/// copies of one request sent to two instances exactly one runs.
pub fn claim_replay_key(
    conn: &mut DbConnection,
    key_hash: &str,
    seen_at: i64,
    since: i64,
) -> Result<bool, StoreError> {
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::{BigInt, Text};
    // Diesel's upsert builder has no WHERE on the update; the statement is the same on
    // both backends but for the placeholders.
    const CLAIM: &str = "INSERT INTO replay_keys (key_hash, seen_at) VALUES ($1, $2) \
         ON CONFLICT (key_hash) DO UPDATE SET seen_at = excluded.seen_at \
         WHERE replay_keys.seen_at < $3";
    let claimed = match conn {
        DbConnection::Sqlite(c) => {
            c.batch_execute("PRAGMA synchronous = FULL")?;
            let claimed = diesel::sql_query(CLAIM.replace('$', "?"))
                .bind::<Text, _>(key_hash)
                .bind::<BigInt, _>(seen_at)
                .bind::<BigInt, _>(since)
                .execute(c);
            // Restored whatever happened: the connection goes back to a pool.
            let restored = c.batch_execute("PRAGMA synchronous = NORMAL");
            let claimed = claimed?;
            restored?;
            claimed
        }
        DbConnection::Postgres(c) => diesel::sql_query(CLAIM)
            .bind::<Text, _>(key_hash)
            .bind::<BigInt, _>(seen_at)
            .bind::<BigInt, _>(since)
            .execute(c)?,
        DbConnection::Mysql(_) => {
            return Err(StoreError::MysqlState);
        }
    };
    Ok(claimed == 1)
}

/// Whether `key_hash` was seen at `since` or later.
pub fn replay_key_seen(
    conn: &mut DbConnection,
    key_hash: &str,
    since: i64,
) -> Result<bool, StoreError> {
    Ok(replay_keys::table
        .filter(replay_keys::key_hash.eq(key_hash))
        .filter(replay_keys::seen_at.ge(since))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// The newest replay keys seen at `since` or later, at most `limit`, newest first.
pub fn recent_replay_keys(
    conn: &mut DbConnection,
    since: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(replay_keys::table
        .filter(replay_keys::seen_at.ge(since))
        .order(replay_keys::seen_at.desc())
        .limit(limit)
        .select((replay_keys::key_hash, replay_keys::seen_at))
        .load(conn)?)
}

pub fn prune_replay_keys(conn: &mut DbConnection, older_than: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(replay_keys::table.filter(replay_keys::seen_at.lt(older_than)))
            .execute(conn)?,
    )
}
