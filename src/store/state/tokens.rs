//! The ws_tokens table: web-service tokens, each bound to a grant.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = ws_tokens)]
pub struct WsToken {
    pub id: i64,
    #[serde(skip)]
    pub token_hash: String,
    pub token_prefix: String,
    pub grant_id: i64,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub allowed_ips: String,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
    pub grant_id: i64,
    pub label: &'a str,
    pub expires_at: Option<i64>,
    pub allowed_ips: &'a str,
}

pub fn insert_token(
    conn: &mut DbConnection,
    new: &NewToken<'_>,
    now: i64,
) -> Result<WsToken, StoreError> {
    diesel::insert_into(ws_tokens::table)
        .values((
            ws_tokens::token_hash.eq(new.token_hash),
            ws_tokens::token_prefix.eq(new.token_prefix),
            ws_tokens::grant_id.eq(new.grant_id),
            ws_tokens::label.eq(new.label),
            ws_tokens::created_at.eq(now),
            ws_tokens::expires_at.eq(new.expires_at),
            ws_tokens::allowed_ips.eq(new.allowed_ips),
            ws_tokens::revoked.eq(false),
        ))
        .execute(conn)?;
    token_by_hash(conn, new.token_hash)?
        .ok_or_else(|| crate::store::Internal::TokenVanishedAfterWriting.into())
}

pub fn token_by_hash(conn: &mut DbConnection, hash: &str) -> Result<Option<WsToken>, StoreError> {
    Ok(ws_tokens::table
        .filter(ws_tokens::token_hash.eq(hash))
        .select(WsToken::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_tokens(conn: &mut DbConnection) -> Result<Vec<WsToken>, StoreError> {
    Ok(ws_tokens::table
        .order(ws_tokens::id.asc())
        .select(WsToken::as_select())
        .load(conn)?)
}

/// Revoke by id or by the listed prefix. Returns how many tokens were revoked.
pub fn revoke_token(conn: &mut DbConnection, id_or_prefix: &str) -> Result<usize, StoreError> {
    // A prefix is 8 hex characters and may be all digits, so it is tried first, over revoked
    // tokens too (revoking one twice must not fall through to a row id); only a string that
    // is nobody's prefix is taken as a row id.
    let by_prefix: Vec<(i64, bool)> = ws_tokens::table
        .filter(ws_tokens::token_prefix.eq(id_or_prefix))
        .select((ws_tokens::id, ws_tokens::revoked))
        .load(conn)?;
    let named_by_prefix = !by_prefix.is_empty();
    let by_prefix: Vec<i64> = by_prefix
        .into_iter()
        .filter(|(_, revoked)| !revoked)
        .map(|(id, _)| id)
        .collect();
    let ids = match (!named_by_prefix, id_or_prefix.parse::<i64>()) {
        (true, Ok(id)) => ws_tokens::table
            .filter(ws_tokens::revoked.eq(false))
            .filter(ws_tokens::id.eq(id))
            .select(ws_tokens::id)
            .load(conn)?,
        _ => by_prefix,
    };
    Ok(
        diesel::update(ws_tokens::table.filter(ws_tokens::id.eq_any(ids)))
            .set(ws_tokens::revoked.eq(true))
            .execute(conn)?,
    )
}

/// Revoke the token with row id `id` (the console's button). Returns whether an active
/// token was revoked.
pub fn revoke_token_by_id(conn: &mut DbConnection, id: i64) -> Result<bool, StoreError> {
    Ok(diesel::update(
        ws_tokens::table
            .filter(ws_tokens::id.eq(id))
            .filter(ws_tokens::revoked.eq(false)),
    )
    .set(ws_tokens::revoked.eq(true))
    .execute(conn)?
        == 1)
}

pub fn mark_token_used(conn: &mut DbConnection, id: i64, now: i64) -> Result<(), StoreError> {
    diesel::update(ws_tokens::table.find(id))
        .set(ws_tokens::last_used_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}
