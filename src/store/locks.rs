//! How the instances sharing one PostgreSQL state database agree that one of them at a time
//! does a job: a read-then-write transaction (and through it a key rotation), a compile pass,
//! the migrations.
//!
//! Each job has a row in `usestats_locks`, and holding the job's lock is holding that row with
//! `SELECT … FOR UPDATE`. Locking a row takes the UPDATE privilege on its table, which only
//! the daemon's own role has, so no other role that can connect to the database can take
//! these locks or hold them against us (docs/decisions.md, "Several instances"; SECURITY.md, "The
//! state database"). Session advisory locks with fixed keys are not used: any role that can
//! log in can take them, and so stop every instance.
//!
//! Every wait is bounded. A waiter asks again with `SKIP LOCKED` (which never blocks) until
//! its deadline; past [`WARN_AFTER`] it logs a warning naming the lock, the session that
//! holds it (from `pg_stat_activity`: pid, role, `application_name`, client, for how long) and
//! itself; at the deadline it gives up with [`LockError::Busy`], which says the same.
//!
//! On SQLite there is one instance per state (the serve lock file, `instances::ServeLock`),
//! so these take nothing there: a SQLite write transaction is `BEGIN IMMEDIATE` already, and
//! a compile pass that meets another one stops without writing.

use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{Db, DbConnection, DbKind, StoreError};

/// A job's lock: the name of its row in `usestats_locks`.
pub type LockName = &'static str;

/// Read-then-write transactions ([`super::write_transaction`]), one at a time per state.
pub const LOCK_STATE_WRITE: LockName = "state_write";
/// A whole compile pass (`serve`'s and `usestats compile`'s): one compiler at a time, so no
/// pass is thrown away because another moved the store on.
pub const LOCK_COMPILE: LockName = "compile";
/// The state's migrations (`super::migrate_state`): instances started together on a new state
/// would otherwise run the same migration at once.
pub const LOCK_MIGRATIONS: LockName = "migrations";

const ALL_LOCKS: [LockName; 3] = [LOCK_STATE_WRITE, LOCK_COMPILE, LOCK_MIGRATIONS];

/// The table of lock rows. Made before the migrations run (they take a lock in it), so it is
/// not one of them.
pub const LOCK_TABLE: &str = "usestats_locks";

/// A wait longer than this is logged (once), naming who holds the lock.
pub const WARN_AFTER: Duration = Duration::from_secs(1);

/// How long a job waits for a lock unless told otherwise (`[database] lock_wait_secs`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "lock {lock} of the state database is still held after {waited_secs} s by {holder}; {waiter} gave up waiting"
    )]
    Busy {
        lock: LockName,
        waited_secs: u64,
        holder: String,
        waiter: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for LockError {
    fn from(e: diesel::result::Error) -> LockError {
        LockError::Store(e.into())
    }
}

/// What a [`LockError::Busy`] becomes where only a diesel error can be returned (inside a
/// transaction's closure): a database error whose message is the lock error's.
#[derive(Debug)]
struct BusyInformation(String);

impl diesel::result::DatabaseErrorInformation for BusyInformation {
    fn message(&self) -> &str {
        &self.0
    }
    fn details(&self) -> Option<&str> {
        None
    }
    fn hint(&self) -> Option<&str> {
        None
    }
    fn table_name(&self) -> Option<&str> {
        Some(LOCK_TABLE)
    }
    fn column_name(&self) -> Option<&str> {
        None
    }
    fn constraint_name(&self) -> Option<&str> {
        None
    }
    fn statement_position(&self) -> Option<i32> {
        None
    }
}

impl LockError {
    fn into_diesel(self) -> diesel::result::Error {
        match self {
            LockError::Store(StoreError::Query(e)) => e,
            other => diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(BusyInformation(other.to_string())),
            ),
        }
    }
}

/// Makes the lock table and its rows if they are missing (a new state, or one an earlier
/// version made). Nothing on SQLite. Two instances starting together on a new database may
/// both try to create the table; the loser sees the winner's and goes on.
pub fn ensure_lock_rows(conn: &mut DbConnection) -> Result<(), StoreError> {
    match conn {
        DbConnection::Postgres(pg) => create_lock_rows_retrying(pg),
        _ => Ok(()),
    }
}

fn create_lock_rows_retrying(pg: &mut PgConnection) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match create_lock_rows(pg) {
            Ok(()) => return Ok(()),
            Err(_) if attempt < 3 => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e.into()),
        }
    }
}

fn create_lock_rows(pg: &mut diesel::PgConnection) -> QueryResult<()> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        present: bool,
    }
    // Looked up first: CREATE … IF NOT EXISTS still asks for the schema's CREATE privilege,
    // which an operator may have taken back once the tables were made.
    let present = diesel::sql_query(format!(
        "SELECT to_regclass('{LOCK_TABLE}') IS NOT NULL AS present"
    ))
    .get_result::<Exists>(pg)?
    .present;
    if !present {
        pg.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (\
             name TEXT PRIMARY KEY NOT NULL, \
             purpose TEXT NOT NULL DEFAULT '')"
        ))?;
    }
    let have: Vec<Named> = diesel::sql_query(format!("SELECT name FROM {LOCK_TABLE}")).load(pg)?;
    for name in ALL_LOCKS {
        if !have.iter().any(|h| h.name == name) {
            insert_row(pg, name)?;
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    name: String,
}

fn insert_row(pg: &mut PgConnection, name: LockName) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "INSERT INTO {LOCK_TABLE} (name) VALUES ($1) ON CONFLICT (name) DO NOTHING"
    ))
    .bind::<Text, _>(name)
    .execute(pg)
}

/// Tries once to lock `name`'s row in the current transaction: true when it is ours now.
fn try_row(conn: &mut PgConnection, name: LockName) -> QueryResult<bool> {
    let rows: Vec<Named> = diesel::sql_query(format!(
        "SELECT name FROM {LOCK_TABLE} WHERE name = $1 FOR UPDATE SKIP LOCKED"
    ))
    .bind::<Text, _>(name)
    .load(conn)?;
    if !rows.is_empty() {
        return Ok(true);
    }
    // Skipped because it is locked, or missing (a table an operator emptied): made again.
    let exists: Vec<Named> =
        diesel::sql_query(format!("SELECT name FROM {LOCK_TABLE} WHERE name = $1"))
            .bind::<Text, _>(name)
            .load(conn)?;
    if exists.is_empty() {
        insert_row(conn, name)?;
    }
    Ok(false)
}

/// Waits up to `wait` for `name`'s row in the current transaction (PostgreSQL), logging
/// a wait past [`WARN_AFTER`] and giving up with [`LockError::Busy`] at the deadline.
fn wait_for_row(conn: &mut PgConnection, name: LockName, wait: Duration) -> Result<(), LockError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    let mut warned = false;
    loop {
        if try_row(conn, name)? {
            if warned {
                tracing::info!(
                    lock = name,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "got the lock after waiting"
                );
            }
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= wait {
            let holder = holder(conn, name);
            let waiter = waiter(conn);
            tracing::warn!(lock = name, holder = %holder, waiter = %waiter, waited_secs = waited.as_secs(), "gave up waiting for a lock of the state database");
            return Err(LockError::Busy {
                lock: name,
                waited_secs: waited.as_secs(),
                holder,
                waiter,
            });
        }
        if !warned && waited >= WARN_AFTER {
            warned = true;
            tracing::warn!(lock = name, holder = %holder(conn, name), waiter = %waiter(conn), limit_secs = wait.as_secs(), "waiting for a lock of the state database");
        }
        std::thread::sleep(pause.min(wait.saturating_sub(waited)));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Takes `name` for the rest of the current transaction, waiting up to `wait`. Call it inside
/// a transaction; nothing on SQLite. Inside a transaction's closure the error must be diesel's:
/// a [`LockError::Busy`] arrives as a database error with the same message.
pub fn xact_lock(conn: &mut DbConnection, name: LockName, wait: Duration) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => pg_xact_lock(pg, name, wait),
        _ => Ok(()),
    }
}

/// [`xact_lock`] on a PostgreSQL connection.
pub fn pg_xact_lock(pg: &mut PgConnection, name: LockName, wait: Duration) -> QueryResult<()> {
    wait_for_row(pg, name, wait).map_err(LockError::into_diesel)
}

/// Who holds `name`'s row, as far as this role may see: the session whose transaction locked
/// it (the row's `xmax`), from `pg_stat_activity`.
pub fn holder(conn: &mut PgConnection, name: LockName) -> String {
    #[derive(QueryableByName)]
    struct Holder {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        usename: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        application_name: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        client: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
        for_secs: Option<i64>,
    }
    // A FOR UPDATE lock writes the locker's transaction id into the row's xmax; the session
    // running that transaction shows it as backend_xid.
    let found = diesel::sql_query(format!(
        "SELECT a.pid, a.usename::text AS usename, a.application_name, \
         host(a.client_addr) AS client, \
         CAST(EXTRACT(EPOCH FROM now() - a.xact_start) AS BIGINT) AS for_secs \
         FROM pg_stat_activity a, {LOCK_TABLE} l \
         WHERE l.name = $1 AND a.backend_xid = l.xmax"
    ))
    .bind::<Text, _>(name)
    .load::<Holder>(conn);
    match found {
        Ok(rows) => match rows.into_iter().next() {
            Some(h) => {
                let shown =
                    |v: Option<String>| crate::text::untrusted::field(v.as_deref().unwrap_or("?"));
                format!(
                    "pid {} (role {}, application {}, client {}, in its transaction for {} s)",
                    h.pid,
                    shown(h.usename),
                    shown(h.application_name),
                    shown(h.client.or(Some("local socket".into()))),
                    h.for_secs
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "?".into())
                )
            }
            None => "a session this role cannot see (or one that just let go)".into(),
        },
        Err(e) => format!("a session not found ({e})"),
    }
}

/// This session, as [`holder`] names the holder.
fn waiter(conn: &mut PgConnection) -> String {
    #[derive(QueryableByName)]
    struct Me {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    match diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Me>(conn) {
        Ok(me) => format!("pid {} ({})", me.pid, super::application_name()),
        Err(_) => super::application_name(),
    }
}

/// A lock held for a whole job (a compile pass) on a connection of its own, and the
/// connection the job works on.
///
/// On PostgreSQL both connections are the holder's own, never the pool's: the lock
/// connection keeps a transaction open holding the row, and dropping the guard closes it,
/// which ends the transaction and lets go of the row whatever state it was left in; the work
/// connection is closed too, so a job that left it inside a transaction cannot hand that on.
/// On SQLite the work connection is a pooled one and no lock is taken (one instance per
/// state).
pub struct SessionLock {
    lock: Option<PgConnection>,
    work: Held,
    name: LockName,
}

enum Held {
    Own(Box<DbConnection>),
    Pooled(super::PooledConn),
}

impl SessionLock {
    /// The lock if it is free now; None when another session holds it.
    pub fn try_acquire(db: &Db, name: LockName) -> Result<Option<SessionLock>, StoreError> {
        match Self::acquire_within(db, name, Duration::ZERO) {
            Ok(lock) => Ok(Some(lock)),
            Err(LockError::Busy { .. }) => Ok(None),
            Err(LockError::Store(e)) => Err(e),
        }
    }

    /// The lock, waiting up to `wait` for whoever holds it (logged past [`WARN_AFTER`]).
    pub fn acquire_within(
        db: &Db,
        name: LockName,
        wait: Duration,
    ) -> Result<SessionLock, LockError> {
        match db.kind() {
            DbKind::Sqlite => {
                return Ok(SessionLock {
                    lock: None,
                    work: Held::Pooled(db.get()?),
                    name,
                });
            }
            DbKind::Mysql => return Err(StoreError::MysqlState.into()),
            DbKind::Postgres => {}
        }
        let DbConnection::Postgres(mut lock) = db.dedicated()? else {
            return Err(StoreError::from(super::Internal::NotPostgres).into());
        };
        create_lock_rows_retrying(&mut lock)?;
        // Held open for the whole job: a server-wide idle-in-transaction timeout must not end
        // it (the job's own work goes on another connection meanwhile).
        lock.batch_execute("BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0")?;
        if wait.is_zero() {
            if !try_row(&mut lock, name)? {
                let holder = holder(&mut lock, name);
                return Err(LockError::Busy {
                    lock: name,
                    waited_secs: 0,
                    holder,
                    waiter: waiter(&mut lock),
                });
            }
        } else {
            wait_for_row(&mut lock, name, wait)?;
        }
        let work = db.dedicated()?;
        Ok(SessionLock {
            lock: Some(lock),
            work: Held::Own(Box::new(work)),
            name,
        })
    }

    pub fn name(&self) -> LockName {
        self.name
    }

    /// Lets go of the lock now, saying whether PostgreSQL confirmed it. The connections are
    /// closed either way, which lets go of the row if the commit did not.
    pub fn release(mut self) -> Result<(), StoreError> {
        match self.lock.take() {
            Some(mut lock) => Ok(lock.batch_execute("COMMIT")?),
            None => Ok(()),
        }
    }

    /// Who holds `name` now, for a message; None on SQLite.
    pub fn holder_of(db: &Db, name: LockName) -> Option<String> {
        let mut conn = db.get().ok()?;
        match &mut *conn {
            DbConnection::Postgres(pg) => Some(holder(pg, name)),
            _ => None,
        }
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if let Some(mut lock) = self.lock.take()
            && let Err(e) = lock.batch_execute("COMMIT")
        {
            // The connection closes right after this, and the row goes with its transaction.
            tracing::warn!(lock = self.name, error = %e, "lock not let go cleanly; closing its connection instead");
        }
    }
}

impl std::ops::Deref for SessionLock {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        match &self.work {
            Held::Own(conn) => conn,
            Held::Pooled(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for SessionLock {
    fn deref_mut(&mut self) -> &mut DbConnection {
        match &mut self.work {
            Held::Own(conn) => conn,
            Held::Pooled(conn) => conn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locks_have_distinct_names() {
        for (i, a) in ALL_LOCKS.iter().enumerate() {
            for b in &ALL_LOCKS[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_busy_lock_reads_as_a_database_error_naming_it() {
        let e = LockError::Busy {
            lock: LOCK_STATE_WRITE,
            waited_secs: 30,
            holder: "pid 7 (role usestats, application usestats serve)".into(),
            waiter: "pid 8 (usestats grant)".into(),
        }
        .into_diesel();
        let text = e.to_string();
        assert!(
            text.contains("state_write") && text.contains("pid 7") && text.contains("pid 8"),
            "{text}"
        );
    }
}
