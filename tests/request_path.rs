//! Issue 12 item 6: what the MNET request path keeps in memory (known peers with their
//! services) and writes in batches (audit rows, replay keys) never serves stale data, lets
//! a replay through or loses a row at shutdown.

mod common;

use std::time::Duration;

use common::*;
use openssl::pkey::{PKey, Private};
use usestats::mnet::envelope;
use usestats::store::state;
use usestats::xmlrpc::{self, Limits, MethodCall, Response, Value};

use common::vector::{A, peer as vector_peer, read};

fn a_key() -> PKey<Private> {
    PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap()
}

/// B's answer, opened with A's key, or with the one of the certificate the test put on file
/// for A instead (or read plain).
fn answer_of(body: &[u8]) -> Response {
    let xml = if envelope::document_kind(body) == envelope::DocumentKind::Encrypted {
        let message = envelope::parse_encrypted(body).unwrap();
        let other = PKey::private_key_from_pem(&read("keys/B.key.pem")).unwrap();
        let (plain, _) = envelope::open_with(&message, [&a_key(), &other]).unwrap();
        envelope::parse_signed(&plain).unwrap().object
    } else {
        body.to_vec()
    };
    xmlrpc::parse_response(&xml, &Limits::default()).unwrap()
}

fn fault_of(body: &[u8]) -> Option<i64> {
    match answer_of(body) {
        Response::Fault(f) => Some(f.code),
        Response::Success(_) => None,
    }
}

/// A fresh `system/listServices` from A to B, as Moodle seals it: a new session key each
/// time, so no two are replays of each other.
fn list_services_from_a(now: i64) -> Vec<u8> {
    let call = MethodCall {
        name: "system/listServices".into(),
        params: vec![],
    };
    let signed = envelope::build_signed(&xmlrpc::serialize_call(&call), &a_key(), A, now).unwrap();
    let b_cert =
        usestats::crypto::parse_cert_pem(&String::from_utf8(read("keys/B-old.cert.pem")).unwrap())
            .unwrap();
    let b_public = usestats::crypto::public_key_of(&b_cert).unwrap();
    envelope::build_encrypted(&signed, &b_public, A).unwrap()
}

/// The services B lists to A: (name, publish, subscribe).
async fn listed(b: &TestApp) -> Vec<(String, String, String)> {
    let (_, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        list_services_from_a(b.app.now()),
    )
    .await;
    let Response::Success(Value::Array(rows)) = answer_of(&body) else {
        panic!("listServices failed: {:?}", answer_of(&body));
    };
    rows.iter()
        .map(|row| {
            let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap().to_string();
            (text("name"), text("publish"), text("subscribe"))
        })
        .collect()
}

fn row(publish: &str, subscribe: &str) -> Vec<(String, String, String)> {
    vec![("use_stats".into(), publish.into(), subscribe.into())]
}

#[tokio::test]
async fn a_change_to_a_peer_or_its_services_is_seen_by_the_very_next_call() {
    let b = vector_peer(None).await;
    // The first call puts A in B's memory; the next ones are served from it.
    assert_eq!(listed(&b).await, row("1", "0"));
    assert_eq!(listed(&b).await, row("1", "0"));

    b.set_service(A, "use_stats", None, Some(true)).await;
    assert_eq!(listed(&b).await, row("1", "1"));
    b.set_service(A, "use_stats", Some(false), Some(false))
        .await;
    assert_eq!(listed(&b).await, vec![], "nothing offered any more");

    // All Hosts' rows count for A too.
    b.app
        .state
        .run(|c| {
            let all = state::all_hosts(c)?;
            state::set_service(c, all.id, "use_stats", Some(true), None)
        })
        .await
        .unwrap();
    assert_eq!(listed(&b).await, row("1", "0"));

    // A's certificate replaced by another: A's signatures no longer verify.
    let other = String::from_utf8(read("keys/B.cert.pem")).unwrap();
    let peer = b.peer(A).await;
    let (id, now) = (peer.id, b.app.now());
    b.app
        .state
        .run(move |c| state::set_peer_key(c, id, &other, 0, now))
        .await
        .unwrap();
    let (_, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        list_services_from_a(b.app.now()),
    )
    .await;
    assert_eq!(fault_of(&body), Some(710), "bad signature with the new key");

    // A deleted: unknown at once.
    b.app
        .state
        .run(move |c| state::delete_peer(c, id))
        .await
        .unwrap();
    let (_, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        list_services_from_a(b.app.now()),
    )
    .await;
    assert_eq!(fault_of(&body), Some(7020), "a deleted peer is unknown");
}

/// Another process (the CLI while `serve` runs, a second daemon on a shared PostgreSQL
/// state database) cannot tell this one's memory about its change: it is seen once the
/// entry is `known_peers::TTL` old.
#[tokio::test]
async fn a_change_made_by_another_process_is_seen_within_the_ttl() {
    let b = vector_peer(None).await;
    assert_eq!(listed(&b).await, row("1", "0"));
    // Written through a connection of its own, as another process would, so that nothing in
    // this process hears of it.
    let url = b.app.config.state_url();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl;
        let mut conn = usestats::store::establish(&url).unwrap();
        diesel::sql_query("UPDATE peer_services SET subscribe = true")
            .execute(&mut conn)
            .unwrap();
    })
    .await
    .unwrap();
    tokio::time::sleep(usestats::mnet::known_peers::TTL + Duration::from_millis(50)).await;
    assert_eq!(listed(&b).await, row("1", "1"));
}

#[tokio::test]
async fn a_replay_is_refused_when_memory_already_let_its_key_go() {
    // One key in memory: every new key pushes out the one before, so a replay is caught
    // only by what is queued for the database or already in it.
    let b = vector_peer(Some(Box::new(|c| c.limits.replay_keys_in_memory = 1))).await;
    let url = b.url("/mnet/xmlrpc/server.php");
    let first = list_services_from_a(b.app.now());
    let second = list_services_from_a(b.app.now());
    assert_eq!(fault_of(&post(&url, first.clone()).await.1), None);
    assert_eq!(fault_of(&post(&url, second.clone()).await.1), None);
    assert_eq!(fault_of(&post(&url, first).await.1), Some(7041));
    assert_eq!(fault_of(&post(&url, second).await.1), Some(7041));
    b.app.background.settled().await;
    let stored = b
        .app
        .state
        .run(|c| state::recent_replay_keys(c, 0, 10))
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
}

#[tokio::test]
async fn a_graceful_shutdown_writes_every_audit_row_and_replay_key() {
    let mut b = vector_peer(None).await;
    let url = b.url("/mnet/xmlrpc/server.php");
    let calls = 25;
    for _ in 0..calls {
        assert_eq!(
            fault_of(&post(&url, list_services_from_a(b.app.now())).await.1),
            None
        );
    }
    // No waiting for the background writes: shutdown must do it.
    b.stop().await;
    let (audit, keys) = b
        .app
        .state
        .run(|c| {
            Ok::<_, usestats::store::StoreError>((
                state::query_audit(c, None, None, 1000)?,
                state::recent_replay_keys(c, 0, 1000)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), calls, "one audit row per call");
    assert!(audit.iter().all(|r| r.status == "ok" && r.verified));
    assert_eq!(keys.len(), calls, "one replay key per call");
}
