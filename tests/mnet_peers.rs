//! usestats daemons talking to each other over loopback: keyswap, calls, key rotation
//! followed in both directions (7025 and the 710 refresh with its nested callback).

mod common;

use common::*;
use usestats::mnet::client::ClientError;
use usestats::services::use_stats::{self, Answer};
use usestats::xmlrpc::Value;

/// Two peers that know each other, use_stats published both ways, B holding A's users.
async fn pair() -> (TestApp, TestApp) {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![a.wwwroot.clone()]),
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
    (a, b)
}

fn caller(a: &TestApp) -> Value {
    usestats::collect::caller_struct("admin", &a.wwwroot, &a.wwwroot)
}

#[tokio::test]
async fn two_peers_keyswap_and_call_each_other() {
    let (a, b) = pair().await;
    let peer_b = a.peer(&b.wwwroot).await;
    let services = a
        .call_peer(&peer_b, "system/listServices", vec![])
        .await
        .unwrap();
    assert_eq!(services.to_json()[0]["name"], "use_stats");
    let methods = a
        .call_peer(&peer_b, "system/listMethods", vec![])
        .await
        .unwrap();
    assert_eq!(methods.to_json()[0], use_stats::GET_STATS);
    let signature = a
        .call_peer(
            &peer_b,
            "system/methodSignature",
            vec![Value::from(use_stats::GET_STATS)],
        )
        .await
        .unwrap();
    assert_eq!(signature.to_json()["parameters"][0]["name"], "callinguser");

    let (id, username) = busiest_learner(&b).await;
    let value = a
        .call_peer(
            &peer_b,
            use_stats::GET_STATS,
            vec![
                caller(&a),
                Value::from(username.as_str()),
                Value::from(""),
                Value::Int(2),
                Value::Int(0),
            ],
        )
        .await
        .unwrap();
    let answer = Answer::from_value(&value).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let parsed = usestats::collect::parse_use_stats(&answer.message.unwrap()).unwrap();
    assert_eq!(
        parsed.minutes,
        engine_report(&b, id).await.total / 60,
        "the same numbers as B computes locally"
    );
    assert!(!parsed.courses.is_empty());

    // The health columns record the contact and the clock offset.
    let health = a.peer(&b.wwwroot).await;
    assert!(health.last_connect_time > 0);
    assert!(health.clock_offset.is_some_and(|o| o.abs() <= 1));

    // B calling A: A publishes nothing to B, so the method is refused with 707.
    let peer_a = b.peer(&a.wwwroot).await;
    let refused = b
        .call_peer(
            &peer_a,
            use_stats::GET_STATS,
            vec![
                caller(&b),
                Value::from("x"),
                Value::from(""),
                Value::Int(1),
                Value::Int(0),
            ],
        )
        .await;
    assert!(
        matches!(refused, Err(ClientError::Fault { code: 707, .. })),
        "{refused:?}"
    );
    let unknown = b
        .call_peer(&peer_a, "mod/nothing/rpclib.php/nope", vec![])
        .await;
    assert!(
        matches!(unknown, Err(ClientError::Fault { code: 7012, .. })),
        "{unknown:?}"
    );
    let dotted = b.call_peer(&peer_a, "system.listServices", vec![]).await;
    assert!(
        matches!(dotted, Err(ClientError::Fault { code: 713, .. })),
        "{dotted:?}"
    );
    let unimplemented = b.call_peer(&peer_a, "system/listFiles", vec![]).await;
    assert!(
        matches!(unimplemented, Err(ClientError::Fault { code: 7019, .. })),
        "{unimplemented:?}"
    );
}

#[tokio::test]
async fn a_rotated_server_key_is_followed_with_one_resend() {
    let (a, b) = pair().await;
    let old_pem = b.app.keyring().current.cert_pem.clone();
    b.app.rotate_keys().unwrap();
    let new_pem = b.app.keyring().current.cert_pem.clone();
    assert_ne!(old_pem, new_pem);
    let peer_b = a.peer(&b.wwwroot).await;
    assert_eq!(peer_b.public_key, old_pem);
    let reply = a
        .app
        .client
        .call_detailed(&peer_b, "system/listServices", vec![])
        .await
        .expect("the call succeeds through 7025");
    assert!(reply.rekeyed);
    assert_eq!(
        a.peer(&b.wwwroot).await.public_key,
        new_pem,
        "A stored B's new certificate"
    );
    // The next call needs no re-key.
    let again = a
        .app
        .client
        .call_detailed(&a.peer(&b.wwwroot).await, "system/listServices", vec![])
        .await
        .unwrap();
    assert!(!again.rekeyed);
}

#[tokio::test]
async fn a_rotated_client_key_is_learnt_through_the_nested_callback() {
    let (a, b) = pair().await;
    // B must be allowed to call A back: A publishes nothing, but system methods are open.
    let old_a = b.peer(&a.wwwroot).await.public_key;
    a.app.rotate_keys().unwrap();
    let peer_b = a.peer(&b.wwwroot).await;
    // A signs with its new key; B's copy of A's certificate is stale. B keyswaps A, then
    // calls A (encrypted to the old certificate) while A's own call is still waiting, gets
    // 7025 with A's new certificate, stores it and verifies.
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        a.call_peer(&peer_b, "system/listServices", vec![]),
    )
    .await
    .expect("no deadlock");
    assert!(result.is_ok(), "{result:?}");
    let learnt = b.peer(&a.wwwroot).await.public_key;
    assert_ne!(learnt, old_a);
    assert_eq!(learnt, a.app.keyring().current.cert_pem);
}

#[tokio::test]
async fn unknown_and_deleted_callers_are_refused() {
    let (a, b) = pair().await;
    let peer_b = a.peer(&b.wwwroot).await;
    let id = b.peer(&a.wwwroot).await.id;
    b.app
        .state
        .run(move |c| usestats::store::state::delete_peer(c, id))
        .await
        .unwrap();
    let refused = a.call_peer(&peer_b, "system/listServices", vec![]).await;
    assert!(
        matches!(refused, Err(ClientError::Fault { code: 7020, .. })),
        "{refused:?}"
    );
    let health = a.peer(&b.wwwroot).await;
    assert!(health.last_error.unwrap_or_default().contains("7020"));
}

#[tokio::test]
async fn a_key_is_never_learnt_from_an_unauthenticated_keyswap_during_a_refresh() {
    // D answers at the URL of a registered peer P, but B holds P's real certificate, whose
    // key D does not have.
    let b = spawn_app(AppOptions::default()).await;
    let d = spawn_app(AppOptions::default()).await;
    let real_p = usestats::crypto::generate_identity(
        &usestats::app::cert_subject(&usestats::config::Config::for_wwwroot(&d.wwwroot)),
        28,
        b.app.now(),
    )
    .unwrap();
    b.register_cert(&d.wwwroot, &real_p.cert_pem).await;
    b.set_service(&d.wwwroot, "use_stats", Some(true), None)
        .await;
    // D knows B, so B's callback to "P" reaches D's decryption and gets a plain 7023.
    d.add_peer(&b).await;
    let forged = d
        .call_peer(&d.peer(&b.wwwroot).await, "system/listServices", vec![])
        .await;
    // B answers 710, encrypted to the certificate on file, which D cannot even open.
    assert!(matches!(forged, Err(ClientError::NoKeyMatch)), "{forged:?}");
    // Unverified: counted among the refused requests, its call not even read (no method name
    // in its sample).
    b.app.background.settled().await;
    let counts = b
        .app
        .state
        .run(|c| usestats::store::state::query_refused(c, None, 100))
        .await
        .unwrap();
    let call = counts
        .iter()
        .find(|c| c.reason == "fault 710")
        .expect("the forged call is counted");
    assert!(!call.samples.contains("method="), "{counts:?}");
    assert_eq!(
        b.peer(&d.wwwroot).await.public_key,
        real_p.cert_pem,
        "P's real certificate is still the one on file"
    );
}

#[tokio::test]
async fn a_wwwroot_with_a_path_is_served_below_that_path() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| {
            c.site.wwwroot = format!("{}/usestats", c.site.wwwroot)
        })),
        ..Default::default()
    })
    .await;
    let b_root = b.app.wwwroot().to_string();
    assert!(b_root.ends_with("/usestats"));
    let pem = a
        .app
        .client
        .keyswap(
            &b_root,
            "moodle",
            usestats::store::state::SslVerification::None,
            None,
        )
        .await
        .unwrap();
    a.register_cert(&b_root, &pem).await;
    b.register_cert(&a.wwwroot, &a.app.keyring().current.cert_pem)
        .await;
    let peer = a.peer(&b_root).await;
    a.call_peer(&peer, "system/listServices", vec![])
        .await
        .expect("calls reach <wwwroot>/mnet/xmlrpc/server.php");
    let (status, home) = get(&format!("{b_root}/")).await;
    assert_eq!(status, 200);
    assert!(home.contains("<title>usestats</title>"));
    let (status, served) = get(&format!("{b_root}/mnet/publickey.php")).await;
    assert_eq!(status, 200);
    assert_eq!(served, pem);
}

#[tokio::test]
async fn no_service_row_is_7012_and_an_unpublished_one_is_707() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    let ask = || async {
        a.call_peer(
            &a.peer(&b.wwwroot).await,
            use_stats::GET_STATS,
            vec![
                caller(&a),
                Value::from("x"),
                Value::from(""),
                Value::Int(1),
                Value::Int(0),
            ],
        )
        .await
    };
    assert!(matches!(
        ask().await,
        Err(ClientError::Fault { code: 7012, .. })
    ));
    b.set_service(&a.wwwroot, "use_stats", Some(false), Some(true))
        .await;
    assert!(matches!(
        ask().await,
        Err(ClientError::Fault { code: 707, .. })
    ));
    b.set_service(&a.wwwroot, "use_stats", Some(true), None)
        .await;
    assert!(ask().await.is_ok(), "published: the method runs");
}

/// The server side's record of a caller: written in batches, within the flush interval, and
/// at shutdown for whatever is still in memory.
#[tokio::test]
async fn a_callers_last_contact_reaches_the_state_database_in_batches() {
    use usestats::mnet::contacts::FLUSH_INTERVAL;
    use usestats::store::state;
    let (a, mut b) = pair().await;
    let peer_b = a.peer(&b.wwwroot).await;
    let a_on_b = b.peer(&a.wwwroot).await.id;
    let reset = |app: &TestApp| {
        let db = app.app.state.clone();
        async move {
            db.run(move |c| state::touch_peer(c, a_on_b, 0))
                .await
                .unwrap()
        }
    };
    reset(&b).await;
    a.call_peer(&peer_b, "system/listServices", vec![])
        .await
        .unwrap();
    let called = std::time::Instant::now();
    let deadline = FLUSH_INTERVAL + std::time::Duration::from_secs(3);
    loop {
        if b.peer(&a.wwwroot).await.last_connect_time > 0 {
            break;
        }
        assert!(
            called.elapsed() < deadline,
            "no contact time after {deadline:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        called.elapsed() >= FLUSH_INTERVAL / 2,
        "the contact was written per call, not batched"
    );

    // A contact still in memory when the server stops is written before it is done.
    reset(&b).await;
    a.call_peer(&peer_b, "system/listServices", vec![])
        .await
        .unwrap();
    assert_eq!(b.app.contacts.unwritten(), 1);
    b.stop().await;
    assert!(b.peer(&a.wwwroot).await.last_connect_time > 0);
}
