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
use diesel::deserialize::FromSqlRow;
use diesel::expression::expression_types::Untyped;
use diesel::mysql::Mysql;
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
    Mysql,
}

pub(crate) fn backend(conn: &DbConnection) -> Backend {
    match conn {
        DbConnection::Sqlite(_) => Backend::Sqlite,
        DbConnection::Postgres(_) => Backend::Postgres,
        DbConnection::Mysql(_) => Backend::Mysql,
    }
}

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
    /// A list of ids, used through [`in_list`]: a PostgreSQL array, or a JSON array that
    /// SQLite's `json_each` or MySQL's `JSON_TABLE` unpacks. One placeholder whatever the length, so no statement grows
    /// with the list and no bind-count limit is reached.
    IntList(Vec<i64>),
}

/// SQL for "`column` is one of the ids bound at placeholder `$n`".
pub(crate) fn in_list(backend: Backend, column: &str, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("{column} IN (SELECT value FROM json_each(${n}))"),
        Backend::Postgres => format!("{column} = ANY(${n})"),
        // MySQL 8.0.4+ and MariaDB 10.6+.
        Backend::Mysql => format!(
            "{column} IN (SELECT ids.value FROM JSON_TABLE(${n}, '$[*]' COLUMNS (value BIGINT PATH '$')) AS ids)"
        ),
    }
}

/// A FROM item `p(c0, c1, …)` over a list of integer tuples of `width` columns, bound from
/// `$n` on by [`tuple_binds`]: a JSON array of arrays unpacked by `json_each` on SQLite, one
/// array per column unnested on PostgreSQL. One statement whatever the list's length. Not for
/// MySQL, which only ever is a source, read without such lists.
pub(crate) fn tuples_from(backend: Backend, width: usize, n: usize) -> String {
    match backend {
        Backend::Postgres => {
            let arrays: Vec<String> = (0..width)
                .map(|i| format!("${}::bigint[]", n + i))
                .collect();
            let columns: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
            format!("unnest({}) AS p({})", arrays.join(", "), columns.join(", "))
        }
        Backend::Sqlite | Backend::Mysql => {
            let columns: Vec<String> = (0..width)
                .map(|i| format!("json_extract(value, '$[{i}]') AS c{i}"))
                .collect();
            format!("(SELECT {} FROM json_each(${n})) AS p", columns.join(", "))
        }
    }
}

/// The values of [`tuples_from`]'s placeholders for `rows`, each of its `width` columns.
pub(crate) fn tuple_binds<const W: usize>(backend: Backend, rows: &[[i64; W]]) -> Vec<Bind> {
    match backend {
        Backend::Postgres => (0..W)
            .map(|i| Bind::IntList(rows.iter().map(|r| r[i]).collect()))
            .collect(),
        Backend::Sqlite | Backend::Mysql => {
            let mut s = String::with_capacity(rows.len() * W * 8 + 2);
            s.push('[');
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&json_list(row));
            }
            s.push(']');
            vec![Bind::Text(s)]
        }
    }
}

/// SQL for "text `column` equals the value at `$n`", exactly, on every backend. Moodle's MySQL
/// tables use a case- and accent-insensitive collation that also ignores trailing spaces,
/// where `'chem ' = 'CHEM'`; the first comparison lets the index narrow the rows, the
/// comparison of the bytes keeps only the exact match.
pub(crate) fn text_eq(backend: Backend, column: &str, n: usize) -> String {
    match backend {
        Backend::Mysql => {
            format!("({column} = ${n} AND CAST({column} AS BINARY) = CAST(${n} AS BINARY))")
        }
        Backend::Sqlite | Backend::Postgres => format!("{column} = ${n}"),
    }
}

/// MySQL binds by position only: each `$n` becomes `?`, and the values are laid out in the
/// order the placeholders appear, repeated where a placeholder is.
fn mysql_placeholders(sql: &str, binds: &[Bind]) -> (String, Vec<Bind>) {
    let mut out = String::with_capacity(sql.len());
    let mut ordered = Vec::with_capacity(binds.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut number = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                number = number * 10 + d as usize;
                chars.next();
            }
            out.push('?');
            if let Some(bind) = number.checked_sub(1).and_then(|i| binds.get(i)) {
                ordered.push(bind.clone());
            }
        } else {
            out.push(c);
        }
    }
    (out, ordered)
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

fn mysql_query(sql: &str, binds: Vec<Bind>) -> BoxedSqlQuery<'static, Mysql, SqlQuery> {
    // The shared SQL is PostgreSQL's dialect, rewritten here as it is for SQLite: besides
    // the placeholders, only the integer cast (for Moodle's SMALLINT flags) is spelt otherwise.
    let sql = sql.replace(" AS BIGINT)", " AS SIGNED)");
    let (sql, binds) = mysql_placeholders(&sql, &binds);
    let mut q = diesel::sql_query(sql).into_boxed::<Mysql>();
    for b in binds {
        q = match b {
            Bind::Int(v) => q.bind::<BigInt, _>(v),
            Bind::Text(s) => q.bind::<Text, _>(s),
            Bind::IntList(v) => q.bind::<Text, _>(json_list(&v)),
        };
    }
    q
}

/// Loads a small result set into memory.
pub(crate) fn load<R>(conn: &mut DbConnection, sql: &str, binds: Vec<Bind>) -> QueryResult<Vec<R>>
where
    R: QueryableByName<Sqlite> + QueryableByName<Pg> + QueryableByName<Mysql> + 'static,
{
    match conn {
        DbConnection::Sqlite(c) => sqlite_query(sql, binds).load::<R>(c),
        DbConnection::Postgres(c) => pg_query(sql, binds).load::<R>(c),
        DbConnection::Mysql(c) => mysql_query(sql, binds).load::<R>(c),
    }
}

/// A row type every backend can build from a raw query's result.
pub(crate) trait FromAnyRow:
    FromSqlRow<Untyped, Sqlite> + FromSqlRow<Untyped, Pg> + FromSqlRow<Untyped, Mysql> + 'static
{
}

impl<R> FromAnyRow for R where
    R: FromSqlRow<Untyped, Sqlite> + FromSqlRow<Untyped, Pg> + FromSqlRow<Untyped, Mysql> + 'static
{
}

/// How much a streamed query can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    /// Any amount (one user's whole log): PostgreSQL sends it row by row.
    Unbounded,
    /// What the query itself bounds (a slice of the primary key): PostgreSQL sends it whole,
    /// which costs far less per row than single-row mode.
    Bounded,
}

/// Hands each row to `f` as it arrives, so a scan of millions of rows never sits in memory:
/// SQLite steps its statement; PostgreSQL runs in single-row mode unless `size` is bounded.
/// Returns the row count.
pub(crate) fn stream<R, F>(
    conn: &mut DbConnection,
    sql: &str,
    binds: Vec<Bind>,
    size: Size,
    mut f: F,
) -> QueryResult<u64>
where
    R: FromAnyRow,
    F: FnMut(R),
{
    let mut n = 0u64;
    let mut take = |row: QueryResult<R>| -> QueryResult<()> {
        f(row?);
        n += 1;
        Ok(())
    };
    match conn {
        DbConnection::Sqlite(c) => {
            for row in sqlite_query(sql, binds).load_iter::<R, DefaultLoadingMode>(c)? {
                take(row)?;
            }
        }
        DbConnection::Postgres(c) if size == Size::Bounded => {
            for row in pg_query(sql, binds).load_iter::<R, DefaultLoadingMode>(c)? {
                take(row)?;
            }
        }
        DbConnection::Postgres(c) => {
            for row in pg_query(sql, binds).load_iter::<R, PgRowByRowLoadingMode>(c)? {
                take(row)?;
            }
        }
        // The MySQL client library buffers the result of a prepared statement; a scan is
        // one user's (or one batch's) rows, so that stays bounded by the request.
        DbConnection::Mysql(c) => {
            for row in mysql_query(sql, binds).load_iter::<R, DefaultLoadingMode>(c)? {
                take(row)?;
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
        DbConnection::Mysql(c) => mysql_query(sql, binds).execute(c),
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
    fn placeholders_laid_out_for_mysql() {
        let (sql, binds) = mysql_placeholders(
            "a = $2 AND b = $1 AND c = $2 AND p = '$[*]'",
            &[Bind::Int(1), Bind::Text("two".into())],
        );
        assert_eq!(sql, "a = ? AND b = ? AND c = ? AND p = '$[*]'");
        let shown: Vec<String> = binds.iter().map(|b| format!("{b:?}")).collect();
        assert_eq!(
            shown,
            ["Text(\"two\")", "Int(1)", "Text(\"two\")"].map(String::from)
        );
    }

    #[test]
    fn json_list_shape() {
        assert_eq!(json_list(&[]), "[]");
        assert_eq!(json_list(&[3, -1, 7]), "[3,-1,7]");
    }
}
