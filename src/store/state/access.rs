//! Who besides the daemon's own role may reach a PostgreSQL state database, read from the
//! server's catalogue for `usestats doctor` (SECURITY.md, "The state database").

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde::Serialize;

use crate::store::locks::LOCK_TABLE;
use crate::store::{DbConnection, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateAccess {
    pub database: String,
    /// The role we are connected as.
    pub role: String,
    /// CONNECT is granted to PUBLIC: every role of the server may connect.
    pub public_connect: bool,
    /// Other login roles that may connect (not superusers, not roles we are a member of).
    pub other_roles: Vec<String>,
    /// Other login roles that own or may UPDATE the lock table (themselves or through a role
    /// they are members of, such as `pg_write_all_data`), and so could hold our locks.
    pub lock_writers: Vec<String>,
}

/// The state database's access as PostgreSQL grants it; an empty answer on SQLite.
pub fn state_access(conn: &mut DbConnection) -> Result<StateAccess, StoreError> {
    #[derive(QueryableByName)]
    struct Base {
        #[diesel(sql_type = Text)]
        database: String,
        #[diesel(sql_type = Text)]
        role: String,
        #[diesel(sql_type = Bool)]
        public_connect: bool,
    }
    #[derive(QueryableByName)]
    struct Role {
        #[diesel(sql_type = Text)]
        name: String,
    }
    if !matches!(conn, DbConnection::Postgres(_)) {
        return Ok(StateAccess::default());
    }
    let base: Base = diesel::sql_query(
        "SELECT current_database()::text AS database, current_user::text AS role, \
         has_database_privilege('public', current_database(), 'CONNECT') AS public_connect",
    )
    .get_result(conn)?;
    let other_roles: Vec<Role> = diesel::sql_query(
        "SELECT r.rolname::text AS name FROM pg_roles r \
         WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolname <> current_user \
         AND has_database_privilege(r.oid, current_database(), 'CONNECT') \
         AND NOT pg_has_role(current_user, r.oid, 'MEMBER') ORDER BY 1",
    )
    .load(conn)?;
    let lock_writers: Vec<Role> = diesel::sql_query(format!(
        "SELECT r.rolname::text AS name FROM pg_roles r \
         WHERE r.rolcanlogin AND r.rolname <> current_user \
         AND NOT r.rolsuper AND NOT pg_has_role(current_user, r.oid, 'MEMBER') \
         AND CASE WHEN to_regclass('{LOCK_TABLE}') IS NULL THEN false \
             ELSE has_table_privilege(r.oid, '{LOCK_TABLE}', 'UPDATE') END ORDER BY 1"
    ))
    .load(conn)?;
    Ok(StateAccess {
        database: base.database,
        role: base.role,
        public_connect: base.public_connect,
        other_roles: other_roles.into_iter().map(|r| r.name).collect(),
        lock_writers: lock_writers.into_iter().map(|r| r.name).collect(),
    })
}
