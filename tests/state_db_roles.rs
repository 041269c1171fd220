//! Issue 22, N1: anyone who can log in to the PostgreSQL state database could stop every
//! instance, by taking the fixed keys of the session advisory locks instances coordinated
//! with. Here a second role of the same server (what a read-only reporting role is) holds
//! those old keys and tries every lock it can find, while a real daemon serves peers, the
//! console, the command line and its compile passes; a lock held by another instance is
//! waited for with its holder named, then given up, saying so; and `doctor` warns while every
//! role may connect. PostgreSQL only (`USESTATS_TEST_PG_URL`; `USESTATS_REQUIRE_PG=1` makes a
//! missing server a failure); the test role needs CREATEROLE (`.ci/run` grants it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use usestats::services::use_stats::{self, Answer};
use usestats::xmlrpc::Value;

/// The fixed keys of the advisory locks instances used before: the state-write lock
/// ("usestats" in ASCII), then FNV-1a of `usestats:compile` and of `usestats:migrations`.
fn old_advisory_keys() -> [i64; 3] {
    let fnv = |name: &str| {
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) as i64
    };
    [
        8_463_219_671_307_482_227,
        fnv("usestats:compile"),
        fnv("usestats:migrations"),
    ]
}

/// A login role of the same server, dropped again at the end.
struct OtherRole {
    admin_url: String,
    name: String,
    password: String,
}

impl OtherRole {
    fn create(admin_url: &str) -> OtherRole {
        let name = format!(
            "usestats_intruder_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let password = "intruder-password".to_string();
        let mut admin = PgConnection::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .unwrap_or_else(|e| {
                panic!(
                    "{e}: the test role needs CREATEROLE (.ci/run: ALTER ROLE usestats CREATEROLE)"
                )
            });
        OtherRole {
            admin_url: admin_url.to_string(),
            name,
            password,
        }
    }

    /// `url` (a database of the same server) as this role.
    fn url_for(&self, url: &str) -> String {
        let rest = url.split_once('@').unwrap().1;
        format!("postgres://{}:{}@{rest}", self.name, self.password)
    }
}

impl Drop for OtherRole {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            // Its sessions end first, or the role cannot go.
            let _ = admin.batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{0}'",
                self.name
            ));
            for _ in 0..20 {
                if admin
                    .batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name))
                    .is_ok()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

fn admin_url(db: &TestDb) -> String {
    match db {
        TestDb::Postgres { admin_url, .. } => admin_url.clone(),
        _ => unreachable!("a PostgreSQL database"),
    }
}

fn shared_kek(dir: &Path) -> PathBuf {
    let path = dir.join("kek");
    usestats::keys::write_new_kek(&path).unwrap();
    path
}

/// B on the PostgreSQL state `url` (demo data for A's people), A on SQLite; they know each
/// other and B publishes use_stats to A and grants A's admin.
async fn linked(url: &str, kek: &Path) -> (TestApp, TestApp) {
    let a = spawn_app(AppOptions::default()).await;
    let (url, kek) = (url.to_string(), kek.to_path_buf());
    let b = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![a.wwwroot.clone()]),
        demo_log_rows: 3_000,
        tweak: Some(Box::new(move |c| {
            c.state.url = url;
            c.keys.kek_file = kek.display().to_string();
            c.keys.kek_env = String::new();
        })),
        ..Default::default()
    })
    .await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    b.set_service(&a.wwwroot, "use_stats", Some(true), None)
        .await;
    b.grant(&a.wwwroot, "admin", true, true).await;
    (a, b)
}

async fn get_stats(a: &TestApp, b: &TestApp) -> Option<Answer> {
    let peer = a.peer(&b.wwwroot).await;
    let called = a
        .call_peer(
            &peer,
            use_stats::GET_STATS,
            vec![
                usestats::collect::caller_struct("admin", &a.wwwroot, &a.wwwroot),
                Value::from("admin"),
                Value::from(""),
                Value::Int(2),
                Value::Int(0),
            ],
        )
        .await;
    called.ok().and_then(|v| Answer::from_value(&v))
}

/// A configuration for the command line on B's state.
fn config_file(dir: &Path, b: &TestApp, url: &str, kek: &Path, extra: &str) -> PathBuf {
    let path = dir.join("usestats.toml");
    std::fs::write(
        &path,
        format!(
            "[site]\nwwwroot = \"{}\"\n[state]\nurl = \"{url}\"\n[keys]\ndir = \"{}\"\nkek_file = \"{}\"\nkek_env = \"\"\n{extra}",
            b.wwwroot,
            b.app.config.keys_dir().display(),
            kek.display()
        ),
    )
    .unwrap();
    path
}

/// Runs the `usestats` binary, giving up after `limit`: (success, stdout, stderr, elapsed).
async fn cli(config: &Path, args: &[&str], limit: Duration) -> (bool, String, String, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (status, out, err) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut out = String::new();
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
                return (Some(status), out, err);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return (None, String::new(), String::new());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let status =
        status.unwrap_or_else(|| panic!("usestats {args:?} still running after {limit:?}"));
    (status.success(), out, err, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_role_holding_every_lock_it_can_take_stops_no_instance() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let url = db.url();
    let intruder = OtherRole::create(&admin_url(&db));
    // CONNECT is granted to PUBLIC on a new database: the other role gets in, and takes the
    // old lock keys before any instance has started (so the migrations too must not wait).
    let mut held = PgConnection::establish(&intruder.url_for(&url)).expect("the role connects");
    for key in old_advisory_keys() {
        held.batch_execute(&format!("SELECT pg_advisory_lock({key})"))
            .unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let kek = shared_kek(tmp.path());
    let started = Instant::now();
    let (a, b) = tokio::time::timeout(Duration::from_secs(120), linked(&url, &kek))
        .await
        .expect("an instance starts (migrations included) while the old keys are held");
    assert!(started.elapsed() < Duration::from_secs(120));

    // Any lock it can find: the daemon's sessions hold no advisory lock to copy; the lock
    // rows and every table of ours are out of its reach.
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let advisory: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND a.usename = 'usestats' \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .get_result(&mut held)
    .unwrap();
    assert_eq!(advisory.n, 0, "the daemon takes no advisory lock");
    let mut probe = PgConnection::establish(&intruder.url_for(&url)).unwrap();
    let refused = probe
        .batch_execute("BEGIN; SELECT name FROM usestats_locks FOR UPDATE")
        .unwrap_err()
        .to_string();
    assert!(refused.contains("permission denied"), "{refused}");
    probe.batch_execute("ROLLBACK").unwrap();
    #[derive(diesel::QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let tables: Vec<Table> = diesel::sql_query(
        "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'public'",
    )
    .load(&mut probe)
    .unwrap();
    assert!(tables.iter().any(|t| t.name == "usestats_locks"));
    assert!(tables.len() > 10, "the role sees our tables' names");
    for table in &tables {
        for statement in [
            format!("BEGIN; LOCK TABLE {} IN ACCESS SHARE MODE", table.name),
            format!("BEGIN; SELECT * FROM {} FOR SHARE", table.name),
        ] {
            let e = probe.batch_execute(&statement).unwrap_err().to_string();
            assert!(e.contains("permission denied"), "{statement}: {e}");
            probe.batch_execute("ROLLBACK").unwrap();
        }
    }
    // The intruder's session still holds the old keys while everything below runs.
    let still: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted",
    )
    .get_result(&mut held)
    .unwrap();
    assert_eq!(still.n, 3);

    // Peers: every call answered.
    for i in 0..12 {
        let answer = tokio::time::timeout(Duration::from_secs(30), get_stats(&a, &b))
            .await
            .unwrap_or_else(|_| panic!("call {i} hangs"));
        assert_eq!(answer.map(|a| a.status), Some(200), "call {i}");
    }
    let (status, _) = get(&b.url("/healthz")).await;
    assert_eq!(status, 200);
    // The console: a login opens a session (a write transaction).
    let hash = usestats::console::auth::hash_password("correct horse").unwrap();
    let now = b.app.now();
    b.app
        .state
        .run(move |c| usestats::store::state::set_console_user(c, "ops", &hash, now))
        .await
        .unwrap();
    let user = b
        .app
        .state
        .run(|c| usestats::store::state::console_user_by_name(c, "ops"))
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        usestats::console::auth::open_session(&b.app, &user),
    )
    .await
    .expect("a session opens")
    .unwrap();
    // The command line: a grant, a key rotation and a compile each finish.
    let config = config_file(tmp.path(), &b, &url, &kek, "");
    let limit = Duration::from_secs(60);
    for args in [
        &[
            "grant",
            "add",
            "http://moodle.example.org",
            "teacher",
            "--site",
        ][..],
        &["keys", "rotate"],
        &["compile"],
    ] {
        let (ok, out, err, _) = cli(&config, args, limit).await;
        assert!(ok, "usestats {args:?}: {out}{err}");
    }
    // serve's own compile pass runs too.
    match usestats::maintenance::compile_once(&b.app).await {
        usestats::maintenance::CompilePass::Done(_) => {}
        pass => panic!("{pass:?}"),
    }
    assert_eq!(get_stats(&a, &b).await.map(|a| a.status), Some(200));
    drop(held);
}

/// An instance's lock held by another instance (the daemon's own role, as only it can): the
/// waiter logs who holds it, then gives up at `[database] lock_wait_secs` with an error that
/// names the lock and the holder; the migrations at start, `usestats compile` and a write
/// transaction alike. Once let go, the same commands succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_is_waited_for_naming_its_holder_then_given_up() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let url = db.url();
    let tmp = tempfile::tempdir().unwrap();
    let kek = shared_kek(tmp.path());
    let (_a, b) = linked(&url, &kek).await;
    let config = config_file(
        tmp.path(),
        &b,
        &url,
        &kek,
        "[database]\nlock_wait_secs = 2\n",
    );
    let mut other = PgConnection::establish(&url).unwrap();
    other
        .batch_execute("SET application_name = 'usestats serve pid 4242'")
        .unwrap();
    let limit = Duration::from_secs(60);
    for (lock, args) in [
        ("migrations", &["grant", "list"][..]),
        ("compile", &["compile"]),
        (
            "state_write",
            &["grant", "add", "http://moodle.example.org", "t", "--site"],
        ),
    ] {
        other
            .batch_execute(&format!(
                "BEGIN; SELECT name FROM usestats_locks WHERE name = '{lock}' FOR UPDATE"
            ))
            .unwrap();
        let (ok, out, err, elapsed) = cli(&config, args, limit).await;
        assert!(
            !ok,
            "usestats {args:?} went on under a held {lock} lock: {out}"
        );
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(30),
            "{args:?}: gave up after {elapsed:?}"
        );
        for expected in [lock, "usestats serve pid 4242", "gave up"] {
            assert!(
                err.contains(expected),
                "{args:?}: {expected:?} not in:\n{err}"
            );
        }
        if lock != "compile" {
            assert!(
                err.contains("waiting for a lock"),
                "logged while waiting:\n{err}"
            );
        }
        other.batch_execute("ROLLBACK").unwrap();
        let (ok, out, err, _) = cli(&config, args, limit).await;
        assert!(ok, "usestats {args:?} once the lock is free: {out}{err}");
    }
}

/// `doctor` warns while every role of the server may connect to the state database, and is
/// satisfied once CONNECT is revoked from PUBLIC as README shows; a role still given CONNECT
/// is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_while_other_roles_may_connect() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let url = db.url();
    let intruder = OtherRole::create(&admin_url(&db));
    let tmp = tempfile::tempdir().unwrap();
    let kek = shared_kek(tmp.path());
    let (_a, b) = linked(&url, &kek).await;
    let config = config_file(tmp.path(), &b, &url, &kek, "");
    let access = |out: &str| -> (String, String) {
        let checks: serde_json::Value = serde_json::from_str(out).unwrap();
        let check = checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "state access")
            .unwrap_or_else(|| panic!("no state access check: {out}"))
            .clone();
        (
            check["status"].as_str().unwrap().to_string(),
            check["detail"].as_str().unwrap().to_string(),
        )
    };
    let limit = Duration::from_secs(60);
    let (_, out, err, _) = cli(&config, &["--json", "doctor"], limit).await;
    let (status, detail) = access(&out);
    assert_eq!(status, "WARN", "{detail}{err}");
    assert!(detail.contains("CONNECT is granted to PUBLIC"), "{detail}");
    assert!(detail.contains("REVOKE CONNECT ON DATABASE"), "{detail}");

    let name = url.rsplit('/').next().unwrap().to_string();
    let mut owner = PgConnection::establish(&url).unwrap();
    owner
        .batch_execute(&format!("REVOKE CONNECT ON DATABASE {name} FROM PUBLIC"))
        .unwrap();
    assert!(
        PgConnection::establish(&intruder.url_for(&url)).is_err(),
        "the other role can no longer connect"
    );
    let (_, out, _, _) = cli(&config, &["--json", "doctor"], limit).await;
    let (status, detail) = access(&out);
    assert_eq!(status, "OK", "{detail}");

    owner
        .batch_execute(&format!(
            "GRANT CONNECT ON DATABASE {name} TO {}",
            intruder.name
        ))
        .unwrap();
    let (_, out, _, _) = cli(&config, &["--json", "doctor"], limit).await;
    let (status, detail) = access(&out);
    assert_eq!(status, "WARN", "{detail}");
    assert!(detail.contains(&intruder.name), "{detail}");
}
