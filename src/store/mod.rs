//! Persistence: our own state database and the read-only Moodle-shaped source database.
//!
//! Both are reached through one connection enum so that SQLite (the embedded default) and
//! PostgreSQL share all code above this module. Diesel is synchronous; async callers go
//! through [`Db::run`], which moves the work onto tokio's blocking pool.

pub mod locks;
pub mod state;

use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{self, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub mod source;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
    /// Only as a source: a Moodle site's MySQL or MariaDB database, read-only.
    Mysql(diesel::MysqlConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
    Mysql,
}

impl std::fmt::Display for DbKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbKind::Sqlite => "SQLite",
            DbKind::Postgres => "PostgreSQL",
            DbKind::Mysql => "MySQL/MariaDB",
        })
    }
}

impl DbKind {
    pub fn of(url: &str) -> DbKind {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DbKind::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            DbKind::Mysql
        } else {
            DbKind::Sqlite
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the {kind} database: {message}")]
    Connect { kind: DbKind, message: String },
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The state was migrated by a newer usestats: this one would misread tables it does not
    /// know, and diesel alone would start without a word (it only looks for pending ones).
    #[error(
        "the state database has schema version {found}, newer than this usestats {version} knows (its newest is {newest_known}): a newer usestats migrated it, and going back is not supported; install that newer version again, or restore the state from a backup taken before the upgrade"
    )]
    SchemaTooNew {
        found: String,
        newest_known: String,
        version: &'static str,
    },
    #[error("database busy: {0}")]
    Pool(String),
    #[error("a database task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Invalid(String),
}

/// Opens connections by URL scheme. Diesel's own MultiConnection `establish` tries each
/// backend in turn, and SQLite accepts any string as a file name, so a mistyped or
/// unreachable PostgreSQL URL would silently become a stray SQLite file.
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
    read_only: bool,
}

impl Manager {
    pub fn new(url: &str, read_only: bool) -> Manager {
        Manager {
            url: url.to_string(),
            read_only,
        }
    }
}

/// A connection the database itself keeps from writing: for a Moodle database we only read.
pub fn establish_read_only(url: &str) -> Result<DbConnection, StoreError> {
    let mut conn = establish(url)?;
    let statement = match conn {
        DbConnection::Postgres(_) => "SET default_transaction_read_only = on",
        DbConnection::Sqlite(_) => "PRAGMA query_only = ON",
        DbConnection::Mysql(_) => "SET SESSION TRANSACTION READ ONLY",
    };
    // The text protocol: MySQL does not take every SET as a prepared statement.
    diesel::connection::SimpleConnection::batch_execute(&mut conn, statement)?;
    Ok(conn)
}

pub fn establish(url: &str) -> Result<DbConnection, StoreError> {
    let kind = DbKind::of(url);
    let connect_err = |e: diesel::ConnectionError| StoreError::Connect {
        kind,
        message: e.to_string(),
    };
    match kind {
        DbKind::Postgres => {
            let conn = diesel::PgConnection::establish(url).map_err(connect_err)?;
            Ok(DbConnection::Postgres(conn))
        }
        DbKind::Mysql => {
            // The driver knows only the mysql:// scheme; mariadb:// is accepted as a courtesy.
            let url = match url.strip_prefix("mariadb://") {
                Some(rest) => format!("mysql://{rest}"),
                None => url.to_string(),
            };
            let mut conn = diesel::MysqlConnection::establish(&url).map_err(connect_err)?;
            // Moodle stores text as utf8mb4; its log times and ids are plain integers.
            diesel::connection::SimpleConnection::batch_execute(&mut conn, "SET NAMES utf8mb4")
                .map_err(StoreError::Query)?;
            Ok(DbConnection::Mysql(conn))
        }
        DbKind::Sqlite => {
            let mut conn = diesel::SqliteConnection::establish(url).map_err(connect_err)?;
            // WAL lets readers proceed while a writer holds the file; the busy timeout
            // turns short lock waits into delays instead of errors.
            for pragma in [
                "PRAGMA busy_timeout = 5000",
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
            ] {
                diesel::sql_query(pragma)
                    .execute(&mut conn)
                    .map_err(StoreError::Query)?;
            }
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConnection, StoreError> {
        if self.read_only {
            establish_read_only(&self.url)
        } else {
            establish(&self.url)
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

pub type DbPool = Pool<Manager>;
pub type PooledConn = PooledConnection<Manager>;

/// A pool plus the knowledge of which backend it talks to.
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    kind: DbKind,
    /// Opens connections outside the pool too ([`Db::dedicated`]).
    manager: Manager,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("kind", &self.kind).finish()
    }
}

/// How big a pool is and how long it keeps what it does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSpec {
    pub max_connections: u32,
    /// Unused connections close after this; None keeps them.
    pub idle_timeout: Option<Duration>,
    /// How long a caller waits for a free connection before "database busy".
    pub wait: Duration,
}

impl From<u32> for PoolSpec {
    fn from(max_connections: u32) -> PoolSpec {
        PoolSpec {
            max_connections,
            idle_timeout: Some(Duration::from_secs(300)),
            wait: Duration::from_secs(5),
        }
    }
}

/// What the process is: a command needs a connection or two for its few queries; a server
/// needs a small pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PoolRole {
    #[default]
    Command,
    Serve,
}

/// Which database a pool reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolTarget {
    State,
    /// Moodle's database, when it is not the state database.
    Source,
}

/// The pool for `target` in a process of `role`. A command runs its queries one after
/// another: two state connections (one may be held while a second is asked for when the source
/// is the same file) and one to Moodle. `serve` gets `max_connections` to each, opened as
/// requests need them and closed after `idle_timeout_secs` unused. A request waits up to 5 s
/// for one: longer would outlast a peer's call timeout when the database is down.
pub fn pool_spec(
    role: PoolRole,
    max_connections: u32,
    idle_timeout_secs: u64,
    target: PoolTarget,
) -> PoolSpec {
    let idle_timeout = Some(Duration::from_secs(idle_timeout_secs));
    match role {
        PoolRole::Command => PoolSpec {
            max_connections: if target == PoolTarget::State { 2 } else { 1 },
            idle_timeout,
            wait: Duration::from_secs(5),
        },
        PoolRole::Serve => PoolSpec {
            max_connections,
            idle_timeout,
            wait: Duration::from_secs(5),
        },
    }
}

impl Db {
    pub fn open(url: &str, pool: impl Into<PoolSpec>) -> Result<Db, StoreError> {
        Self::open_with(url, pool.into(), false)
    }

    /// A pool whose connections cannot write (the source, when it is Moodle's database).
    pub fn open_read_only(url: &str, pool: impl Into<PoolSpec>) -> Result<Db, StoreError> {
        Self::open_with(url, pool.into(), true)
    }

    fn open_with(url: &str, spec: PoolSpec, read_only: bool) -> Result<Db, StoreError> {
        let kind = DbKind::of(url);
        if kind == DbKind::Sqlite && !read_only {
            create_private_sqlite(url)?;
        }
        // One connection first, so a bad URL fails with the driver's message rather than
        // a pool timeout. The pool itself starts empty and opens connections as they are asked
        // for (r2d2 would otherwise open max_size of them at once and keep them).
        if read_only {
            establish_read_only(url)?;
        } else {
            establish(url)?;
        }
        let manager = Manager::new(url, read_only);
        let pool = Pool::builder()
            .max_size(spec.max_connections.max(1))
            .min_idle(Some(0))
            .idle_timeout(spec.idle_timeout)
            .connection_timeout(spec.wait)
            .build(manager.clone())
            .map_err(|e| StoreError::Connect {
                kind,
                message: e.to_string(),
            })?;
        Ok(Db {
            pool,
            kind,
            manager,
        })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    pub fn get(&self) -> Result<PooledConn, StoreError> {
        self.pool.get().map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// A new connection that no pool will ever hand out again: for a session whose state
    /// must end with its holder (a session advisory lock, [`locks::SessionLock`]). Dropping it
    /// closes the session.
    pub fn dedicated(&self) -> Result<DbConnection, StoreError> {
        r2d2::ManageConnection::connect(&self.manager)
    }

    /// Run blocking database work off the async executor.
    /// Run `work` on a pooled connection, off the async workers. The error is the caller's
    /// own (as in [`write_transaction`]), so a query layer's typed error comes back whole
    /// instead of as text; the pool's own failures arrive as a [`StoreError`] inside it.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| E::from(StoreError::Pool(e.to_string())))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(StoreError::Task(e.to_string())))?
    }
}

/// SQLite would create a missing database file 0644 (less the umask); ours holds peers,
/// grants and token hashes, so it is created 0600 before SQLite opens it (and SQLite gives
/// the `-wal` and `-shm` files the database file's mode).
fn create_private_sqlite(url: &str) -> Result<(), StoreError> {
    if url.is_empty() || url == ":memory:" || url.starts_with("file:") {
        return Ok(());
    }
    crate::files::create_private_if_missing(std::path::Path::new(url)).map_err(|e| {
        StoreError::Connect {
            kind: DbKind::Sqlite,
            message: format!("cannot create {url}: {e}"),
        }
    })
}

pub const MYSQL_STATE: &str = "MySQL/MariaDB can be the source (a Moodle database) but not the state database: use a SQLite file or postgres://";

const STATE_SQLITE: EmbeddedMigrations = embed_migrations!("schema/state/sqlite");
const STATE_POSTGRES: EmbeddedMigrations = embed_migrations!("schema/state/postgres");

/// Bring the state schema up to date. Returns the versions applied now.
pub fn migrate_state(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    fn names<V: std::fmt::Display>(
        applied: Result<Vec<V>, Box<dyn std::error::Error + Send + Sync>>,
    ) -> Result<Vec<String>, StoreError> {
        applied
            .map(|versions| versions.iter().map(|v| v.to_string()).collect())
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
    match conn {
        DbConnection::Sqlite(c) => {
            refuse_newer_schema(c, STATE_SQLITE)?;
            names(c.run_pending_migrations(STATE_SQLITE))
        }
        DbConnection::Postgres(c) => {
            // Instances started together on a new state would run the same migration at
            // once, and all but one fail on the catalogue's unique keys: one at a time, the
            // others then find nothing pending.
            diesel::sql_query(format!(
                "SELECT pg_advisory_lock({})",
                locks::LOCK_MIGRATIONS
            ))
            .execute(c)?;
            let applied = refuse_newer_schema(c, STATE_POSTGRES)
                .and_then(|()| names(c.run_pending_migrations(STATE_POSTGRES)));
            let unlocked = diesel::sql_query(format!(
                "SELECT pg_advisory_unlock({})",
                locks::LOCK_MIGRATIONS
            ))
            .execute(c);
            let applied = applied?;
            unlocked?;
            Ok(applied)
        }
        DbConnection::Mysql(_) => Err(StoreError::Invalid(MYSQL_STATE.into())),
    }
}

/// Refuses a state that holds migrations this binary does not embed (a downgrade), naming
/// the newest version found and the newest one known.
fn refuse_newer_schema<C, DB>(conn: &mut C, known: EmbeddedMigrations) -> Result<(), StoreError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    let migration =
        |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    let known: Vec<String> = diesel::migration::MigrationSource::<DB>::migrations(&known)
        .map_err(migration)?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied = conn.applied_migrations().map_err(migration)?;
    let newest_unknown = applied
        .iter()
        .map(|v| v.to_string())
        .filter(|v| !known.contains(v))
        .max();
    match newest_unknown {
        None => Ok(()),
        Some(found) => Err(StoreError::SchemaTooNew {
            found,
            newest_known: known.into_iter().max().unwrap_or_default(),
            version: crate::VERSION,
        }),
    }
}

/// The newest state migration applied, for `doctor`.
pub fn state_schema_version(conn: &mut DbConnection) -> Result<Option<String>, StoreError> {
    let versions = match conn {
        DbConnection::Sqlite(c) => c.applied_migrations(),
        DbConnection::Postgres(c) => c.applied_migrations(),
        DbConnection::Mysql(_) => return Err(StoreError::Invalid(MYSQL_STATE.into())),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(versions.iter().map(|v| v.to_string()).max())
}

/// A transaction that writes, run one at a time per state database, so that a transaction
/// that reads and then writes (insert the row if it is missing) never races another.
/// SQLite: `BEGIN IMMEDIATE`; a deferred transaction would instead fail at once with
/// "database is locked", without waiting out the busy timeout, when another connection wrote
/// in between. PostgreSQL: a transaction-scoped advisory lock; otherwise two first inserts of
/// the same row would meet a unique-key error. Single-statement writes (audit, contact time)
/// do not take it. Not re-entrant: on SQLite, calling it inside another transaction fails.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(|conn| {
            locks::xact_lock(conn, locks::LOCK_STATE_WRITE)?;
            work(conn)
        });
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    let result = work(conn);
    if let DbConnection::Sqlite(sqlite) = conn {
        let ended = match &result {
            Ok(_) => AnsiTransactionManager::commit_transaction(sqlite),
            Err(_) => AnsiTransactionManager::rollback_transaction(sqlite),
        };
        if let Err(e) = ended {
            // A failed commit leaves nothing written; report it unless the work failed first.
            if result.is_ok() {
                let _ = AnsiTransactionManager::rollback_transaction(sqlite);
                return Err(e.into());
            }
        }
    }
    result
}

pub fn probe(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::sql_query("SELECT 1").execute(conn)
}
