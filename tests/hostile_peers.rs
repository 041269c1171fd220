//! Attacks by whoever answers at a peer's URL (issue 9, items 2 and 11): a small hand-written
//! HTTP server on 127.0.0.1 that answers whatever it likes, signed and encrypted with its own
//! key through the crate's envelope functions. It is the attacker; the daemons it attacks
//! are real.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use usestats::crypto::{self, Identity};
use usestats::mnet::envelope::{self, DocumentKind};
use usestats::xmlrpc::{self, Fault, Limits, Response, Value};

/// What the attacker's server received: (HTTP method, path, XML-RPC method name if readable).
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// The attacker's answer to one request.
type Behaviour = Arc<dyn Fn(&Rogue, &str, &[u8]) -> (u16, Vec<u8>) + Send + Sync>;

#[derive(Clone)]
struct Rogue {
    wwwroot: String,
    identity: Identity,
    /// The victim's certificate, to encrypt answers to it.
    victim_pem: Arc<Mutex<String>>,
    seen: Seen,
}

impl Rogue {
    /// Start an attacker server on 127.0.0.1 with its own key pair for its own URL.
    async fn start(behaviour: Behaviour) -> (Rogue, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let wwwroot = format!("http://127.0.0.1:{}", addr.port());
        let identity = new_identity(&wwwroot);
        let rogue = Rogue {
            wwwroot,
            identity,
            victim_pem: Arc::new(Mutex::new(String::new())),
            seen: Arc::default(),
        };
        let served = rogue.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rogue, behaviour) = (served.clone(), behaviour.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let (rogue, behaviour) = (rogue.clone(), behaviour.clone());
                            async move {
                                let method = request.method().to_string();
                                let path = request.uri().path().to_string();
                                let body = request.into_body().collect().await.unwrap().to_bytes();
                                rogue.seen.lock().unwrap().push((
                                    method.clone(),
                                    path.clone(),
                                    method_name(&body),
                                ));
                                let (status, answer) = behaviour(&rogue, &path, &body);
                                Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("Content-Type", "text/xml; charset=utf-8")
                                        .body(Full::new(Bytes::from(answer)))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (rogue, task)
    }

    fn target(&self, victim: &TestApp) {
        *self.victim_pem.lock().unwrap() = victim.app.keyring().current.cert_pem.clone();
    }

    fn count(&self, name: &str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|(_, _, m)| m == name).count()
    }

    /// `xml` signed with `key` in the name of this URL, encrypted to the victim.
    fn sealed_with(&self, key: &Identity, xml: &[u8]) -> Vec<u8> {
        let signed = envelope::build_signed(xml, &key.key, &self.wwwroot, unix_now()).unwrap();
        let victim = crypto::parse_cert_pem(&self.victim_pem.lock().unwrap())
            .unwrap()
            .public_key()
            .unwrap();
        envelope::build_encrypted(&signed, &victim, &self.wwwroot).unwrap()
    }

    fn sealed(&self, xml: &[u8]) -> Vec<u8> {
        self.sealed_with(&self.identity, xml)
    }

    /// A 7025 announcing `new`'s certificate, signed with `new`'s own key.
    fn rotation_by_new_key(&self, new: &Identity) -> Vec<u8> {
        let fault = Fault::new(7025, new.cert_pem.clone());
        self.sealed_with(new, &xmlrpc::serialize_fault(&fault))
    }

    fn keyswap(&self) -> Vec<u8> {
        xmlrpc::serialize_response(&Value::String(self.identity.cert_pem.clone()))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn new_identity(wwwroot: &str) -> Identity {
    crypto::generate_identity(
        &usestats::app::cert_subject(&usestats::config::Config::for_wwwroot(wwwroot)),
        28,
        unix_now(),
    )
    .unwrap()
}

fn method_name(body: &[u8]) -> String {
    if envelope::document_kind(body) != DocumentKind::Other {
        return "(encrypted)".into();
    }
    xmlrpc::parse_call(body, &Limits::default())
        .map(|c| c.name)
        .unwrap_or_default()
}

fn is_keyswap(body: &[u8]) -> bool {
    method_name(body) == "system/keyswap"
}

/// Register the attacker's URL at `victim` as peer `B` holding `cert_pem`, subscribed and
/// published for use_stats.
async fn register(victim: &TestApp, wwwroot: &str, cert_pem: &str) -> usestats::store::state::Peer {
    victim.register_cert(wwwroot, cert_pem).await;
    victim
        .set_service(wwwroot, "use_stats", Some(true), Some(true))
        .await;
    victim.peer(wwwroot).await
}

/// The fault code of an answer the test can open with one of `keys`.
fn fault_code_of(answer: &[u8], keys: &[&Identity]) -> Option<i64> {
    let message = envelope::parse_encrypted(answer).ok()?;
    let (plain, _) = envelope::open_with(&message, keys.iter().map(|k| &k.key))?;
    let signed = envelope::parse_signed(&plain).ok()?;
    match xmlrpc::parse_response(&signed.object, &Limits::default()).ok()? {
        Response::Fault(f) => Some(f.code),
        Response::Success(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// Item 2: peer identity takeover.

#[tokio::test]
async fn a_forged_request_cannot_make_the_server_adopt_the_attackers_key() {
    // The attacker answers at B's URL: keyswap with its own certificate, and any encrypted
    // call with a 7025 carrying that certificate, signed with its own key.
    let behaviour: Behaviour = Arc::new(|rogue: &Rogue, _path: &str, body: &[u8]| {
        if is_keyswap(body) {
            (200, rogue.keyswap())
        } else {
            (200, rogue.rotation_by_new_key(&rogue.identity))
        }
    });
    let (rogue, _task) = Rogue::start(behaviour).await;
    let a = spawn_app(AppOptions::default()).await;
    rogue.target(&a);
    // The real B, whose private key the attacker does not have.
    let real_b = new_identity(&rogue.wwwroot);
    register(&a, &rogue.wwwroot, &real_b.cert_pem).await;

    // One unauthenticated request claiming to be B, signed with the attacker's key.
    let forged = xmlrpc::serialize_call(&usestats::xmlrpc::MethodCall {
        name: "system/listServices".into(),
        params: vec![],
    });
    let started = std::time::Instant::now();
    let (status, answer) = post(&a.url("/mnet/xmlrpc/server.php"), rogue.sealed(&forged)).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(
        fault_code_of(&answer, &[&real_b, &rogue.identity]),
        Some(710),
        "the forged call is refused, not executed"
    );
    assert_eq!(
        a.peer(&rogue.wwwroot).await.public_key,
        real_b.cert_pem,
        "B's certificate on file is unchanged"
    );
    // Unverified, so it is counted among the requests refused before authentication, not
    // stored as a call; its call is not even read, so no sample names a method.
    a.app.background.settled().await;
    let refused = a
        .app
        .state
        .run(|c| usestats::store::state::query_refused(c, None, 1000))
        .await
        .unwrap();
    assert!(
        refused.iter().any(|c| c.channel == "mnet"
            && c.reason == "fault 710"
            && c.calls >= 1
            && !c.samples.contains("listServices")),
        "{refused:?}"
    );
    assert!(
        a.audit().await.iter().all(|e| e.status != "fault 710"),
        "no audit row for an unverified request"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // The refresh it triggered called out once; a second forged request within the minute
    // makes no call at all.
    assert_eq!(rogue.count("system/keyswap"), 1);
    let (_, answer) = post(&a.url("/mnet/xmlrpc/server.php"), rogue.sealed(&forged)).await;
    assert_eq!(
        fault_code_of(&answer, &[&real_b, &rogue.identity]),
        Some(710)
    );
    assert_eq!(rogue.count("system/keyswap"), 1, "key refresh rate-limited");
    assert_eq!(rogue.count("(encrypted)"), 1, "key refresh rate-limited");
    assert_eq!(a.peer(&rogue.wwwroot).await.public_key, real_b.cert_pem);
}

/// The attacker answers every encrypted call with a 7025 signed by the key it announces.
fn rotating_rogue() -> Behaviour {
    Arc::new(|rogue: &Rogue, _path: &str, body: &[u8]| {
        if is_keyswap(body) {
            (200, rogue.keyswap())
        } else {
            (200, rogue.rotation_by_new_key(&rogue.identity))
        }
    })
}

#[tokio::test]
async fn a_call_refuses_a_7025_signed_only_by_the_key_it_announces() {
    let (rogue, _task) = Rogue::start(rotating_rogue()).await;
    let a = spawn_app(AppOptions::default()).await;
    rogue.target(&a);
    let real_b = new_identity(&rogue.wwwroot);
    let peer = register(&a, &rogue.wwwroot, &real_b.cert_pem).await;

    let result = a.call_peer(&peer, "system/listServices", vec![]).await;
    let error = result.expect_err("the call fails");
    assert!(
        error
            .to_string()
            .contains("does not verify with the certificate on file"),
        "{error:?}"
    );
    assert_eq!(a.peer(&rogue.wwwroot).await.public_key, real_b.cert_pem);

    // Fan-out: the peer's status is an error, its key unchanged.
    let collection = usestats::collect::collect(
        &a.app,
        vec![a.peer(&rogue.wwwroot).await],
        ("admin", &a.wwwroot),
        "learner",
        1,
        0,
    )
    .await;
    assert_eq!(
        collection.hosts[0].status,
        usestats::collect::PeerStatus::Error
    );
    assert!(
        collection.hosts[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("does not verify with the certificate on file"),
        "{collection:?}"
    );
    assert_eq!(a.peer(&rogue.wwwroot).await.public_key, real_b.cert_pem);
}

#[tokio::test]
async fn forwarding_to_the_attackers_url_does_not_change_its_key() {
    let (rogue, _task) = Rogue::start(rotating_rogue()).await;
    let h = spawn_app(AppOptions::default()).await;
    let a = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![h.wwwroot.clone()]),
        demo_log_rows: 2_000,
        ..Default::default()
    })
    .await;
    rogue.target(&a);
    h.add_peer(&a).await;
    a.add_peer(&h).await;
    h.set_service(&a.wwwroot, "use_stats", None, Some(true))
        .await;
    a.set_service(&h.wwwroot, "use_stats", Some(true), None)
        .await;
    a.grant(&h.wwwroot, "admin", true, true).await;
    let real_b = new_identity(&rogue.wwwroot);
    register(&a, &rogue.wwwroot, &real_b.cert_pem).await;

    let value = h
        .call_peer(
            &h.peer(&a.wwwroot).await,
            usestats::services::use_stats::GET_STATS,
            vec![
                usestats::collect::caller_struct("admin", &h.wwwroot, &h.wwwroot),
                Value::from("learner"),
                Value::from(rogue.wwwroot.as_str()),
                Value::Int(1),
                Value::Int(0),
            ],
        )
        .await
        .unwrap();
    let answer = usestats::services::use_stats::Answer::from_value(&value).unwrap();
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(
        a.peer(&rogue.wwwroot).await.public_key,
        real_b.cert_pem,
        "the forwarding host kept B's certificate"
    );
}

// ---------------------------------------------------------------------------------------
// Item 11: malicious peers answering our calls.

/// A use_stats answer as a peer's `get_stats` returns it (JSON text in an XML-RPC string).
fn stats_answer(status: i64, errors: serde_json::Value, message: &str) -> Vec<u8> {
    let json = serde_json::json!({"status": status, "errors": errors, "message": message});
    xmlrpc::serialize_response(&Value::String(json.to_string()))
}

/// A peer whose key is on file (it is a real, registered peer) but that answers every
/// encrypted call with `answer()`, properly signed and encrypted, or plain when `sealed` is
/// false.
fn answering(answer: Arc<Mutex<(bool, Vec<u8>)>>) -> Behaviour {
    Arc::new(move |rogue: &Rogue, path: &str, body: &[u8]| {
        if path == "/" {
            return (200, Vec::new());
        }
        if is_keyswap(body) {
            return (200, rogue.keyswap());
        }
        let (sealed, xml) = answer.lock().unwrap().clone();
        if sealed {
            (200, rogue.sealed(&xml))
        } else {
            (200, xml)
        }
    })
}

fn user_message(elapsed: &str) -> String {
    format!(
        "<USE_STATS>\n<USER>\n\t<USERNAME>learner</USERNAME>\n\t<FIRSTNAME>L</FIRSTNAME>\n\t<LASTNAME></LASTNAME>\n\t<FROM>0</FROM>\n\t<ELAPSED>{elapsed}</ELAPSED>\n\n</USER>\n</USE_STATS>"
    )
}

#[tokio::test]
async fn collect_refuses_numbers_a_peer_makes_up() {
    let answer = Arc::new(Mutex::new((true, Vec::new())));
    let (rogue, _task) = Rogue::start(answering(answer.clone())).await;
    let a = spawn_app(AppOptions::default()).await;
    rogue.target(&a);
    register(&a, &rogue.wwwroot, &rogue.identity.cert_pem).await;

    let collect_once = |message: String| {
        *answer.lock().unwrap() = (true, stats_answer(200, serde_json::json!([]), &message));
        let (app, wwwroot) = (a.app.clone(), rogue.wwwroot.clone());
        async move {
            let peer = app
                .state
                .run(move |c| usestats::store::state::peer_by_wwwroot(c, &wwwroot))
                .await
                .unwrap()
                .unwrap();
            usestats::collect::collect(&app, vec![peer], ("admin", "http://h"), "learner", 1, 0)
                .await
        }
    };

    // An honest answer is merged.
    let honest = collect_once(user_message("42")).await;
    assert_eq!(
        honest.hosts[0].status,
        usestats::collect::PeerStatus::Ok,
        "{honest:?}"
    );
    assert_eq!(honest.total_minutes, 42);

    let extra_user = format!(
        "{}<USER><ELAPSED>999999</ELAPSED></USER>",
        user_message("1").trim_end_matches("</USE_STATS>")
    ) + "</USE_STATS>";
    let lies = [
        (user_message("9223372036854775807"), "out of range"),
        (user_message("-50"), "not a non-negative whole number"),
        (user_message("NaN"), "not a non-negative whole number"),
        (user_message("abc"), "not a non-negative whole number"),
        (user_message("12345678901234567890"), "out of range"),
        (extra_user, "more than one"),
        (
            user_message("5").replace("</USER>", "<ELAPSED>77</ELAPSED></USER>"),
            "more than one site total",
        ),
        (
            user_message("5").replace("<FROM>", "<BOGUS>1</BOGUS><FROM>"),
            "unexpected element <BOGUS>",
        ),
    ];
    for (message, problem) in lies {
        let collection = collect_once(message.clone()).await;
        let host = &collection.hosts[0];
        assert_eq!(
            host.status,
            usestats::collect::PeerStatus::Error,
            "{message}: {collection:?}"
        );
        assert!(
            host.error.as_deref().unwrap_or_default().contains(problem),
            "{message}: {:?}",
            host.error
        );
        assert_eq!(host.minutes, None);
        assert_eq!(collection.total_minutes, 0, "{message}");
    }
}

#[tokio::test]
async fn answers_are_capped_by_what_was_asked() {
    let answer = Arc::new(Mutex::new((false, Vec::new())));
    let (rogue, _task) = Rogue::start(answering(answer.clone())).await;
    let a = spawn_app(AppOptions::default()).await;
    rogue.target(&a);
    let peer = register(&a, &rogue.wwwroot, &rogue.identity.cert_pem).await;

    // 3 MB for a use_stats call, whose answers are a few KB.
    *answer.lock().unwrap() = (false, vec![b' '; 3 * 1024 * 1024]);
    let started = std::time::Instant::now();
    let result = a
        .call_peer(
            &peer,
            usestats::services::use_stats::GET_STATS,
            vec![Value::from("x")],
        )
        .await;
    let error = result.expect_err("refused").to_string();
    assert!(error.contains("sent more than 2097152 bytes"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // 1.5 MB for a system method.
    *answer.lock().unwrap() = (false, vec![b' '; 1536 * 1024]);
    let error = a
        .call_peer(&peer, "system/listServices", vec![])
        .await
        .expect_err("refused")
        .to_string();
    assert!(error.contains("sent more than 1048576 bytes"), "{error}");
}

#[tokio::test]
async fn a_keyswap_answer_is_capped() {
    let behaviour: Behaviour = Arc::new(|_: &Rogue, _: &str, _: &[u8]| {
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&"QUFB\n".repeat(40_000));
        pem.push_str("-----END CERTIFICATE-----\n");
        (200, xmlrpc::serialize_response(&Value::String(pem)))
    });
    let (rogue, _task) = Rogue::start(behaviour).await;
    let a = spawn_app(AppOptions::default()).await;
    let error = a
        .app
        .client
        .keyswap(
            &rogue.wwwroot,
            "moodle",
            usestats::store::state::SslVerification::None,
            None,
        )
        .await
        .expect_err("refused")
        .to_string();
    assert!(error.contains("sent more than 65536 bytes"), "{error}");
}

/// ESC sequences, BEL, CR/LF, NUL and 600 KB of text (under every answer cap) in a fault
/// nobody signed.
fn hostile_fault() -> Vec<u8> {
    let mut text = String::from("\u{1b}[2J\u{1b}]0;owned\u{7}\r\nFAKE ROW ok ok\u{0}");
    text.push_str(&"A".repeat(600 * 1024));
    xmlrpc::serialize_fault(&Fault::new(7020, text))
}

#[tokio::test]
async fn forwarding_never_relays_unauthenticated_text_and_caps_error_lists() {
    let answer = Arc::new(Mutex::new((false, hostile_fault())));
    let (rogue, _task) = Rogue::start(answering(answer.clone())).await;
    let h = spawn_app(AppOptions::default()).await;
    let a = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![h.wwwroot.clone()]),
        demo_log_rows: 2_000,
        ..Default::default()
    })
    .await;
    rogue.target(&a);
    h.add_peer(&a).await;
    a.add_peer(&h).await;
    h.set_service(&a.wwwroot, "use_stats", None, Some(true))
        .await;
    a.set_service(&h.wwwroot, "use_stats", Some(true), None)
        .await;
    a.grant(&h.wwwroot, "admin", true, true).await;
    register(&a, &rogue.wwwroot, &rogue.identity.cert_pem).await;
    let forward = || {
        let (h_app, peer, home, whereroot) = (
            h.app.clone(),
            h.peer(&a.wwwroot),
            h.wwwroot.clone(),
            rogue.wwwroot.clone(),
        );
        async move {
            let value = h_app
                .client
                .call(
                    &peer.await,
                    usestats::services::use_stats::GET_STATS,
                    vec![
                        usestats::collect::caller_struct("admin", &home, &home),
                        Value::from("learner"),
                        Value::from(whereroot.as_str()),
                        Value::Int(1),
                        Value::Int(0),
                    ],
                )
                .await
                .unwrap();
            let text = match &value {
                Value::String(s) => s.len(),
                _ => 0,
            };
            (
                usestats::services::use_stats::Answer::from_value(&value).unwrap(),
                text,
            )
        }
    };

    // A plain fault: its text stays at A.
    let (relayed, size) = forward().await;
    assert_eq!(relayed.status, 500);
    let joined = serde_json::Value::Array(relayed.errors.clone()).to_string();
    assert!(joined.contains("unauthenticated fault 7020"), "{joined}");
    assert!(
        !joined.contains("FAKE ROW") && !joined.contains("AAAA"),
        "{joined}"
    );
    assert!(size < 4096, "{size} bytes relayed");
    // A's record of the peer keeps a short, clean, marked error.
    let stored = a.peer(&rogue.wwwroot).await.last_error.unwrap();
    assert!(stored.chars().count() <= 500, "{} chars", stored.len());
    assert!(stored.contains("unauthenticated"), "{stored}");
    assert!(!stored.chars().any(char::is_control), "{stored:?}");

    // A signed failure with 20 000 errors: at most 20 are relayed, each short.
    let errors: Vec<String> = (0..20_000).map(|i| format!("error {i}")).collect();
    *answer.lock().unwrap() = (true, stats_answer(500, serde_json::json!(errors), ""));
    let (relayed, size) = forward().await;
    assert_eq!(relayed.status, 500);
    let list = relayed
        .errors
        .get(1)
        .and_then(|l| l.as_array())
        .unwrap_or_else(|| panic!("{:?}", relayed.errors));
    assert!(list.len() <= 21, "{} errors relayed", list.len());
    assert!(size < 16 * 1024, "{size} bytes relayed");
}

const HOSTILE_TITLE: &str = "<html><head><title>&lt;script&gt;alert(1)&lt;/script&gt;\u{1b}[2J\u{1b}]0;x\u{7}\r\nFAKE ROW\u{0}\u{202e}evil</title></head></html>";

/// No byte that a terminal would act on.
fn terminal_safe(text: &str) -> bool {
    !text
        .chars()
        .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[tokio::test]
async fn the_cli_stores_and_prints_peer_text_safely() {
    let answer = Arc::new(Mutex::new((false, hostile_fault())));
    let inner = answering(answer.clone());
    let behaviour: Behaviour = Arc::new(move |rogue: &Rogue, path: &str, body: &[u8]| {
        if path == "/" {
            (200, HOSTILE_TITLE.as_bytes().to_vec())
        } else {
            inner(rogue, path, body)
        }
    });
    let (rogue, _task) = Rogue::start(behaviour).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let url = rogue.wwwroot.clone();
    let (out_list, out_show, show_json) = tokio::task::spawn_blocking(move || {
        let init = usestats_cli(&config, &["init", "--wwwroot", "http://127.0.0.1:9"]);
        assert!(init.status.success(), "{init:?}");
        let add = usestats_cli(
            &config,
            &["peer", "add", &url, "--yes", "--ssl-verification", "0"],
        );
        assert!(add.status.success(), "{add:?}");
        // The peer answers the check with a plain fault full of escape codes.
        let _ = usestats_cli(&config, &["peer", "check", &url]);
        let list = usestats_cli(&config, &["peer", "list"]);
        let show = usestats_cli(&config, &["peer", "show", &url]);
        let json = usestats_cli(&config, &["--json", "peer", "show", &url]);
        (list, show, json)
    })
    .await
    .unwrap();
    let list = String::from_utf8(out_list.stdout).unwrap();
    let show = String::from_utf8(out_show.stdout).unwrap();
    assert!(terminal_safe(&list), "{list:?}");
    assert!(terminal_safe(&show), "{show:?}");
    assert!(
        !list.contains("<script>") && !show.contains("<script>"),
        "{show}"
    );
    let stored: serde_json::Value = serde_json::from_slice(&show_json.stdout).unwrap();
    let name = stored["peer"]["name"].as_str().unwrap();
    assert!(terminal_safe(name) && !name.contains('\n'), "{name:?}");
    assert!(
        !name.contains(['<', '>']) && name.chars().count() <= 80,
        "{name:?}"
    );
    assert!(name.contains("scriptalert(1)/script"), "{name:?}");
    let last_error = stored["peer"]["last_error"].as_str().unwrap();
    assert!(
        last_error.chars().count() <= 500,
        "{} chars",
        last_error.len()
    );
    assert!(last_error.contains("unauthenticated"), "{last_error}");
    assert!(terminal_safe(last_error), "{last_error:?}");
    let state_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert!(state_bytes < 1024 * 1024, "{state_bytes} bytes on disk");
}

#[tokio::test]
async fn peer_add_refuses_an_expired_certificate_unless_told() {
    // A certificate for the attacker's URL that expired two days ago.
    let behaviour: Behaviour = Arc::new(|rogue: &Rogue, _: &str, _: &[u8]| {
        let expired = crypto::generate_identity(
            &usestats::app::cert_subject(&usestats::config::Config::for_wwwroot(&rogue.wwwroot)),
            28,
            unix_now() - 30 * 86_400,
        )
        .unwrap();
        (
            200,
            xmlrpc::serialize_response(&Value::String(expired.cert_pem)),
        )
    });
    let (rogue, _task) = Rogue::start(behaviour).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let url = rogue.wwwroot.clone();
    let (refused, listed, forced) = tokio::task::spawn_blocking(move || {
        let init = usestats_cli(&config, &["init", "--wwwroot", "http://127.0.0.1:9"]);
        assert!(init.status.success(), "{init:?}");
        let add = [
            "peer",
            "add",
            url.as_str(),
            "--yes",
            "--ssl-verification",
            "0",
        ];
        let refused = usestats_cli(&config, &add);
        let listed = usestats_cli(&config, &["--json", "peer", "list"]);
        let forced = usestats_cli(&config, &[&add[..], &["--allow-expired"]].concat());
        (refused, listed, forced)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(stderr.contains("expired"), "{stderr}");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    assert!(forced.status.success(), "{forced:?}");
}
