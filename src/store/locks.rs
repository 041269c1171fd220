//! PostgreSQL advisory locks: how the instances sharing one state database agree that one of
//! them at a time does a job (a compile pass, a migration, a write transaction, and through
//! it a key rotation).
//!
//! Every lock has a name here, and its id is derived from the name, so two jobs cannot pick
//! the same number by accident and an operator can find who holds one:
//! `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = …` (the low 32 bits).
//!
//! On SQLite there is one instance per state (the serve lock file, `instances::ServeLock`),
//! so these take nothing there: a SQLite write transaction is `BEGIN IMMEDIATE` already, and
//! a compile pass that meets another one stops without writing.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::{Db, DbConnection, PooledConn, StoreError};

/// The transaction-scoped lock of [`super::write_transaction`]: a read-then-write transaction
/// at a time per state database. "usestats" in ASCII, the value it has always had (an
/// instance of an older version takes the same one).
pub const LOCK_STATE_WRITE: i64 = 0x7573_6573_7461_7473;
/// A session lock held for a whole compile pass (`serve`'s and `usestats compile`'s): one
/// compiler at a time, so no pass is thrown away because another moved the store on.
pub const LOCK_COMPILE: i64 = lock_id("compile");
/// A session lock held while migrating the state (`super::migrate_state`): instances started
/// together on a new state would otherwise run the same migration at once. Key rotations
/// need none of their own: they run inside [`super::write_transaction`], under
/// [`LOCK_STATE_WRITE`].
pub const LOCK_MIGRATIONS: i64 = lock_id("migrations");

/// The id of the lock called `name`: FNV-1a (64 bits) of `usestats:` and the name. A const
/// fn, so the ids above are fixed at compile time and a test can check they differ.
pub const fn lock_id(name: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let prefix = b"usestats:";
    let mut i = 0;
    while i < prefix.len() {
        hash = (hash ^ prefix[i] as u64).wrapping_mul(PRIME);
        i += 1;
    }
    let name = name.as_bytes();
    let mut i = 0;
    while i < name.len() {
        hash = (hash ^ name[i] as u64).wrapping_mul(PRIME);
        i += 1;
    }
    hash as i64
}

/// Takes the transaction-scoped lock `id` (PostgreSQL waits for it; it goes at commit or
/// rollback). Call it inside a transaction; nothing on SQLite.
pub fn xact_lock(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    if let DbConnection::Postgres(_) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(id)
            .execute(conn)?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Answer {
    #[diesel(sql_type = Bool)]
    ok: bool,
}

fn ask(conn: &mut DbConnection, function: &str, id: i64) -> QueryResult<bool> {
    // `function` is one of the three names below, never input.
    diesel::sql_query(format!("SELECT {function}($1) AS ok"))
        .bind::<BigInt, _>(id)
        .get_result::<Answer>(conn)
        .map(|a| a.ok)
}

/// A connection holding the session lock `id` until it is dropped (or [`release`]d).
///
/// On PostgreSQL the connection is its own, never the pool's: if the unlock fails, dropping
/// the connection ends the session, which is what releases a session lock for sure; a pooled
/// connection would go back to the pool still holding it, and every other instance would
/// skip the job until that connection happened to close. On SQLite it is a pooled
/// connection and no lock is taken (one instance per state).
///
/// [`release`]: SessionLock::release
pub struct SessionLock {
    conn: Held,
    id: i64,
    /// Taken and not yet unlocked (on PostgreSQL).
    locked: bool,
}

enum Held {
    Own(DbConnection),
    Pooled(PooledConn),
}

impl SessionLock {
    /// The lock if it is free now; None when another session holds it.
    pub fn try_acquire(db: &Db, id: i64) -> Result<Option<SessionLock>, StoreError> {
        let Some(mut conn) = Self::own_connection(db)? else {
            return Ok(Some(Self::unlocked(db, id)?));
        };
        if ask(&mut conn, "pg_try_advisory_lock", id)? {
            Ok(Some(SessionLock {
                conn: Held::Own(conn),
                id,
                locked: true,
            }))
        } else {
            Ok(None)
        }
    }

    /// The lock, waiting for whoever holds it to let go.
    pub fn acquire(db: &Db, id: i64) -> Result<SessionLock, StoreError> {
        let Some(mut conn) = Self::own_connection(db)? else {
            return Self::unlocked(db, id);
        };
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(id)
            .execute(&mut conn)?;
        Ok(SessionLock {
            conn: Held::Own(conn),
            id,
            locked: true,
        })
    }

    /// A connection of its own on PostgreSQL; None on SQLite, which takes no lock.
    fn own_connection(db: &Db) -> Result<Option<DbConnection>, StoreError> {
        match db.kind() {
            super::DbKind::Postgres => Ok(Some(db.dedicated()?)),
            super::DbKind::Sqlite => Ok(None),
            super::DbKind::Mysql => Err(StoreError::Invalid(super::MYSQL_STATE.into())),
        }
    }

    fn unlocked(db: &Db, id: i64) -> Result<SessionLock, StoreError> {
        Ok(SessionLock {
            conn: Held::Pooled(db.get()?),
            id,
            locked: false,
        })
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// Lets go of the lock, saying whether PostgreSQL confirmed it. The connection is closed
    /// either way, which releases the lock if the unlock did not.
    pub fn release(mut self) -> Result<(), StoreError> {
        self.unlock()
    }

    fn unlock(&mut self) -> Result<(), StoreError> {
        if !std::mem::take(&mut self.locked) {
            return Ok(());
        }
        let Held::Own(conn) = &mut self.conn else {
            return Ok(());
        };
        match ask(conn, "pg_advisory_unlock", self.id)? {
            true => Ok(()),
            false => Err(StoreError::Invalid(format!(
                "advisory lock {} was not held by its session",
                self.id
            ))),
        }
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if let Err(e) = self.unlock() {
            // The connection closes right after this, and the lock goes with its session.
            tracing::warn!(lock = self.id, error = %e, "advisory unlock failed; closing its connection instead");
        }
    }
}

impl std::ops::Deref for SessionLock {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        match &self.conn {
            Held::Own(conn) => conn,
            Held::Pooled(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for SessionLock {
    fn deref_mut(&mut self) -> &mut DbConnection {
        match &mut self.conn {
            Held::Own(conn) => conn,
            Held::Pooled(conn) => conn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_locks_have_distinct_fixed_ids() {
        let ids = [LOCK_STATE_WRITE, LOCK_COMPILE, LOCK_MIGRATIONS];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(LOCK_COMPILE, lock_id("compile"));
        assert_ne!(lock_id("compile"), lock_id("compile "));
        // FNV-1a of "usestats:compile", so the id an operator looks for in pg_locks is
        // stable from one release to the next.
        assert_eq!(LOCK_COMPILE as u64, fnv1a(b"usestats:compile"));
    }

    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        })
    }
}
