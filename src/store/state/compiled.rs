//! The compiled store's tables (docs/engine.md §7). Rows hold the engine's results as opaque
//! bytes: what they mean, and when they may be used, is `compiled`'s business.
//!
//! The batch reads (probes, segment rows, parts) take a list of per-user tuples as one bound
//! value, so an answer for thousands of users is still one statement each.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool};

use super::schema::*;
use crate::store::source::query::{self, tuple_binds, tuples_from};
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
    /// The id range of the pass from scratch under way: `high_water` goes from `pass_from` to
    /// `pass_target`. Both 0 when none runs.
    pub pass_from: i64,
    pub pass_target: i64,
    /// When the census last counted the whole log (unix seconds), 0 never.
    pub census_at: i64,
    /// The retention horizon: the latest oldest-row time under which the census left rows gone
    /// by retention in the store (answers hide them by starting at the log's oldest row); -1
    /// when none is left (docs/engine.md §7.3).
    pub census_mark: i64,
}

impl CompiledMeta {
    /// How far a pass from scratch has got, as (ids done, ids in all), while one runs.
    pub fn first_compile(&self) -> Option<(i64, i64)> {
        (self.pass_target > self.pass_from && self.high_water < self.pass_target).then(|| {
            (
                self.high_water.saturating_sub(self.pass_from).max(0),
                self.pass_target.saturating_sub(self.pass_from),
            )
        })
    }
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
    /// The sums of the blocks being filled, one per level (the compiler's, not the answer's).
    pub open_blocks: Vec<u8>,
    /// Found out of date: recompile in full.
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
            compiled_meta::pass_from.eq(meta.pass_from),
            compiled_meta::pass_target.eq(meta.pass_target),
            compiled_meta::census_at.eq(meta.census_at),
            compiled_meta::census_mark.eq(meta.census_mark),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets everything compiled (new settings, another Moodle database, `compile --full`).
pub fn clear_compiled(conn: &mut DbConnection) -> Result<(), StoreError> {
    diesel::delete(compiled_segments::table).execute(conn)?;
    diesel::delete(compiled_blocks::table).execute(conn)?;
    diesel::delete(compiled_users::table).execute(conn)?;
    diesel::delete(compiled_census::table).execute(conn)?;
    diesel::delete(compiled_meta::table).execute(conn)?;
    // The dedication sessions followed the store's mark: not without it.
    diesel::delete(compiled_dedication_meta::table).execute(conn)?;
    Ok(())
}

/// Bound parameters per `IN` list, well under every backend's limit (SQLite 32 766, PostgreSQL
/// 65 535): an all-user answer of a site of thousands is one statement.
const IDS_PER_QUERY: usize = 5000;

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
    diesel::delete(compiled_blocks::table.filter(compiled_blocks::userid.eq(userid)))
        .execute(conn)?;
    diesel::delete(compiled_users::table.filter(compiled_users::userid.eq(userid)))
        .execute(conn)?;
    Ok(())
}

/// Marks users to be compiled again in full by the next pass; until then answers for them are
/// full scans. One statement per 500 users.
pub fn mark_compiled_stale(conn: &mut DbConnection, userids: &[i64]) -> Result<(), StoreError> {
    for chunk in userids.chunks(IDS_PER_QUERY) {
        diesel::update(compiled_users::table.filter(compiled_users::userid.eq_any(chunk)))
            .set(compiled_users::stale.eq(true))
            .execute(conn)?;
    }
    Ok(())
}

/// The compiled users holding a row older than `time`: their first segment, or their tail when
/// they have no segment yet, starts before it.
pub fn compiled_users_starting_before(
    conn: &mut DbConnection,
    time: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(compiled_users::table
        .filter(
            compiled_users::first_time
                .lt(time)
                .or(compiled_users::tail_time.lt(time)),
        )
        .select(compiled_users::userid)
        .load(conn)?)
}

pub fn stale_compiled_users(conn: &mut DbConnection, limit: i64) -> Result<Vec<i64>, StoreError> {
    Ok(compiled_users::table
        .filter(compiled_users::stale.eq(true))
        .select(compiled_users::userid)
        .order(compiled_users::userid)
        .limit(limit)
        .load(conn)?)
}

/// One compiled segment as written: its number, bounds, first-row-is-a-login, sum and rows.
#[derive(Debug, Clone)]
pub struct SegmentRow {
    pub seq: i64,
    pub first: RowKey,
    pub next: RowKey,
    pub login: bool,
    pub part: Vec<u8>,
    pub rows: Vec<u8>,
}

pub fn insert_segments(
    conn: &mut DbConnection,
    userid: i64,
    segments: &[SegmentRow],
) -> Result<(), StoreError> {
    let rows: Vec<_> = segments
        .iter()
        .map(|s| {
            (
                compiled_segments::userid.eq(userid),
                compiled_segments::seq.eq(s.seq),
                compiled_segments::first_time.eq(s.first.0),
                compiled_segments::first_id.eq(s.first.1),
                compiled_segments::next_time.eq(s.next.0),
                compiled_segments::next_id.eq(s.next.1),
                compiled_segments::login.eq(s.login),
                compiled_segments::part.eq(&s.part),
                compiled_segments::row_data.eq(&s.rows),
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
            return Err(StoreError::MysqlState);
        }
    }
    Ok(())
}

/// Sums of whole blocks: (level, index, bytes).
pub fn insert_blocks(
    conn: &mut DbConnection,
    userid: i64,
    blocks: &[(i32, i64, Vec<u8>)],
) -> Result<(), StoreError> {
    let rows: Vec<_> = blocks
        .iter()
        .map(|(level, idx, part)| {
            (
                compiled_blocks::userid.eq(userid),
                compiled_blocks::level.eq(*level),
                compiled_blocks::idx.eq(*idx),
                compiled_blocks::part.eq(part),
            )
        })
        .collect();
    match conn {
        DbConnection::Postgres(c) => {
            for chunk in rows.chunks(100) {
                diesel::insert_into(compiled_blocks::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
        DbConnection::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(compiled_blocks::table)
                    .values(row)
                    .execute(c)?;
            }
        }
        DbConnection::Mysql(_) => {
            return Err(StoreError::MysqlState);
        }
    }
    Ok(())
}

/// Deletes a user's segments numbered `seq` or more, and every block that covers one of them.
pub fn delete_segments_from(
    conn: &mut DbConnection,
    userid: i64,
    seq: i64,
    levels: u32,
    fanout: i64,
) -> Result<(), StoreError> {
    diesel::delete(
        compiled_segments::table
            .filter(compiled_segments::userid.eq(userid))
            .filter(compiled_segments::seq.ge(seq)),
    )
    .execute(conn)?;
    let mut size = 1i64;
    for level in 1..=levels {
        size = size.saturating_mul(fanout);
        // Block i covers [i·size, (i+1)·size): it holds `seq` or a later one from i = seq / size.
        diesel::delete(
            compiled_blocks::table
                .filter(compiled_blocks::userid.eq(userid))
                .filter(compiled_blocks::level.eq(level as i32))
                .filter(compiled_blocks::idx.ge(seq / size)),
        )
        .execute(conn)?;
    }
    Ok(())
}

fn state_backend(conn: &DbConnection) -> Result<query::Backend, StoreError> {
    match query::backend(conn) {
        query::Backend::Mysql => Err(StoreError::MysqlState),
        b => Ok(b),
    }
}

/// The segment a probe found: its number, first row's key, and whether that row is a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probed {
    pub seq: i64,
    pub first: RowKey,
    pub login: bool,
}

/// One seek per probe `(user, time, id)`: the first of the user's segments whose first row's
/// key is at or after `(time, id)`. In the probes' order; `None` when no segment starts there
/// or later.
pub fn probe_segments(
    conn: &mut DbConnection,
    probes: &[[i64; 3]],
) -> Result<Vec<Option<Probed>>, StoreError> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        ord: i64,
        #[diesel(sql_type = BigInt)]
        seq: i64,
        #[diesel(sql_type = BigInt)]
        first_time: i64,
        #[diesel(sql_type = BigInt)]
        first_id: i64,
        #[diesel(sql_type = Bool)]
        login: bool,
    }
    if probes.is_empty() {
        return Ok(Vec::new());
    }
    let backend = state_backend(conn)?;
    let rows: Vec<[i64; 4]> = probes
        .iter()
        .enumerate()
        .map(|(i, p)| [i as i64, p[0], p[1], p[2]])
        .collect();
    // The subquery is one seek into (userid, first_time, first_id); the join then reads the
    // segment it found by its primary key.
    let sql = format!(
        "SELECT p.c0 AS ord, s.seq AS seq, s.first_time AS first_time, s.first_id AS first_id, \
         s.login AS login FROM {} JOIN compiled_segments s ON s.userid = p.c1 AND s.seq = \
         (SELECT f.seq FROM compiled_segments f WHERE f.userid = p.c1 \
          AND (f.first_time, f.first_id) >= (p.c2, p.c3) \
          ORDER BY f.first_time, f.first_id LIMIT 1)",
        tuples_from(backend, 4, 1)
    );
    let found: Vec<Found> = query::load(conn, &sql, tuple_binds(backend, &rows))?;
    let mut out = vec![None; probes.len()];
    for f in found {
        if let Some(slot) = usize::try_from(f.ord).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(Probed {
                seq: f.seq,
                first: (f.first_time, f.first_id),
                login: f.login,
            });
        }
    }
    Ok(out)
}

/// A segment with its rows, as an answer cuts it.
#[derive(Debug, Clone, QueryableByName)]
pub struct SegmentWithRows {
    #[diesel(sql_type = BigInt)]
    pub userid: i64,
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = BigInt)]
    pub first_time: i64,
    #[diesel(sql_type = BigInt)]
    pub first_id: i64,
    #[diesel(sql_type = BigInt)]
    pub next_time: i64,
    #[diesel(sql_type = BigInt)]
    pub next_id: i64,
    #[diesel(sql_type = Bool)]
    pub login: bool,
    #[diesel(sql_type = Binary)]
    pub row_data: Vec<u8>,
}

/// The segments numbered `[lo, hi)` of each `(user, lo, hi)`, with their rows.
pub fn segment_rows(
    conn: &mut DbConnection,
    picks: &[[i64; 3]],
) -> Result<Vec<SegmentWithRows>, StoreError> {
    if picks.is_empty() {
        return Ok(Vec::new());
    }
    let backend = state_backend(conn)?;
    let sql = format!(
        "SELECT s.userid AS userid, s.seq AS seq, s.first_time AS first_time, \
         s.first_id AS first_id, s.next_time AS next_time, s.next_id AS next_id, \
         s.login AS login, s.row_data AS row_data FROM {} \
         JOIN compiled_segments s ON s.userid = p.c0 AND s.seq >= p.c1 AND s.seq < p.c2",
        tuples_from(backend, 3, 1)
    );
    Ok(query::load(conn, &sql, tuple_binds(backend, picks))?)
}

/// A segment's or a block's sum.
#[derive(Debug, Clone, QueryableByName)]
pub struct PartRow {
    #[diesel(sql_type = BigInt)]
    pub userid: i64,
    #[diesel(sql_type = BigInt)]
    pub level: i64,
    #[diesel(sql_type = BigInt)]
    pub idx: i64,
    #[diesel(sql_type = Binary)]
    pub part: Vec<u8>,
}

/// The sums of units `[lo, hi)` of each `(user, level, lo, hi)`: level 0 are segments, level
/// l ≥ 1 blocks of 16^l segments.
pub fn parts(conn: &mut DbConnection, picks: &[[i64; 4]]) -> Result<Vec<PartRow>, StoreError> {
    if picks.is_empty() {
        return Ok(Vec::new());
    }
    let backend = state_backend(conn)?;
    let from = tuples_from(backend, 4, 1);
    let sql = format!(
        "SELECT s.userid AS userid, CAST(0 AS BIGINT) AS level, s.seq AS idx, s.part AS part \
         FROM {from} JOIN compiled_segments s ON p.c1 = 0 AND s.userid = p.c0 \
         AND s.seq >= p.c2 AND s.seq < p.c3 \
         UNION ALL \
         SELECT b.userid AS userid, CAST(b.level AS BIGINT) AS level, b.idx AS idx, b.part AS part \
         FROM {from} JOIN compiled_blocks b ON p.c1 > 0 AND b.userid = p.c0 \
         AND b.level = p.c1 AND b.idx >= p.c2 AND b.idx < p.c3"
    );
    Ok(query::load(conn, &sql, tuple_binds(backend, picks))?)
}

/// Every user with compiled rows.
pub fn compiled_user_ids(conn: &mut DbConnection) -> Result<Vec<i64>, StoreError> {
    Ok(compiled_users::table
        .select(compiled_users::userid)
        .order(compiled_users::userid)
        .load(conn)?)
}

/// The census: per range of log ids, the rows it held when compiled.
pub fn census_totals(conn: &mut DbConnection) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(compiled_census::table
        .select((compiled_census::bucket, compiled_census::total))
        .order(compiled_census::bucket)
        .load(conn)?)
}

/// The census rows of these ranges: (bucket, total, per-user bytes).
pub fn census_rows(
    conn: &mut DbConnection,
    buckets: &[i64],
) -> Result<Vec<(i64, i64, Vec<u8>)>, StoreError> {
    let mut found = Vec::new();
    for chunk in buckets.chunks(IDS_PER_QUERY) {
        found.extend(
            compiled_census::table
                .filter(compiled_census::bucket.eq_any(chunk))
                .select((
                    compiled_census::bucket,
                    compiled_census::total,
                    compiled_census::row_data,
                ))
                .load::<(i64, i64, Vec<u8>)>(conn)?,
        );
    }
    Ok(found)
}

/// Replaces a census row; a range left with no row is deleted.
pub fn put_census(
    conn: &mut DbConnection,
    bucket: i64,
    total: i64,
    rows: &[u8],
) -> Result<(), StoreError> {
    diesel::delete(compiled_census::table.filter(compiled_census::bucket.eq(bucket)))
        .execute(conn)?;
    if total > 0 {
        diesel::insert_into(compiled_census::table)
            .values((
                compiled_census::bucket.eq(bucket),
                compiled_census::total.eq(total),
                compiled_census::row_data.eq(rows),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records when the census counted the whole log, and the cheap check's mark then.
pub fn set_census(conn: &mut DbConnection, at: i64, mark: i64) -> Result<(), StoreError> {
    diesel::update(compiled_meta::table)
        .set((
            compiled_meta::census_at.eq(at),
            compiled_meta::census_mark.eq(mark),
        ))
        .execute(conn)?;
    Ok(())
}
