//! The extracted log: one user's or many users' rows of `logstore_standard_log`, filtered
//! as Moodle filters them and streamed row by row.

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryResult, QueryableByName};

use super::query::{self, Backend, Bind, in_list};
use super::{CONTEXT_MODULE, LogRow, ModuleInfo, Source, SourceError};
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
    action: String,
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Nullable<Text>)]
    origin: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    realuserid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    ctx_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    ctx_instanceid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    cm_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    modname: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    cm_section: Option<i64>,
}

impl From<RawLog> for LogRow {
    fn from(r: RawLog) -> Self {
        let module = if r.contextlevel != CONTEXT_MODULE {
            ModuleInfo::NotModule
        } else if r.ctx_id.is_none() {
            ModuleInfo::ContextGone
        } else {
            let cm_exists = r.cm_id.is_some();
            ModuleInfo::Cm {
                cmid: r.ctx_instanceid.unwrap_or(0),
                module: if cm_exists { r.modname } else { None },
                section: if cm_exists { r.cm_section } else { None },
            }
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

/// Users per log query of a batch on MySQL (see [`Source::for_each_users_log`]).
const MYSQL_USERS_PER_SCAN: usize = 50;

/// Filters of spec §2.1 that can be decided in SQL, with D10's reading of NULL origin.
/// `courseid <> 0 OR (courseid = 0 AND …)` drops NULL courseids, as Moodle's query does.
const LOG_FILTERS: &str = "l.timecreated >= $2 AND l.timecreated <= $3 \
     AND (l.origin IS NULL OR l.origin <> 'cli') \
     AND l.action <> 'failed' \
     AND (l.courseid <> 0 OR (l.courseid = 0 AND l.action IN ('loggedin', 'loggedout'))) \
     AND l.realuserid IS NULL";

impl Source {
    fn log_sql(&self, user_cond: &str, order: &str) -> String {
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
             WHERE {user_cond} AND {LOG_FILTERS} \
             ORDER BY {order}",
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
        let sql = self.log_sql("l.userid = $1", "l.timecreated, l.id");
        Ok(stream_logs(
            conn,
            &sql,
            vec![Bind::Int(userid), Bind::Int(from), Bind::Int(to)],
            &mut f,
        )?)
    }

    /// Many users' logs in one scan, ordered by (time, id) across all of them: each user's rows
    /// arrive in the order [`Source::for_each_user_log`] gives them, interleaved with the other
    /// users'. That order is Moodle's `(timecreated)` index read forward (its entries carry the id
    /// on MySQL and SQLite; PostgreSQL finishes each second's ties with a small incremental sort),
    /// so the server never sorts the whole log, whatever share of the users is asked for. The
    /// id list is one bound parameter (a PostgreSQL array, a JSON array on SQLite and MySQL).
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
        let backend = query::backend(conn);
        let cond = in_list(backend, "l.userid", 1);
        let sql = self.log_sql(&cond, "l.timecreated, l.id");
        // The MySQL client library holds a query's whole result before the first row is
        // read, so there the users go in groups: memory stays bounded by one group's rows, and
        // each user's rows, all in one group, still arrive in (time, id) order.
        let groups: Vec<Vec<i64>> = if backend == Backend::Mysql {
            let mut sorted = userids.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            sorted
                .chunks(MYSQL_USERS_PER_SCAN)
                .map(<[i64]>::to_vec)
                .collect()
        } else {
            vec![userids.to_vec()]
        };
        let mut rows = 0;
        for group in groups {
            rows += stream_logs(
                conn,
                &sql,
                vec![Bind::IntList(group), Bind::Int(from), Bind::Int(to)],
                &mut f,
            )?;
        }
        Ok(rows)
    }
}

fn stream_logs(
    conn: &mut DbConnection,
    sql: &str,
    binds: Vec<Bind>,
    f: &mut dyn FnMut(LogRow),
) -> QueryResult<u64> {
    query::stream::<RawLog, _>(conn, sql, binds, |raw| f(raw.into()))
}

#[derive(QueryableByName)]
struct OptInt {
    #[diesel(sql_type = Nullable<BigInt>)]
    n: Option<i64>,
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
                    &format!("SELECT MAX(id) - MIN(id) + 1 AS n FROM {table}"),
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
