//! Read side of the Moodle-shaped source database.
//!
//! Everything here is a SELECT with bound values. Table names carry the configured prefix
//! (a checked [`Prefix`]); the only other identifier ever put into SQL text is a
//! module type name read from `{prefix}modules`, validated before use.
//!
//! This file holds the handle, its error and what the queries share; the queries live in
//! `users`, `courses`, `groups`, `grades`, `logs` and `config_plugins`, one file per group of
//! tables.

mod config_plugins;
mod courses;
mod dedication_rows;
mod grades;
mod groups;
mod logs;
pub(crate) mod query;
mod schema;
mod search;
mod users;

pub use config_plugins::DEDICATION_PLUGIN;
pub use courses::{Course, CourseField, ModuleLabel, ModuleState};
pub use dedication_rows::RowsByUser;
pub use groups::Group;
pub use logs::{ChangeMark, IDS_PER_BATCH_QUERY, LogSize};
pub use search::{CourseOrder, CoursePage, FoundUser, IndexedCourse, MAX_MATCHES, UserSearch};
pub use users::{MnetHost, User, UserField};

pub(crate) use query::{Backend, backend as backend_of};
use query::{Bind, text_eq};
pub(crate) use schema::{LOGSTORE_INDEX_BASES, LOGSTORE_INDEX_VERSION, migration_sql};
pub use schema::{Prefix, migrate_source, moodle_index_name};

pub use crate::stats::{
    CONTEXT_COURSE, CONTEXT_COURSECAT, CONTEXT_MODULE, CONTEXT_SYSTEM, CONTEXT_USER,
};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "invalid table prefix {0:?}: use a lower-case letter, then [a-z0-9_], at most 20 characters"
    )]
    InvalidPrefix(String),
    #[error("source schema migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: diesel::result::Error,
    },
    #[error("source database query failed: {0}")]
    Query(#[from] diesel::result::Error),
}

pub use crate::stats::{LogRow, LogText, ModuleInfo};

/// The WHERE condition and bound value that find `value` in `column` (`id` or a text column).
/// None when nothing can match: an empty value, or an id that is not a number.
fn lookup_condition(backend: Backend, column: &str, value: &str) -> Option<(String, Bind)> {
    if value.is_empty() {
        return None;
    }
    if column == "id" {
        let id = value.parse::<i64>().ok()?;
        return Some(("id = $1".to_string(), Bind::Int(id)));
    }
    Some((text_eq(backend, column, 1), Bind::Text(value.to_owned())))
}

/// Handle on the source tables under one prefix. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct Source {
    prefix: Prefix,
}

impl Source {
    /// The tables under a prefix given as text (checked here).
    pub fn new(prefix: &str) -> Result<Self, SourceError> {
        Ok(Source::of(Prefix::parse(prefix)?))
    }

    /// The tables under a prefix already checked.
    pub fn of(prefix: Prefix) -> Source {
        Source { prefix }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn t(&self, table: &str) -> String {
        format!("{}{}", self.prefix, table)
    }
}
