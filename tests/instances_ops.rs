//! Several instances on one state: heartbeats seen by `doctor` and `/metrics` (SQLite and
//! PostgreSQL), one `serve` per SQLite state (the real binary), and one compiler at a time on
//! a PostgreSQL state (the advisory lock, the serve pass and `usestats compile`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{AppOptions, TestApp, TestDb, get, spawn_app, usestats_cli, vector, vectors};
use usestats::crypto::{Identity as KeyPair, Keyring, KeyringCell};
use usestats::health::Check;
use usestats::instances::{Heartbeat, Identity};
use usestats::maintenance::CompilePass;
use usestats::store::locks::{LOCK_COMPILE, SessionLock};
use usestats::store::state::{self, InstanceRow};
use usestats::store::{Db, StoreError};

/// A daemon sharing the state at `url`, as B of the vectors: every instance has the same
/// wwwroot and key pair, as instances behind one balancer do.
/// The key-encryption key every instance of one state shares (a file per state database,
/// made by the first caller).
fn shared_kek(url: &str) -> PathBuf {
    let name: String = url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = std::env::temp_dir().join(format!("usestats-test-kek-{name}"));
    usestats::keys::write_new_kek(&path).unwrap();
    path
}

async fn instance(url: &str) -> TestApp {
    let url = url.to_string();
    let kek = shared_kek(&url);
    spawn_app(AppOptions {
        wwwroot: Some(vector::B.into()),
        keys: vec![(
            vectors().join("keys/B-old.key.pem"),
            vectors().join("keys/B-old.cert.pem"),
        )],
        tweak: Some(Box::new(move |c| {
            c.state.url = url;
            c.keys.kek_file = kek.display().to_string();
            c.keys.kek_env = String::new();
        })),
        ..Default::default()
    })
    .await
}

fn heartbeat(app: &TestApp, keys: Arc<KeyringCell>) -> Heartbeat {
    Heartbeat::new(
        Identity::new(&app.addr.to_string(), app.app.now()).unwrap(),
        app.app.state.clone(),
        keys,
        app.app.clock.clone(),
    )
}

/// A keyring on the key pair of the vectors' A: a key no instance of B signs with.
fn other_keys() -> Arc<KeyringCell> {
    let pair = KeyPair::from_pem(
        &vector::read("keys/A.key.pem"),
        &vector::read("keys/A.cert.pem"),
    )
    .unwrap();
    Arc::new(KeyringCell::new(Keyring {
        current: pair,
        archived: Vec::new(),
    }))
}

async fn rows(app: &TestApp) -> Vec<InstanceRow> {
    usestats::instances::seen(&app.app.state, app.app.now())
        .await
        .unwrap()
}

/// A configuration file for the commands, on the state at `url`.
fn config_file(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("usestats.toml");
    let mut config = usestats::config::Config::for_wwwroot(vector::B);
    config.state.url = url.to_string();
    config.keys.kek_file = shared_kek(url).display().to_string();
    config.keys.kek_env = String::new();
    std::fs::write(&path, config.to_toml()).unwrap();
    path
}

fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
}

/// Every instance writes its row at once and then every few seconds, with the key it signs
/// with at that beat; `doctor` lists them all and warns when their keys differ; `/metrics`
/// counts and labels them; a clean stop takes the row away.
async fn instances_are_seen(db: TestDb, daemons: usize) {
    let url = db.url();
    let mut apps = Vec::new();
    for _ in 0..daemons {
        apps.push(instance(&url).await);
    }
    let own_key = apps[0].app.keyring().current.info().fingerprint_sha1;
    let beats: Vec<Heartbeat> = apps
        .iter()
        .map(|a| heartbeat(a, a.app.keys.clone()))
        .collect();
    for beat in &beats {
        beat.beat().await.unwrap();
    }
    let seen = rows(&apps[0]).await;
    assert_eq!(seen.len(), daemons, "{seen:#?}");
    for (beat, app) in beats.iter().zip(&apps) {
        let row = seen
            .iter()
            .find(|r| r.id == beat.identity().id)
            .unwrap_or_else(|| panic!("no row for {:?} in {seen:#?}", beat.identity()));
        assert_eq!(row.id.len(), 16);
        assert!(row.id.bytes().all(|b| b.is_ascii_hexdigit()), "{row:?}");
        assert_eq!(row.pid, i64::from(std::process::id()));
        assert_eq!(row.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(row.listen, app.addr.to_string());
        assert_eq!(row.key_fingerprint, own_key);
        assert!(!row.host.is_empty());
        assert!((app.app.now() - row.seen_at).abs() <= 2, "{row:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &url);
    let checks = usestats::health::doctor(&config).await;
    let summary = find(&checks, "instances");
    assert!(
        summary.detail.starts_with(&format!("{daemons} seen")),
        "{summary:?}"
    );
    assert_eq!(find(&checks, "instance keys").status, "OK", "{checks:#?}");
    assert_eq!(find(&checks, "instance versions").status, "OK");
    for beat in &beats {
        let line = find(&checks, &format!("instance {}", beat.identity().id));
        assert_eq!(line.status, "OK", "{line:?}");
        assert!(
            line.detail.contains(&format!("pid {}", std::process::id()))
                && line.detail.contains(&own_key),
            "{line:?}"
        );
    }

    // An instance still on another key (it missed a rotation) is a warning naming both keys.
    let behind = heartbeat(&apps[0], other_keys());
    behind.beat().await.unwrap();
    let old_key = other_keys().current().current.info().fingerprint_sha1;
    let checks = usestats::health::doctor(&config).await;
    let keys = find(&checks, "instance keys");
    assert_eq!(keys.status, "WARN", "{checks:#?}");
    assert!(
        keys.detail
            .contains(&format!("{old_key} on {}", behind.identity().id))
            && keys.detail.contains(&own_key)
            && keys.detail.contains("did not pick up the rotation"),
        "{keys:?}"
    );

    // The key is read at every beat: once the lagging instance has the current key, the next
    // beat says so and the warning is gone.
    let caught_up = Heartbeat::new(
        behind.identity().clone(),
        apps[0].app.state.clone(),
        apps[0].app.keys.clone(),
        apps[0].app.clock.clone(),
    );
    caught_up.beat().await.unwrap();
    let row = rows(&apps[0])
        .await
        .into_iter()
        .find(|r| r.id == behind.identity().id)
        .unwrap();
    assert_eq!(row.key_fingerprint, own_key);
    let checks = usestats::health::doctor(&config).await;
    assert_eq!(find(&checks, "instance keys").status, "OK", "{checks:#?}");

    // /metrics: every instance seen, each with its version and key as labels.
    let (status, text) = get(&apps[0].url("/metrics")).await;
    assert_eq!(status, 200);
    let total = daemons + 1;
    assert!(
        text.contains(&format!("\nusestats_instances_seen {total}\n")),
        "{text}"
    );
    for id in beats
        .iter()
        .map(|b| &b.identity().id)
        .chain([&behind.identity().id])
    {
        let series = format!(
            "usestats_instance_info{{id=\"{id}\",version=\"{}\",key_fingerprint=\"{own_key}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&series), "{series} in {text}");
    }

    // The loop: a beat at once, and the row gone after a clean stop. /metrics reads the table
    // again once its few seconds of cache have passed.
    let scraped = Instant::now();
    caught_up.leave().await.unwrap();
    let (_, cached) = get(&apps[0].url("/metrics")).await;
    if scraped.elapsed() < Duration::from_secs(4) {
        assert!(
            cached.contains(&format!("\nusestats_instances_seen {total}\n")),
            "a scrape within the cache's life reads no database: {cached}"
        );
    }
    let looping = Arc::new(heartbeat(&apps[0], apps[0].app.keys.clone()));
    let id = looping.identity().id.clone();
    let beating = looping.clone().spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rows(&apps[0]).await.iter().any(|r| r.id == id) {
        assert!(Instant::now() < deadline, "the loop never beat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, text) = get(&apps[0].url("/metrics")).await;
        if text.contains(&format!("id=\"{id}\"")) {
            assert!(
                text.contains(&format!("\nusestats_instances_seen {total}\n")),
                "one left, one came: {text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics never read again: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    beating.stop().await;
    let left = rows(&apps[0]).await;
    assert!(!left.iter().any(|r| r.id == id), "{left:#?}");
    assert_eq!(left.len(), daemons);
    for app in &mut apps {
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_seen_on_sqlite() {
    instances_are_seen(TestDb::sqlite(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_seen_on_postgres() {
    if let Some(db) = TestDb::postgres() {
        instances_are_seen(db, 2).await;
    }
}

/// A `usestats serve` of the real binary, killed if the test ends first.
struct Daemon(Child);

impl Daemon {
    fn serve(config: &Path) -> Daemon {
        Daemon(
            Command::new(env!("CARGO_BIN_EXE_usestats"))
                .arg("--config")
                .arg(config)
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--console-listen",
                    "127.0.0.1:0",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// SIGTERM, the way systemd stops it, and its exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        wait_within(&mut self.0, Duration::from_secs(60))
            .expect("serve stops within a minute of SIGTERM")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "still not so after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sqlite_instances(path: &Path) -> Vec<InstanceRow> {
    let Ok(mut conn) = usestats::store::establish(&path.display().to_string()) else {
        return Vec::new();
    };
    state::instances_seen_since(&mut conn, 0).unwrap_or_default()
}

/// One `serve` per SQLite state: a second one exits at once naming the lock file, the pid
/// holding it and PostgreSQL, while the other commands go on working; once the first is gone
/// (its row deleted by the clean stop), another starts.
#[test]
fn a_second_serve_on_one_sqlite_state_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let init = usestats_cli(&config, &["init", "--wwwroot", "http://127.0.0.1:9"]);
    assert!(init.status.success(), "{init:?}");
    let state_file = dir.path().join("usestats.sqlite3");
    let lock = dir.path().join("usestats.sqlite3.serve.lock");

    let first = Daemon::serve(&config);
    let pid = first.0.id();
    wait_until(
        "the first serve holds the lock",
        Duration::from_secs(60),
        || std::fs::read_to_string(&lock).is_ok_and(|t| t.trim() == pid.to_string()),
    );
    wait_until("the first serve beats", Duration::from_secs(60), || {
        sqlite_instances(&state_file)
            .iter()
            .any(|r| r.pid == i64::from(pid))
    });

    let mut second = Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(&config)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = wait_within(&mut second, Duration::from_secs(30)) else {
        let _ = second.kill();
        let _ = second.wait();
        panic!("a second serve on the same SQLite state kept running");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    for needle in [
        lock.display().to_string(),
        format!("(pid {pid})"),
        "PostgreSQL".to_string(),
        "Running several instances".to_string(),
    ] {
        assert!(stderr.contains(&needle), "{needle:?} in {stderr}");
    }

    // The operator's commands are not serve: they work beside it.
    for args in [&["peer", "list"][..], &["grant", "list"], &["keys", "show"]] {
        let out = usestats_cli(&config, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doctor = usestats_cli(&config, &["--json", "doctor"]);
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&doctor.stdout).unwrap();
    assert!(
        checks.iter().any(|c| c["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("instance "))
            && c["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("pid {pid},")))),
        "doctor lists the running serve: {checks:#?}"
    );

    assert!(first.terminate().success());
    assert!(
        !sqlite_instances(&state_file)
            .iter()
            .any(|r| r.pid == i64::from(pid)),
        "a clean stop deletes the instance's row"
    );
    let third = Daemon::serve(&config);
    let third_pid = third.0.id();
    wait_until(
        "a new serve takes the lock",
        Duration::from_secs(60),
        || std::fs::read_to_string(&lock).is_ok_and(|t| t.trim() == third_pid.to_string()),
    );
    drop(third);
}

async fn compiled_high_water(db: &Db) -> Option<i64> {
    db.run(state::compiled_meta)
        .await
        .unwrap()
        .map(|m| m.high_water)
}

/// The compile lock on a shared PostgreSQL state: while another session holds it, `serve`'s
/// pass skips without touching the store and `usestats compile` waits, saying so; once it is
/// free the waiting command compiles; the lock goes with its guard on every path, even when
/// the job left its connection broken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_compiler_at_a_time_on_postgres() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let url = db.url();
    let tweak_url = url.clone();
    let kek = shared_kek(&url);
    let mut app = spawn_app(AppOptions {
        demo_remote_hosts: Some(Vec::new()),
        demo_log_rows: 3_000,
        tweak: Some(Box::new(move |c| {
            c.state.url = tweak_url;
            c.keys.kek_file = kek.display().to_string();
            c.keys.kek_env = String::new();
        })),
        ..Default::default()
    })
    .await;
    let other = Db::open(&url, 2).unwrap();
    let held = tokio::task::spawn_blocking({
        let other = other.clone();
        move || SessionLock::try_acquire(&other, LOCK_COMPILE)
    })
    .await
    .unwrap()
    .unwrap()
    .expect("the lock is free at first");

    let pass = usestats::maintenance::compile_once(&app.app).await;
    let CompilePass::Skipped(holder) = pass else {
        panic!("{pass:?}");
    };
    // The holder is named: its session, as this role sees it in pg_stat_activity.
    assert!(holder.starts_with("pid "), "{holder}");
    assert!(holder.contains("role "), "{holder}");
    assert_eq!(
        compiled_high_water(&app.app.state).await,
        None,
        "nothing compiled"
    );

    // `usestats compile` on the same state waits for the holder.
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &url);
    let mut cli = Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(&config)
        .args(["--json", "compile"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (said, heard) = std::sync::mpsc::channel::<String>();
    let stderr = cli.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    let line = heard
        .recv_timeout(Duration::from_secs(60))
        .expect("compile says why it waits");
    assert!(
        line.starts_with("another instance is compiling (pid "),
        "{line}"
    );
    assert!(line.contains("waiting up to 30 s"), "{line}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        cli.try_wait().unwrap().is_none(),
        "compile waits for the lock"
    );
    assert_eq!(compiled_high_water(&app.app.state).await, None);

    drop(held);
    let out = tokio::task::spawn_blocking(move || {
        let status = wait_within(&mut cli, Duration::from_secs(120));
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut cli.stdout.take().unwrap(), &mut stdout).unwrap();
        (status, stdout)
    })
    .await
    .unwrap();
    reader.join().unwrap();
    assert!(out.0.is_some_and(|s| s.success()), "{out:?}");
    let summary: serde_json::Value = serde_json::from_str(&out.1).unwrap();
    assert!(summary["rows_read"].as_u64().unwrap() >= 3_000, "{summary}");
    let high_water = compiled_high_water(&app.app.state).await;
    assert!(high_water.is_some());

    // Free again: serve's pass runs, and finds nothing new.
    match usestats::maintenance::compile_once(&app.app).await {
        CompilePass::Done(summary) => {
            assert!(!summary.from_scratch);
            assert_eq!(summary.rows_read, 0);
        }
        pass => panic!("{pass:?}"),
    }

    // A guard whose job left its connection stuck in an aborted transaction still lets go of
    // the lock when dropped, and the stuck connection goes with it (never back to a pool).
    tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        let mut stuck = SessionLock::try_acquire(&other, LOCK_COMPILE)
            .unwrap()
            .unwrap();
        let _ = stuck.batch_execute("BEGIN; SELECT 1/0");
        assert!(
            SessionLock::try_acquire(&other, LOCK_COMPILE)
                .unwrap()
                .is_none(),
            "held while the guard lives"
        );
        drop(stuck);
        // The server ends the closed session a moment later.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match SessionLock::try_acquire(&other, LOCK_COMPILE) {
                Ok(Some(lock)) => {
                    lock.release().unwrap();
                    break;
                }
                Ok(None) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(Instant::now() < deadline, "the lock outlived its guard");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Released explicitly, it is free at once.
        let lock = SessionLock::try_acquire(&other, LOCK_COMPILE)
            .unwrap()
            .unwrap();
        lock.release().unwrap();
        assert!(
            SessionLock::try_acquire(&other, LOCK_COMPILE)
                .unwrap()
                .is_some()
        );
        Ok::<(), StoreError>(())
    })
    .await
    .unwrap()
    .unwrap();
    app.stop().await;
}
