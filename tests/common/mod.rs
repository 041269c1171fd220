//! Shared by the integration tests: databases on both backends, and (below) real servers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// A database that exists for one test. SQLite: a temporary file. PostgreSQL: a fresh
/// database on the server named by `USESTATS_TEST_PG_URL`, dropped afterwards.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg_admin {
            if let Ok(mut conn) = usestats::store::establish(admin_url) {
                use diesel::RunQueryDsl;
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = dir
        .path()
        .join("test.sqlite3")
        .to_string_lossy()
        .into_owned();
    TestDb {
        url,
        _dir: Some(dir),
        pg_admin: None,
    }
}

/// `None` when no PostgreSQL server is configured, unless `USESTATS_REQUIRE_PG=1`, in which
/// case a missing server fails the test instead of skipping it.
pub fn postgres_db() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("USESTATS_TEST_PG_URL") else {
        if std::env::var("USESTATS_REQUIRE_PG").as_deref() == Ok("1") {
            panic!("USESTATS_REQUIRE_PG=1 but USESTATS_TEST_PG_URL is not set");
        }
        eprintln!("PostgreSQL tests skipped: USESTATS_TEST_PG_URL not set");
        return None;
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "usestats_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = usestats::store::establish(&admin_url).expect("PostgreSQL server for tests");
    {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .unwrap();
    }
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin_url.clone());
    Some(TestDb {
        url: format!("{base}/{name}"),
        _dir: None,
        pg_admin: Some((admin_url, name)),
    })
}

/// Every backend available for this run: SQLite always, PostgreSQL when configured.
pub fn all_dbs() -> Vec<TestDb> {
    let mut dbs = vec![sqlite_db()];
    dbs.extend(postgres_db());
    dbs
}
