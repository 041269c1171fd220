//! Abuse limits and protections on the real server: replays, stale timestamps, rate
//! limits, slow clients, metrics, graceful shutdown (the concurrency cap: http_limits.rs).

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use usestats::mnet::client::ClientError;

use common::vector::{CAPTURED_AT, fault_of, peer as vector_peer, read};

#[tokio::test]
async fn a_replayed_request_is_refused_but_a_fresh_identical_call_is_not() {
    let b = vector_peer(None).await;
    b.app.clock.pin(CAPTURED_AT);
    let url = b.url("/mnet/xmlrpc/server.php");
    let body = read("04a-list-services/request.body");
    let (_, first) = post(&url, body.clone()).await;
    assert_eq!(fault_of(&first), None);
    let (_, again) = post(&url, body).await;
    assert_eq!(
        fault_of(&again),
        Some(7041),
        "the same sealed request twice"
    );
    // 04b is another call signed in the same second: not a replay.
    let (_, other) = post(&url, read("04b-list-methods/request.body")).await;
    assert_eq!(fault_of(&other), None);
}

#[tokio::test]
async fn identical_calls_from_a_real_client_are_not_replays() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    let peer = a.peer(&b.wwwroot).await;
    for _ in 0..5 {
        a.call_peer(&peer, "system/listServices", vec![])
            .await
            .expect("identical calls in the same second are fine");
    }
}

#[tokio::test]
async fn a_request_far_from_our_clock_is_refused() {
    let b = vector_peer(None).await;
    b.app.clock.pin(CAPTURED_AT + 301);
    let (_, answer) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("04a-list-services/request.body"),
    )
    .await;
    assert_eq!(fault_of(&answer), Some(7040));
    b.app.clock.pin(CAPTURED_AT + 299);
    let (_, answer) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("04a-list-services/request.body"),
    )
    .await;
    assert_eq!(fault_of(&answer), None, "inside the lenient window");
    // The window can be switched off.
    let off = vector_peer(Some(Box::new(|c| c.limits.timestamp_window_secs = 0))).await;
    off.app.clock.pin(CAPTURED_AT + 86_400);
    let (_, answer) = post(
        &off.url("/mnet/xmlrpc/server.php"),
        read("04b-list-methods/request.body"),
    )
    .await;
    assert_eq!(fault_of(&answer), None);
}

#[tokio::test]
async fn per_address_rate_limit_answers_with_a_fault_and_keeps_serving() {
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| c.limits.per_ip_per_minute = 5)),
        ..Default::default()
    })
    .await;
    let url = b.url("/mnet/xmlrpc/server.php");
    let keyswap = read("01-keyswap/request.body");
    for i in 0..5 {
        let (status, answer) = post(&url, keyswap.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(fault_of(&answer), None, "request {i}");
    }
    let (status, answer) = post(&url, keyswap.clone()).await;
    assert_eq!(status, 200, "a fault, not a dropped connection");
    assert_eq!(fault_of(&answer), Some(7042));
    let (status, _) = get(&b.url("/healthz")).await;
    assert_eq!(status, 200);
    let (_, metrics) = get(&b.url("/metrics")).await;
    assert!(
        metrics.contains("usestats_rejected_rate_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn per_peer_rate_limit_is_a_fault_for_that_peer() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| c.limits.per_peer_per_minute = 3)),
        ..Default::default()
    })
    .await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    let peer = a.peer(&b.wwwroot).await;
    for _ in 0..3 {
        a.call_peer(&peer, "system/listServices", vec![])
            .await
            .unwrap();
    }
    let refused = a.call_peer(&peer, "system/listServices", vec![]).await;
    assert!(
        matches!(refused, Err(ClientError::Fault { code: 7042, .. })),
        "{refused:?}"
    );
}

/// Send a request's headers and part of its body, and hold the connection.
async fn half_request(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /mnet/xmlrpc/server.php HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<?xml")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| {
            c.limits.body_read_timeout_secs = 1;
            c.limits.header_read_timeout_secs = 1;
        })),
        ..Default::default()
    })
    .await;
    // A body that never completes: a fault after the body timeout.
    let mut stream = half_request(b.addr).await;
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("<int>15</int>"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // Headers that never complete: the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    stream
        .write_all(b"POST /mnet/xmlrpc/server.php HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
    assert!(closed.is_ok(), "the server closed the connection");
}

#[tokio::test]
async fn metrics_count_calls_rsa_operations_and_peers() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    let peer = a.peer(&b.wwwroot).await;
    a.call_peer(&peer, "system/listServices", vec![])
        .await
        .unwrap();
    let _ = a.call_peer(&peer, "mod/x/y.php/z", vec![]).await;
    let (status, text) = get(&b.url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains("usestats_requests_total{channel=\"mnet\",method=\"system/listServices\",outcome=\"ok\"} 1"), "{text}");
    assert!(text.contains("outcome=\"fault_7012\"} 1"), "{text}");
    assert!(
        text.contains("usestats_request_duration_seconds_count{channel=\"mnet\"} 3"),
        "keyswap, listServices, the unknown method: {text}"
    );
    assert!(text.contains("usestats_rsa_operations_total{operation=\"sign\"}"));
    assert!(
        text.contains(&format!(
            "usestats_peer_key_expiry_seconds{{peer=\"{}\"}}",
            a.wwwroot
        )),
        "{text}"
    );
    assert!(text.contains("usestats_peer_last_contact_timestamp_seconds"));
}

#[tokio::test]
async fn shutdown_lets_the_call_in_flight_finish() {
    let mut b = spawn_app(AppOptions::default()).await;
    let body = read("01-keyswap/request.body");
    let mut stream = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    let head = format!(
        "POST /mnet/xmlrpc/server.php HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..100]).await.unwrap();
    eventually("the server is reading the request", || {
        b.app.receiving.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    // Shut down while the request is half received.
    let stopping = {
        let server = b.server.take().unwrap();
        b.stop().await;
        server
    };
    stream.write_all(&body[100..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("BEGIN CERTIFICATE"),
        "the keyswap was answered in full"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(b.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn keys_rotate_before_expiry_and_peers_follow_and_old_audit_goes() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| {
            c.keys.lifetime_days = 10;
            c.keys.rotate_before_days = 2;
            c.audit.retention_days = 1;
        })),
        ..Default::default()
    })
    .await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    let before = b.app.keyring().current.info();
    // Nothing to do yet.
    usestats::maintenance::maintenance_once(&b.app).await;
    assert_eq!(
        b.app.keyring().current.info().fingerprint_sha1,
        before.fingerprint_sha1
    );
    // Audit rows are written off the request path, in batches.
    b.app.background.settled().await;
    // A keyswap proves nothing about its sender: it is counted, not given a row of its own.
    let old_entries = b
        .app
        .state
        .run(|c| usestats::store::state::query_refused(c, None, 100))
        .await
        .unwrap()
        .len();
    assert!(old_entries > 0, "the keyswap was counted");
    // Eight and a half days later the certificate is within two days of expiry.
    b.app.clock.set_offset(8 * 86_400 + 43_200);
    a.app.clock.set_offset(8 * 86_400 + 43_200);
    usestats::maintenance::maintenance_once(&b.app).await;
    let after = b.app.keyring().current.info();
    assert_ne!(after.fingerprint_sha1, before.fingerprint_sha1, "rotated");
    assert_eq!(
        b.app.keyring().archived[0].info().fingerprint_sha1,
        before.fingerprint_sha1
    );
    assert!(
        b.app
            .state
            .run(|c| usestats::store::state::query_refused(c, None, 100))
            .await
            .unwrap()
            .is_empty(),
        "entries older than the retention are gone"
    );
    // A still holds the old certificate: its next call is answered 7025 and resent.
    let reply = a
        .app
        .client
        .call_detailed(&a.peer(&b.wwwroot).await, "system/listServices", vec![])
        .await
        .unwrap();
    assert!(reply.rekeyed);
    assert_eq!(
        a.peer(&b.wwwroot).await.public_key,
        b.app.keyring().current.cert_pem
    );
}

#[tokio::test]
async fn a_rotation_on_disk_by_the_cli_is_picked_up_by_the_running_daemon() {
    let b = spawn_app(AppOptions::default()).await;
    let before = b.app.keyring().current.cert_pem.clone();
    // What `usestats keys rotate` does from another process.
    let store = usestats::crypto::KeyStore::new(b.app.config.keys_dir(), 6);
    let subject = usestats::app::cert_subject(&b.app.config);
    let rotated = store.rotate(&subject, 28, b.app.now()).unwrap();
    assert_eq!(b.app.keyring().current.cert_pem, before, "not yet");
    usestats::maintenance::maintenance_once(&b.app).await;
    assert_eq!(b.app.keyring().current.cert_pem, rotated.current.cert_pem);
    assert_eq!(b.app.keyring().archived[0].cert_pem, before);
    let (_, served) = get(&b.url("/mnet/publickey.php")).await;
    assert_eq!(served, rotated.current.cert_pem);
}
