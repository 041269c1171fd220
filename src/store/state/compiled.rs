//! The compiled store's tables (docs/engine.md, "Compiled stats"). Rows hold the engine's
//! results as opaque bytes: what they mean, and when they may be used, is `compiled`'s business.

use diesel::prelude::*;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

/// `(timecreated, id)` of a log row.
pub type RowKey = (i64, i64);

/// What the store was compiled with and how far: every compiled row is exact for the log rows
/// with `id <= high_water`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = compiled_meta)]
pub struct CompiledMeta {
    pub settings_key: String,
    pub source_key: String,
    pub high_water: i64,
    pub compiled_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = compiled_users)]
pub struct CompiledUser {
    pub userid: i64,
    pub enrolment_key: String,
    /// The user's log rows with `id <= high_water`, every row counted (filtered or not).
    pub raw_rows: i64,
    /// The lowest and highest of those rows' ids.
    pub min_id: Option<i64>,
    pub max_id: Option<i64>,
    pub segments: i64,
    /// Key of the first segment's first row.
    pub first_time: Option<i64>,
    pub first_id: Option<i64>,
    /// Key of the first row after the last cut, where `tail` starts.
    pub tail_time: Option<i64>,
    pub tail_id: Option<i64>,
    pub summary: Vec<u8>,
    pub tail: Vec<u8>,
    /// Found out of date at answer time: recompile in full.
    pub stale: bool,
}

impl CompiledUser {
    pub fn first(&self) -> Option<RowKey> {
        self.first_time.zip(self.first_id)
    }

    pub fn tail_start(&self) -> Option<RowKey> {
        self.tail_time.zip(self.tail_id)
    }
}

pub fn compiled_meta(conn: &mut DbConnection) -> Result<Option<CompiledMeta>, StoreError> {
    Ok(compiled_meta::table
        .select(CompiledMeta::as_select())
        .first(conn)
        .optional()?)
}

pub fn set_compiled_meta(conn: &mut DbConnection, meta: &CompiledMeta) -> Result<(), StoreError> {
    diesel::delete(compiled_meta::table).execute(conn)?;
    diesel::insert_into(compiled_meta::table)
        .values((
            compiled_meta::id.eq(1),
            compiled_meta::settings_key.eq(&meta.settings_key),
            compiled_meta::source_key.eq(&meta.source_key),
            compiled_meta::high_water.eq(meta.high_water),
            compiled_meta::compiled_at.eq(meta.compiled_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets everything compiled (new settings, another Moodle database, `compile --full`).
pub fn clear_compiled(conn: &mut DbConnection) -> Result<(), StoreError> {
    diesel::delete(compiled_segments::table).execute(conn)?;
    diesel::delete(compiled_users::table).execute(conn)?;
    diesel::delete(compiled_meta::table).execute(conn)?;
    Ok(())
}

/// Bound parameters per `IN` list, well under every backend's limit.
const IDS_PER_QUERY: usize = 500;

pub fn compiled_users(
    conn: &mut DbConnection,
    userids: &[i64],
) -> Result<Vec<CompiledUser>, StoreError> {
    let mut found = Vec::new();
    for chunk in userids.chunks(IDS_PER_QUERY) {
        found.extend(
            compiled_users::table
                .filter(compiled_users::userid.eq_any(chunk))
                .select(CompiledUser::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

/// Replaces a user's row.
pub fn put_compiled_user(conn: &mut DbConnection, user: &CompiledUser) -> Result<(), StoreError> {
    diesel::delete(compiled_users::table.filter(compiled_users::userid.eq(user.userid)))
        .execute(conn)?;
    diesel::insert_into(compiled_users::table)
        .values(user)
        .execute(conn)?;
    Ok(())
}

pub fn delete_compiled_user(conn: &mut DbConnection, userid: i64) -> Result<(), StoreError> {
    diesel::delete(compiled_segments::table.filter(compiled_segments::userid.eq(userid)))
        .execute(conn)?;
    diesel::delete(compiled_users::table.filter(compiled_users::userid.eq(userid)))
        .execute(conn)?;
    Ok(())
}

pub fn mark_compiled_stale(conn: &mut DbConnection, userid: i64) -> Result<(), StoreError> {
    diesel::update(compiled_users::table.filter(compiled_users::userid.eq(userid)))
        .set(compiled_users::stale.eq(true))
        .execute(conn)?;
    Ok(())
}

pub fn stale_compiled_users(conn: &mut DbConnection, limit: i64) -> Result<Vec<i64>, StoreError> {
    Ok(compiled_users::table
        .filter(compiled_users::stale.eq(true))
        .select(compiled_users::userid)
        .order(compiled_users::userid)
        .limit(limit)
        .load(conn)?)
}

/// One compiled segment: its first row's key, the next segment's first row's key, its bytes.
pub type SegmentRow = (RowKey, RowKey, Vec<u8>);

pub fn insert_segments(
    conn: &mut DbConnection,
    userid: i64,
    segments: &[SegmentRow],
) -> Result<(), StoreError> {
    let rows: Vec<_> = segments
        .iter()
        .map(|(first, next, part)| {
            (
                compiled_segments::userid.eq(userid),
                compiled_segments::first_time.eq(first.0),
                compiled_segments::first_id.eq(first.1),
                compiled_segments::next_time.eq(next.0),
                compiled_segments::next_id.eq(next.1),
                compiled_segments::part.eq(part),
            )
        })
        .collect();
    match conn {
        // One statement per 100 rows: a round trip per row would dominate on a server.
        DbConnection::Postgres(c) => {
            for chunk in rows.chunks(100) {
                diesel::insert_into(compiled_segments::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
        // In-process, a prepared statement per row costs about what a batch does.
        DbConnection::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(compiled_segments::table)
                    .values(row)
                    .execute(c)?;
            }
        }
        DbConnection::Mysql(_) => {
            return Err(StoreError::Invalid(crate::store::MYSQL_STATE.into()));
        }
    }
    Ok(())
}

/// Deletes a user's segments that start at `from` or later.
pub fn delete_segments_from(
    conn: &mut DbConnection,
    userid: i64,
    from: RowKey,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        compiled_segments::table
            .filter(compiled_segments::userid.eq(userid))
            .filter(
                compiled_segments::first_time
                    .gt(from.0)
                    .or(compiled_segments::first_time
                        .eq(from.0)
                        .and(compiled_segments::first_id.ge(from.1))),
            ),
    )
    .execute(conn)?)
}

/// A user's segments as (first, next) keys, in order.
pub fn segment_bounds(
    conn: &mut DbConnection,
    userid: i64,
) -> Result<Vec<(RowKey, RowKey)>, StoreError> {
    let rows: Vec<(i64, i64, i64, i64)> = compiled_segments::table
        .filter(compiled_segments::userid.eq(userid))
        .order((compiled_segments::first_time, compiled_segments::first_id))
        .select((
            compiled_segments::first_time,
            compiled_segments::first_id,
            compiled_segments::next_time,
            compiled_segments::next_id,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(ft, fi, nt, ni)| ((ft, fi), (nt, ni)))
        .collect())
}

/// The bytes of a user's segments whose first key is in `[from, until)`, in order.
pub fn segment_parts(
    conn: &mut DbConnection,
    userid: i64,
    from: RowKey,
    until: RowKey,
) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(compiled_segments::table
        .filter(compiled_segments::userid.eq(userid))
        .filter(
            compiled_segments::first_time
                .gt(from.0)
                .or(compiled_segments::first_time
                    .eq(from.0)
                    .and(compiled_segments::first_id.ge(from.1))),
        )
        .filter(
            compiled_segments::first_time
                .lt(until.0)
                .or(compiled_segments::first_time
                    .eq(until.0)
                    .and(compiled_segments::first_id.lt(until.1))),
        )
        .order((compiled_segments::first_time, compiled_segments::first_id))
        .select(compiled_segments::part)
        .load(conn)?)
}

/// Every user with compiled rows.
pub fn compiled_user_ids(conn: &mut DbConnection) -> Result<Vec<i64>, StoreError> {
    Ok(compiled_users::table
        .select(compiled_users::userid)
        .order(compiled_users::userid)
        .load(conn)?)
}
