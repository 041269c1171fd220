//! Distributed collection with several daemons on loopback, each with its own database and
//! demo data: whereroot forwarding (one hop), failure modes, and fan-out.

mod common;

use std::time::{Duration, Instant};

use common::*;
use usestats::collect::{self, PeerStatus, caller_struct, parse_use_stats};
use usestats::services::use_stats::{self, Answer};
use usestats::xmlrpc::Value;

/// The busiest learner of `app` and their grand total in minutes.
async fn learner_minutes(app: &TestApp) -> (String, i64) {
    let (id, username) = busiest_learner(app).await;
    (username, engine_report(app, id).await.total / 60)
}

/// `caller` may call `callee`'s use_stats, and admin@`home` is granted at `callee`, with
/// `caller` as an allowed relay when it is not admin's home (docs/decisions.md, Authorisation: a relay needs `--via`).
async fn link(caller: &TestApp, callee: &TestApp, home: &str) {
    caller.add_peer(callee).await;
    callee.add_peer(caller).await;
    caller
        .set_service(&callee.wwwroot, "use_stats", None, Some(true))
        .await;
    callee
        .set_service(&caller.wwwroot, "use_stats", Some(true), None)
        .await;
    if home == caller.wwwroot {
        callee.grant(home, "admin", true, true).await;
    } else {
        callee
            .grant_via(home, "admin", true, true, &[&caller.wwwroot])
            .await;
    }
}

async fn demo_app(remote_hosts: Vec<String>, seed: u64) -> TestApp {
    spawn_app(AppOptions {
        demo_remote_hosts: Some(remote_hosts),
        demo_seed: seed,
        demo_log_rows: 5_000,
        ..Default::default()
    })
    .await
}

fn stats_call(
    home: &str,
    calling_host: &str,
    target: &str,
    whereroot: &str,
    scope: i64,
) -> Vec<Value> {
    vec![
        caller_struct("admin", home, calling_host),
        Value::from(target),
        Value::from(whereroot),
        Value::Int(scope),
        Value::Int(0),
    ]
}

#[tokio::test]
async fn forwarding_returns_the_data_hosts_numbers_in_one_hop() {
    let h = spawn_app(AppOptions::default()).await;
    let a = demo_app(vec![h.wwwroot.clone()], 11).await;
    let b = demo_app(vec![h.wwwroot.clone()], 12).await;
    link(&h, &a, &h.wwwroot).await;
    link(&a, &b, &h.wwwroot).await;
    let (target, minutes_on_b) = learner_minutes(&b).await;

    let peer_a = h.peer(&a.wwwroot).await;
    let value = h
        .call_peer(
            &peer_a,
            use_stats::GET_STATS,
            stats_call(&h.wwwroot, &h.wwwroot, &target, &b.wwwroot, 2),
        )
        .await
        .unwrap();
    let answer = Answer::from_value(&value).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let parsed = parse_use_stats(&answer.message.unwrap()).unwrap();
    assert_eq!(parsed.minutes, minutes_on_b, "B's numbers, not A's");

    // Exactly one get_stats reached B, and it came from A with an empty whereroot.
    let on_b = b.audit().await;
    let calls: Vec<_> = on_b
        .iter()
        .filter(|e| e.method == use_stats::GET_STATS)
        .collect();
    assert_eq!(calls.len(), 1, "{on_b:?}");
    assert_eq!(calls[0].peer, a.wwwroot);
    assert_eq!(calls[0].caller, format!("admin@{}", h.wwwroot));

    // get_scores forwards the same way (the demo's first graded learner may not be this
    // one: any answer from B that is not a transport error proves the hop).
    let value = h
        .call_peer(
            &peer_a,
            use_stats::GET_SCORES,
            vec![
                caller_struct("admin", &h.wwwroot, &h.wwwroot),
                Value::from(target.as_str()),
                Value::from(b.wwwroot.as_str()),
                Value::from("notes/global"),
                Value::from("id"),
                Value::from("999999"),
            ],
        )
        .await
        .unwrap();
    let answer = Answer::from_value(&value).unwrap();
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(
        answer.errors[0],
        serde_json::json!("Remote application error : ")
    );
    assert_eq!(answer.errors[1], serde_json::json!(["Unknown course."]));
}

#[tokio::test]
async fn a_forwarded_call_is_answered_locally_and_never_forwarded_again() {
    let h = spawn_app(AppOptions::default()).await;
    let a = demo_app(vec![h.wwwroot.clone()], 21).await;
    let b = demo_app(vec![h.wwwroot.clone()], 22).await;
    link(&h, &a, &h.wwwroot).await;
    link(&a, &b, &h.wwwroot).await;
    // B could forward back to A (it subscribes to A too): a loop if whereroot travelled.
    b.set_service(&a.wwwroot, "use_stats", None, Some(true))
        .await;
    a.set_service(&b.wwwroot, "use_stats", Some(true), None)
        .await;
    let (target, _) = learner_minutes(&b).await;
    let peer_a = h.peer(&a.wwwroot).await;
    let started = Instant::now();
    let value = h
        .call_peer(
            &peer_a,
            use_stats::GET_STATS,
            stats_call(&h.wwwroot, &h.wwwroot, &target, &b.wwwroot, 1),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(Answer::from_value(&value).unwrap().status, 200);
    let get_stats_calls = |audit: Vec<usestats::store::state::AuditEntry>| {
        audit
            .iter()
            .filter(|e| e.method == use_stats::GET_STATS)
            .count()
    };
    assert_eq!(get_stats_calls(a.audit().await), 1, "A received one call");
    assert_eq!(
        get_stats_calls(b.audit().await),
        1,
        "B received one call and did not send it back to A"
    );
}

#[tokio::test]
async fn forwarding_failures_are_status_500_with_a_clear_error_quickly() {
    let h = spawn_app(AppOptions::default()).await;
    let a = demo_app(vec![h.wwwroot.clone()], 31).await;
    link(&h, &a, &h.wwwroot).await;
    // A dead peer: registered, but nothing listens on its port any more.
    let mut dead = spawn_app(AppOptions::default()).await;
    link(&a, &dead, &h.wwwroot).await;
    let dead_wwwroot = dead.wwwroot.clone();
    let dead_addr = dead.addr;
    dead.stop().await;
    // Hold the port without listening, so that no other test's server can take it over:
    // connections to it are refused, as to a host whose daemon is down.
    let _port_held = tokio::net::TcpSocket::new_v4()
        .ok()
        .filter(|socket| socket.set_reuseaddr(true).is_ok() && socket.bind(dead_addr).is_ok());
    // A slow peer: accepts connections and never answers.
    let slow = SlowPeer::start().await;
    let slow_peer = a
        .register_cert(&slow.wwwroot, &a.app.keyring().current.cert_pem)
        .await;
    a.set_service(&slow.wwwroot, "use_stats", None, Some(true))
        .await;
    let id = slow_peer.id;
    a.app
        .state
        .run(move |c| usestats::store::state::set_peer_timeouts(c, id, Some(500), Some(1500)))
        .await
        .unwrap();
    // A peer we do not subscribe to.
    let unsubscribed = spawn_app(AppOptions::default()).await;
    a.add_peer(&unsubscribed).await;

    let peer_a = h.peer(&a.wwwroot).await;
    let ask = |whereroot: String| {
        let (h_app, peer_a, home) = (h.app.clone(), peer_a.clone(), h.wwwroot.clone());
        async move {
            let started = Instant::now();
            let value = h_app
                .client
                .call(
                    &peer_a,
                    use_stats::GET_STATS,
                    stats_call(&home, &home, "x", &whereroot, 1),
                )
                .await
                .unwrap();
            (Answer::from_value(&value).unwrap(), started.elapsed())
        }
    };
    let (answer, took) = ask(dead_wwwroot).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.errors[0]
            .as_str()
            .unwrap()
            .starts_with("REMOTE : cannot reach"),
        "{answer:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    let (answer, took) = ask(slow.wwwroot.clone()).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.errors[0].as_str().unwrap().contains("no answer"),
        "{answer:?}"
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "{took:?}"
    );

    let (answer, _) = ask(unsubscribed.wwwroot.clone()).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.errors[0]
            .as_str()
            .unwrap()
            .contains("does not subscribe"),
        "{answer:?}"
    );
    // No client dump in the errors: one line each.
    assert!(answer.errors.iter().all(|e| !e.to_string().contains('{')));
}

/// Accepts TCP connections and holds them without ever answering.
struct SlowPeer {
    wwwroot: String,
    task: tokio::task::JoinHandle<()>,
}

impl SlowPeer {
    async fn start() -> SlowPeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wwwroot = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        SlowPeer { wwwroot, task }
    }
}

impl Drop for SlowPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn fan_out_to_eight_peers_is_bounded_by_the_slow_ones_timeout() {
    let hub = spawn_app(AppOptions::default()).await;
    let mut peers = Vec::new();
    for seed in 0..7 {
        let p = demo_app(vec![hub.wwwroot.clone()], 100 + seed).await;
        link(&hub, &p, &hub.wwwroot).await;
        peers.push(p);
    }
    let slow = SlowPeer::start().await;
    let slow_peer = hub
        .register_cert(&slow.wwwroot, &hub.app.keyring().current.cert_pem)
        .await;
    hub.set_service(&slow.wwwroot, "use_stats", None, Some(true))
        .await;
    let id = slow_peer.id;
    let timeout_ms = 2000;
    hub.app
        .state
        .run(move |c| usestats::store::state::set_peer_timeouts(c, id, Some(500), Some(timeout_ms)))
        .await
        .unwrap();

    let targets = collect::target_peers(&hub.app, "all").await.unwrap();
    assert_eq!(targets.len(), 8);
    let started = Instant::now();
    let result = collect::collect(&hub.app, targets, ("admin", &hub.wwwroot), "admin", 2, 0).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(timeout_ms as u64 - 100),
        "{took:?}"
    );
    assert!(
        took < Duration::from_millis(timeout_ms as u64 + 1500),
        "fan-out took {took:?}"
    );
    assert_eq!(result.hosts.len(), 8);
    let slow_result = result
        .hosts
        .iter()
        .find(|h| h.wwwroot == slow.wwwroot)
        .unwrap();
    assert_eq!(slow_result.status, PeerStatus::Timeout);
    let ok: Vec<_> = result
        .hosts
        .iter()
        .filter(|h| h.status == PeerStatus::Ok)
        .collect();
    assert_eq!(ok.len(), 7, "{:?}", result.hosts);
    assert_eq!(
        result.total_minutes,
        ok.iter().map(|h| h.minutes.unwrap()).sum::<i64>()
    );
    // Every fast peer answered long before the slow one timed out.
    assert!(ok.iter().all(|h| h.latency_ms < 1500), "{:?}", result.hosts);

    // A peer rotates its key between two collections: followed through 7025, no failure.
    peers[3].app.rotate_keys().unwrap();
    let targets = collect::target_peers(
        &hub.app,
        &peers
            .iter()
            .map(|p| p.wwwroot.clone())
            .collect::<Vec<_>>()
            .join(","),
    )
    .await
    .unwrap();
    let again = collect::collect(&hub.app, targets, ("admin", &hub.wwwroot), "admin", 1, 0).await;
    assert!(
        again.hosts.iter().all(|h| h.status == PeerStatus::Ok),
        "{:?}",
        again.hosts
    );
    assert_eq!(
        hub.peer(&peers[3].wwwroot).await.public_key,
        peers[3].app.keyring().current.cert_pem
    );
}

#[tokio::test]
async fn peer_check_reports_health_and_drift() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    link(&a, &b, &a.wwwroot).await;
    // B's clock runs 40 s ahead: A's client refuses its answers (limit 15 s).
    b.app.clock.set_offset(40);
    let checks = usestats::health::check_peers(&a.app, vec![a.peer(&b.wwwroot).await]).await;
    assert_eq!(checks.len(), 1);
    assert!(checks[0].keyswap_ok && checks[0].certificate_current);
    assert!(!checks[0].call_ok);
    assert!(
        checks[0].problem.as_deref().unwrap_or("").contains("ahead"),
        "{checks:?}"
    );
    b.app.clock.set_offset(-40);
    let checks = usestats::health::check_peers(&a.app, vec![a.peer(&b.wwwroot).await]).await;
    assert!(
        checks[0].call_ok,
        "a clock behind is accepted, as Moodle does: {checks:?}"
    );
    assert!(
        checks[0]
            .clock_offset
            .is_some_and(|o| (-42..=-38).contains(&o)),
        "{checks:?}"
    );
    let stored = a.peer(&b.wwwroot).await;
    assert_eq!(stored.clock_offset, checks[0].clock_offset);
}
