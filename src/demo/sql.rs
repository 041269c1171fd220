//! The load through diesel on all three backends: literals and multi-row INSERTs, the session
//! settings a bulk load changes and puts back, clearing the tables, then the site's rows in one
//! transaction and the log in transactions of `TRANSACTION_ROWS`, and the index and statistics
//! afterwards.

use std::fmt::Write as _;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::log::{Ev, LogGen, Origin, Plan};
use super::pg_arrays::{PG_ARRAY_ROWS, PgLogColumns};
use super::progress::DemoProgress;
use super::site::Site;
use super::site_rows::write_site;
use super::{DemoError, DemoOptions};
use crate::store::DbConnection;
use crate::store::source::{
    Backend, LOGSTORE_INDEX_BASES, LOGSTORE_INDEX_VERSION, backend_of, migration_sql,
    moodle_index_name,
};

/// Rows per multi-row INSERT and rows per transaction of the log load.
const INSERT_ROWS: usize = 1000;
const TRANSACTION_ROWS: u64 = 250_000;

/// Single-quoted SQL literal; doubling quotes is enough for both backends with standard strings.
pub(super) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(super) fn opt_lit(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".to_owned(), lit)
}

fn opt_int(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".to_owned(), |v| v.to_string())
}

/// Accumulates rows of one table into multi-row INSERTs.
pub(super) struct Inserter {
    head: String,
    buf: String,
    rows: usize,
}

impl Inserter {
    pub(super) fn new(table: &str, columns: &str) -> Inserter {
        let head = format!("INSERT INTO {table} ({columns}) VALUES ");
        Inserter {
            buf: head.clone(),
            head,
            rows: 0,
        }
    }

    /// `values` is the already-formatted inside of one `( … )`.
    pub(super) fn row(&mut self, conn: &mut DbConnection, values: &str) -> QueryResult<()> {
        if self.rows > 0 {
            self.buf.push(',');
        }
        self.buf.push('(');
        self.buf.push_str(values);
        self.buf.push(')');
        self.rows += 1;
        if self.rows >= INSERT_ROWS {
            self.flush(conn)?;
        }
        Ok(())
    }

    fn row_buf(&mut self) -> &mut String {
        if self.rows > 0 {
            self.buf.push(',');
        }
        self.rows += 1;
        &mut self.buf
    }

    pub(super) fn flush(&mut self, conn: &mut DbConnection) -> QueryResult<()> {
        if self.rows > 0 {
            conn.batch_execute(&self.buf)?;
            self.buf.clear();
            self.buf.push_str(&self.head);
            self.rows = 0;
        }
        Ok(())
    }
}

const SOURCE_TABLES: &[&str] = &[
    "logstore_standard_log",
    "grade_grades",
    "grade_items",
    "groups_members",
    "groups",
    "user_enrolments",
    "enrol",
    "context",
    "course_modules",
    "course_sections",
    "modules",
    "course",
    "user",
    "mnet_host",
    "config",
    "config_plugins",
    "assign",
    "forum",
    "learningtimecheck",
    "page",
    "quiz",
    "resource",
    "url",
];

/// Session settings the bulk load changes, to put back afterwards.
pub(super) enum Saved {
    Sqlite { sync: i64, cache: i64 },
    Postgres,
    Mysql,
}

#[derive(QueryableByName)]
struct SyncPragma {
    #[diesel(sql_type = BigInt)]
    synchronous: i64,
}

#[derive(QueryableByName)]
struct CachePragma {
    #[diesel(sql_type = BigInt)]
    cache_size: i64,
}

/// Makes the connection fast for a bulk load and returns what to put back.
pub(super) fn prepare_session(conn: &mut DbConnection) -> QueryResult<Saved> {
    Ok(match conn {
        DbConnection::Sqlite(_) => {
            let sync: Vec<SyncPragma> = diesel::sql_query("PRAGMA synchronous").load(conn)?;
            let cache: Vec<CachePragma> = diesel::sql_query("PRAGMA cache_size").load(conn)?;
            conn.batch_execute("PRAGMA synchronous = OFF; PRAGMA cache_size = -131072;")?;
            Saved::Sqlite {
                sync: sync.first().map_or(2, |p| p.synchronous),
                cache: cache.first().map_or(-2000, |p| p.cache_size),
            }
        }
        DbConnection::Postgres(_) => {
            conn.batch_execute(
                "SET synchronous_commit = off; SET standard_conforming_strings = on;",
            )?;
            Saved::Postgres
        }
        // Our literals double quotes and never use backslashes as escapes.
        DbConnection::Mysql(_) => {
            conn.batch_execute(
                "SET @usestats_sql_mode = @@SESSION.sql_mode; \
                 SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES');",
            )?;
            Saved::Mysql
        }
    })
}

pub(super) fn restore_session(conn: &mut DbConnection, saved: Saved) -> QueryResult<()> {
    match saved {
        Saved::Sqlite { sync, cache } => conn.batch_execute(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA cache_size = {cache};"
        )),
        Saved::Postgres => conn.batch_execute("RESET synchronous_commit;"),
        Saved::Mysql => conn.batch_execute("SET SESSION sql_mode = @usestats_sql_mode;"),
    }
}

/// Replaces the source tables' rows with the site and its log; the log indexes are dropped during
/// the load and made again after it.
pub(super) fn load(
    conn: &mut DbConnection,
    p: &str,
    opts: &DemoOptions,
    site: &Site,
    plan: &Plan,
    offset: i64,
    log_start: i64,
) -> Result<u64, DemoError> {
    let backend = backend_of(conn);
    conn.transaction::<_, DemoError, _>(|conn| {
        clear_tables(conn, backend, p)?;
        write_site(conn, p, opts, site, plan, offset, log_start)?;
        Ok(())
    })?;
    let progress = DemoProgress::new(opts.progress, plan.rows);
    let rows = load_log(conn, (backend, p), opts, site, &progress, offset)?;
    progress.indexing();
    let finished = finish(conn, backend, p);
    progress.done();
    finished?;
    Ok(rows)
}

/// Empties every source table and drops the log's secondary indexes, so that the log loads
/// without them.
fn clear_tables(conn: &mut DbConnection, backend: Backend, p: &str) -> QueryResult<()> {
    if backend == Backend::Postgres {
        let list: Vec<String> = SOURCE_TABLES.iter().map(|t| format!("{p}{t}")).collect();
        conn.batch_execute(&format!("TRUNCATE {}", list.join(", ")))?;
    } else {
        for t in SOURCE_TABLES {
            conn.batch_execute(&format!("DELETE FROM {p}{t}"))?;
        }
    }
    for base in LOGSTORE_INDEX_BASES {
        let name = moodle_index_name(p, base, false);
        if backend == Backend::Mysql {
            conn.batch_execute(&format!(
                "DROP INDEX IF EXISTS {name} ON {p}logstore_standard_log"
            ))?;
        } else {
            conn.batch_execute(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
    }
    Ok(())
}

/// Streams the log from a second run of the generator; returns the number of rows.
fn load_log(
    conn: &mut DbConnection,
    (backend, p): (Backend, &str),
    opts: &DemoOptions,
    site: &Site,
    progress: &DemoProgress,
    offset: i64,
) -> Result<u64, DemoError> {
    let mut events = LogGen::new(site, opts).peekable();
    let mut id = 0u64;
    let table = format!("{p}logstore_standard_log");
    let mut sink = if backend == Backend::Postgres {
        LogSink::PgArrays(Box::new(PgLogColumns::new(table)))
    } else {
        LogSink::Values(Inserter::new(&table, LOG_COLUMNS))
    };
    while events.peek().is_some() {
        let before = id;
        conn.transaction::<_, DemoError, _>(|conn| {
            for ev in events.by_ref() {
                id += 1;
                sink.push(conn, id, &ev, site, offset)?;
                if id.is_multiple_of(TRANSACTION_ROWS) {
                    break;
                }
            }
            sink.flush(conn)?;
            Ok(())
        })?;
        progress.rows(id - before);
    }
    Ok(id)
}

/// The log's indexes again, then fresh planner statistics (and, on PostgreSQL, sequences past the
/// ids we wrote).
fn finish(conn: &mut DbConnection, backend: Backend, p: &str) -> QueryResult<()> {
    if let Some(sql) = migration_sql(backend_of(conn), LOGSTORE_INDEX_VERSION, p) {
        conn.batch_execute(&sql)?;
    }
    if backend == Backend::Sqlite {
        conn.batch_execute("PRAGMA analysis_limit = 1000; ANALYZE;")?;
    } else if backend == Backend::Mysql {
        let list: Vec<String> = SOURCE_TABLES.iter().map(|t| format!("{p}{t}")).collect();
        conn.batch_execute(&format!("ANALYZE TABLE {}", list.join(", ")))?;
    } else {
        for t in SOURCE_TABLES {
            conn.batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{p}{t}', 'id'), \
                 (SELECT COALESCE(MAX(id), 0) + 1 FROM {p}{t}), false)"
            ))?;
        }
        let list: Vec<String> = SOURCE_TABLES.iter().map(|t| format!("{p}{t}")).collect();
        conn.batch_execute(&format!("ANALYZE {}", list.join(", ")))?;
    }
    Ok(())
}

pub(super) const LOG_COLUMNS: &str = "id, eventname, component, action, target, objecttable, objectid, crud, \
     edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, relateduserid, \
     anonymous, other, timecreated, origin, ip, realuserid";

/// Where log rows go: multi-row VALUES text for SQLite; on PostgreSQL one array per column,
/// bound as parameters and unnested, because its parser handles long VALUES lists about ten
/// times slower than bound arrays.
enum LogSink {
    Values(Inserter),
    PgArrays(Box<PgLogColumns>),
}

impl LogSink {
    fn push(
        &mut self,
        conn: &mut DbConnection,
        id: u64,
        ev: &Ev,
        site: &Site,
        offset: i64,
    ) -> QueryResult<()> {
        match self {
            LogSink::Values(ins) => {
                write_log_row(ins.row_buf(), id, ev, site, offset);
                if ins.rows >= INSERT_ROWS {
                    ins.flush(conn)?;
                }
            }
            LogSink::PgArrays(cols) => {
                cols.push(id as i64, ev, site, offset);
                if cols.id.len() >= PG_ARRAY_ROWS {
                    cols.flush(conn)?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, conn: &mut DbConnection) -> QueryResult<()> {
        match self {
            LogSink::Values(ins) => ins.flush(conn),
            LogSink::PgArrays(cols) => cols.flush(conn),
        }
    }
}

pub(super) fn origin_name(o: Origin) -> Option<&'static str> {
    match o {
        Origin::Web => Some("web"),
        Origin::Ws => Some("ws"),
        Origin::Cli => Some("cli"),
        Origin::Null => None,
    }
}

pub(super) fn ip_text(ev: &Ev) -> Option<String> {
    (ev.origin != Origin::Cli).then(|| {
        format!(
            "{}.{}.{}.{}",
            ev.ip >> 24,
            (ev.ip >> 16) & 0xFF,
            (ev.ip >> 8) & 0xFF,
            ev.ip & 0xFF
        )
    })
}

fn write_log_row(buf: &mut String, id: u64, ev: &Ev, site: &Site, offset: i64) {
    let t = ev.tpl;
    let origin = origin_name(ev.origin).map_or("NULL".to_owned(), |o| format!("'{o}'"));
    let ip = ip_text(ev).map_or("NULL".to_owned(), |ip| format!("'{ip}'"));
    // Template strings are compile-time constants without quotes (checked by a unit test).
    let _ = write!(
        buf,
        "({id},'{}','{}','{}','{}',{},{},'{}',{},{},{},{},{},{},{},0,NULL,{},{origin},{ip},{})",
        t.eventname,
        t.component,
        t.action,
        t.target,
        t.objecttable
            .map_or("NULL".to_owned(), |o| format!("'{o}'")),
        opt_int(ev.objectid),
        t.crud,
        t.edulevel,
        ev.contextid,
        ev.contextlevel,
        ev.contextinstanceid,
        site.users[ev.user].id,
        ev.courseid,
        opt_int(ev.relateduserid),
        ev.time + offset,
        opt_int(ev.realuserid),
    );
}
