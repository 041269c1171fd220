//! Creates the Moodle-shaped source tables under a run-time table prefix.
//!
//! diesel_migrations embeds static SQL, which cannot take a prefix, so the source schema is a
//! short ordered list of templated SQL files applied here and recorded in
//! `{prefix}usestats_schema`. Never run this against a real Moodle database: there the tables
//! already exist (the first CREATE TABLE fails and the transaction rolls back, harmlessly; on
//! MySQL, where DDL commits at once, a migration that fails half-way leaves its first tables
//! behind, which only ever concerns the test and demo databases it is meant for).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::SourceError;
use super::query::{self, Backend, Bind};
use crate::store::DbConnection;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
    mysql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_moodle_core",
        sqlite: include_str!("../../../schema/source/sqlite/0001_moodle_core.sql"),
        postgres: include_str!("../../../schema/source/postgres/0001_moodle_core.sql"),
        mysql: include_str!("../../../schema/source/mysql/0001_moodle_core.sql"),
    },
    Migration {
        version: 2,
        name: "0002_logstore_user_index",
        sqlite: include_str!("../../../schema/source/sqlite/0002_logstore_user_index.sql"),
        postgres: include_str!("../../../schema/source/postgres/0002_logstore_user_index.sql"),
        mysql: include_str!("../../../schema/source/mysql/0002_logstore_user_index.sql"),
    },
];

/// Name of the migration that holds the logstore scan index; the demo loader re-applies it
/// after a bulk load (it is written with IF NOT EXISTS for that reason).
pub(crate) const LOGSTORE_INDEX_VERSION: i64 = 2;
pub(crate) const LOGSTORE_INDEX_NAME: &str = "logsstanlog_usetimid_ix";

/// A table prefix goes into SQL text, so only a conservative identifier shape is accepted:
/// a lower-case letter first (an empty prefix would name PostgreSQL's reserved `user`), then
/// `[a-z0-9_]`, at most 20 characters.
pub fn validate_prefix(prefix: &str) -> Result<(), SourceError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 20
        && prefix.as_bytes()[0].is_ascii_lowercase()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SourceError::InvalidPrefix(prefix.to_owned()))
    }
}

pub(crate) fn templated(sql: &str, prefix: &str) -> String {
    sql.replace("{prefix}", prefix)
}

pub(crate) fn migration_sql(backend: Backend, version: i64, prefix: &str) -> Option<String> {
    MIGRATIONS.iter().find(|m| m.version == version).map(|m| {
        templated(
            match backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
                Backend::Mysql => m.mysql,
            },
            prefix,
        )
    })
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// Applies the source-schema migrations not yet recorded for this prefix, in order, in one
/// transaction. Returns how many were applied (0 when the schema is current).
pub fn migrate_source(conn: &mut DbConnection, prefix: &str) -> Result<usize, SourceError> {
    validate_prefix(prefix)?;
    let backend = query::backend(conn);
    conn.transaction::<usize, SourceError, _>(|conn| {
        conn.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {prefix}usestats_schema (\
             version BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, applied BIGINT NOT NULL)"
        ))?;
        if backend == Backend::Postgres {
            // Two daemons starting together must not both apply the same version.
            conn.batch_execute(&format!(
                "LOCK TABLE {prefix}usestats_schema IN SHARE ROW EXCLUSIVE MODE"
            ))?;
        }
        let done: Vec<Version> = query::load(
            conn,
            &format!("SELECT version FROM {prefix}usestats_schema"),
            vec![],
        )?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut applied = 0;
        for m in MIGRATIONS {
            if done.iter().any(|v| v.version == m.version) {
                continue;
            }
            let sql = templated(
                match backend {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                    Backend::Mysql => m.mysql,
                },
                prefix,
            );
            conn.batch_execute(&sql)
                .map_err(|source| SourceError::Migration {
                    name: m.name,
                    source,
                })?;
            query::execute(
                conn,
                &format!(
                    "INSERT INTO {prefix}usestats_schema (version, name, applied) VALUES ($1, $2, $3)"
                ),
                vec![
                    Bind::Int(m.version),
                    Bind::Text(m.name.to_owned()),
                    Bind::Int(now),
                ],
            )?;
            applied += 1;
        }
        Ok(applied)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        for ok in ["mdl_", "t_", "m", "moodle2_", "abcdefghijklmnopqrst"] {
            assert!(validate_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Mdl_",
            "1mdl",
            "_x",
            "mdl-",
            "mdl_;drop",
            "md l",
            "abcdefghijklmnopqrstu",
            "é_",
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_migration_has_both_backends_and_uses_the_prefix() {
        for m in MIGRATIONS {
            assert!(m.sqlite.contains("{prefix}"), "{}", m.name);
            assert!(m.postgres.contains("{prefix}"), "{}", m.name);
        }
        let idx = migration_sql(Backend::Sqlite, LOGSTORE_INDEX_VERSION, "x_").unwrap();
        assert!(idx.contains(&format!("x_{LOGSTORE_INDEX_NAME}")));
    }
}
