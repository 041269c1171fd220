//! Persistence: our own state database and the read-only Moodle-shaped source database.
//!
//! Both are reached through one connection enum so that SQLite (the embedded default) and
//! PostgreSQL share all code above this module.

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};

pub mod source;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(diesel::SqliteConnection),
    Postgres(diesel::PgConnection),
}

pub type DbPool = Pool<ConnectionManager<DbConnection>>;

pub fn pool(url: &str) -> Result<DbPool, diesel::r2d2::PoolError> {
    Pool::builder()
        .max_size(4)
        .build(ConnectionManager::<DbConnection>::new(url))
}

pub fn probe(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::sql_query("SELECT 1").execute(conn)
}
