//! The shared_keys table: our key pairs when several instances share a PostgreSQL state.
//! The private key is stored sealed (crypto::kek); this file only moves rows.

use diesel::prelude::*;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

/// One of our key pairs as the state database holds it. `key_sealed` opens only with the
/// key-encryption key named by `kek_id`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = shared_keys)]
pub struct SharedKeyRow {
    pub fingerprint: String,
    pub is_current: bool,
    pub not_before: i64,
    pub not_after: i64,
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    pub kek_id: String,
    pub created_at: i64,
    pub archived_at: Option<i64>,
}

/// Every stored key pair: the current one first, then the archived ones, newest first.
pub fn shared_key_rows(conn: &mut DbConnection) -> Result<Vec<SharedKeyRow>, StoreError> {
    Ok(shared_keys::table
        .order((
            shared_keys::is_current.desc(),
            shared_keys::not_before.desc(),
            shared_keys::created_at.desc(),
        ))
        .select(SharedKeyRow::as_select())
        .load(conn)?)
}

/// The current key pair's fingerprint: what every instance polls to notice a rotation.
pub fn current_shared_key(conn: &mut DbConnection) -> Result<Option<String>, StoreError> {
    Ok(shared_keys::table
        .filter(shared_keys::is_current.eq(true))
        .select(shared_keys::fingerprint)
        .first(conn)
        .optional()?)
}

/// Make `fresh` the current key pair: the one current until now is archived at `now`, and
/// archived ones beyond the newest `keep_archived` are deleted. Call it inside
/// `store::write_transaction`, which also serialises it with every other instance's writes.
pub fn make_shared_key_current(
    conn: &mut DbConnection,
    fresh: &SharedKeyRow,
    keep_archived: usize,
    now: i64,
) -> Result<(), StoreError> {
    diesel::update(shared_keys::table.filter(shared_keys::is_current.eq(true)))
        .set((
            shared_keys::is_current.eq(false),
            shared_keys::archived_at.eq(Some(now)),
        ))
        .execute(conn)?;
    let mut row = fresh.clone();
    row.is_current = true;
    row.archived_at = None;
    diesel::insert_into(shared_keys::table)
        .values(&row)
        .execute(conn)?;
    let archived: Vec<String> = shared_keys::table
        .filter(shared_keys::is_current.eq(false))
        .order((
            shared_keys::not_before.desc(),
            shared_keys::created_at.desc(),
        ))
        .select(shared_keys::fingerprint)
        .load(conn)?;
    for fingerprint in archived.iter().skip(keep_archived) {
        diesel::delete(shared_keys::table.find(fingerprint)).execute(conn)?;
    }
    Ok(())
}

/// Store an archived key pair (importing a key directory into the database).
pub fn insert_archived_shared_key(
    conn: &mut DbConnection,
    row: &SharedKeyRow,
) -> Result<(), StoreError> {
    let mut row = row.clone();
    row.is_current = false;
    diesel::insert_into(shared_keys::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// Replace a row's sealed key (a new key-encryption key).
pub fn reseal_shared_key(
    conn: &mut DbConnection,
    fingerprint: &str,
    key_sealed: &[u8],
    kek_id: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::update(shared_keys::table.find(fingerprint))
        .set((
            shared_keys::key_sealed.eq(key_sealed),
            shared_keys::kek_id.eq(kek_id),
        ))
        .execute(conn)?)
}
