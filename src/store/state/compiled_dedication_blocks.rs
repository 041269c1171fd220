//! The compiled store's dedication blocks (docs/engine.md §7.6): per user and variant, each
//! course's sessions starting in a block of days, added up, as opaque bytes
//! (`compiled::dedication` reads them); and the session reads the blocks are made from and
//! answered around.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Integer};

use super::DedicationSessionRow;
use super::compiled_dedication::{Head, head_row};
use super::schema::*;
use crate::store::source::query::{self, tuple_binds, tuples_from};
use crate::store::{DbConnection, StoreError};

/// One block: `16^level` days from day `idx · 16^level`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = compiled_dedication_block)]
pub struct DedicationBlockRow {
    #[diesel(sql_type = BigInt)]
    pub userid: i64,
    #[diesel(sql_type = Integer)]
    pub variant: i32,
    #[diesel(sql_type = Integer)]
    pub level: i32,
    #[diesel(sql_type = BigInt)]
    pub idx: i64,
    #[diesel(sql_type = Binary)]
    pub sums: Vec<u8>,
}

fn mysql_refused(conn: &DbConnection) -> Result<query::Backend, StoreError> {
    match query::backend(conn) {
        query::Backend::Mysql => Err(StoreError::MysqlState),
        b => Ok(b),
    }
}

/// The blocks of each `(user, variant, level, first idx, last idx)`: one statement for them all.
pub fn dedication_blocks(
    conn: &mut DbConnection,
    picks: &[[i64; 5]],
) -> Result<Vec<DedicationBlockRow>, StoreError> {
    if picks.is_empty() {
        return Ok(Vec::new());
    }
    let backend = mysql_refused(conn)?;
    let sql = format!(
        "SELECT b.userid AS userid, b.variant AS variant, b.level AS level, b.idx AS idx, \
         b.sums AS sums FROM {} JOIN compiled_dedication_block b ON b.userid = p.c0 \
         AND b.variant = p.c1 AND b.level = p.c2 AND b.idx >= p.c3 AND b.idx <= p.c4",
        tuples_from(backend, 5, 1)
    );
    Ok(query::load(conn, &sql, tuple_binds(backend, picks))?)
}

/// Replaces the blocks `(user, variant, level, idx)` of `keys` with `rows` (a key without a
/// row is left deleted: no session starts there any more).
pub fn replace_dedication_blocks(
    conn: &mut DbConnection,
    keys: &[[i64; 4]],
    rows: &[DedicationBlockRow],
) -> Result<(), StoreError> {
    use compiled_dedication_block::dsl as b;
    for [user, variant, level, idx] in keys.iter().copied() {
        diesel::delete(
            b::compiled_dedication_block
                .filter(b::userid.eq(user))
                .filter(b::variant.eq(i32::try_from(variant).unwrap_or(i32::MAX)))
                .filter(b::level.eq(i32::try_from(level).unwrap_or(i32::MAX)))
                .filter(b::idx.eq(idx)),
        )
        .execute(conn)?;
    }
    insert_dedication_blocks(conn, rows)
}

pub fn insert_dedication_blocks(
    conn: &mut DbConnection,
    rows: &[DedicationBlockRow],
) -> Result<(), StoreError> {
    match conn {
        // One statement per 100 rows: a round trip per row would dominate on a server.
        DbConnection::Postgres(c) => {
            for chunk in rows.chunks(100) {
                diesel::insert_into(compiled_dedication_block::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
        DbConnection::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(compiled_dedication_block::table)
                    .values(row)
                    .execute(c)?;
            }
        }
        DbConnection::Mysql(_) => return Err(StoreError::MysqlState),
    }
    Ok(())
}

/// The sessions, without their rows, of each `(user, variant, first start, last start, least
/// end)`, every course: those starting in `[first start, last start]` that end at or after
/// `least end`. One statement for them all.
pub fn dedication_session_heads(
    conn: &mut DbConnection,
    picks: &[[i64; 5]],
) -> Result<Vec<DedicationSessionRow>, StoreError> {
    if picks.is_empty() {
        return Ok(Vec::new());
    }
    let backend = mysql_refused(conn)?;
    let empty = match backend {
        query::Backend::Postgres => "''::bytea",
        _ => "CAST('' AS BLOB)",
    };
    let sql = format!(
        "SELECT s.userid AS userid, s.variant AS variant, s.course AS course, \
         s.start_time AS start_time, s.first_id AS first_id, s.end_time AS end_time, \
         s.row_count AS row_count, s.days AS days, {empty} AS row_data FROM {} \
         JOIN compiled_dedication s ON s.userid = p.c0 AND s.variant = p.c1 \
         AND s.start_time >= p.c2 AND s.start_time <= p.c3 AND s.end_time >= p.c4",
        tuples_from(backend, 5, 1)
    );
    Ok(query::load(conn, &sql, tuple_binds(backend, picks))?)
}

/// One user's sessions of one variant, every course, starting in `[from, to]`, without their
/// rows, in `(start, first id)` order: what a block of level 0 is made from.
pub fn dedication_sessions_starting(
    conn: &mut DbConnection,
    user: i64,
    variant: i32,
    (from, to): (i64, i64),
) -> Result<Vec<DedicationSessionRow>, StoreError> {
    use compiled_dedication::dsl as d;
    let rows: Vec<Head> = d::compiled_dedication
        .filter(d::userid.eq(user))
        .filter(d::variant.eq(variant))
        .filter(d::start_time.ge(from))
        .filter(d::start_time.le(to))
        .order((d::start_time, d::first_id))
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
    Ok(rows.into_iter().map(head_row).collect())
}
