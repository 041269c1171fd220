//! Issue 9, items 6–8, each attack run against a real daemon on loopback: a captured request
//! replayed after the timestamp window with its timestamp rewritten through RC4, or after a
//! restart; timestamps at the ends of i64; forged log lines, audit rows and terminal escapes
//! in unauthenticated text; thousands of made-up method names in /metrics; strangers
//! registering themselves by keyswap.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use openssl::pkey::{PKey, Private};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use usestats::mnet::envelope;
use usestats::store::state;
use usestats::xmlrpc::{self, Limits, MethodCall, Response, Value};

use common::vector::{A, CAPTURED_AT, fault_of, peer as vector_peer, read};

fn key(rel: &str) -> PKey<Private> {
    PKey::private_key_from_pem(&read(rel)).unwrap()
}

/// The attack of item 6: rewrite the unsigned `<timestamp>` of a captured encrypted request
/// without any key. RC4 is a stream cipher, so XOR-ing the ciphertext with (old digits XOR
/// new digits) at the digits' offset changes them in the plaintext. The offset comes from
/// Moodle's fixed template; the test reads it from the plaintext (B's key) only to be exact
/// about where the template puts it — the ciphertext is edited, never re-encrypted.
fn with_rewritten_timestamp(body: &[u8], old_timestamp: i64, new_timestamp: i64) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let start = text.find("<CipherValue>").unwrap() + "<CipherValue>".len();
    let end = start + text[start..].find("</CipherValue>").unwrap();
    let clean: String = text[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut data = B64.decode(clean).unwrap();
    let message = envelope::parse_encrypted(body).unwrap();
    let (plain, _) = envelope::open_with(&message, [&key("keys/B-old.key.pem")]).unwrap();
    let plain = String::from_utf8_lossy(&plain).into_owned();
    let at = plain.find("<timestamp>").unwrap() + "<timestamp>".len();
    let old = old_timestamp.to_string();
    assert_eq!(&plain[at..at + old.len()], old);
    let new = new_timestamp.to_string();
    assert_eq!(new.len(), old.len(), "same number of digits");
    for (i, (o, n)) in old.bytes().zip(new.bytes()).enumerate() {
        data[at + i] ^= o ^ n;
    }
    format!("{}{}{}", &text[..start], B64.encode(&data), &text[end..]).into_bytes()
}

#[tokio::test]
async fn a_capture_replayed_after_the_timestamp_window_with_a_rewritten_timestamp_is_refused() {
    let captured = read("04a-list-services/request.body");
    let replayed_at = CAPTURED_AT + 310;
    let forged = with_rewritten_timestamp(&captured, CAPTURED_AT, replayed_at);

    // The forgery is a valid request: a daemon that never saw the original executes it.
    let fresh = vector_peer(None).await;
    fresh.app.clock.pin(replayed_at);
    let (_, answer) = post(&fresh.url("/mnet/xmlrpc/server.php"), forged.clone()).await;
    assert_eq!(fault_of(&answer), None, "the rewritten timestamp passes");

    let b = vector_peer(None).await;
    let url = b.url("/mnet/xmlrpc/server.php");
    b.app.clock.pin(CAPTURED_AT);
    let (_, first) = post(&url, captured.clone()).await;
    assert_eq!(fault_of(&first), None, "the genuine call runs");
    // 310 s later the timestamp window has passed; the replay key has not.
    b.app.clock.pin(replayed_at);
    let (_, replay) = post(&url, forged).await;
    assert_eq!(
        fault_of(&replay),
        Some(7041),
        "replayed with a new timestamp"
    );
    let (_, plain_replay) = post(&url, captured).await;
    assert_eq!(fault_of(&plain_replay), Some(7040), "the original is stale");
    // Still refused a day minus a second later; the key is in the state database too.
    b.app.clock.pin(CAPTURED_AT + 86_399);
    let (_, late) = post(
        &url,
        with_rewritten_timestamp(
            &read("04a-list-services/request.body"),
            CAPTURED_AT,
            CAPTURED_AT + 86_399,
        ),
    )
    .await;
    assert_eq!(fault_of(&late), Some(7041));
    b.app.background.settled().await;
    let stored = b
        .app
        .state
        .run(|c| state::recent_replay_keys(c, 0, 10))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "one executed request, one key: {stored:?}");
    assert_eq!(stored[0].1, CAPTURED_AT);
    assert_eq!(stored[0].0.len(), 32, "a 16-byte hash, not the request");
    // Maintenance drops it once the window has passed.
    b.app.clock.pin(CAPTURED_AT + 86_401);
    usestats::maintenance::maintenance_once(&b.app).await;
    let stored = b
        .app
        .state
        .run(|c| state::recent_replay_keys(c, 0, 10))
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
}

#[tokio::test]
async fn a_capture_replayed_after_a_restart_on_the_same_state_database_is_refused() {
    // On the real clock: the restarted daemon loads the keys of the last day as it starts.
    let mut first = vector_peer(None).await;
    let sent_at = first.app.now();
    let captured = call_from_a(&key("keys/A.key.pem"), sent_at, &list_services());
    let (_, answer) = post(&first.url("/mnet/xmlrpc/server.php"), captured.clone()).await;
    assert_eq!(fault_of(&answer), None);
    let state_url = first.app.config.state_url();
    // What `serve` does on SIGTERM: answer, then let the background writes land.
    first.app.background.settled().await;
    first.stop().await;

    let url_for_restart = state_url.clone();
    let second = vector_peer(Some(Box::new(move |c| c.state.url = url_for_restart))).await;
    assert_eq!(second.app.config.state_url(), state_url);
    let url = second.url("/mnet/xmlrpc/server.php");
    let (_, replay) = post(&url, captured.clone()).await;
    assert_eq!(
        fault_of(&replay),
        Some(7041),
        "replayed right after the restart"
    );
    second.app.clock.set_offset(310);
    let rewritten = with_rewritten_timestamp(&captured, sent_at, sent_at + 310);
    let (_, replay) = post(&url, rewritten).await;
    assert_eq!(
        fault_of(&replay),
        Some(7041),
        "and with a rewritten timestamp"
    );
    // A call the daemon has not seen still runs.
    let fresh = call_from_a(&key("keys/A.key.pem"), second.app.now(), &list_services());
    let (_, other) = post(&url, fresh).await;
    assert_eq!(fault_of(&other), None);
}

/// A `usestats serve` process playing B (the vectors' key and wwwroot) on the SQLite state in
/// `dir`, listening on `port`.
fn serve_b(dir: &std::path::Path, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(dir.join("usestats.toml"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--console-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && get(&format!("http://127.0.0.1:{port}/healthz")).await.0 == 200
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "serve never came up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Issue 22, K2: on a SQLite state a request's replay key was written in a batch up to 100 ms
/// after its answer, so a `kill -9` right after the answer forgot it, and the same sealed
/// request, replayed after the restart, ran again (5 times out of 5). The key is claimed,
/// synced, before the call runs now: each of five kills right after an answer leaves it
/// refused after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_answered_just_before_a_kill_is_refused_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = usestats::config::Config::for_wwwroot(common::vector::B);
    config.path = dir.path().join("usestats.toml");
    config.base_dir = dir.path().to_path_buf();
    std::fs::write(&config.path, config.to_toml()).unwrap();
    let store = usestats::crypto::KeyStore::new(config.keys_dir(), config.keys.keep_archived);
    store
        .install(
            &usestats::crypto::Identity::from_pem(
                &read("keys/B-old.key.pem"),
                &read("keys/B-old.cert.pem"),
            )
            .unwrap(),
        )
        .unwrap();
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
    drop(app);

    let url = format!("http://127.0.0.1:{port}/mnet/xmlrpc/server.php");
    for round in 0..5 {
        let mut serve = serve_b(dir.path(), port);
        wait_healthy(port).await;
        let request = call_from_a(
            &key("keys/A.key.pem"),
            usestats::app::Clock::default().now(),
            &list_services(),
        );
        let (_, answer) = post(&url, request.clone()).await;
        assert_eq!(fault_of(&answer), None, "round {round}: the call runs");
        // kill -9 as soon as the answer is in.
        serve.kill().unwrap();
        serve.wait().unwrap();
        let mut serve = serve_b(dir.path(), port);
        wait_healthy(port).await;
        let (_, replay) = post(&url, request).await;
        assert_eq!(
            fault_of(&replay),
            Some(7041),
            "round {round}: replayed after a kill -9 and a restart"
        );
        serve.kill().unwrap();
        serve.wait().unwrap();
    }
}

/// A listServices call from A, signed with `signer` and stamped `timestamp`, sealed to B.
fn call_from_a(signer: &PKey<Private>, timestamp: i64, call: &MethodCall) -> Vec<u8> {
    let xml = xmlrpc::serialize_call(call);
    let signed = envelope::build_signed(&xml, signer, A, timestamp).unwrap();
    let b_cert =
        usestats::crypto::parse_cert_pem(&String::from_utf8(read("keys/B-old.cert.pem")).unwrap())
            .unwrap();
    let b_public = usestats::crypto::public_key_of(&b_cert).unwrap();
    envelope::build_encrypted(&signed, &b_public, A).unwrap()
}

fn list_services() -> MethodCall {
    MethodCall {
        name: "system/listServices".into(),
        params: vec![],
    }
}

#[tokio::test]
async fn timestamps_at_the_ends_of_i64_are_stale_and_panic_nothing() {
    let b = vector_peer(None).await;
    b.app.clock.pin(CAPTURED_AT);
    let url = b.url("/mnet/xmlrpc/server.php");
    let a_key = key("keys/A.key.pem");
    for timestamp in [
        i64::MIN + CAPTURED_AT,
        i64::MIN,
        i64::MAX,
        i64::MAX - CAPTURED_AT,
        -CAPTURED_AT,
    ] {
        let (status, answer) = post(&url, call_from_a(&a_key, timestamp, &list_services())).await;
        assert_eq!(status, 200, "timestamp {timestamp}");
        assert_eq!(fault_of(&answer), Some(7040), "timestamp {timestamp}");
    }
    // The same call with a good timestamp runs: the faults above were about time only.
    let (_, answer) = post(&url, call_from_a(&a_key, CAPTURED_AT, &list_services())).await;
    assert_eq!(fault_of(&answer), None);
    assert_eq!(get(&b.url("/healthz")).await.0, 200);
}

/// Everything the tests of this binary log, as the daemon's text log would show it (no
/// colours: a log file).
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buffer
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text(log: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&log.lock().unwrap()).into_owned()
}

/// A fake log line and a fake audit row, with terminal escapes (clear screen, set title,
/// bell), each tagged with `marker` so a test finds its own text among its neighbours'.
fn forgery(marker: &str) -> String {
    format!(
        "\n2026-01-01T00:00:00.000000Z  INFO usestats::mnet::server: mnet call peer=http://bank.example method=system/listServices status=ok {marker}\u{1b}[2J\u{1b}]0;pwned\u{7}\r"
    )
}

/// Write the daemon's configuration where `usestats --config` finds it, and run `audit
/// --refused` (requests refused before authentication are counted there, not given rows).
fn cli_audit(app: &TestApp) -> String {
    std::fs::write(&app.app.config.path, app.app.config.to_toml()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(&app.app.config.path)
        .args(["audit", "--refused", "--limit", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn forged_lines_and_escapes_in_a_method_name_reach_no_log_audit_or_terminal() {
    let log = captured_log();
    let b = spawn_app(AppOptions::default()).await;
    let marker = "FORGED-METHOD-1";
    let call = MethodCall {
        name: format!("mod/x/y.php/f{}", forgery(marker)),
        params: vec![
            Value::Struct(vec![
                (
                    "username".into(),
                    Value::String(format!("eve{}", forgery(marker))),
                ),
                (
                    "remoteuserhostroot".into(),
                    Value::String("http://evil.example".into()),
                ),
            ]),
            Value::String(format!("target{}", forgery(marker))),
        ],
    };
    let (status, answer) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        xmlrpc::serialize_call(&call),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fault_of(&answer), Some(7021), "plain text: not encrypted");
    let counts = refused_counts(&b).await;
    let count = counts
        .iter()
        .find(|c| c.samples.contains("caller=eve"))
        .expect("counted, with a sample");
    assert_eq!(count.reason, "fault 7021");
    assert!(count.samples.contains("method=(invalid method name)"));
    for line in count.samples.lines() {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "stored escaped: {line:?}"
        );
    }
    assert!(
        count.samples.contains("caller=eve\\n2026-01-01"),
        "{}",
        count.samples
    );
    assert!(count.samples.contains("\\u{1b}[2J"), "{}", count.samples);
    let text = log_text(&log);
    assert!(
        !text.lines().any(|l| l.starts_with("2026-01-01T00:00:00")),
        "a forged line in the log:\n{text}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'));
    assert!(
        !text.contains(marker),
        "the method name never reaches the log"
    );
    let printed = cli_audit(&b);
    assert!(!printed.contains('\u{1b}') && !printed.contains('\u{7}') && !printed.contains('\r'));
    assert!(
        !printed
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00")),
        "a forged row in `usestats audit`:\n{printed}"
    );
    assert!(printed.contains("(invalid method name)"), "{printed}");
}

async fn refused_counts(app: &TestApp) -> Vec<state::RefusedCount> {
    app.app.background.settled().await;
    app.app
        .state
        .run(|c| state::query_refused(c, None, 1000))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_request_that_fails_verification_is_counted_as_a_refused_claim() {
    let log = captured_log();
    let b = vector_peer(None).await;
    b.app.clock.pin(CAPTURED_AT);
    let marker = "FORGED-CLAIM-2";
    // Claims to be A, but signed with a key that is not A's.
    let call = MethodCall {
        name: "blocks/use_stats/rpclib.php/use_stats_rpc_get_stats".into(),
        params: vec![
            Value::Struct(vec![
                (
                    "username".into(),
                    Value::String(format!("admin{}", forgery(marker))),
                ),
                ("remoteuserhostroot".into(), Value::String(A.into())),
            ]),
            Value::String("http://victim.example".into()),
        ],
    };
    let body = call_from_a(&key("keys/B-old.key.pem"), CAPTURED_AT, &call);
    let (_, answer) = post(&b.url("/mnet/xmlrpc/server.php"), body).await;
    assert!(fault_of(&answer).is_some(), "refused");
    assert!(b.audit().await.is_empty(), "no row for an unverified claim");
    let counts = refused_counts(&b).await;
    let count = counts
        .iter()
        .find(|c| c.reason == "fault 710")
        .expect("counted");
    assert_eq!(count.calls, 1);
    assert!(
        count.samples.contains(&format!("peer={A}")),
        "the claimed peer is kept, as a claim: {}",
        count.samples
    );
    // An unverified request's call is not even read: its claimed caller is not recorded.
    assert!(
        !count.samples.contains("caller=") && !count.samples.contains("method="),
        "{}",
        count.samples
    );
    let printed = cli_audit(&b);
    let line = printed
        .lines()
        .find(|l| l.contains("fault 710"))
        .expect("the count is listed");
    assert!(line.contains(A), "{printed}");
    assert!(!printed.contains('\u{1b}'));
    let text = log_text(&log);
    assert!(!text.lines().any(|l| l.starts_with("2026-01-01T00:00:00")));
    // A verified call of the same peer keeps its row, marked verified.
    let (_, ok) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("04a-list-services/request.body"),
    )
    .await;
    assert_eq!(fault_of(&ok), None);
    let audit = b.audit().await;
    assert!(audit[0].verified && audit[0].method == "system/listServices");
}

#[tokio::test]
async fn thousands_of_made_up_method_names_do_not_grow_the_metrics() {
    let b = spawn_app(AppOptions::default()).await;
    let url = b.url("/mnet/xmlrpc/server.php");
    // One of each kind first, so the label set is complete before measuring.
    let call = |name: String| {
        xmlrpc::serialize_call(&MethodCall {
            name,
            params: vec![],
        })
    };
    post(&url, call("mod/made/up.php/first".into())).await;
    let (_, before) = get(&b.url("/metrics")).await;
    for i in 0..3000 {
        let (status, answer) = post(&url, call(format!("mod/made/up{i}.php/f{i}"))).await;
        assert_eq!(status, 200);
        assert_eq!(fault_of(&answer), Some(7021));
    }
    let (_, after) = get(&b.url("/metrics")).await;
    assert!(
        after.len() < before.len() + 200,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(!after.contains("up17.php"));
    assert!(
        after.contains(
            "usestats_requests_total{channel=\"mnet\",method=\"other\",outcome=\"fault_7021\"} 3001"
        ),
        "{after}"
    );
}

/// A web page at 127.0.0.1 answering every GET with a `<title>`, counting the requests: the
/// outbound fetches a keyswap registration makes.
async fn title_server() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let page = "<html><head><title>Some site</title></head></html>";
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                            page.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (port, count)
}

/// A Moodle-style self-signed certificate for `wwwroot` (CN and subjectAltName attribute),
/// all on one key so that making thirty costs no key generation.
fn cert_for(wwwroot: &str, key: &PKey<Private>) -> String {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COUNTRYNAME, "NZ").unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "stranger")
        .unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, wwwroot).unwrap();
    name.append_entry_by_nid(Nid::SUBJECT_ALT_NAME, wwwroot)
        .unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(28).unwrap())
        .unwrap();
    builder.sign(key, MessageDigest::sha256()).unwrap();
    String::from_utf8(builder.build().to_pem().unwrap()).unwrap()
}

/// Thirty strangers keyswap with `b`, each claiming its own wwwroot on the title server.
/// Returns how many peers got registered and how many GETs the title server received.
async fn thirty_keyswaps(b: &TestApp) -> (usize, usize) {
    let (port, fetched) = title_server().await;
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    for i in 0..30 {
        let wwwroot = format!("http://127.0.0.1:{port}/site{i}");
        let call = MethodCall {
            name: "system/keyswap".into(),
            params: vec![
                Value::String(wwwroot.clone()),
                Value::String(cert_for(&wwwroot, &key)),
                Value::String("moodle".into()),
            ],
        };
        let (status, answer) = post(
            &b.url("/mnet/xmlrpc/server.php"),
            xmlrpc::serialize_call(&call),
        )
        .await;
        assert_eq!(status, 200);
        let Response::Success(Value::String(pem)) =
            xmlrpc::parse_response(&answer, &Limits::default()).unwrap()
        else {
            panic!("keyswap {i} answers our certificate");
        };
        assert_eq!(pem, b.app.keyring().current.cert_pem);
    }
    let peers = b
        .app
        .state
        .run(|c| state::all_peers(c, true))
        .await
        .unwrap();
    (peers.len(), fetched.load(Ordering::SeqCst))
}

#[tokio::test]
async fn self_registration_by_keyswap_is_rate_limited() {
    let b = spawn_app(AppOptions {
        auto_register: true,
        ..Default::default()
    })
    .await;
    let (registered, fetched) = thirty_keyswaps(&b).await;
    // Defaults: 2 a minute from one address.
    assert_eq!(registered, 2, "registered from one address");
    assert_eq!(fetched, 2, "outbound GETs");
}

#[tokio::test]
async fn self_registration_by_keyswap_is_capped() {
    let b = spawn_app(AppOptions {
        auto_register: true,
        tweak: Some(Box::new(|c| {
            c.limits.auto_register_per_minute = 0;
            c.limits.auto_register_per_address_per_minute = 0;
            c.limits.auto_register_max_peers = 5;
        })),
        ..Default::default()
    })
    .await;
    let (registered, fetched) = thirty_keyswaps(&b).await;
    assert_eq!(registered, 5, "the cap");
    assert_eq!(fetched, 5, "no GET once the cap is reached");
    // Peers an operator adds do not count against it, and are still possible.
    let other = spawn_app(AppOptions::default()).await;
    b.add_peer(&other).await;
    assert_eq!(
        b.app.state.run(state::count_auto_registered).await.unwrap(),
        5
    );
}
