//! The audit_log table: one row per call, kept until retention prunes it.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

#[derive(Debug, Clone, Default, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub time: i64,
    pub channel: String,
    pub peer: String,
    pub remote_addr: String,
    pub method: String,
    pub caller: String,
    pub target: String,
    pub status: String,
    pub latency_ms: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// False when the peer, caller and target are only what an unauthenticated request
    /// claimed.
    pub verified: bool,
}

pub fn insert_audit(conn: &mut DbConnection, entry: &AuditEntry) -> Result<(), StoreError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::time.eq(entry.time),
            audit_log::channel.eq(&entry.channel),
            audit_log::peer.eq(&entry.peer),
            audit_log::remote_addr.eq(&entry.remote_addr),
            audit_log::method.eq(&entry.method),
            audit_log::caller.eq(&entry.caller),
            audit_log::target.eq(&entry.target),
            audit_log::status.eq(&entry.status),
            audit_log::latency_ms.eq(entry.latency_ms),
            audit_log::bytes_in.eq(entry.bytes_in),
            audit_log::bytes_out.eq(entry.bytes_out),
            audit_log::verified.eq(entry.verified),
        ))
        .execute(conn)?;
    Ok(())
}

/// Rows gathered off the request path, in one transaction: one commit for the batch.
pub fn insert_audit_batch(
    conn: &mut DbConnection,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    crate::store::write_transaction(conn, |conn| {
        for entry in entries {
            insert_audit(conn, entry)?;
        }
        Ok(())
    })
}

pub fn query_audit(
    conn: &mut DbConnection,
    peer: Option<&str>,
    since: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut query = audit_log::table
        .order(audit_log::id.desc())
        .limit(limit)
        .select(AuditEntry::as_select())
        .into_boxed();
    if let Some(peer) = peer {
        query = query
            .filter(audit_log::peer.eq(crate::wwwroot::Wwwroot::normalized(peer).into_string()));
    }
    if let Some(since) = since {
        query = query.filter(audit_log::time.ge(since));
    }
    Ok(query.load(conn)?)
}

pub fn prune_audit(conn: &mut DbConnection, older_than: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(audit_log::table.filter(audit_log::time.lt(older_than))).execute(conn)?)
}

/// Calls in one hour, one channel, from one peer, with one status: a row of
/// [`audit_calls_per_hour`].
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, Serialize)]
pub struct HourlyCalls {
    /// The start of the hour (Unix time, a multiple of 3600).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub hour: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub channel: String,
    /// The signing peer of verified MNET calls; empty for web services and for calls whose
    /// peer was only claimed (those names are the sender's to choose, so they are not grouped
    /// by).
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub peer: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub verified: bool,
    /// `ok`, `fault N` (MNET) or `exception errorcode` (web services).
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub calls: i64,
}

/// Calls per hour in [`since`, `until`), by channel, verified peer and status: counted by the
/// database (one GROUP BY over the `audit_log_time` index), at most `limit` groups, oldest
/// hour first.
pub fn audit_calls_per_hour(
    conn: &mut DbConnection,
    since: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<HourlyCalls>, StoreError> {
    use diesel::sql_types::BigInt;
    // The same statement on both backends but for the placeholders; integer division is
    // integer on both.
    const PER_HOUR: &str = "SELECT (time / 3600) * 3600 AS hour, channel, \
         CASE WHEN verified THEN peer ELSE '' END AS peer, verified, status, COUNT(*) AS calls \
         FROM audit_log WHERE time >= $1 AND time < $2 \
         GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 LIMIT $3";
    Ok(match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(PER_HOUR.replace('$', "?"))
            .bind::<BigInt, _>(since)
            .bind::<BigInt, _>(until)
            .bind::<BigInt, _>(limit)
            .load(c)?,
        DbConnection::Postgres(c) => diesel::sql_query(PER_HOUR)
            .bind::<BigInt, _>(since)
            .bind::<BigInt, _>(until)
            .bind::<BigInt, _>(limit)
            .load(c)?,
        DbConnection::Mysql(_) => {
            return Err(StoreError::Invalid(crate::store::MYSQL_STATE.into()));
        }
    })
}
