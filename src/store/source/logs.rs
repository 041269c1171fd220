//! The extracted log: one user's or many users' rows of `logstore_standard_log`, filtered
//! as Moodle filters them and streamed row by row.
//!
//! Over 800 lines: the compiled store's reads of the log (the census's counts and rows by id
//! range, the change mark, the oldest row) share this file's row types and filters; their seam
//! is `impl Source` from `log_census` on, the next split (a `census.rs` beside this one).

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::expression_types::Untyped;
use diesel::row::{Field, Row};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryResult, QueryableByName};

use super::query::{self, Backend, Bind, Size, in_list};
use super::{CONTEXT_MODULE, LogRow, LogText, ModuleInfo, Source, SourceError};
use crate::store::DbConnection;

#[derive(QueryableByName)]
struct RawLog {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    userid: i64,
    #[diesel(sql_type = BigInt)]
    timecreated: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    courseid: Option<i64>,
    #[diesel(sql_type = BigInt)]
    contextlevel: i64,
    #[diesel(sql_type = Text)]
    action: LogText,
    #[diesel(sql_type = Text)]
    target: LogText,
    #[diesel(sql_type = Nullable<Text>)]
    origin: Option<LogText>,
    #[diesel(sql_type = Nullable<BigInt>)]
    realuserid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    ctx_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    ctx_instanceid: Option<i64>,
    #[diesel(embed)]
    cm: CmColumns,
}

/// A module context's `course_modules` row and module name, read by a LEFT JOIN.
#[derive(QueryableByName)]
struct CmColumns {
    #[diesel(sql_type = Nullable<BigInt>)]
    cm_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    modname: Option<LogText>,
    #[diesel(sql_type = Nullable<BigInt>)]
    cm_section: Option<i64>,
}

impl CmColumns {
    /// The cm of a live context: its module and section are known while its row exists.
    fn module(self, cmid: i64) -> ModuleInfo {
        let cm_exists = self.cm_id.is_some();
        ModuleInfo::Cm {
            cmid,
            module: if cm_exists { self.modname } else { None },
            section: if cm_exists { self.cm_section } else { None },
        }
    }
}

impl From<RawLog> for LogRow {
    fn from(r: RawLog) -> Self {
        let module = if r.contextlevel != CONTEXT_MODULE {
            ModuleInfo::NotModule
        } else if r.ctx_id.is_none() {
            ModuleInfo::ContextGone
        } else {
            r.cm.module(r.ctx_instanceid.unwrap_or(0))
        };
        LogRow {
            id: r.id,
            userid: r.userid,
            time: r.timecreated,
            course: r.courseid,
            context_level: r.contextlevel,
            action: r.action,
            target: r.target,
            origin: r.origin,
            realuserid: r.realuserid,
            module,
        }
    }
}

/// Log ids per query of a batch read (see [`Source::for_each_users_log`]). Each query reads one
/// such slice of the primary key: the daemon holds at most this many rows at a time, and the
/// server never sorts anything larger than the small join tables.
pub const IDS_PER_BATCH_QUERY: i64 = 50_000;

/// Filters of spec §2.1 that can be decided in SQL, with D10's reading of NULL origin.
/// `courseid <> 0 OR (courseid = 0 AND …)` drops NULL courseids, as Moodle's query does.
const LOG_FILTERS: &str = "l.timecreated >= $2 AND l.timecreated <= $3 \
     AND (l.origin IS NULL OR l.origin <> 'cli') \
     AND l.action <> 'failed' \
     AND (l.courseid <> 0 OR (l.courseid = 0 AND l.action IN ('loggedin', 'loggedout'))) \
     AND l.realuserid IS NULL";

impl Source {
    fn log_sql(&self, user_cond: &str, order: Option<&str>) -> String {
        self.log_sql_filtered(user_cond, Some(LOG_FILTERS), order)
    }

    /// `filters` None: every row, for the compiler, which counts them all (the engine applies
    /// the same filters).
    fn log_sql_filtered(&self, cond: &str, filters: Option<&str>, order: Option<&str>) -> String {
        format!(
            "SELECT l.id AS id, l.userid AS userid, l.timecreated AS timecreated, \
             l.courseid AS courseid, l.contextlevel AS contextlevel, l.action AS action, \
             l.target AS target, l.origin AS origin, l.realuserid AS realuserid, \
             ctx.id AS ctx_id, ctx.instanceid AS ctx_instanceid, cm.id AS cm_id, \
             m.name AS modname, cm.section AS cm_section \
             FROM {log} l \
             LEFT JOIN {ctx} ctx ON l.contextlevel = {CONTEXT_MODULE} AND ctx.id = l.contextid \
             LEFT JOIN {cm} cm ON cm.id = ctx.instanceid \
             LEFT JOIN {m} m ON m.id = cm.module \
             WHERE {cond}{filters}{order}",
            filters = filters.map(|f| format!(" AND {f}")).unwrap_or_default(),
            order = order.map(|o| format!(" ORDER BY {o}")).unwrap_or_default(),
            log = self.t("logstore_standard_log"),
            ctx = self.t("context"),
            cm = self.t("course_modules"),
            m = self.t("modules"),
        )
    }

    /// One user's extracted log over `[from, to]` (both inclusive), ordered by (time, id),
    /// handed to `f` row by row without buffering. Returns the number of rows.
    pub fn for_each_user_log(
        &self,
        conn: &mut DbConnection,
        userid: i64,
        from: i64,
        to: i64,
        mut f: impl FnMut(LogRow),
    ) -> Result<u64, SourceError> {
        let sql = self.log_sql("l.userid = $1", Some("l.timecreated, l.id"));
        Ok(stream_logs(
            conn,
            &sql,
            vec![Bind::Int(userid), Bind::Int(from), Bind::Int(to)],
            &mut f,
        )?)
    }

    /// Many users' logs in one pass over the log, in ascending log id: the primary key read in
    /// slices of [`IDS_PER_BATCH_QUERY`] ids, one query each, with no ORDER BY (a server-side
    /// sort of an all-user read spills the whole log to temporary files); each slice is put in
    /// id order here. Ids follow insertion, not `timecreated`, so a user's rows can come out of
    /// (time, id) order: putting them in that order is the caller's job (see
    /// `reports::users_reports`). The id list is one bound parameter (a PostgreSQL
    /// array, a JSON array on SQLite and MySQL).
    pub fn for_each_users_log(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        from: i64,
        to: i64,
        mut f: impl FnMut(LogRow),
    ) -> Result<u64, SourceError> {
        if userids.is_empty() {
            return Ok(0);
        }
        let mut ids = userids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let Some((first, last)) = self.log_id_bounds(conn)? else {
            return Ok(0);
        };
        let sql = self.users_log_slice_sql(conn);
        let mut rows = 0;
        let mut slice: Vec<LogRow> = Vec::new();
        let mut start = first;
        while start <= last {
            let end = start.saturating_add(IDS_PER_BATCH_QUERY);
            slice.clear();
            rows += query::stream::<RawLog, _>(
                conn,
                &sql,
                vec![
                    Bind::IntList(ids.clone()),
                    Bind::Int(from),
                    Bind::Int(to),
                    Bind::Int(start),
                    Bind::Int(end),
                ],
                Size::Bounded,
                |raw| slice.push(raw.into()),
            )?;
            slice.sort_unstable_by_key(|r| r.id);
            slice.drain(..).for_each(&mut f);
            if end == i64::MAX {
                break;
            }
            start = end;
        }
        Ok(rows)
    }

    /// The SQL of one slice of [`Source::for_each_users_log`], as sent on `conn`'s backend:
    /// `$1` the user ids, `$2`..`$3` the time window, `$4`..`$5` the id range (end excluded).
    pub fn users_log_slice_sql(&self, conn: &mut DbConnection) -> String {
        let cond = format!(
            "{} AND l.id >= $4 AND l.id < $5",
            in_list(query::backend(conn), "l.userid", 1)
        );
        self.log_sql(&cond, None)
    }

    /// Every row (filtered or not) with `lo <= id < hi`, of every user, in id order: one query
    /// on the primary key, no ORDER BY (the slice is put in order here). The compiler's read.
    pub fn logs_in_ids(
        &self,
        conn: &mut DbConnection,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<LogRow>, SourceError> {
        self.bare_logs(
            conn,
            "l.id >= $1 AND l.id < $2",
            vec![Bind::Int(lo), Bind::Int(hi)],
            usize::try_from(hi.saturating_sub(lo))
                .unwrap_or(0)
                .min(1 << 20),
        )
    }

    /// Rows (filtered or not) read the compiler's way: the log's own columns only, taken by
    /// position, and each module context resolved once per read with one query for all of
    /// them, rather than three joins per row. That gives each row what the joined read of
    /// [`Source::log_sql`] gives it. Sorted by id.
    fn bare_logs(
        &self,
        conn: &mut DbConnection,
        cond: &str,
        binds: Vec<Bind>,
        expected: usize,
    ) -> Result<Vec<LogRow>, SourceError> {
        let sql = format!(
            "SELECT l.id, l.userid, l.timecreated, l.courseid, l.contextlevel, l.contextid, \
             l.action, l.target, l.origin, l.realuserid FROM {} l WHERE {cond}",
            self.t("logstore_standard_log")
        );
        let mut rows: Vec<LogRow> = Vec::with_capacity(expected);
        // Rows of module contexts, by index in `rows`, with their context id.
        let mut pending: Vec<(usize, Option<i64>)> = Vec::new();
        query::stream::<BareLog, _>(conn, &sql, binds, Size::Bounded, |b| {
            if b.row.context_level == CONTEXT_MODULE {
                pending.push((rows.len(), b.contextid));
            }
            rows.push(b.row);
        })?;
        let mut contexts: Vec<i64> = pending.iter().filter_map(|(_, c)| *c).collect();
        contexts.sort_unstable();
        contexts.dedup();
        let resolved = self.module_contexts(conn, &contexts)?;
        for (index, contextid) in pending {
            let module = contextid
                .and_then(|c| resolved.get(&c).cloned())
                .unwrap_or(ModuleInfo::ContextGone);
            if let Some(row) = rows.get_mut(index) {
                row.module = module;
            }
        }
        rows.sort_unstable_by_key(|r| r.id);
        Ok(rows)
    }

    /// How log rows of these (module-level) contexts resolve, as the joins of
    /// [`Source::log_sql`] resolve them; a context absent from the answer is gone.
    fn module_contexts(
        &self,
        conn: &mut DbConnection,
        contexts: &[i64],
    ) -> Result<std::collections::HashMap<i64, ModuleInfo>, SourceError> {
        #[derive(QueryableByName)]
        struct Ctx {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = BigInt)]
            instanceid: i64,
            #[diesel(embed)]
            cm: CmColumns,
        }
        let mut out = std::collections::HashMap::with_capacity(contexts.len());
        for chunk in contexts.chunks(1000) {
            let sql = format!(
                "SELECT ctx.id AS id, ctx.instanceid AS instanceid, cm.id AS cm_id, \
                 m.name AS modname, cm.section AS cm_section FROM {ctx} ctx \
                 LEFT JOIN {cm} cm ON cm.id = ctx.instanceid \
                 LEFT JOIN {m} m ON m.id = cm.module WHERE {list}",
                ctx = self.t("context"),
                cm = self.t("course_modules"),
                m = self.t("modules"),
                list = in_list(query::backend(conn), "ctx.id", 1),
            );
            let found: Vec<Ctx> = query::load(conn, &sql, vec![Bind::IntList(chunk.to_vec())])?;
            out.extend(found.into_iter().map(|c| (c.id, c.cm.module(c.instanceid))));
        }
        Ok(out)
    }

    /// These users' rows (filtered or not) logged after `after_id`, in id order.
    pub fn logs_after(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        after_id: i64,
    ) -> Result<Vec<LogRow>, SourceError> {
        if userids.is_empty() {
            return Ok(Vec::new());
        }
        let cond = format!(
            "{} AND l.id > $2",
            in_list(query::backend(conn), "l.userid", 1)
        );
        self.bare_logs(
            conn,
            &cond,
            vec![Bind::IntList(userids.to_vec()), Bind::Int(after_id)],
            0,
        )
    }

    /// How many rows each of these users has in the log, filtered or not: a count over
    /// Moodle's `(userid)` index, which holds every row's id, so no row is read.
    pub fn log_counts(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
    ) -> Result<std::collections::HashMap<i64, i64>, SourceError> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            userid: i64,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut counts = std::collections::HashMap::new();
        for chunk in userids.chunks(1000) {
            let sql = format!(
                "SELECT userid, COUNT(*) AS n FROM {} WHERE {} GROUP BY userid",
                self.t("logstore_standard_log"),
                in_list(query::backend(conn), "userid", 1)
            );
            let rows: Vec<Count> = query::load(conn, &sql, vec![Bind::IntList(chunk.to_vec())])?;
            counts.extend(rows.into_iter().map(|c| (c.userid, c.n)));
        }
        Ok(counts)
    }

    /// The oldest row's time (the `timecreated` index) and the highest id (the primary key),
    /// in one statement: what every compiled answer checks first (docs/engine.md §7.3).
    pub fn log_overview(
        &self,
        conn: &mut DbConnection,
    ) -> Result<(Option<i64>, Option<i64>), SourceError> {
        #[derive(QueryableByName)]
        struct Overview {
            #[diesel(sql_type = Nullable<BigInt>)]
            oldest: Option<i64>,
            #[diesel(sql_type = Nullable<BigInt>)]
            hi: Option<i64>,
        }
        let rows: Vec<Overview> = query::load(
            conn,
            &format!(
                "SELECT (SELECT MIN(timecreated) FROM {t}) AS oldest, \
                 (SELECT MAX(id) FROM {t}) AS hi",
                t = self.t("logstore_standard_log")
            ),
            vec![],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .map(|o| (o.oldest, o.hi))
            .unwrap_or((None, None)))
    }

    /// One user's rows, every one (filtered or not), from key `from` on with ids up to
    /// `max_id`, in (time, id) order: what the compiler reads to compile a user again.
    pub fn for_each_user_raw_log_from(
        &self,
        conn: &mut DbConnection,
        userid: i64,
        from: (i64, i64),
        max_id: i64,
        mut f: impl FnMut(LogRow),
    ) -> Result<u64, SourceError> {
        let cond = "l.userid = $1 AND (l.timecreated > $2 OR (l.timecreated = $2 AND l.id >= $3)) \
                    AND l.id <= $4";
        let sql = self.log_sql_filtered(cond, None, Some("l.timecreated, l.id"));
        Ok(stream_logs(
            conn,
            &sql,
            vec![
                Bind::Int(userid),
                Bind::Int(from.0),
                Bind::Int(from.1),
                Bind::Int(max_id),
            ],
            &mut f,
        )?)
    }

    /// The census of the log from `min_id` up to `max_id` (docs/engine.md §7.3): how many
    /// rows each range of `2^shift` ids holds. On PostgreSQL and MySQL a read of the primary
    /// key alone.
    pub fn log_census(
        &self,
        conn: &mut DbConnection,
        min_id: i64,
        max_id: i64,
        shift: u32,
    ) -> Result<Vec<(i64, i64)>, SourceError> {
        #[derive(QueryableByName)]
        struct Bucket {
            #[diesel(sql_type = BigInt)]
            bucket: i64,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let size = 1i64 << shift;
        // Ids are positive: integer division is the range's number. MySQL's `/` divides
        // exactly; `DIV` is its integer division.
        let bucket = match query::backend(conn) {
            Backend::Mysql => format!("id DIV {size}"),
            Backend::Sqlite | Backend::Postgres => format!("id / {size}"),
        };
        let rows: Vec<Bucket> = query::load(
            conn,
            &format!(
                "SELECT {bucket} AS bucket, COUNT(*) AS n FROM {} \
                 WHERE id >= $2 AND id <= $1 GROUP BY {bucket}",
                self.t("logstore_standard_log")
            ),
            vec![Bind::Int(max_id), Bind::Int(min_id)],
        )?;
        Ok(rows.into_iter().map(|b| (b.bucket, b.n)).collect())
    }

    /// What tells, without counting the log by range, whether rows under `max_id` may have
    /// been deleted since it was last read (docs/engine.md §7.3).
    pub fn log_change_mark(
        &self,
        conn: &mut DbConnection,
        max_id: i64,
    ) -> Result<ChangeMark, SourceError> {
        let table = self.t("logstore_standard_log");
        // A count of the whole table (SQLite from its smallest index's pages, PostgreSQL and
        // MySQL from the primary key alone), less the rows above the mark (a short range of the
        // primary key). PostgreSQL's own counter of deleted tuples would cost nothing, but a
        // session's statistics reach it only when that session idles or ends: a pass could miss
        // a deletion made just before it.
        let rows: Vec<OptInt> = query::load(
            conn,
            &format!(
                "SELECT (SELECT COUNT(*) FROM {table}) - \
                 (SELECT COUNT(*) FROM {table} WHERE id > $1) AS n"
            ),
            vec![Bind::Int(max_id)],
        )?;
        Ok(ChangeMark::RowsUpTo(
            rows.into_iter().next().and_then(|r| r.n).unwrap_or(-1),
        ))
    }

    /// The rows with `lo <= id < hi`, as (id, user, time), in id order: one range of the
    /// primary key.
    pub fn log_census_rows(
        &self,
        conn: &mut DbConnection,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(i64, i64, i64)>, SourceError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = BigInt)]
            userid: i64,
            #[diesel(sql_type = BigInt)]
            timecreated: i64,
        }
        let mut rows: Vec<(i64, i64, i64)> = query::load::<Row>(
            conn,
            &format!(
                "SELECT id, userid, timecreated FROM {} WHERE id >= $1 AND id < $2",
                self.t("logstore_standard_log")
            ),
            vec![Bind::Int(lo), Bind::Int(hi)],
        )?
        .into_iter()
        .map(|r| (r.id, r.userid, r.timecreated))
        .collect();
        rows.sort_unstable();
        Ok(rows)
    }

    /// The lowest and highest log id, both read from the ends of the primary key.
    pub fn log_id_bounds(
        &self,
        conn: &mut DbConnection,
    ) -> Result<Option<(i64, i64)>, SourceError> {
        #[derive(QueryableByName)]
        struct Bounds {
            #[diesel(sql_type = Nullable<BigInt>)]
            lo: Option<i64>,
            #[diesel(sql_type = Nullable<BigInt>)]
            hi: Option<i64>,
        }
        let rows: Vec<Bounds> = query::load(
            conn,
            &format!(
                "SELECT (SELECT MIN(id) FROM {t}) AS lo, (SELECT MAX(id) FROM {t}) AS hi",
                t = self.t("logstore_standard_log")
            ),
            vec![],
        )?;
        Ok(rows.into_iter().next().and_then(|b| Some((b.lo?, b.hi?))))
    }
}

fn stream_logs(
    conn: &mut DbConnection,
    sql: &str,
    binds: Vec<Bind>,
    f: &mut dyn FnMut(LogRow),
) -> QueryResult<u64> {
    query::stream::<RawLog, _>(conn, sql, binds, Size::Unbounded, |raw| f(raw.into()))
}

/// A row of [`Source::bare_logs`]: the columns are taken by position (a lookup by name per
/// column was a tenth of the compiler's time), in the order its SELECT lists them.
struct BareLog {
    row: LogRow,
    contextid: Option<i64>,
}

impl BareLog {
    fn build<'a, DB>(row: &impl Row<'a, DB>) -> deserialize::Result<Self>
    where
        DB: diesel::backend::Backend,
        i64: FromSql<BigInt, DB>,
        LogText: FromSql<Text, DB>,
    {
        fn at<'a, DB: diesel::backend::Backend, ST, T: FromSql<ST, DB>>(
            row: &impl Row<'a, DB>,
            index: usize,
        ) -> deserialize::Result<T> {
            let field = row.get(index).ok_or("a log column is missing")?;
            T::from_nullable_sql(field.value())
        }
        Ok(BareLog {
            row: LogRow {
                id: at::<DB, BigInt, _>(row, 0)?,
                userid: at::<DB, BigInt, _>(row, 1)?,
                time: at::<DB, BigInt, _>(row, 2)?,
                course: at::<DB, Nullable<BigInt>, _>(row, 3)?,
                context_level: at::<DB, BigInt, _>(row, 4)?,
                action: at::<DB, Text, _>(row, 6)?,
                target: at::<DB, Text, _>(row, 7)?,
                origin: at::<DB, Nullable<Text>, _>(row, 8)?,
                realuserid: at::<DB, Nullable<BigInt>, _>(row, 9)?,
                module: ModuleInfo::NotModule,
            },
            contextid: at::<DB, Nullable<BigInt>, _>(row, 5)?,
        })
    }
}

macro_rules! bare_log_from_row {
    ($($db:ty),*) => {$(
        impl FromSqlRow<Untyped, $db> for BareLog {
            fn build_from_row<'a>(row: &impl Row<'a, $db>) -> deserialize::Result<Self> {
                BareLog::build(row)
            }
        }
    )*};
}
bare_log_from_row!(diesel::sqlite::Sqlite, diesel::pg::Pg, diesel::mysql::Mysql);

#[derive(QueryableByName)]
struct OptInt {
    #[diesel(sql_type = Nullable<BigInt>)]
    n: Option<i64>,
}

/// See [`Source::log_change_mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeMark {
    /// How many rows have an id up to the mark.
    RowsUpTo(i64),
}

/// How many rows the log holds, as the database already knows it: never a count, which on a
/// production log reads every row (tens of seconds at 10^8 rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSize {
    /// The highest log id, read from the primary key; None when the log is empty.
    pub max_id: Option<i64>,
    /// The planner's estimate of the row count, when it has one.
    pub estimate: Option<i64>,
    /// Where the estimate comes from, for people.
    pub source: &'static str,
}

impl Source {
    /// The log's size from the primary key and the planner's statistics (PostgreSQL
    /// `pg_class.reltuples`, MySQL `information_schema.TABLES.TABLE_ROWS`); SQLite keeps no
    /// such statistic, so there it is `max(id) - min(id) + 1`, an upper bound when rows were
    /// deleted.
    pub fn log_size(&self, conn: &mut DbConnection) -> Result<LogSize, SourceError> {
        let table = self.t("logstore_standard_log");
        let one =
            |conn: &mut DbConnection, sql: &str, binds: Vec<Bind>| -> QueryResult<Option<i64>> {
                let rows: Vec<OptInt> = query::load(conn, sql, binds)?;
                Ok(rows.into_iter().next().and_then(|r| r.n))
            };
        let max_id = one(conn, &format!("SELECT MAX(id) AS n FROM {table}"), vec![])?;
        let (estimate, source) = match query::backend(conn) {
            Backend::Postgres => (
                // -1: never analysed or vacuumed, so no estimate yet.
                one(
                    conn,
                    "SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class \
                     WHERE oid = to_regclass($1) AND reltuples >= 0",
                    vec![Bind::Text(table.clone())],
                )?,
                "pg_class.reltuples",
            ),
            Backend::Mysql => (
                one(
                    conn,
                    "SELECT CAST(TABLE_ROWS AS SIGNED) AS n FROM information_schema.TABLES \
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = $1",
                    vec![Bind::Text(table.clone())],
                )?,
                "information_schema.TABLES",
            ),
            Backend::Sqlite => (
                one(
                    conn,
                    // Two subqueries: SQLite reads one end of the key for a lone MIN or MAX,
                    // but scans the table for both in one SELECT.
                    &format!(
                        "SELECT (SELECT MAX(id) FROM {table}) - (SELECT MIN(id) FROM {table}) + 1 AS n"
                    ),
                    vec![],
                )?
                .or(Some(0)),
                "max(id) - min(id) + 1",
            ),
        };
        Ok(LogSize {
            max_id,
            estimate,
            source,
        })
    }
}
