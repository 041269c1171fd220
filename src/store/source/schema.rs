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

/// Versions are never reused. Version 2 (`0002_logstore_user_index`, a `(userid, timecreated,
/// id)` index Moodle does not have) is retired: its file is gone, a database that recorded it
/// keeps the record, and version 3 drops that index and builds Moodle's log indexes in its place.
/// Version 1 was rewritten to Moodle's shape at the same time; a demo database made before keeps
/// its older tables (same rows, fewer indexes) until `usestats demo` builds a new file.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_moodle_core",
        sqlite: include_str!("../../../schema/source/sqlite/0001_moodle_core.sql"),
        postgres: include_str!("../../../schema/source/postgres/0001_moodle_core.sql"),
        mysql: include_str!("../../../schema/source/mysql/0001_moodle_core.sql"),
    },
    Migration {
        version: 3,
        name: "0003_moodle_logstore_indexes",
        sqlite: include_str!("../../../schema/source/sqlite/0003_moodle_logstore_indexes.sql"),
        postgres: include_str!("../../../schema/source/postgres/0003_moodle_logstore_indexes.sql"),
        mysql: include_str!("../../../schema/source/mysql/0003_moodle_logstore_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "0004_moodle_config_plugins",
        sqlite: include_str!("../../../schema/source/sqlite/0004_moodle_config_plugins.sql"),
        postgres: include_str!("../../../schema/source/postgres/0004_moodle_config_plugins.sql"),
        mysql: include_str!("../../../schema/source/mysql/0004_moodle_config_plugins.sql"),
    },
    Migration {
        version: 5,
        name: "0005_moodle_groups",
        sqlite: include_str!("../../../schema/source/sqlite/0005_moodle_groups.sql"),
        postgres: include_str!("../../../schema/source/postgres/0005_moodle_groups.sql"),
        mysql: include_str!("../../../schema/source/mysql/0005_moodle_groups.sql"),
    },
];

/// The migration that holds the log's indexes; the demo loader drops them before a bulk load
/// and re-applies it after (it is written with IF NOT EXISTS for that reason).
pub(crate) const LOGSTORE_INDEX_VERSION: i64 = 3;

/// Moodle's index names on the log, without the prefix, as `{ix:...}` names them in the SQL.
pub(crate) const LOGSTORE_INDEX_BASES: &[&str] = &[
    "logsstanlog_tim",
    "logsstanlog_couanotim",
    "logsstanlog_useconconcruedutim",
    "logsstanlog_con",
    "logsstanlog_use",
    "logsstanlog_cou",
    "logsstanlog_rea",
    "logsstanlog_rel",
];

/// Moodle's XMLDB generators cut object names to 30 characters, suffix included.
const MOODLE_NAME_MAX: usize = 30;

/// The name Moodle's generator gives an index: `prefix + base`, cut so that `_` and the suffix
/// still fit in 30 characters. `base` is already abbreviated (`user_mneuse`, `user_las2`).
pub fn moodle_index_name(prefix: &str, base: &str, unique: bool) -> String {
    let suffix = if unique { "uix" } else { "ix" };
    let mut name = format!("{prefix}{base}");
    name.truncate(MOODLE_NAME_MAX - suffix.len() - 1);
    format!("{name}_{suffix}")
}

/// The table prefix of the Moodle tables, checked once where it is read (the configuration,
/// `demo`, a test) and trusted everywhere after.
///
/// It goes into SQL text, so only a conservative identifier shape is accepted: a lower-case
/// letter first, then `[a-z0-9_]`, at most 20 characters. Moodle's own rule is looser (its
/// installer refuses only an empty prefix, and that on every database but MySQL), but every
/// prefix Moodle sites use in practice, its default `mdl_` first, fits; an empty one would
/// name PostgreSQL's reserved `user`, and a leading digit or `_` would need quoting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix(String);

impl Prefix {
    /// Moodle's default.
    pub const MOODLE_DEFAULT: &'static str = "mdl_";

    pub fn parse(text: &str) -> Result<Prefix, SourceError> {
        let ok = !text.is_empty()
            && text.len() <= 20
            && text.as_bytes()[0].is_ascii_lowercase()
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Prefix(text.to_owned()))
        } else {
            Err(SourceError::InvalidPrefix(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Prefix {
    fn default() -> Prefix {
        Prefix(Prefix::MOODLE_DEFAULT.to_owned())
    }
}

impl TryFrom<String> for Prefix {
    type Error = SourceError;
    fn try_from(text: String) -> Result<Prefix, SourceError> {
        Prefix::parse(&text)
    }
}

impl From<Prefix> for String {
    fn from(prefix: Prefix) -> String {
        prefix.0
    }
}

impl std::ops::Deref for Prefix {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Prefix {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fills in a schema file: `{prefix}`, index names `{ix:base}` / `{uix:base}` (see
/// [`moodle_index_name`]), and `{on_log}`, the `ON table` MySQL wants after `DROP INDEX`.
pub(crate) fn templated(sql: &str, prefix: &str, backend: Backend) -> String {
    let on_log = if backend == Backend::Mysql {
        format!(" ON {prefix}logstore_standard_log")
    } else {
        String::new()
    };
    let mut out = String::with_capacity(sql.len() + 256);
    let mut rest = sql;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find('}') else {
            break;
        };
        let token = &tail[1..end];
        match token.split_once(':') {
            Some(("ix", base)) => out.push_str(&moodle_index_name(prefix, base, false)),
            Some(("uix", base)) => out.push_str(&moodle_index_name(prefix, base, true)),
            _ if token == "prefix" => out.push_str(prefix),
            _ if token == "on_log" => out.push_str(&on_log),
            _ => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn backend_sql(m: &Migration, backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => m.sqlite,
        Backend::Postgres => m.postgres,
        Backend::Mysql => m.mysql,
    }
}

pub(crate) fn migration_sql(backend: Backend, version: i64, prefix: &str) -> Option<String> {
    MIGRATIONS
        .iter()
        .find(|m| m.version == version)
        .map(|m| templated(backend_sql(m, backend), prefix, backend))
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// Applies the source-schema migrations not yet recorded for this prefix, in order, in one
/// transaction. Returns how many were applied (0 when the schema is current).
pub fn migrate_source(conn: &mut DbConnection, prefix: &str) -> Result<usize, SourceError> {
    let prefix = Prefix::parse(prefix)?;
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
            let sql = templated(backend_sql(m, backend), &prefix, backend);
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
            assert!(Prefix::parse(ok).is_ok(), "{ok}");
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
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_migration_has_both_backends_and_uses_the_prefix() {
        for m in MIGRATIONS {
            assert!(m.sqlite.contains("{prefix}"), "{}", m.name);
            assert!(m.postgres.contains("{prefix}"), "{}", m.name);
        }
        let idx = migration_sql(Backend::Sqlite, LOGSTORE_INDEX_VERSION, "x_").unwrap();
        for base in LOGSTORE_INDEX_BASES {
            assert!(
                idx.contains(&moodle_index_name("x_", base, false)),
                "{base}"
            );
        }
        assert!(!idx.contains('{'), "an unfilled token: {idx}");
    }

    #[test]
    fn index_names_are_cut_as_moodle_cuts_them() {
        let long = "logsstanlog_useconconcruedutim";
        assert_eq!(
            moodle_index_name("mdl_", long, false),
            "mdl_logsstanlog_useconconcr_ix"
        );
        assert_eq!(
            moodle_index_name("mdl5_", long, false),
            "mdl5_logsstanlog_useconconc_ix"
        );
        assert_eq!(
            moodle_index_name("mdl_", "user_mneuse", true),
            "mdl_user_mneuse_uix"
        );
        let sql = templated("DROP INDEX {prefix}a{on_log}; {x}", "m_", Backend::Mysql);
        assert_eq!(sql, "DROP INDEX m_a ON m_logstore_standard_log; {x}");
    }
}
