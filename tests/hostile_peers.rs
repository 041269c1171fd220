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
    let audit = a.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e.method == "system/listServices" && e.status == "fault 710"),
        "{audit:?}"
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
            usestats::rpc::GET_STATS,
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
    let answer = usestats::rpc::Answer::from_value(&value).unwrap();
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(
        a.peer(&rogue.wwwroot).await.public_key,
        real_b.cert_pem,
        "the forwarding host kept B's certificate"
    );
}
