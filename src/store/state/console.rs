//! The console_users and console_sessions tables: who may log in to the console, and the
//! sessions they hold (by the hash of the cookie's token, never the token).

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = console_users)]
pub struct ConsoleUser {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// Add a console user, or replace the password of one with that name. Returns whether the
/// user is new.
pub fn set_console_user(
    conn: &mut DbConnection,
    name: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    crate::store::write_transaction(conn, |conn| {
        let updated = diesel::update(console_users::table.filter(console_users::name.eq(name)))
            .set(console_users::password_hash.eq(password_hash))
            .execute(conn)?;
        if updated > 0 {
            // A new password ends every session of the old one.
            let ids = console_users::table
                .filter(console_users::name.eq(name))
                .select(console_users::id);
            diesel::delete(console_sessions::table.filter(console_sessions::user_id.eq_any(ids)))
                .execute(conn)?;
            return Ok(false);
        }
        diesel::insert_into(console_users::table)
            .values((
                console_users::name.eq(name),
                console_users::password_hash.eq(password_hash),
                console_users::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

pub fn console_user_by_name(
    conn: &mut DbConnection,
    name: &str,
) -> Result<Option<ConsoleUser>, StoreError> {
    Ok(console_users::table
        .filter(console_users::name.eq(name))
        .select(ConsoleUser::as_select())
        .first(conn)
        .optional()?)
}

pub fn console_users(conn: &mut DbConnection) -> Result<Vec<ConsoleUser>, StoreError> {
    Ok(console_users::table
        .order(console_users::name)
        .select(ConsoleUser::as_select())
        .load(conn)?)
}

/// Remove a console user and their sessions. Returns whether there was one.
pub fn remove_console_user(conn: &mut DbConnection, name: &str) -> Result<bool, StoreError> {
    crate::store::write_transaction(conn, |conn| {
        let Some(user) = console_user_by_name(conn, name)? else {
            return Ok(false);
        };
        diesel::delete(console_sessions::table.filter(console_sessions::user_id.eq(user.id)))
            .execute(conn)?;
        diesel::delete(console_users::table.find(user.id)).execute(conn)?;
        Ok(true)
    })
}

/// Start a session: its token's hash, its CSRF token, until `expires_at`.
pub fn open_console_session(
    conn: &mut DbConnection,
    token_hash: &str,
    user_id: i64,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    diesel::insert_into(console_sessions::table)
        .values((
            console_sessions::token_hash.eq(token_hash),
            console_sessions::user_id.eq(user_id),
            console_sessions::csrf.eq(csrf),
            console_sessions::created_at.eq(now),
            console_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    diesel::update(console_users::table.find(user_id))
        .set(console_users::last_login_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// A live session: (user, its CSRF token). Expired sessions are deleted on the way.
pub fn console_session(
    conn: &mut DbConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<(ConsoleUser, String)>, StoreError> {
    diesel::delete(console_sessions::table.filter(console_sessions::expires_at.le(now)))
        .execute(conn)?;
    Ok(console_sessions::table
        .inner_join(console_users::table)
        .filter(console_sessions::token_hash.eq(token_hash))
        .select((ConsoleUser::as_select(), console_sessions::csrf))
        .first(conn)
        .optional()?)
}

pub fn close_console_session(conn: &mut DbConnection, token_hash: &str) -> Result<(), StoreError> {
    diesel::delete(console_sessions::table.find(token_hash)).execute(conn)?;
    Ok(())
}
