//! The instances table: a heartbeat row per running `serve`, so operators see every instance
//! sharing this state, with its version and key.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

/// One instance as it last said it was.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = instances)]
pub struct InstanceRow {
    /// Random, made at start: a restarted process is a new instance.
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    /// The address it listens on, as bound.
    pub listen: String,
    /// SHA-1 of the certificate it signs with at its last beat.
    pub key_fingerprint: String,
    pub started_at: i64,
    /// Its last beat (unix time).
    pub seen_at: i64,
}

/// Writes `row` whole, inserting it at the first beat and replacing it at the next ones.
pub fn upsert_instance(conn: &mut DbConnection, row: &InstanceRow) -> Result<(), StoreError> {
    // The same statement on both backends; the connection types differ, so it is spelt once
    // per arm.
    macro_rules! upsert {
        ($c:expr) => {
            diesel::insert_into(instances::table)
                .values(row)
                .on_conflict(instances::id)
                .do_update()
                .set((
                    instances::host.eq(&row.host),
                    instances::pid.eq(row.pid),
                    instances::version.eq(&row.version),
                    instances::listen.eq(&row.listen),
                    instances::key_fingerprint.eq(&row.key_fingerprint),
                    instances::started_at.eq(row.started_at),
                    instances::seen_at.eq(row.seen_at),
                ))
                .execute($c)
        };
    }
    match conn {
        DbConnection::Sqlite(c) => upsert!(c)?,
        DbConnection::Postgres(c) => upsert!(c)?,
        DbConnection::Mysql(_) => return Err(StoreError::MysqlState),
    };
    Ok(())
}

/// The instances whose last beat is at `since` or later, oldest start first.
pub fn instances_seen_since(
    conn: &mut DbConnection,
    since: i64,
) -> Result<Vec<InstanceRow>, StoreError> {
    Ok(instances::table
        .filter(instances::seen_at.ge(since))
        .order((instances::started_at, instances::id))
        .select(InstanceRow::as_select())
        .load(conn)?)
}

/// Forget the instances whose last beat is before `older_than` (stopped without saying so).
pub fn prune_instances(conn: &mut DbConnection, older_than: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(instances::table.filter(instances::seen_at.lt(older_than))).execute(conn)?)
}

/// An instance that stops cleanly takes its row away.
pub fn delete_instance(conn: &mut DbConnection, id: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(instances::table.filter(instances::id.eq(id))).execute(conn)?)
}
