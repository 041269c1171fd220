//! Real databases for tests: a fresh SQLite file, or a fresh PostgreSQL database on
//! the server named by `USESTATS_TEST_PG_URL`, dropped again when the test ends.

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use usestats::store::DbConnection;

pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: String,
    },
    Postgres {
        admin_url: String,
        url: String,
        name: String,
    },
    /// MySQL/MariaDB, as a source only (a Moodle site's database).
    Mysql {
        admin_url: String,
        url: String,
        name: String,
    },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "usestats_test_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Replaces the database name (the last path segment) of a PostgreSQL URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{}{}", &base[..host_part_end], db, query)
}

/// `USESTATS_TEST_{name}_URL`, or None when it is unset and `USESTATS_REQUIRE_{name}` is not 1.
fn server_url(what: &str, name: &str) -> Option<String> {
    let (url_var, require_var) = (
        format!("USESTATS_TEST_{name}_URL"),
        format!("USESTATS_REQUIRE_{name}"),
    );
    match std::env::var(&url_var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var(&require_var).as_deref() == Ok("1") {
                panic!("{require_var}=1 but {url_var} is not set");
            }
            // Straight to the process's stderr: the harness would swallow eprintln! output.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{what} tests skipped: {url_var} not set");
            None
        }
    }
}

/// A new, empty database on the server named by `USESTATS_TEST_{name}_URL`:
/// (admin URL, URL of the new database, its name).
fn fresh_server_database(
    what: &str,
    name: &str,
    options: &str,
) -> Option<(String, String, String)> {
    let admin_url = server_url(what, name)?;
    let database = unique_name();
    let mut admin = usestats::store::establish(&admin_url)
        .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {database}{options}"))
        .expect("create test database");
    let url = with_database(&admin_url, &database);
    Some((admin_url, url, database))
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("source.db").to_string_lossy().into_owned();
        TestDb::Sqlite { _dir: dir, path }
    }

    /// None when PostgreSQL is not configured and not required (the test then passes, saying so).
    pub fn postgres() -> Option<TestDb> {
        let (admin_url, url, name) = fresh_server_database("PostgreSQL", "PG", "")?;
        Some(TestDb::Postgres {
            admin_url,
            url,
            name,
        })
    }

    /// None when MySQL is not configured and not required (the test then passes, saying so).
    pub fn mysql() -> Option<TestDb> {
        let (admin_url, url, name) = fresh_server_database(
            "MySQL",
            "MYSQL",
            " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )?;
        Some(TestDb::Mysql {
            admin_url,
            url,
            name,
        })
    }

    pub fn connect(&self) -> DbConnection {
        match self {
            TestDb::Sqlite { path, .. } => {
                DbConnection::Sqlite(SqliteConnection::establish(path).expect("open sqlite"))
            }
            TestDb::Postgres { url, .. } => {
                DbConnection::Postgres(PgConnection::establish(url).expect("connect postgres"))
            }
            TestDb::Mysql { url, .. } => usestats::store::establish(url).expect("connect mysql"),
        }
    }

    /// What a usestats config takes as `[state] url` / `[source] url`.
    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } => path.clone(),
            TestDb::Postgres { url, .. } | TestDb::Mysql { url, .. } => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Mysql {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = MysqlConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"));
            return;
        }
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            // FORCE ends our own test sessions still open (a daemon's pool may outlive the
            // test body by a moment). It may not end an autovacuum worker, which this role
            // cannot signal: then plain DROP, retried until the worker leaves.
            if admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .is_ok()
            {
                return;
            }
            for _ in 0..20 {
                if admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                    .is_ok()
                {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
    }
}

/// One test body run on SQLite and on PostgreSQL, as two tests `<name>::sqlite` and
/// `<name>::postgres`; and with `mysql` after the list, on MySQL/MariaDB too (`<name>::mysql`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $body:path;)*) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    let db = $crate::common::db::TestDb::sqlite();
                    $body(&db);
                }
                #[test]
                fn postgres() {
                    if let Some(db) = $crate::common::db::TestDb::postgres() {
                        $body(&db);
                    }
                }
            }
        )*
    };
    (mysql; $($name:ident => $body:path;)*) => {
        $crate::on_both_backends!($($name => $body;)*);
        mod on_mysql {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::common::db::TestDb::mysql() {
                        $body(&db);
                    }
                }
            )*
        }
    };
}

/// A source database and a migrated state database on the same backend, as the compiled
/// store's tests use them: both SQLite, or both PostgreSQL.
pub struct SourceAndState {
    pub source: TestDb,
    /// The PostgreSQL state database; SQLite's lives in `state_dir`.
    pub state_db: Option<TestDb>,
    pub state_dir: tempfile::TempDir,
    pub state: usestats::store::Db,
}

/// None when PostgreSQL is asked for but not configured and not required.
pub fn source_and_state(postgres: bool) -> Option<SourceAndState> {
    let (source, state_db) = if postgres {
        (TestDb::postgres()?, TestDb::postgres())
    } else {
        (TestDb::sqlite(), None)
    };
    let state_dir = tempfile::tempdir().expect("tempdir");
    let state_url = match &state_db {
        Some(db) => db.url(),
        None => state_dir
            .path()
            .join("state.db")
            .to_string_lossy()
            .into_owned(),
    };
    let state = usestats::store::Db::open(&state_url, 2).expect("state db");
    usestats::store::migrate_state(&mut state.get().expect("state connection"))
        .expect("migrate state");
    Some(SourceAndState {
        source,
        state_db,
        state_dir,
        state,
    })
}

/// Inserts log rows given as SQL tuples of `(id, eventname, component, action, target, crud,
/// edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, timecreated, origin,
/// realuserid)`, 200 a statement.
pub fn insert_log_values(conn: &mut DbConnection, values: &[String]) {
    use diesel::connection::SimpleConnection;
    for chunk in values.chunks(200) {
        conn.batch_execute(&format!(
            "INSERT INTO mdl_logstore_standard_log \
             (id, eventname, component, action, target, crud, edulevel, contextid, contextlevel, \
              contextinstanceid, userid, courseid, timecreated, origin, realuserid) VALUES {}",
            chunk.join(", ")
        ))
        .expect("insert log rows");
    }
}

/// Log rows `(id, user, time, kind)` from steps `(user index, kind, seconds)`: each user's
/// clock moves on by the step; ids follow from `first_id`.
pub fn stepped_rows(
    steps: &[(usize, usize, i64)],
    users: &[i64; 3],
    first_id: i64,
    clocks: &mut [i64; 3],
) -> Vec<(i64, i64, i64, usize)> {
    steps
        .iter()
        .enumerate()
        .map(|(i, &(user, kind, step))| {
            clocks[user] += step;
            (first_id + i as i64, users[user], clocks[user], kind)
        })
        .collect()
}
