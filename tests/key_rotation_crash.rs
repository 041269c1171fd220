//! Issue 22, K1: a crash during a key rotation could destroy the key peers hold. The old
//! layout replaced `current.key.pem` and `current.cert.pem` with two renames and never checked
//! that they matched; a rotation run again archived the mismatched pair over the real one.
//!
//! Here `usestats keys rotate` is killed at each of its renames, syncs, links and unlinks in
//! turn (strace's fault injection: `-e inject=…:signal=KILL:when=N`), starting from a key
//! directory in the layout earlier versions wrote. After each kill a real daemon opens what is
//! left, and a peer holding our old certificate calls it: the call runs, or gets 7025 with
//! our new certificate and runs when resent. Then `keys rotate` runs again, as an operator
//! would, and the peer's call still works: the key it knew was never overwritten.
//!
//! strace: `USESTATS_TEST_STRACE` (default `/usr/bin/strace`); when it is missing the test
//! says so and passes, unless `USESTATS_REQUIRE_STRACE=1` (`.ci/run` installs strace).

mod common;

use std::path::{Path, PathBuf};

use common::vector::{A, B, read};
use common::*;
use openssl::pkey::{PKey, Private};
use usestats::mnet::envelope;
use usestats::store::state;
use usestats::xmlrpc::{self, Limits, MethodCall, Response};

/// The syscalls a rotation's steps are made of; a kill at the N-th of them is a crash there.
const STEPS: &str =
    "rename,renameat,renameat2,fsync,fdatasync,unlink,unlinkat,linkat,mkdir,mkdirat";

fn strace() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("USESTATS_TEST_STRACE").unwrap_or_else(|_| "/usr/bin/strace".into()),
    );
    if path.exists() {
        return Some(path);
    }
    if std::env::var("USESTATS_REQUIRE_STRACE").as_deref() == Ok("1") {
        panic!(
            "USESTATS_REQUIRE_STRACE=1 but {} does not exist",
            path.display()
        );
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "key rotation crash tests skipped: no strace at {}",
        path.display()
    );
    None
}

fn a_key() -> PKey<Private> {
    PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap()
}

fn b_old_cert() -> String {
    String::from_utf8(read("keys/B-old.cert.pem")).unwrap()
}

/// B's configuration in `dir`, with B-old current in the layout earlier versions wrote
/// (`current.key.pem` + `current.cert.pem`), and a state that knows A and publishes
/// use_stats to it.
async fn prepare(dir: &Path) -> PathBuf {
    let mut config = usestats::config::Config::for_wwwroot(B);
    config.path = dir.join("usestats.toml");
    config.base_dir = dir.to_path_buf();
    std::fs::write(&config.path, config.to_toml()).unwrap();
    let keys = dir.join("keys");
    std::fs::create_dir_all(keys.join("archive")).unwrap();
    std::fs::copy(
        common::vectors().join("keys/B-old.key.pem"),
        keys.join("current.key.pem"),
    )
    .unwrap();
    std::fs::copy(
        common::vectors().join("keys/B-old.cert.pem"),
        keys.join("current.cert.pem"),
    )
    .unwrap();
    register_a(config.clone()).await;
    config.path
}

async fn register_a(config: usestats::config::Config) {
    let app = tokio::task::spawn_blocking(move || usestats::app::App::open(config))
        .await
        .unwrap()
        .unwrap();
    let a_cert = String::from_utf8(read("keys/A.cert.pem")).unwrap();
    let now = app.now();
    app.state
        .run(move |c| {
            let peer = state::upsert_peer(
                c,
                &state::NewPeer {
                    wwwroot: A,
                    name: "A",
                    application: "moodle",
                    public_key: &a_cert,
                    public_key_expires: 0,
                    ssl_verification: state::SslVerification::None,
                },
                now,
            )?;
            state::set_service(c, peer.id, "use_stats", Some(true), None)
        })
        .await
        .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A's `system/listServices`, signed by A now and sealed to the certificate `to`.
fn call_sealed_to(to: &str) -> Vec<u8> {
    let xml = xmlrpc::serialize_call(&MethodCall {
        name: "system/listServices".into(),
        params: vec![],
    });
    let now = usestats::app::Clock::default().now();
    let signed = envelope::build_signed(&xml, &a_key(), A, now).unwrap();
    let cert = usestats::crypto::parse_cert_pem(to).unwrap();
    envelope::build_encrypted(&signed, &usestats::crypto::public_key_of(&cert).unwrap(), A).unwrap()
}

/// B's answer as A reads it: Ok, or the fault's code and text.
fn outcome(body: &[u8]) -> Result<(), (i64, String)> {
    let xml = if envelope::document_kind(body) == envelope::DocumentKind::Encrypted {
        let message = envelope::parse_encrypted(body).unwrap();
        let (plain, _) = envelope::open_with(&message, [&a_key()]).unwrap();
        envelope::parse_signed(&plain).unwrap().object
    } else {
        body.to_vec()
    };
    match xmlrpc::parse_response(&xml, &Limits::default()).unwrap() {
        Response::Success(_) => Ok(()),
        Response::Fault(f) => Err((f.code, f.string)),
    }
}

/// A daemon on the key directory and state of `dir`; A, holding B's old certificate, calls
/// it, following a 7025 as Moodle does. Panics unless the call runs; returns the certificate
/// the call ended with.
async fn peer_call_works(dir: &Path, when: &str) -> String {
    let (keys, state) = (dir.join("keys"), dir.join("usestats.sqlite3"));
    let mut b = spawn_app(AppOptions {
        wwwroot: Some(B.into()),
        tweak: Some(Box::new(move |c| {
            c.keys.dir = keys.display().to_string();
            c.state.url = state.display().to_string();
        })),
        ..Default::default()
    })
    .await;
    let url = b.url("/mnet/xmlrpc/server.php");
    let mut cert = b_old_cert();
    let mut followed = 0;
    loop {
        let (_, body) = post(&url, call_sealed_to(&cert)).await;
        match outcome(&body) {
            Ok(()) => break,
            Err((7025, new_cert)) if followed == 0 => {
                assert!(
                    new_cert.contains("BEGIN CERTIFICATE"),
                    "{when}: 7025 carries our certificate"
                );
                cert = new_cert;
                followed += 1;
            }
            Err(fault) => panic!("{when}: the peer's call failed: {fault:?}"),
        }
    }
    assert!(
        b.app.keyring().current.key_matches(),
        "{when}: the daemon signs with its certificate's key"
    );
    b.stop().await;
    cert
}

fn usestats(config: &Path, args: &[&str]) -> std::process::Output {
    usestats_cli(config, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_killed_at_any_step_leaves_keys_a_peer_can_still_call() {
    let Some(strace) = strace() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    std::fs::create_dir_all(&pristine).unwrap();
    prepare(&pristine).await;
    // The layout of earlier versions loads, and the peer's call works on it.
    let upgrade = root.path().join("upgrade");
    copy_dir(&pristine, &upgrade);
    assert_eq!(peer_call_works(&upgrade, "old layout").await, b_old_cert());

    let mut killed_at = Vec::new();
    for n in 1..200 {
        let dir = root.path().join(format!("kill-{n}"));
        copy_dir(&pristine, &dir);
        let config = dir.join("usestats.toml");
        let status = std::process::Command::new(&strace)
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!("trace={STEPS}"))
            .arg("-e")
            .arg(format!("inject={STEPS}:signal=KILL:when={n}"))
            .arg(env!("CARGO_BIN_EXE_usestats"))
            .arg("--config")
            .arg(&config)
            .args(["keys", "rotate"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            // Fewer steps than n: the rotation ran to its end.
            assert!(n > 3, "strace killed nothing: is ptrace allowed here?");
            break;
        }
        killed_at.push(n);
        let when = format!("killed at step {n}");
        peer_call_works(&dir, &when).await;
        let doctor = usestats(&config, &["--json", "doctor"]);
        let checks: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
        for check in checks.as_array().unwrap() {
            if check["name"] == "key files" {
                assert_eq!(check["status"], "OK", "{when}: {check}");
            }
        }
        // What an operator does next: rotate again. The key the peer knows stays.
        let again = usestats(&config, &["keys", "rotate"]);
        assert!(again.status.success(), "{when}: {again:?}");
        let ended_with = peer_call_works(&dir, &format!("{when}, then rotated again")).await;
        assert_ne!(
            ended_with,
            b_old_cert(),
            "{when}: a new key after the rotation"
        );
    }
    assert!(
        killed_at.len() >= 5,
        "a rotation has more steps than {killed_at:?}"
    );
}

/// The state the old layout's crash left, without strace: the new key under the old
/// certificate's name, and an archived key without its certificate. `doctor` fails on it;
/// the daemon recovers the pair peers know from the archive, says so, and serves it; a
/// rotation then archives it properly and the peer follows through 7025.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_pair_is_found_by_doctor_and_recovered_from_the_archive() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let config = prepare(dir).await;
    let keys = dir.join("keys");
    // The real pair archived as the old layout named it, then the new key written over the
    // current key only.
    std::fs::copy(
        common::vectors().join("keys/B-old.key.pem"),
        keys.join("archive/001700000000-0123456789ab.key.pem"),
    )
    .unwrap();
    std::fs::copy(
        common::vectors().join("keys/B-old.cert.pem"),
        keys.join("archive/001700000000-0123456789ab.cert.pem"),
    )
    .unwrap();
    let stray = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    std::fs::write(
        keys.join("current.key.pem"),
        stray.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    // And a key the old layout archived without its certificate (killed at the other rename).
    std::fs::write(
        keys.join("archive/001800000000-ba9876543210.key.pem"),
        stray.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();

    let doctor = usestats(&config, &["--json", "doctor"]);
    assert!(
        !doctor.status.success(),
        "doctor fails on a mismatched pair"
    );
    let checks: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let key_files: Vec<&serde_json::Value> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "key files")
        .collect();
    assert!(
        key_files
            .iter()
            .any(|c| c["status"] == "FAIL"
                && c["detail"].as_str().unwrap().contains("recovers pair")),
        "{key_files:?}"
    );
    assert!(
        key_files.iter().any(|c| c["status"] == "WARN"
            && c["detail"]
                .as_str()
                .unwrap()
                .contains("a key without its certificate")),
        "{key_files:?}"
    );
    // The daemon starts and serves the pair peers know.
    assert_eq!(peer_call_works(dir, "recovered").await, b_old_cert());
    let rotate = usestats(&config, &["keys", "rotate"]);
    assert!(rotate.status.success(), "{rotate:?}");
    let log = String::from_utf8_lossy(&rotate.stderr);
    assert!(
        !log.contains("DID NOT MATCH"),
        "recovered once, for good: {log}"
    );
    assert_ne!(peer_call_works(dir, "rotated").await, b_old_cert());
}
