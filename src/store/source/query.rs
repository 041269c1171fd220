//! Raw SQL with bound values, run on whichever backend the connection holds.
//!
//! The source tables carry a run-time prefix, so diesel's static `table!` DSL cannot name them.
//! Every query here is SQL text written with PostgreSQL's `$n` placeholders (rewritten to SQLite's
//! `?n`) plus a list of bound values: no value read from a request ever becomes SQL text.
//!
//! We match on the [`DbConnection`] variants rather than going through the `MultiConnection`
//! impl because streaming on PostgreSQL needs `PgRowByRowLoadingMode`, which the multi-backend
//! connection does not offer.

use diesel::connection::DefaultLoadingMode;
use diesel::pg::{Pg, PgRowByRowLoadingMode};
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::query_builder::SqlQuery;
use diesel::sql_types::{Array, BigInt, Text};
use diesel::sqlite::Sqlite;

use crate::store::DbConnection;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) fn backend(conn: &DbConnection) -> Backend {
    match conn {
        DbConnection::Sqlite(_) => Backend::Sqlite,
        DbConnection::Postgres(_) => Backend::Postgres,
    }
}

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
    /// A list of ids, used through [`in_list`]: a PostgreSQL array, or a JSON array that
    /// SQLite's `json_each` unpacks. One placeholder whatever the length, so no statement grows
    /// with the list and no bind-count limit is reached.
    IntList(Vec<i64>),
}

/// SQL for "`column` is one of the ids bound at placeholder `$n`".
pub(crate) fn in_list(backend: Backend, column: &str, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("{column} IN (SELECT value FROM json_each(${n}))"),
        Backend::Postgres => format!("{column} = ANY(${n})"),
    }
}

/// Rewrites `$n` placeholders into SQLite's numbered `?n` form, which binds by the same index.
fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn json_list(ids: &[i64]) -> String {
    let mut s = String::with_capacity(ids.len() * 8 + 2);
    s.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&id.to_string());
    }
    s.push(']');
    s
}

fn sqlite_query(sql: &str, binds: Vec<Bind>) -> BoxedSqlQuery<'static, Sqlite, SqlQuery> {
    let mut q = diesel::sql_query(sqlite_placeholders(sql)).into_boxed::<Sqlite>();
    for b in binds {
        q = match b {
            Bind::Int(v) => q.bind::<BigInt, _>(v),
            Bind::Text(s) => q.bind::<Text, _>(s),
            Bind::IntList(v) => q.bind::<Text, _>(json_list(&v)),
        };
    }
    q
}

fn pg_query(sql: &str, binds: Vec<Bind>) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    let mut q = diesel::sql_query(sql.to_owned()).into_boxed::<Pg>();
    for b in binds {
        q = match b {
            Bind::Int(v) => q.bind::<BigInt, _>(v),
            Bind::Text(s) => q.bind::<Text, _>(s),
            Bind::IntList(v) => q.bind::<Array<BigInt>, _>(v),
        };
    }
    q
}

/// Loads a small result set into memory.
pub(crate) fn load<R>(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<Vec<R>>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    match conn {
        DbConnection::Sqlite(c) => sqlite_query(sql, binds).load::<R>(c),
        DbConnection::Postgres(c) => pg_query(sql, binds).load::<R>(c),
    }
}

/// Hands each row to `f` as it arrives, so a scan of millions of rows never sits in memory:
/// SQLite steps its statement; PostgreSQL runs in single-row mode. Returns the row count.
pub(crate) fn stream<R, F>(
    conn: &mut DbConnection,
    sql: &str,
    binds: Vec<Bind>,
    mut f: F,
) -> QueryResult<u64>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
    F: FnMut(R),
{
    let mut n = 0u64;
    match conn {
        DbConnection::Sqlite(c) => {
            for row in sqlite_query(sql, binds).load_iter::<R, DefaultLoadingMode>(c)? {
                f(row?);
                n += 1;
            }
        }
        DbConnection::Postgres(c) => {
            for row in pg_query(sql, binds).load_iter::<R, PgRowByRowLoadingMode>(c)? {
                f(row?);
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Runs one statement with bound values and returns the affected row count.
pub(crate) fn execute(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(c) => sqlite_query(sql, binds).execute(c),
        DbConnection::Postgres(c) => pg_query(sql, binds).execute(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_rewritten_for_sqlite() {
        assert_eq!(
            sqlite_placeholders("a = $1 AND b = $12 AND c = '$x'"),
            "a = ?1 AND b = ?12 AND c = '$x'"
        );
    }

    #[test]
    fn json_list_shape() {
        assert_eq!(json_list(&[]), "[]");
        assert_eq!(json_list(&[3, -1, 7]), "[3,-1,7]");
    }
}
