//! Issue 22, K4: on a full disk `serve` would not start ("cannot lock … serve.lock: No space
//! left on device"), and a failed compile left its write-ahead log behind (13.6 MB). Here the
//! daemon's directory is a real tmpfs filled to the last block:
//! * after a crash (the SQLite side files still there) `serve` starts, needing no new space,
//!   and serves: `/healthz`, a keyswap, the web services; a signed call is answered or refused
//!   cleanly (its replay key must be stored first);
//! * after a clean stop (SQLite removed its side files) it does not start, and says exactly
//!   what to free: the file system, the bytes free, the files it needs and ours there;
//! * a compile that runs out of space gives its write-ahead log's room back.
//!
//! The tmpfs: `USESTATS_TEST_TMPFS` names a mounted one this test may fill (`.ci/run` mounts
//! it); otherwise, as root, the test mounts its own. Without either it says so and passes,
//! unless `USESTATS_REQUIRE_TMPFS=1`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use usestats::mnet::client::ClientError;
use usestats::services::use_stats::{self, Answer};
use usestats::xmlrpc::Value;

/// A small tmpfs, unmounted again when dropped if this test mounted it.
struct Tmpfs {
    dir: PathBuf,
    mounted: Option<tempfile::TempDir>,
}

impl Tmpfs {
    fn get() -> Option<Tmpfs> {
        if let Ok(dir) = std::env::var("USESTATS_TEST_TMPFS")
            && !dir.is_empty()
        {
            let dir = PathBuf::from(dir).join(format!("full-disk-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            return Some(Tmpfs { dir, mounted: None });
        }
        let root = nix_is_root();
        if root {
            let point = tempfile::tempdir().unwrap();
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs"])
                .arg(point.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if mounted {
                return Some(Tmpfs {
                    dir: point.path().to_path_buf(),
                    mounted: Some(point),
                });
            }
        }
        if std::env::var("USESTATS_REQUIRE_TMPFS").as_deref() == Ok("1") {
            panic!(
                "USESTATS_REQUIRE_TMPFS=1 but USESTATS_TEST_TMPFS is not set and no tmpfs could be mounted"
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "full-disk tests skipped: no USESTATS_TEST_TMPFS and no tmpfs of our own"
        );
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match &self.mounted {
            Some(point) => {
                let _ = Command::new("umount").arg(point.path()).status();
            }
            None => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Fills the file system holding `dir` to its last byte (a file per attempt size, down to
/// single bytes), except `leave` bytes.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let mut chunk = 1 << 20;
    while chunk > 0 {
        let free = usestats::files::free_space(dir).unwrap();
        if free <= leave {
            break;
        }
        let size = chunk.min((free - leave) as usize).max(1);
        if file.write_all(&vec![0u8; size]).is_err() {
            chunk /= 2;
        }
    }
    let _ = file.sync_all();
    filler
}

fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    usestats_cli(config, args)
}

fn ok(config: &Path, args: &[&str]) -> String {
    let out = cli(config, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serve(config: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn healthy(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && get(&format!("http://127.0.0.1:{port}/healthz")).await.0 == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn stop(mut child: Child) -> String {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_on_a_full_disk_or_says_what_to_free() {
    let Some(tmpfs) = Tmpfs::get() else {
        return;
    };
    let dir = tmpfs.dir.join("site");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("usestats.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wwwroot = format!("http://127.0.0.1:{port}");
    let a = spawn_app(AppOptions::default()).await;
    let (c, w, aw) = (config.clone(), wwwroot.clone(), a.wwwroot.clone());
    let token = tokio::task::spawn_blocking(move || {
        ok(
            &c,
            &[
                "init",
                "--wwwroot",
                &w,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--console-listen",
                "127.0.0.1:0",
            ],
        );
        ok(
            &c,
            &[
                "demo",
                "--log-rows",
                "2000",
                "--quiet",
                "--remote-host",
                &aw,
            ],
        );
        ok(
            &c,
            &["peer", "add", &aw, "--yes", "--ssl-verification", "0"],
        );
        ok(&c, &["peer", "publish", &aw, "use_stats"]);
        ok(&c, &["grant", "add", &aw, "admin", "--site", "--course"]);
        ok(
            &c,
            &[
                "grant",
                "add",
                "http://erp.example.org",
                "reports",
                "--course",
            ],
        );
        let token: serde_json::Value = serde_json::from_str(&ok(
            &c,
            &[
                "--json",
                "token",
                "create",
                "http://erp.example.org",
                "reports",
            ],
        ))
        .unwrap();
        token["token"].as_str().unwrap().to_string()
    })
    .await
    .unwrap();
    let b_pem = a
        .app
        .client
        .keyswap(
            &wwwroot,
            "moodle",
            usestats::store::state::SslVerification::None,
            None,
        )
        .await;
    // B is not running yet: register its certificate from its key directory.
    assert!(b_pem.is_err());
    let b_pem = usestats::crypto::KeyStore::new(dir.join("keys"), 6)
        .current_cert_pem()
        .unwrap();
    a.register_cert(&wwwroot, &b_pem).await;
    let peer = a.peer(&wwwroot).await;
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
    let ws = format!(
        "http://127.0.0.1:{port}/webservice/rest/server.php?wstoken={token}&wsfunction=block_use_stats_get_user_stats&moodlewsrestformat=json&uidsource=username&uid=admin"
    );

    // Running, then killed: SQLite's side files stay.
    let mut daemon = serve(&config, port);
    assert!(healthy(port, Duration::from_secs(60)).await, "serve starts");
    let answer = Answer::from_value(&call().await.unwrap()).unwrap();
    assert_eq!(answer.status, 200);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(dir.join("usestats.sqlite3-shm").exists());

    // The disk fills up. serve starts anyway: it needs no new space.
    let filler = fill(&tmpfs.dir, 0);
    assert!(usestats::files::free_space(&dir).unwrap() < 4096);
    let daemon = serve(&config, port);
    assert!(
        healthy(port, Duration::from_secs(60)).await,
        "serve starts on a full disk"
    );
    let (_, body) = get(&ws).await;
    assert!(
        body.starts_with('{') && !body.contains("exception"),
        "the web services answer: {body}"
    );
    match call().await {
        Ok(value) => assert_eq!(Answer::from_value(&value).unwrap().status, 200),
        Err(ClientError::Fault {
            code: 17, string, ..
        }) => {
            assert!(string.contains("state database unavailable"), "{string}")
        }
        Err(e) => panic!("neither answered nor refused cleanly: {e}"),
    }
    assert!(
        a.app.client.fetch_certificate(&peer).await.is_ok(),
        "keyswap answered"
    );
    stop(daemon);

    // A clean stop with room (SQLite removes its side files), then full again: serve does not
    // start, and says exactly what to free.
    std::fs::remove_file(&filler).unwrap();
    let daemon = serve(&config, port);
    assert!(healthy(port, Duration::from_secs(60)).await);
    stop(daemon);
    assert!(!dir.join("usestats.sqlite3-shm").exists());
    let filler = fill(&tmpfs.dir, 0);
    let mut daemon = serve(&config, port);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve neither starts nor stops");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut daemon.stderr.take().unwrap(), &mut stderr).unwrap();
    let db = dir.join("usestats.sqlite3");
    for expected in [
        "is full".to_string(),
        "bytes free".to_string(),
        format!("{}-shm", db.display()),
        "free at least 1 MiB".to_string(),
        format!("df {}", dir.display()),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
    }
    assert!(!stderr.contains("serve.lock"), "{stderr}");

    // A compile that runs out of space gives its write-ahead log's room back.
    std::fs::remove_file(&filler).unwrap();
    let _filler = fill(&tmpfs.dir, 160 * 1024);
    let free_before = usestats::files::free_space(&dir).unwrap();
    let out = cli(&config, &["compile", "--full"]);
    assert!(!out.status.success(), "the compile cannot fit in 160 KiB");
    let wal = dir.join("usestats.sqlite3-wal");
    let wal_size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_size, 0, "the failed compile's WAL is truncated");
    let free_after = usestats::files::free_space(&dir).unwrap();
    assert!(
        free_after + 8192 >= free_before,
        "its room is back: {free_before} before, {free_after} after"
    );
}
