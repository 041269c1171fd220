//! The audit: `audit_log`, one row per verified call, and `audit_refused`, requests refused
//! before authentication counted per (minute, source address, channel, reason). Both are kept
//! until retention or the size budget (`[audit] max_rows`, oldest first) prunes them.

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
    crate::store::append_transaction(conn, |conn| {
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

/// Drops audit rows and refused-request counts older than `older_than`.
pub fn prune_audit(conn: &mut DbConnection, older_than: i64) -> Result<usize, StoreError> {
    let rows =
        diesel::delete(audit_log::table.filter(audit_log::time.lt(older_than))).execute(conn)?;
    let counts = diesel::delete(audit_refused::table.filter(audit_refused::minute.lt(older_than)))
        .execute(conn)?;
    Ok(rows + counts)
}

/// Rows deleted by one statement of [`prune_audit_to_budget`]: a budget cut the first time on
/// a big table takes many short transactions rather than one long one.
const PRUNE_CHUNK: i64 = 20_000;

/// Keeps at most `max_rows` rows in `audit_log` and at most as many in `audit_refused`,
/// dropping the oldest first. Returns the rows deleted. `audit_log` ids grow with time, so
/// the cut is an id: rows at or below the newest id less `max_rows` go (with gaps in the ids,
/// fewer than `max_rows` may stay, never more).
pub fn prune_audit_to_budget(conn: &mut DbConnection, max_rows: i64) -> Result<usize, StoreError> {
    if max_rows <= 0 {
        return Ok(0);
    }
    let mut deleted = 0;
    let newest: Option<i64> = audit_log::table
        .select(diesel::dsl::max(audit_log::id))
        .first(conn)?;
    if let Some(cut) = newest.map(|n| n - max_rows).filter(|c| *c > 0) {
        loop {
            let chunk: Vec<i64> = audit_log::table
                .filter(audit_log::id.le(cut))
                .order(audit_log::id)
                .limit(PRUNE_CHUNK)
                .select(audit_log::id)
                .load(conn)?;
            let Some(last) = chunk.last().copied() else {
                break;
            };
            deleted += diesel::delete(
                audit_log::table
                    .filter(audit_log::id.le(last))
                    .filter(audit_log::id.ge(chunk[0])),
            )
            .execute(conn)?;
        }
    }
    // Counts: one per (minute, address, channel, reason); the oldest minutes go first.
    let kept_from: Option<i64> = audit_refused::table
        .order(audit_refused::minute.desc())
        .offset(max_rows)
        .select(audit_refused::minute)
        .first(conn)
        .optional()?;
    if let Some(minute) = kept_from {
        deleted += diesel::delete(audit_refused::table.filter(audit_refused::minute.le(minute)))
            .execute(conn)?;
    }
    Ok(deleted)
}

/// Requests refused before authentication, counted per (minute, address, channel, reason).
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_refused)]
pub struct RefusedCount {
    /// The minute's start (unix time, a multiple of 60).
    pub minute: i64,
    pub remote_addr: String,
    pub channel: String,
    /// The status the requests were answered with (`fault 7020`, `ok` for a keyswap,
    /// `exception invalidtoken`…): from our own fixed set, never the sender's text.
    pub reason: String,
    pub calls: i64,
    pub bytes_in: i64,
    pub first_time: i64,
    pub last_time: i64,
    /// The first few requests, one a line, each field escaped (`text::untrusted`).
    pub samples: String,
    pub sampled: i64,
}

/// Samples kept per count: enough to see what was sent, bounded whatever is sent.
pub const REFUSED_SAMPLES: i64 = 3;

/// Adds `counts` (one per key, gathered off the request path) to the stored ones, in one
/// transaction. Samples are appended while the stored count holds fewer than
/// [`REFUSED_SAMPLES`].
pub fn add_refused_counts(
    conn: &mut DbConnection,
    counts: &[RefusedCount],
) -> Result<(), StoreError> {
    use diesel::sql_types::{BigInt, Text};
    // The same statement on both backends but for the placeholders. The line break between
    // samples is bound ($11): the backends spell one differently in SQL text.
    const ADD: &str = "INSERT INTO audit_refused \
         (minute, remote_addr, channel, reason, calls, bytes_in, first_time, last_time, samples, sampled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (minute, remote_addr, channel, reason) DO UPDATE SET \
         calls = audit_refused.calls + excluded.calls, \
         bytes_in = audit_refused.bytes_in + excluded.bytes_in, \
         first_time = CASE WHEN excluded.first_time < audit_refused.first_time \
             THEN excluded.first_time ELSE audit_refused.first_time END, \
         last_time = CASE WHEN excluded.last_time > audit_refused.last_time \
             THEN excluded.last_time ELSE audit_refused.last_time END, \
         samples = CASE WHEN audit_refused.sampled >= $12 THEN audit_refused.samples \
             ELSE audit_refused.samples || $11 || excluded.samples END, \
         sampled = CASE WHEN audit_refused.sampled >= $12 THEN audit_refused.sampled \
             ELSE audit_refused.sampled + excluded.sampled END";
    crate::store::append_transaction(conn, |conn| {
        for c in counts {
            let query = |sql: String| {
                diesel::sql_query(sql)
                    .bind::<BigInt, _>(c.minute)
                    .bind::<Text, _>(&c.remote_addr)
                    .bind::<Text, _>(&c.channel)
                    .bind::<Text, _>(&c.reason)
                    .bind::<BigInt, _>(c.calls)
                    .bind::<BigInt, _>(c.bytes_in)
                    .bind::<BigInt, _>(c.first_time)
                    .bind::<BigInt, _>(c.last_time)
                    .bind::<Text, _>(&c.samples)
                    .bind::<BigInt, _>(c.sampled)
                    .bind::<Text, _>("\n")
                    .bind::<BigInt, _>(REFUSED_SAMPLES)
            };
            match conn {
                DbConnection::Sqlite(s) => query(ADD.replace('$', "?")).execute(s)?,
                DbConnection::Postgres(p) => query(ADD.to_string()).execute(p)?,
                DbConnection::Mysql(_) => {
                    return Err(StoreError::MysqlState);
                }
            };
        }
        Ok(())
    })
}

/// Refused-request counts since `since` (newest minute first), at most `limit`.
pub fn query_refused(
    conn: &mut DbConnection,
    since: Option<i64>,
    limit: i64,
) -> Result<Vec<RefusedCount>, StoreError> {
    let mut query = audit_refused::table
        .order((audit_refused::minute.desc(), audit_refused::calls.desc()))
        .limit(limit)
        .select(RefusedCount::as_select())
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(audit_refused::minute.ge(since - since.rem_euclid(60)));
    }
    Ok(query.load(conn)?)
}

/// What the audit holds, for `usestats doctor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditSize {
    pub rows: i64,
    /// Rows of `audit_refused` (each counts many requests) and the requests they count.
    pub refused_rows: i64,
    pub refused_calls: i64,
    /// The oldest row's time, of either table.
    pub oldest: Option<i64>,
    /// Bytes on disk, tables and indexes, when the database says (PostgreSQL; SQLite built
    /// with its `dbstat` table).
    pub bytes: Option<i64>,
}

pub fn audit_size(conn: &mut DbConnection) -> Result<AuditSize, StoreError> {
    use diesel::sql_types::{BigInt, Nullable};
    #[derive(QueryableByName)]
    struct Totals {
        #[diesel(sql_type = BigInt)]
        rows: i64,
        #[diesel(sql_type = BigInt)]
        calls: i64,
        #[diesel(sql_type = Nullable<BigInt>)]
        oldest: Option<i64>,
    }
    let rows: i64 = audit_log::table.count().get_result(conn)?;
    let oldest_call: Option<i64> = audit_log::table
        .select(diesel::dsl::min(audit_log::time))
        .first(conn)?;
    let refused: Totals = diesel::sql_query(
        "SELECT COUNT(*) AS rows, CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS calls, \
         MIN(first_time) AS oldest FROM audit_refused",
    )
    .get_result(conn)?;
    Ok(AuditSize {
        rows,
        refused_rows: refused.rows,
        refused_calls: refused.calls,
        oldest: [oldest_call, refused.oldest].into_iter().flatten().min(),
        bytes: audit_bytes(conn),
    })
}

/// Bytes the two audit tables and their indexes take, if the database can say.
fn audit_bytes(conn: &mut DbConnection) -> Option<i64> {
    use diesel::sql_types::{BigInt, Nullable};
    #[derive(QueryableByName)]
    struct Bytes {
        #[diesel(sql_type = Nullable<BigInt>)]
        bytes: Option<i64>,
    }
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "SELECT CAST(pg_total_relation_size('audit_log') + pg_total_relation_size('audit_refused') AS BIGINT) AS bytes"
        }
        // SQLite's dbstat table, when the library has it: every page of the tables and of
        // their indexes.
        DbConnection::Sqlite(_) => {
            "SELECT CAST(SUM(pgsize) AS BIGINT) AS bytes FROM dbstat WHERE name IN \
             (SELECT name FROM sqlite_master WHERE tbl_name IN ('audit_log', 'audit_refused'))"
        }
        DbConnection::Mysql(_) => return None,
    };
    diesel::sql_query(sql)
        .get_result::<Bytes>(conn)
        .ok()
        .and_then(|b| b.bytes)
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
/// database (a GROUP BY over the `audit_log_time` index, and the refused-request counts
/// added), at most `limit` groups, oldest hour first.
pub fn audit_calls_per_hour(
    conn: &mut DbConnection,
    since: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<HourlyCalls>, StoreError> {
    use diesel::sql_types::BigInt;
    // The same statement on both backends but for the placeholders; integer division is
    // integer on both.
    // Verified calls from their rows; refused requests from their counts, as calls whose
    // peer was not verified. The same statement on both backends but for the placeholders;
    // integer division is integer on both.
    const PER_HOUR: &str = "SELECT hour, channel, peer, verified, status, CAST(SUM(calls) AS BIGINT) AS calls FROM ( \
         SELECT (time / 3600) * 3600 AS hour, channel, \
             CASE WHEN verified THEN peer ELSE '' END AS peer, verified, status, COUNT(*) AS calls \
         FROM audit_log WHERE time >= $1 AND time < $2 \
         GROUP BY 1, 2, 3, 4, 5 \
         UNION ALL \
         SELECT (minute / 3600) * 3600 AS hour, channel, '' AS peer, \
             (1 = 0) AS verified, reason AS status, SUM(calls) AS calls \
         FROM audit_refused WHERE minute >= $1 AND minute < $2 \
         GROUP BY 1, 2, 3, 4, 5 \
         ) AS calls GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 LIMIT $3";
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
            return Err(StoreError::MysqlState);
        }
    })
}
