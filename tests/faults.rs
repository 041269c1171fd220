//! Faults tried for real: PostgreSQL stopped mid-run, the SQLite file locked by another
//! process, a peer that closes the connection mid-answer, and a full disk under the audit
//! log. In each case the daemon answers cleanly (a fault or the answer), never crashes, and
//! recovers when the fault goes away.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use usestats::mnet::client::ClientError;
use usestats::services::use_stats::{self, Answer};
use usestats::xmlrpc::Value;

/// A PostgreSQL server of our own (initdb in a temporary directory, run as the `postgres`
/// user), so this test can stop and start it without disturbing other tests.
struct PrivatePg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(program: &Path, args: &[&str]) -> Command {
    let root = std::env::var("USER").as_deref() == Ok("root") || unsafe_is_root();
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "-u", "postgres"]).arg(program);
        c
    };
    command.args(args);
    command
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl PrivatePg {
    fn start() -> Option<PrivatePg> {
        if std::env::var("USESTATS_TEST_PG_URL").is_err() {
            if std::env::var("USESTATS_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("USESTATS_REQUIRE_PG=1 but USESTATS_TEST_PG_URL is not set");
            }
            eprintln!("PostgreSQL fault test skipped: USESTATS_TEST_PG_URL not set");
            return None;
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb");
        let dir = std::env::temp_dir().join(format!(
            "usestats-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status()
            .unwrap();
        let data = dir.join("data");
        let ok = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
        assert!(
            ok,
            "initdb failed (needs root or passwordless sudo to run as postgres)"
        );
        let pg = PrivatePg {
            dir,
            bin,
            port: free_port(),
        };
        pg.up();
        Some(pg)
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let mut all = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
        ];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        assert!(
            self.pg_ctl(&["-o", &options, "start"]),
            "postgres did not start"
        );
    }

    fn down(&self) {
        assert!(
            self.pg_ctl(&["-m", "fast", "stop"]),
            "postgres did not stop"
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get_stats(a: &TestApp, b: &TestApp) -> Result<Answer, ClientError> {
    let peer = a.peer(&b.wwwroot).await;
    a.call_peer(
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
    .await
    .map(|v| Answer::from_value(&v).expect("a use_stats answer"))
}

async fn linked_pair(state_url: Option<String>) -> (TestApp, TestApp) {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![a.wwwroot.clone()]),
        demo_log_rows: 3_000,
        tweak: Some(Box::new(move |c| {
            if let Some(url) = state_url {
                c.state.url = url;
            }
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

#[tokio::test]
async fn postgresql_stopped_mid_run_gives_a_clean_fault_and_recovers() {
    let Some(pg) = tokio::task::spawn_blocking(PrivatePg::start).await.unwrap() else {
        return;
    };
    let (a, b) = linked_pair(Some(pg.url())).await;
    assert_eq!(get_stats(&a, &b).await.unwrap().status, 200);

    tokio::task::spawn_blocking({
        let (bin, dir, port) = (pg.bin.clone(), pg.dir.clone(), pg.port);
        move || PrivatePg { bin, dir, port }.down_keep()
    })
    .await
    .unwrap();
    // B keeps A in memory for up to this long; past it, its request needs the database.
    tokio::time::sleep(usestats::mnet::known_peers::TTL).await;
    let started = Instant::now();
    let during = get_stats(&a, &b).await;
    assert!(
        matches!(&during, Err(ClientError::Fault { code: 17, string, .. }) if string.contains("database unavailable")),
        "{during:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = get(&b.url("/healthz")).await;
    assert_eq!(status, 503, "health says the database is down");

    let (bin, dir, port) = (pg.bin.clone(), pg.dir.clone(), pg.port);
    tokio::task::spawn_blocking(move || PrivatePg { bin, dir, port }.up_keep())
        .await
        .unwrap();
    let mut recovered = false;
    for _ in 0..20 {
        if get_stats(&a, &b)
            .await
            .is_ok_and(|answer| answer.status == 200)
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(recovered, "calls work again once PostgreSQL is back");
    let (status, _) = get(&b.url("/healthz")).await;
    assert_eq!(status, 200);
}

impl PrivatePg {
    /// Stop/start through a temporary handle without dropping (and deleting) the cluster.
    fn down_keep(self) {
        self.down();
        std::mem::forget(self);
    }

    fn up_keep(self) {
        self.up();
        std::mem::forget(self);
    }
}

/// Another process holds the SQLite state's write lock. A signed call needs to write one
/// thing before it runs, its replay key (issue 22, K2: it must survive a crash), so it waits
/// out SQLite's busy timeout and is refused with a clean fault rather than run without it;
/// everything that only reads goes on (`/healthz`, a keyswap), and once the lock is gone calls
/// run and the bookkeeping of that moment lands.
#[tokio::test]
async fn a_locked_sqlite_file_refuses_signed_calls_cleanly_and_reads_go_on() {
    let (a, b) = linked_pair(None).await;
    assert_eq!(get_stats(&a, &b).await.unwrap().status, 200);
    let db = b.dir.join("usestats.sqlite3");
    // Another process holds the write lock of the state database (WAL: readers go on).
    let mut locker = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             c.execute('CREATE TABLE IF NOT EXISTS lock_probe (x)')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n\
             c.execute('ROLLBACK')\n",
        )
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(locker.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let audited_before = audit_count(&b).await;
    let started = Instant::now();
    let during = get_stats(&a, &b).await;
    match during {
        Err(ClientError::Fault { code, string, .. }) => {
            assert_eq!(code, 17, "{string}");
            assert!(string.contains("state database unavailable"), "{string}");
        }
        other => panic!("a signed call ran without storing its replay key: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused within the busy timeout: {:?}",
        started.elapsed()
    );
    let (status, _) = get(&b.url("/healthz")).await;
    assert_eq!(status, 200, "reads go on while another process writes");
    assert!(
        a.app
            .client
            .fetch_certificate(&a.peer(&b.wwwroot).await)
            .await
            .is_ok(),
        "a keyswap is answered"
    );
    drop(locker.stdin.take());
    locker.wait().unwrap();
    assert_eq!(get_stats(&a, &b).await.unwrap().status, 200);
    tokio::time::sleep(Duration::from_millis(7000)).await;
    assert!(
        audit_count(&b).await > audited_before,
        "bookkeeping resumes once the lock is gone"
    );
}

async fn audit_count(b: &TestApp) -> usize {
    b.app
        .state
        .run(|c| usestats::store::state::query_audit(c, None, None, 10_000))
        .await
        .map(|v| v.len())
        .unwrap_or(0)
}

/// Reads a request, starts a 200 answer, sends half of it and hangs up.
async fn hang_up_peer() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wwwroot = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 65536];
            let _ =
                tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5000\r\n\r\n<?xml version=\"1.0\"?>\n<encryptedMessage><CipherValue>AAAA")
                .await;
            let _ = stream.shutdown().await;
        }
    });
    (wwwroot, task)
}

#[tokio::test]
async fn a_peer_closing_mid_answer_is_a_clean_error() {
    let h = spawn_app(AppOptions::default()).await;
    let a = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![h.wwwroot.clone()]),
        demo_log_rows: 2_000,
        ..Default::default()
    })
    .await;
    h.add_peer(&a).await;
    a.add_peer(&h).await;
    a.set_service(&h.wwwroot, "use_stats", Some(true), None)
        .await;
    a.grant(&h.wwwroot, "admin", true, true).await;
    let (broken, task) = hang_up_peer().await;
    a.register_cert(&broken, &a.app.keyring().current.cert_pem)
        .await;
    a.set_service(&broken, "use_stats", None, Some(true)).await;

    // Directly: a typed transport error.
    let peer = a.peer(&broken).await;
    let direct = a.call_peer(&peer, "system/listServices", vec![]).await;
    assert!(
        matches!(direct, Err(ClientError::Transport { .. })),
        "{direct:?}"
    );
    // Through forwarding: status 500 with a one-line error.
    let peer_a = h.peer(&a.wwwroot).await;
    let value = h
        .call_peer(
            &peer_a,
            use_stats::GET_STATS,
            vec![
                usestats::collect::caller_struct("admin", &h.wwwroot, &h.wwwroot),
                Value::from("admin"),
                Value::from(broken.as_str()),
                Value::Int(1),
                Value::Int(0),
            ],
        )
        .await
        .unwrap();
    let answer = Answer::from_value(&value).unwrap();
    assert_eq!(answer.status, 500);
    assert!(
        answer.errors[0].as_str().unwrap().starts_with("REMOTE : "),
        "{answer:?}"
    );
    // And A is fine.
    let (status, _) = get(&a.url("/healthz")).await;
    assert_eq!(status, 200);
    task.abort();
}

/// Files capped just above their size, as on a full disk: audit rows are lost (logged), and a
/// signed call whose replay key cannot be stored is refused with fault 17, never run without
/// it (issue 22, K2); every call gets one of the two, the daemon keeps running, and once
/// there is room again calls are answered.
#[tokio::test]
async fn a_full_disk_loses_the_audit_and_refuses_what_it_cannot_record() {
    let bin = env!("CARGO_BIN_EXE_usestats");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let port = free_port();
    let wwwroot = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // The caller, in-process; the daemon under test knows its admin as a remote user.
    let a = spawn_app(AppOptions::default()).await;
    run(&[
        "init",
        "--wwwroot",
        &wwwroot,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--console-listen",
        "127.0.0.1:0",
    ]);
    run(&[
        "demo",
        "--log-rows",
        "2000",
        "--quiet",
        "--remote-host",
        &a.wwwroot,
    ]);
    let bin_owned = bin.to_string();
    let (config2, a_wwwroot) = (config.clone(), a.wwwroot.clone());
    tokio::task::spawn_blocking(move || {
        for args in [
            vec![
                "peer",
                "add",
                &a_wwwroot,
                "--yes",
                "--ssl-verification",
                "0",
            ],
            vec!["peer", "publish", &a_wwwroot, "use_stats"],
            vec!["grant", "add", &a_wwwroot, "admin", "--site", "--course"],
        ] {
            let out = Command::new(&bin_owned)
                .arg("--config")
                .arg(&config2)
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })
    .await
    .unwrap();

    // Serve with files capped a little above their present size: the audit inserts run
    // into EFBIG, as on a full disk. SIGXFSZ is ignored so the write fails instead of the
    // process dying.
    let db = dir.path().join("usestats.sqlite3");
    let wal = dir.path().join("usestats.sqlite3-wal");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let limit = size(&db).max(size(&wal)) + 8192;
    let mut server = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec prlimit --fsize={limit} {bin} --config {} serve",
            config.display()
        ))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .env("USESTATS_LOG", "warn")
        .spawn()
        .unwrap();
    let url = format!("{wwwroot}/healthz");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_status(&url).await != Some(200) {
        assert!(Instant::now() < deadline, "the daemon did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b_pem = a
        .app
        .client
        .keyswap(
            &wwwroot,
            "moodle",
            usestats::store::state::SslVerification::None,
            None,
        )
        .await
        .unwrap();
    a.register_cert(&wwwroot, &b_pem).await;
    let peer = a.peer(&wwwroot).await;
    // Audit rows are written in batches, so 150 calls grow the write-ahead log by far less
    // than the database's size: cap the files just above what the log holds now (the soft
    // limit only, so that it can be raised again).
    let tighter = size(&wal) + 16_384;
    let capped = Command::new("prlimit")
        .arg("--pid")
        .arg(server.id().to_string())
        .arg(format!("--fsize={tighter}:{limit}"))
        .status()
        .unwrap();
    assert!(capped.success());
    let (mut answered, mut refused) = (0, 0);
    let call = || async {
        a.call_peer(
            &peer,
            use_stats::GET_STATS,
            vec![
                usestats::collect::caller_struct("admin", &a.wwwroot, &a.wwwroot),
                Value::from("admin"),
                Value::from(""),
                Value::Int(1),
                Value::Int(0),
            ],
        )
        .await
    };
    for _ in 0..150 {
        match call().await {
            Ok(value) => {
                let answer = Answer::from_value(&value).unwrap();
                assert_eq!(answer.status, 200, "{answer:?}");
                answered += 1;
            }
            Err(ClientError::Fault {
                code: 17, string, ..
            }) => {
                assert!(string.contains("state database unavailable"), "{string}");
                refused += 1;
            }
            Err(e) => panic!("neither answered nor refused cleanly: {e}"),
        }
    }
    assert_eq!(answered + refused, 150);
    assert!(refused > 0, "a capped file refuses some replay keys");
    // Room again (back to the cap it started with, as high as an unprivileged process may
    // raise it): calls are answered.
    let freed = Command::new("prlimit")
        .arg("--pid")
        .arg(server.id().to_string())
        .arg(format!("--fsize={limit}"))
        .status()
        .unwrap();
    assert!(freed.success());
    let value = call().await.expect("answered once there is room");
    assert_eq!(Answer::from_value(&value).unwrap().status, 200);
    assert!(
        server.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let mut stderr = String::new();
    use std::io::Read;
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = server.wait();
    assert!(
        stderr.contains("audit entry not written"),
        "the lost audit entries are logged: {stderr}"
    );
}

async fn get_status(url: &str) -> Option<u16> {
    use http_body_util::Empty;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    client
        .get(url.parse().ok()?)
        .await
        .ok()
        .map(|r| r.status().as_u16())
}
