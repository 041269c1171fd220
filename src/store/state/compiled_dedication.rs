//! The compiled store's dedication tables (docs/engine.md §7.6): per user, variant and course,
//! the sessions of the whole log, each with its rows as opaque bytes (`compiled::dedication`
//! reads them).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Integer};

use super::schema::*;
use crate::store::source::query::{self, tuple_binds, tuples_from};
use crate::store::{DbConnection, StoreError};

/// What the dedication sessions were compiled from and how far: exact for the log rows with
/// `id <= high_water`, cut with these session limits.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = compiled_dedication_meta)]
pub struct DedicationMeta {
    pub source_key: String,
    pub high_water: i64,
    pub live_limit: i64,
    pub legacy_limit: i64,
    /// The live rule's ignore limit the blocks were summed with; -1: no blocks to use.
    pub live_ignore: i64,
    /// The longest session stored (end - start); -1: not known.
    pub max_span: i64,
}

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = compiled_dedication)]
pub struct DedicationSessionRow {
    #[diesel(sql_type = BigInt)]
    pub userid: i64,
    #[diesel(sql_type = Integer)]
    pub variant: i32,
    #[diesel(sql_type = BigInt)]
    pub course: i64,
    #[diesel(sql_type = BigInt)]
    pub start_time: i64,
    #[diesel(sql_type = BigInt)]
    pub first_id: i64,
    #[diesel(sql_type = BigInt)]
    pub end_time: i64,
    #[diesel(sql_type = BigInt)]
    pub row_count: i64,
    #[diesel(sql_type = BigInt)]
    pub days: i64,
    /// Empty when read without its rows.
    #[diesel(sql_type = Binary)]
    pub row_data: Vec<u8>,
}

impl DedicationSessionRow {
    /// `(user, variant, course, start, first id)`, its key.
    pub fn key(&self) -> [i64; 5] {
        [
            self.userid,
            i64::from(self.variant),
            self.course,
            self.start_time,
            self.first_id,
        ]
    }
}

pub fn dedication_meta(conn: &mut DbConnection) -> Result<Option<DedicationMeta>, StoreError> {
    Ok(compiled_dedication_meta::table
        .select(DedicationMeta::as_select())
        .first(conn)
        .optional()?)
}

pub fn set_dedication_meta(
    conn: &mut DbConnection,
    meta: &DedicationMeta,
) -> Result<(), StoreError> {
    forget_dedication_meta(conn)?;
    diesel::insert_into(compiled_dedication_meta::table)
        .values((
            compiled_dedication_meta::id.eq(1),
            compiled_dedication_meta::source_key.eq(&meta.source_key),
            compiled_dedication_meta::high_water.eq(meta.high_water),
            compiled_dedication_meta::live_limit.eq(meta.live_limit),
            compiled_dedication_meta::legacy_limit.eq(meta.legacy_limit),
            compiled_dedication_meta::live_ignore.eq(meta.live_ignore),
            compiled_dedication_meta::max_span.eq(meta.max_span),
        ))
        .execute(conn)?;
    Ok(())
}

/// Without a mark, no answer reads the sessions: done before anything could make them wrong.
pub fn forget_dedication_meta(conn: &mut DbConnection) -> Result<(), StoreError> {
    diesel::delete(compiled_dedication_meta::table).execute(conn)?;
    Ok(())
}

/// Forgets every session and block, and the mark.
pub fn clear_dedication(conn: &mut DbConnection) -> Result<(), StoreError> {
    forget_dedication_meta(conn)?;
    diesel::delete(compiled_dedication::table).execute(conn)?;
    diesel::delete(compiled_dedication_block::table).execute(conn)?;
    Ok(())
}

const IDS_PER_QUERY: usize = 5000;

pub fn delete_dedication_users(conn: &mut DbConnection, userids: &[i64]) -> Result<(), StoreError> {
    for chunk in userids.chunks(IDS_PER_QUERY) {
        diesel::delete(
            compiled_dedication::table.filter(compiled_dedication::userid.eq_any(chunk)),
        )
        .execute(conn)?;
        diesel::delete(
            compiled_dedication_block::table
                .filter(compiled_dedication_block::userid.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(())
}

pub fn delete_dedication_sessions(
    conn: &mut DbConnection,
    keys: &[[i64; 5]],
) -> Result<(), StoreError> {
    use compiled_dedication::dsl as d;
    for [user, variant, course, start, first] in keys.iter().copied() {
        let variant = i32::try_from(variant).unwrap_or(i32::MAX);
        diesel::delete(
            d::compiled_dedication
                .filter(d::userid.eq(user))
                .filter(d::variant.eq(variant))
                .filter(d::course.eq(course))
                .filter(d::start_time.eq(start))
                .filter(d::first_id.eq(first)),
        )
        .execute(conn)?;
    }
    Ok(())
}

pub fn insert_dedication_sessions(
    conn: &mut DbConnection,
    rows: &[DedicationSessionRow],
) -> Result<(), StoreError> {
    match conn {
        // One statement per 100 rows: a round trip per row would dominate on a server.
        DbConnection::Postgres(c) => {
            for chunk in rows.chunks(100) {
                diesel::insert_into(compiled_dedication::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
        DbConnection::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(compiled_dedication::table)
                    .values(row)
                    .execute(c)?;
            }
        }
        DbConnection::Mysql(_) => return Err(StoreError::MysqlState),
    }
    Ok(())
}

/// A session's columns but its rows, as read without them.
pub(super) type Head = (i64, i32, i64, i64, i64, i64, i64, i64);

pub(super) fn head_row(
    (userid, variant, course, start_time, first_id, end_time, row_count, days): Head,
) -> DedicationSessionRow {
    DedicationSessionRow {
        userid,
        variant,
        course,
        start_time,
        first_id,
        end_time,
        row_count,
        days,
        row_data: Vec::new(),
    }
}

/// The sessions of these users and variant (of one course when given) that reach into
/// `[from, to]`, without their rows, in no particular order.
pub fn dedication_sessions(
    conn: &mut DbConnection,
    userids: &[i64],
    variant: i32,
    course: Option<i64>,
    (from, to): (i64, i64),
) -> Result<Vec<DedicationSessionRow>, StoreError> {
    use compiled_dedication::dsl as d;
    let mut found = Vec::new();
    for chunk in userids.chunks(IDS_PER_QUERY) {
        let (lo, hi) = course.map_or((i64::MIN, i64::MAX), |c| (c, c));
        let rows: Vec<Head> = d::compiled_dedication
            .filter(d::userid.eq_any(chunk))
            .filter(d::variant.eq(variant))
            .filter(d::course.ge(lo))
            .filter(d::course.le(hi))
            .filter(d::end_time.ge(from))
            .filter(d::start_time.le(to))
            .select((
                d::userid,
                d::variant,
                d::course,
                d::start_time,
                d::first_id,
                d::end_time,
                d::row_count,
                d::days,
            ))
            .load(conn)?;
        found.extend(rows.into_iter().map(head_row));
    }
    Ok(found)
}

/// The sessions, with their rows, of each `(user, variant, course, lo, hi)` that reach into
/// `[lo, hi]`: one statement for them all.
pub fn dedication_sessions_with_rows(
    conn: &mut DbConnection,
    picks: &[[i64; 5]],
) -> Result<Vec<DedicationSessionRow>, StoreError> {
    if picks.is_empty() {
        return Ok(Vec::new());
    }
    let backend = match query::backend(conn) {
        query::Backend::Mysql => return Err(StoreError::MysqlState),
        b => b,
    };
    let sql = format!(
        "SELECT s.userid AS userid, s.variant AS variant, s.course AS course, \
         s.start_time AS start_time, s.first_id AS first_id, s.end_time AS end_time, \
         s.row_count AS row_count, s.days AS days, s.row_data AS row_data FROM {} \
         JOIN compiled_dedication s ON s.userid = p.c0 AND s.variant = p.c1 \
         AND s.course = p.c2 AND s.end_time >= p.c3 AND s.start_time <= p.c4",
        tuples_from(backend, 5, 1)
    );
    Ok(query::load(conn, &sql, tuple_binds(backend, picks))?)
}
