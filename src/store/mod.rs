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
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    Pool(#[source] r2d2::PoolError),
    #[error("a database task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// A MySQL or MariaDB URL given where the state database belongs.
    #[error("{MYSQL_STATE}")]
    MysqlState,
    /// What this code relies on is not in the database: a bug, or someone else's hand.
    #[error("{0}")]
    Internal(#[from] Internal),
    /// The file system of a SQLite database has no room to open it (see [`explain_no_space`]).
    #[error("{0}")]
    NoSpace(String),
}

/// A row or a connection that must be there is not (a fault of ours or of whoever edited the
/// database by hand), never a caller's mistake.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error("the All Hosts row is missing from peers")]
    NoAllHosts,
    #[error("no peer with id {0}")]
    PeerVanished(i64),
    #[error("peer vanished after writing")]
    PeerVanishedAfterWriting,
    #[error("token vanished after writing")]
    TokenVanishedAfterWriting,
    #[error("a PostgreSQL URL gave another connection")]
    NotPostgres,
    /// Every caller vets a peer's wwwroot before it writes one.
    #[error("a peer needs a wwwroot")]
    NoWwwroot,
}

/// Opens connections by URL scheme. Diesel's own MultiConnection `establish` tries each
/// backend in turn, and SQLite accepts any string as a file name, so a mistyped or
/// unreachable PostgreSQL URL would silently become a stray SQLite file.
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
    read_only: bool,
    /// A statement every new connection must run without error before it is handed out: for
    /// a source, a query on Moodle's log table, so that an empty file or a database without
    /// Moodle's tables counts as unavailable rather than as a source with no one in it.
    probe: Option<String>,
}

impl Manager {
    pub fn new(url: &str, read_only: bool) -> Manager {
        Manager {
            url: url.to_string(),
            read_only,
            probe: None,
        }
    }
}

/// A connection the database itself keeps from writing: for a Moodle database we only read.
/// A SQLite file is opened read-only (`mode=ro`): never created when missing, and nothing in
/// it is changed (not even its journal mode).
pub fn establish_read_only(url: &str) -> Result<DbConnection, StoreError> {
    if DbKind::of(url) == DbKind::Sqlite {
        return establish_sqlite_read_only(url);
    }
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

/// The SQLite file a URL names, when it is a plain path (not a `file:` URI, not in memory).
fn sqlite_path(url: &str) -> Option<&std::path::Path> {
    if DbKind::of(url) != DbKind::Sqlite {
        return None;
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    (!path.is_empty() && path != ":memory:" && !path.starts_with("file:"))
        .then(|| std::path::Path::new(path))
}

/// `url` as a SQLite URI that opens read-only: a path with the characters a URI reads
/// specially escaped, or a `file:` URI with `mode=ro` added.
fn sqlite_read_only_uri(url: &str) -> String {
    if url.starts_with("file:") {
        let joiner = if url.contains('?') { '&' } else { '?' };
        return format!("{url}{joiner}mode=ro");
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    let mut uri = String::from("file:");
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=ro");
    uri
}

fn establish_sqlite_read_only(url: &str) -> Result<DbConnection, StoreError> {
    if let Some(path) = sqlite_path(url)
        && !path.exists()
    {
        return Err(StoreError::Connect {
            kind: DbKind::Sqlite,
            message: format!(
                "{} does not exist (usestats never creates a source database: check [source] url)",
                path.display()
            ),
        });
    }
    let mut conn =
        diesel::SqliteConnection::establish(&sqlite_read_only_uri(url)).map_err(|e| {
            StoreError::Connect {
                kind: DbKind::Sqlite,
                message: e.to_string(),
            }
        })?;
    for pragma in ["PRAGMA busy_timeout = 5000", "PRAGMA query_only = ON"] {
        diesel::sql_query(pragma).execute(&mut conn)?;
    }
    Ok(DbConnection::Sqlite(conn))
}

/// What this process calls itself in the database (`application_name` on PostgreSQL), so that
/// an operator looking at `pg_stat_activity`, and a lock's waiter naming its holder, can tell
/// which usestats process a session belongs to.
static PROCESS_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names this process for [`application_name`]: the command it runs (`serve`, `compile`…).
/// The first name given stays.
pub fn name_process(command: &str) {
    let _ = PROCESS_NAME.set(command.to_string());
}

/// `usestats <command> pid <pid>`, at most 63 bytes (PostgreSQL's limit).
pub fn application_name() -> String {
    let command = PROCESS_NAME.get().map(String::as_str).unwrap_or("command");
    let mut name = format!("usestats {command} pid {}", std::process::id());
    name.truncate(63);
    name
}

/// How long a job waits for a lock of a shared state (`store::locks`): `[database]
/// lock_wait_secs`, set once per process when the configuration is read.
static LOCK_WAIT_MS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(locks::DEFAULT_WAIT.as_millis() as u64);

pub fn set_lock_wait(wait: Duration) {
    LOCK_WAIT_MS.store(
        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
}

pub fn lock_wait() -> Duration {
    Duration::from_millis(LOCK_WAIT_MS.load(std::sync::atomic::Ordering::Relaxed))
}

pub fn establish(url: &str) -> Result<DbConnection, StoreError> {
    let kind = DbKind::of(url);
    let connect_err = |e: diesel::ConnectionError| StoreError::Connect {
        kind,
        message: e.to_string(),
    };
    match kind {
        DbKind::Postgres => {
            let mut conn = diesel::PgConnection::establish(url).map_err(connect_err)?;
            diesel::sql_query("SELECT set_config('application_name', $1, false)")
                .bind::<diesel::sql_types::Text, _>(application_name())
                .execute(&mut conn)?;
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
        let mut conn = if self.read_only {
            establish_read_only(&self.url)?
        } else {
            establish(&self.url)?
        };
        if let Some(probe) = &self.probe {
            diesel::sql_query(probe.as_str())
                .execute(&mut conn)
                .map_err(|e| StoreError::Connect {
                    kind: DbKind::of(&self.url),
                    message: format!(
                        "not a Moodle database, or an empty one ({e}): check [source] url and prefix"
                    ),
                })?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        // A read-only SQLite file that went away: its connections would go on reading the
        // deleted file; dropped, the pool connects again once a file is back.
        if self.read_only
            && let Some(path) = sqlite_path(&self.url)
            && !path.exists()
        {
            return Err(StoreError::Connect {
                kind: DbKind::Sqlite,
                message: format!("{} no longer exists", path.display()),
            });
        }
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

    /// The pool of a separate source (a Moodle's database): read-only, and each connection
    /// must find `{prefix}logstore_standard_log` before it is handed out. Opened whether or
    /// not the database answers now: the pool connects as it is asked, so the daemon serves
    /// (saying "unavailable" and `/healthz` 503) while the source is missing, empty or down,
    /// and answers again, without a restart, once it is back. The second value is why the
    /// first connection failed, if it did, for the log.
    pub fn open_source(
        url: &str,
        pool: impl Into<PoolSpec>,
        prefix: &str,
    ) -> (Db, Option<StoreError>) {
        let spec = pool.into();
        let kind = DbKind::of(url);
        let manager = Manager {
            url: url.to_string(),
            read_only: true,
            probe: Some(source_probe(prefix)),
        };
        let first = r2d2::ManageConnection::connect(&manager).err();
        let mut builder = Pool::builder()
            .max_size(spec.max_connections.max(1))
            .min_idle(Some(0))
            .idle_timeout(spec.idle_timeout)
            .connection_timeout(spec.wait);
        if kind == DbKind::Sqlite {
            // A file replaced by another one (a restore, a move) is read by new connections
            // only: old ones are let go within this.
            builder = builder.max_lifetime(Some(Duration::from_secs(10)));
        }
        let pool = builder.build_unchecked(manager.clone());
        (
            Db {
                pool,
                kind,
                manager,
            },
            first,
        )
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
            establish(url).map_err(|e| explain_no_space(url, e))?;
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

    /// A pool of its own, over the same database, of one connection: for the writers off the
    /// request path (audit rows and counts, contact times). However long a write of theirs
    /// waits (a lock, a slow disk), it holds no connection the request path needs; a writer
    /// that cannot get this one within `wait` gives up and tries again later. An in-memory
    /// database has no second way in: there the writers share the pool.
    pub fn writers(&self, wait: Duration) -> Result<Db, StoreError> {
        if self.kind == DbKind::Sqlite
            && (self.manager.url.is_empty()
                || self.manager.url == ":memory:"
                || self.manager.url.contains("mode=memory"))
        {
            return Ok(self.clone());
        }
        let pool = Pool::builder()
            .max_size(1)
            .min_idle(Some(0))
            .idle_timeout(Some(Duration::from_secs(300)))
            .connection_timeout(wait)
            .build(self.manager.clone())
            .map_err(|e| StoreError::Connect {
                kind: self.kind,
                message: e.to_string(),
            })?;
        Ok(Db {
            pool,
            kind: self.kind,
            manager: self.manager.clone(),
        })
    }

    pub fn get(&self) -> Result<PooledConn, StoreError> {
        self.pool.get().map_err(StoreError::Pool)
    }

    /// A new connection that no pool will ever hand out again: for a session whose state
    /// must end with its holder (a lock held for a whole job, [`locks::SessionLock`]). Dropping
    /// it closes the session.
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
            let mut conn = pool.get().map_err(|e| E::from(StoreError::Pool(e)))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(StoreError::Task(e)))?
    }
}

/// Room SQLite needs beside a database to open it in WAL mode after a clean stop (which
/// removes the side files): 32 KiB for the shared-memory index (`-shm`), and a few pages of
/// write-ahead log (`-wal`) for the first writes.
const ROOM_TO_OPEN: u64 = 64 * 1024;

/// `error`, opening the SQLite database at `url`, unless its file system is full: then what
/// to free, exactly (issue 22, K4). A start that needs no new space (the side files are there)
/// never gets here.
pub fn explain_no_space(url: &str, error: StoreError) -> StoreError {
    let Some(path) = sqlite_path(url) else {
        return error;
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let Some(free) = crate::files::free_space(dir) else {
        return error;
    };
    if free >= ROOM_TO_OPEN {
        return error;
    }
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let side = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    StoreError::NoSpace(format!(
        "cannot open the state database {file}: the file system holding {dir} is full ({free} bytes free; {error}). \
         SQLite needs {need} KiB there to open it: 32 KiB for {shm} and the rest for the first writes to {wal}; \
         free at least 1 MiB on that file system (`df {dir}`) so that calls can store their replay keys too. \
         Our own files there: {file} ({db_size} bytes), {wal} ({wal_size} bytes); the audit's oldest rows go \
         with a smaller [audit] max_rows or retention_days once it runs",
        file = path.display(),
        dir = dir.display(),
        need = ROOM_TO_OPEN / 1024,
        shm = side("-shm").display(),
        wal = side("-wal").display(),
        db_size = size(path),
        wal_size = size(&side("-wal")),
    ))
}

/// The statement that tells a Moodle database from an empty one: the log table answers.
/// `prefix` is validated by the configuration (lower-case letters, digits, `_`).
pub fn source_probe(prefix: &str) -> String {
    format!("SELECT 1 FROM {prefix}logstore_standard_log WHERE 1 = 0")
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
///
/// On PostgreSQL the pending migrations run in one transaction holding the migrations lock
/// (`store::locks`): instances started together on a new or older state take turns, and the
/// later ones find nothing pending; a migration that fails leaves none applied. The wait for
/// the lock and each statement's wait for the tables it changes (another session reading
/// them) are bounded by [`lock_wait`], so a start never hangs without saying why.
pub fn migrate_state(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    fn names<V: std::fmt::Display>(
        applied: Result<Vec<V>, Box<dyn std::error::Error + Send + Sync>>,
    ) -> Result<Vec<String>, StoreError> {
        applied
            .map(|versions| versions.iter().map(|v| v.to_string()).collect())
            .map_err(StoreError::Migration)
    }
    match conn {
        DbConnection::Sqlite(c) => {
            refuse_newer_schema(c, STATE_SQLITE)?;
            names(c.run_pending_migrations(STATE_SQLITE))
        }
        DbConnection::Postgres(_) => {
            locks::ensure_lock_rows(&mut *conn)?;
            let DbConnection::Postgres(pg) = conn else {
                return Err(Internal::NotPostgres.into());
            };
            let wait = lock_wait();
            pg.transaction::<_, StoreError, _>(|pg| {
                locks::pg_xact_lock(pg, locks::LOCK_MIGRATIONS, wait)?;
                diesel::connection::SimpleConnection::batch_execute(
                    pg,
                    &format!("SET LOCAL lock_timeout = '{}ms'", wait.as_millis().max(1)),
                )?;
                refuse_newer_schema(pg, STATE_POSTGRES)?;
                names(pg.run_pending_migrations(STATE_POSTGRES))
            })
        }
        DbConnection::Mysql(_) => Err(StoreError::MysqlState),
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
    let migration = StoreError::Migration;
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
        DbConnection::Mysql(_) => return Err(StoreError::MysqlState),
    }
    .map_err(StoreError::Migration)?;
    Ok(versions.iter().map(|v| v.to_string()).max())
}

/// A transaction that writes, run one at a time per state database, so that a transaction
/// that reads and then writes (insert the row if it is missing) never races another.
/// SQLite: `BEGIN IMMEDIATE`; a deferred transaction would instead fail at once with
/// "database is locked", without waiting out the busy timeout, when another connection wrote
/// in between. PostgreSQL: the state-write lock (`store::locks`), waited for at most
/// [`lock_wait`]; otherwise two first inserts of the same row would meet a unique-key error. Writes that read nothing first (audit rows,
/// contact times) take [`append_transaction`] instead. Not re-entrant: on SQLite, calling it
/// inside another transaction fails.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if !matches!(conn, DbConnection::Sqlite(_)) {
        return conn.transaction(|conn| {
            locks::xact_lock(conn, locks::LOCK_STATE_WRITE, lock_wait())?;
            work(conn)
        });
    }
    sqlite_immediate(conn, work)
}

/// A transaction of writes that read nothing first (rows appended, counters added to by key):
/// one commit for many rows, and no lock shared with other instances, which such writes do not
/// need (so they never wait behind a read-then-write transaction of another instance).
/// SQLite: `BEGIN IMMEDIATE`, as [`write_transaction`].
pub fn append_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if !matches!(conn, DbConnection::Sqlite(_)) {
        return conn.transaction(work);
    }
    sqlite_immediate(conn, work)
}

fn sqlite_immediate<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if let DbConnection::Sqlite(sqlite) = conn {
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    }
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

/// Gives the room of SQLite's write-ahead log back to the file system (`wal_checkpoint
/// (TRUNCATE)`): after a long write that failed (a compile on a full disk), the log holds
/// pages nobody will commit and would keep its size until some later checkpoint. Nothing on
/// PostgreSQL. A failure is logged: the next checkpoint does it anyway.
pub fn truncate_wal(conn: &mut DbConnection) {
    if let DbConnection::Sqlite(c) = conn
        && let Err(e) = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(c)
    {
        tracing::warn!(error = %e, "the state database's write-ahead log was not truncated");
    }
}

pub fn probe(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::sql_query("SELECT 1").execute(conn)
}
