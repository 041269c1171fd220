//! Issue 9, items 9 and 10, run as an attacker or a careless operator would: the binary
//! under `umask 000` (files must still be owner-only), `init --force` onto another wwwroot
//! (the certificate must follow), wrong CLI input (refused with a clear message, nothing
//! stored), and megabyte-long values sent to a real daemon's web services and MNET server
//! (never echoed whole).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use usestats::collect::caller_struct;
use usestats::services::use_stats::Answer;
use usestats::xmlrpc::Value;

/// The binary run through `sh` with `umask 000`, the most permissive an operator's shell
/// (or a service manager) can hand it.
fn usestats_umask_000(config: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn json(config: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(usestats_cli(config, &all))).unwrap()
}

/// A refusal: exit code `code` (1 for our errors, 2 for clap's usage errors), a message on
/// stderr that mentions `says`, and never a panic.
fn refused(out: Output, code: i32, says: &str) {
    let all = text(&out);
    assert_eq!(out.status.code(), Some(code), "{all}");
    assert!(all.contains(says), "expected `{says}` in: {all}");
    assert!(!all.contains("panicked"), "{all}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn wait_for(path: &Path, deadline: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the daemon it holds even when an assertion fails first.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn config_database_and_keys_are_private_under_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let db = dir.path().join("usestats.sqlite3");
    let keys = dir.path().join("keys");

    // `demo` on an empty directory writes the config itself, then the database.
    ok(usestats_umask_000(
        &config,
        &[
            "demo",
            "--users",
            "5",
            "--courses",
            "2",
            "--log-rows",
            "500",
            "--quiet",
        ],
    ));
    assert_eq!(mode(&config), 0o600, "config written by demo");
    assert_eq!(mode(&db), 0o600, "SQLite file written by demo");
    assert_eq!(mode(&keys), 0o700, "key directory");
    assert_eq!(mode(&keys.join("archive")), 0o700, "key archive directory");
    assert_eq!(
        mode(&keys.join("current.pem")),
        0o600,
        "private key (with its certificate)"
    );

    // `init --force` replaces the config: the new one is private too, even over a file
    // someone left world-writable, and a key directory opened up since is closed again.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    ok(usestats_umask_000(
        &config,
        &["init", "--force", "--wwwroot", "http://127.0.0.1:9"],
    ));
    assert_eq!(mode(&config), 0o600, "config rewritten by init --force");
    assert_eq!(mode(&keys), 0o700, "key directory closed again");

    // A running daemon has the WAL and shared-memory files open: they hold the same rows.
    std::fs::remove_file(&db).unwrap();
    let daemon = Daemon(
        Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$@\"")
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_usestats"))
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
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let wal = dir.path().join("usestats.sqlite3-wal");
    let shm = dir.path().join("usestats.sqlite3-shm");
    wait_for(&wal, Duration::from_secs(60));
    wait_for(&shm, Duration::from_secs(60));
    assert_eq!(mode(&db), 0o600, "SQLite file created by serve");
    assert_eq!(mode(&wal), 0o600, "-wal");
    assert_eq!(mode(&shm), 0o600, "-shm");
    drop(daemon);

    let doctor = text(&usestats_cli(&config, &["doctor"]));
    assert!(
        doctor.contains("OK    file modes"),
        "doctor on private files: {doctor}"
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let doctor = text(&usestats_cli(&config, &["doctor"]));
    assert!(
        doctor.contains("WARN  file modes") && doctor.contains("(644)"),
        "doctor names a readable config: {doctor}"
    );
}

fn fingerprint(config: &Path) -> (String, serde_json::Value) {
    let keys = json(config, &["keys", "show"]);
    (
        keys["current"]["fingerprint_sha1"]
            .as_str()
            .unwrap()
            .to_string(),
        keys,
    )
}

#[test]
fn init_force_with_a_new_wwwroot_gives_a_certificate_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let old = "http://127.0.0.1:9";
    // Long enough that the CN is cut to 64 characters while subjectAltName keeps it whole.
    let new = format!("https://stats.example.org/{}", "moodle-network/".repeat(4));
    let new = new.trim_end_matches('/').to_string();
    ok(usestats_cli(&config, &["init", "--wwwroot", old]));
    let (first, _) = fingerprint(&config);

    let out = ok(usestats_cli(
        &config,
        &["init", "--force", "--wwwroot", new.as_str()],
    ));
    assert!(out.contains("a new one was generated"), "{out}");
    let (second, keys) = fingerprint(&config);
    assert_ne!(second, first, "a new key pair");
    assert_eq!(keys["current"]["subject_alt_name"], new.as_str());
    assert_eq!(
        keys["current"]["common_name"],
        new.chars().take(64).collect::<String>()
    );
    assert_eq!(
        keys["archived"][0]["fingerprint_sha1"], first,
        "the old key is archived, as rotation does"
    );
    let doctor = usestats_cli(&config, &["doctor"]);
    assert!(doctor.status.success(), "{}", text(&doctor));
    assert!(text(&doctor).contains("OK    certificate"));

    // Same wwwroot again: nothing to replace.
    ok(usestats_cli(
        &config,
        &["init", "--force", "--wwwroot", new.as_str()],
    ));
    assert_eq!(fingerprint(&config).0, second);

    // A wwwroot edited by hand: doctor fails loudly and says what to do.
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&new, "https://elsewhere.example.org");
    std::fs::write(&config, edited).unwrap();
    let doctor = usestats_cli(&config, &["doctor"]);
    refused(doctor, 1, "usestats keys rotate");
    let doctor = text(&usestats_cli(&config, &["doctor"]));
    assert!(doctor.contains("FAIL  certificate"), "{doctor}");
    ok(usestats_cli(&config, &["keys", "rotate"]));
    let doctor = usestats_cli(&config, &["doctor"]);
    assert!(doctor.status.success(), "{}", text(&doctor));
}

/// An initialised config with a grant a token can be bound to.
fn operator() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    ok(usestats_cli(
        &config,
        &["init", "--wwwroot", "http://127.0.0.1:9"],
    ));
    ok(usestats_cli(
        &config,
        &[
            "grant",
            "add",
            "https://erp.example.org",
            "reports",
            "--course",
        ],
    ));
    (dir, config)
}

#[test]
fn token_create_refuses_what_could_never_work() {
    let (_dir, config) = operator();
    let create = |extra: &[&str]| {
        let mut args = vec!["token", "create", "https://erp.example.org", "reports"];
        args.extend_from_slice(extra);
        usestats_cli(&config, &args)
    };
    refused(create(&["--expires", "2020-01-01"]), 1, "in the past");
    refused(create(&["--expires", "2026-02-30"]), 1, "not a unix time");
    refused(create(&["--expires", "1"]), 1, "in the past");
    refused(
        create(&["--allowed-ips", "garbage"]),
        1,
        "--allowed-ips: `garbage` is not an IP address",
    );
    refused(
        create(&["--allowed-ips", " , ,"]),
        1,
        "names no address or range",
    );
    refused(
        create(&["--allowed-ips", "10.0.0.0/33"]),
        1,
        "prefix length",
    );
    refused(
        create(&["--label", "erp\n9  fake-row  active"]),
        1,
        "control characters",
    );
    assert_eq!(
        json(&config, &["token", "list"]),
        serde_json::json!([]),
        "a refused token is not stored"
    );
    ok(create(&[
        "--expires",
        "9999-12-31",
        "--allowed-ips",
        "127.0.0.1",
    ]));
    assert_eq!(
        json(&config, &["token", "list"]).as_array().unwrap().len(),
        1
    );
}

#[test]
fn out_of_range_numbers_dates_and_names_are_refused() {
    let (_dir, config) = operator();
    let run = |args: &[&str]| usestats_cli(&config, args);
    // Usage errors, refused by the argument parser with the range.
    refused(run(&["audit", "--limit", "0"]), 2, "1..=100000");
    refused(run(&["audit", "--limit=-1"]), 2, "1..=100000");
    refused(run(&["collect", "bob", "--scope", "7"]), 2, "1..=3");
    refused(
        run(&["bench", "http://127.0.0.1:9", "bob", "--clients", "0"]),
        2,
        "1..=1024",
    );
    refused(
        run(&["bench", "http://127.0.0.1:9", "bob", "--seconds", "0"]),
        2,
        "1..=3600",
    );
    for bad in [
        "--timeout-ms=-5",
        "--connect-timeout-ms=0",
        "--timeout-ms=600001",
    ] {
        refused(
            run(&["peer", "set", "http://127.0.0.1:9", bad]),
            2,
            "1..=600000",
        );
    }
    // Dates that do not exist, or would overflow, are refused rather than rolled over.
    for bad in [
        "2026-02-30",
        "2026-01-01T25:00",
        "99999999999999-01-01",
        "-5",
    ] {
        refused(
            run(&["audit", &format!("--since={bad}")]),
            1,
            "is not a unix time or a date",
        );
    }
    refused(
        run(&["collect", "bob", "--as", "admin@not a wwwroot"]),
        1,
        "must start with http:// or https://",
    );
    refused(
        run(&[
            "init",
            "--force",
            "--wwwroot",
            "http://127.0.0.1:9",
            "--name",
            "Stats\u{1b}[2J",
        ]),
        1,
        "control characters",
    );
    // The refused init left the site name as it was.
    let toml = std::fs::read_to_string(&config).unwrap();
    assert!(!toml.contains('\u{1b}'));
}

const HOME: &str = "https://erp.example.org";

/// POST a form the way a Moodle REST client does; returns the body.
async fn post_form(url: &str, params: &[(&str, &str)]) -> String {
    use http_body_util::{BodyExt, Full};
    let body: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value (a run of `c`) is quoted with at most 100 characters and an ellipsis, within
/// a short message.
fn assert_cut(echoed: &str, c: &str) {
    assert!(
        echoed.len() < 600,
        "{} bytes echoed: {echoed:.300}",
        echoed.len()
    );
    assert!(echoed.contains('…'), "{echoed}");
    assert!(echoed.contains(&c.repeat(90)), "{echoed}");
    assert!(!echoed.contains(&c.repeat(101)), "{echoed}");
}

#[tokio::test]
async fn web_service_errors_do_not_echo_megabytes() {
    let t = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![]),
        demo_log_rows: 2_000,
        ..Default::default()
    })
    .await;
    t.grant(HOME, "reports", false, true).await;
    let token = usestats::ws::tokens::create(&t.app, HOME, "reports", "t", None, "")
        .await
        .unwrap()
        .0;
    let url = t.url("/webservice/rest/server.php");
    let huge_uid = "u".repeat(3_900_000);
    let huge_cid = "c".repeat(1_000_000);
    let huge_alpha = "a".repeat(1_000_000);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("uidsource", "username"), ("uid", &huge_uid)], "u"),
        (
            vec![
                ("uidsource", "username"),
                ("uid", "admin"),
                ("cidsource", "shortname"),
                ("cid", &huge_cid),
            ],
            "c",
        ),
        (vec![("uidsource", &huge_alpha), ("uid", "admin")], "a"),
    ];
    for (params, value_start) in cases {
        for format in ["json", "xml"] {
            let mut all = vec![
                ("wstoken", token.as_str()),
                ("wsfunction", "block_use_stats_get_user_stats"),
                ("moodlewsrestformat", format),
            ];
            all.extend_from_slice(&params);
            let started = Instant::now();
            let body = post_form(&url, &all).await;
            assert!(started.elapsed() < Duration::from_secs(60));
            assert!(body.contains("invalidparameter"), "{body:.300}");
            assert_cut(&body, value_start);
        }
    }
}

#[tokio::test]
async fn mnet_answers_do_not_echo_megabytes() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![a.wwwroot.clone()]),
        demo_log_rows: 2_000,
        ..Default::default()
    })
    .await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    a.set_service(&b.wwwroot, "use_stats", None, Some(true))
        .await;
    b.set_service(&a.wwwroot, "use_stats", Some(true), None)
        .await;
    b.grant(&a.wwwroot, "admin", true, true).await;

    // A stranger: an encrypted envelope from a host nobody knows, named at length. The
    // plain 7020 fault repeats the name (as Moodle does), cut.
    let stranger = format!("http://{}", "s".repeat(60_000));
    let body = usestats::mnet::envelope::build_encrypted(
        b"<signedMessage/>",
        &b.app.keyring().current.public_key().unwrap(),
        &stranger,
    )
    .unwrap();
    let (status, answer) = post(&b.url("/mnet/xmlrpc/server.php"), body).await;
    let answer = String::from_utf8(answer).unwrap();
    assert_eq!(status, 200);
    assert!(answer.contains("<int>7020</int>"), "{answer:.300}");
    assert_cut(&answer, "s");

    // A peer: use_stats errors naming a whereroot, a calling host, and a timefrom.
    let peer = a.peer(&b.wwwroot).await;
    let (_, learner) = busiest_learner(&b).await;
    let call = |caller: Value, whereroot: String, timefrom: String| {
        let (a, peer, learner) = (&a, peer.clone(), learner.clone());
        async move {
            let value = a
                .call_peer(
                    &peer,
                    "blocks/use_stats/rpclib.php/use_stats_rpc_get_stats",
                    vec![
                        caller,
                        Value::from(learner.as_str()),
                        Value::from(whereroot.as_str()),
                        Value::Int(1),
                        Value::from(timefrom.as_str()),
                    ],
                )
                .await
                .expect("an answer");
            Answer::from_value(&value).expect("a use_stats answer")
        }
    };
    let admin = caller_struct("admin", &a.wwwroot, &a.wwwroot);
    let far = format!("http://{}", "w".repeat(60_000));
    let answer = call(admin.clone(), far, "0".into()).await;
    assert_eq!(answer.status, 500);
    assert_cut(&answer.errors[0].to_string(), "w");

    let liar = caller_struct(
        "admin",
        &a.wwwroot,
        &format!("http://{}", "h".repeat(60_000)),
    );
    let answer = call(liar, String::new(), "0".into()).await;
    assert_eq!(answer.status, 500);
    assert_cut(&answer.errors[0].to_string(), "h");

    let answer = call(
        admin.clone(),
        String::new(),
        format!("x{}", "9".repeat(60_000)),
    )
    .await;
    assert_eq!(answer.status, 503);
    assert_cut(&answer.errors[0].to_string(), "9");

    // Leading zeros make a valid timefrom of any length: `<FROM>` gives the number.
    let answer = call(admin, String::new(), format!("{}1", "0".repeat(60_000))).await;
    assert_eq!(answer.status, 200, "{:?}", answer.errors);
    let message = answer.message.unwrap_or_default();
    assert!(message.contains("<FROM>1</FROM>"), "{message:.300}");
    assert!(message.len() < 10_000, "{} bytes", message.len());
}
