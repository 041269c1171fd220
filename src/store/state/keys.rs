//! The own_keys table: the history of our own key pairs.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

/// Remember a key pair of ours (history for operators; the PEM files are the keys).
pub fn record_own_key(
    conn: &mut DbConnection,
    fingerprint: &str,
    created_at: i64,
    expires: i64,
    now: i64,
) -> Result<(), StoreError> {
    crate::store::write_transaction(conn, |conn| {
        diesel::update(own_keys::table.filter(own_keys::archived_at.is_null()))
            .filter(own_keys::fingerprint.ne(fingerprint))
            .set(own_keys::archived_at.eq(Some(now)))
            .execute(conn)?;
        let exists = own_keys::table
            .find(fingerprint)
            .select(own_keys::fingerprint)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !exists {
            diesel::insert_into(own_keys::table)
                .values((
                    own_keys::fingerprint.eq(fingerprint),
                    own_keys::created_at.eq(created_at),
                    own_keys::expires.eq(expires),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = own_keys)]
pub struct OwnKey {
    pub fingerprint: String,
    pub created_at: i64,
    pub expires: i64,
    pub archived_at: Option<i64>,
}

pub fn own_key_history(conn: &mut DbConnection) -> Result<Vec<OwnKey>, StoreError> {
    Ok(own_keys::table
        .order(own_keys::created_at.desc())
        .select(OwnKey::as_select())
        .load(conn)?)
}
