//! The replay_keys table: the keys of recent requests, so a replayed one is refused.

use diesel::prelude::*;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

/// Remember a replay key (hex of a short hash). A key already there (another instance of
/// a shared state database saw it) is left as it is.
pub fn insert_replay_key(
    conn: &mut DbConnection,
    key_hash: &str,
    seen_at: i64,
) -> Result<(), StoreError> {
    let row = (
        replay_keys::key_hash.eq(key_hash),
        replay_keys::seen_at.eq(seen_at),
    );
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::insert_or_ignore_into(replay_keys::table)
                .values(row)
                .execute(c)?;
        }
        DbConnection::Postgres(c) => {
            diesel::insert_into(replay_keys::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?;
        }
        DbConnection::Mysql(_) => {
            return Err(StoreError::Invalid(crate::store::MYSQL_STATE.into()));
        }
    }
    Ok(())
}

/// Claim a replay key for this request, in one statement: true when nobody had it since
/// `since` (new, or only an expired entry not yet pruned). Several instances sharing a
/// PostgreSQL state claim here on the request path, so of two copies of one request sent to
/// two instances exactly one runs.
pub fn claim_replay_key(
    conn: &mut DbConnection,
    key_hash: &str,
    seen_at: i64,
    since: i64,
) -> Result<bool, StoreError> {
    use diesel::sql_types::{BigInt, Text};
    // Diesel's upsert builder has no WHERE on the update; the statement is the same on
    // both backends but for the placeholders.
    const CLAIM: &str = "INSERT INTO replay_keys (key_hash, seen_at) VALUES ($1, $2) \
         ON CONFLICT (key_hash) DO UPDATE SET seen_at = excluded.seen_at \
         WHERE replay_keys.seen_at < $3";
    let claimed = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(CLAIM.replace('$', "?"))
            .bind::<Text, _>(key_hash)
            .bind::<BigInt, _>(seen_at)
            .bind::<BigInt, _>(since)
            .execute(c)?,
        DbConnection::Postgres(c) => diesel::sql_query(CLAIM)
            .bind::<Text, _>(key_hash)
            .bind::<BigInt, _>(seen_at)
            .bind::<BigInt, _>(since)
            .execute(c)?,
        DbConnection::Mysql(_) => {
            return Err(StoreError::Invalid(crate::store::MYSQL_STATE.into()));
        }
    };
    Ok(claimed == 1)
}

/// Replay keys gathered off the request path (hex, first seen), in one transaction.
pub fn insert_replay_keys(
    conn: &mut DbConnection,
    keys: &[(String, i64)],
) -> Result<(), StoreError> {
    crate::store::write_transaction(conn, |conn| {
        for (key_hash, seen_at) in keys {
            insert_replay_key(conn, key_hash, *seen_at)?;
        }
        Ok(())
    })
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
