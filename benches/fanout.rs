//! Fan-out latency (issue 4): `collect::collect` to 8 peers against the slowest single peer,
//! measured in one run.
//!
//! `cargo bench --bench fanout` starts, in this process on 127.0.0.1, a hub daemon and nine
//! peer daemons, each with its own SQLite demo site (5 000 log rows) and keys, registered
//! both ways with use_stats subscribed/published and admin@hub granted. The ninth peer is
//! reached through a small TCP proxy that delays every byte by `USESTATS_BENCH_DELAY_MS`
//! (default 200 ms) in each direction, i.e. a distant host. Two sets of 8 peers are
//! measured, alternating, for `USESTATS_BENCH_ROUNDS` rounds (default 20):
//!
//! * `8 local`: the eight undelayed peers;
//! * `7 local + 1 distant`: seven of them and the delayed one.
//!
//! Each round calls every peer of the set alone (sequentially, through the same `collect`
//! path with one peer) and then all eight at once; the report compares the fan-out wall
//! time with the slowest single-peer time of the same round. Calls are
//! `use_stats_rpc_get_stats(admin@hub, admin, scope 2)`.

// The shared test harness; its lints are reported where the tests build it.
#[allow(clippy::collapsible_if, clippy::type_complexity)]
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;

use std::time::{Duration, Instant};

use common::{AppOptions, TestApp, spawn_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use usestats::collect::{self, PeerStatus};
use usestats::store::state::Peer;

/// Forward `from` to `to`, delivering each chunk `delay` after it was read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// A TCP proxy adding `delay` of one-way latency in each direction.
async fn delay_proxy(listener: TcpListener, upstream: std::net::SocketAddr, delay: Duration) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::join!(pump(cr, sw, delay), pump(sr, cw, delay));
        });
    }
}

fn options(hub: &str, seed: u64, wwwroot: Option<String>) -> AppOptions {
    AppOptions {
        wwwroot,
        demo_remote_hosts: Some(vec![hub.to_string()]),
        demo_seed: seed,
        demo_log_rows: 5_000,
        tweak: Some(Box::new(|config: &mut usestats::config::Config| {
            config.limits.per_ip_per_minute = 0;
            config.limits.per_peer_per_minute = 0;
        })),
        ..Default::default()
    }
}

/// `caller` may call `callee`'s use_stats; admin@caller is granted at `callee`.
async fn link(caller: &TestApp, callee: &TestApp) -> Peer {
    let peer = caller.add_peer(callee).await;
    callee.add_peer(caller).await;
    caller
        .set_service(&callee.wwwroot, "use_stats", None, Some(true))
        .await;
    callee
        .set_service(&caller.wwwroot, "use_stats", Some(true), None)
        .await;
    callee.grant(&caller.wwwroot, "admin", true, true).await;
    peer
}

async fn fan(hub: &TestApp, peers: Vec<Peer>) -> (Duration, Vec<collect::PeerResult>) {
    let started = Instant::now();
    let result = collect::collect(&hub.app, peers, ("admin", &hub.wwwroot), "admin", 2, 0).await;
    (started.elapsed(), result.hosts)
}

#[derive(Default)]
struct Series {
    fanout: Vec<f64>,
    slowest_single: Vec<f64>,
    slowest_in_fanout: Vec<f64>,
    failures: usize,
}

fn stats(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return "-".into();
    }
    let median = v[v.len() / 2];
    format!(
        "median {median:.1} ms (min {:.1}, max {:.1})",
        v[0],
        v[v.len() - 1]
    )
}

async fn round(hub: &TestApp, set: &[Peer], series: &mut Series) {
    let mut slowest = 0.0f64;
    for peer in set {
        let (took, hosts) = fan(hub, vec![peer.clone()]).await;
        series.failures += hosts.iter().filter(|h| h.status != PeerStatus::Ok).count();
        slowest = slowest.max(cpu::ms(took));
    }
    let (took, hosts) = fan(hub, set.to_vec()).await;
    series.failures += hosts.iter().filter(|h| h.status != PeerStatus::Ok).count();
    series.slowest_single.push(slowest);
    series.fanout.push(cpu::ms(took));
    series.slowest_in_fanout.push(
        hosts
            .iter()
            .map(|h| h.latency_ms as f64)
            .fold(0.0, f64::max),
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds: usize = if benching {
        std::env::var("USESTATS_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20)
    } else {
        1
    };
    let delay = Duration::from_millis(
        std::env::var("USESTATS_BENCH_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let hub = spawn_app(AppOptions::default()).await;
        let mut apps = Vec::new();
        let mut local = Vec::new();
        for seed in 0..8 {
            let app = spawn_app(options(&hub.wwwroot, 100 + seed, None)).await;
            local.push(link(&hub, &app).await);
            apps.push(app);
        }
        // The distant peer: its wwwroot is the proxy's address.
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_root = format!("http://127.0.0.1:{}", proxy.local_addr().unwrap().port());
        let distant_app = spawn_app(options(&hub.wwwroot, 200, Some(proxy_root))).await;
        let proxy_task = tokio::spawn(delay_proxy(proxy, distant_app.addr, delay));
        let distant = link(&hub, &distant_app).await;

        let mut mixed: Vec<Peer> = local[..7].to_vec();
        mixed.push(distant);
        println!(
            "fan-out bench: hub + 9 peer daemons in one process on {} cores, {rounds} rounds, distant peer behind a {} ms one-way delay proxy",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            delay.as_millis()
        );
        // Warm-up: connections, page caches.
        let mut ignored = Series::default();
        round(&hub, &local, &mut ignored).await;
        round(&hub, &mixed, &mut ignored).await;

        let (mut all_local, mut with_distant) = (Series::default(), Series::default());
        let cpu0 = cpu::process_cpu();
        for _ in 0..rounds {
            round(&hub, &local, &mut all_local).await;
            round(&hub, &mixed, &mut with_distant).await;
        }
        let cpu_used = cpu::process_cpu() - cpu0;
        for (label, s) in [("8 local", &all_local), ("7 local + 1 distant", &with_distant)] {
            println!("{label}:");
            println!("  fan-out to 8 peers (collect wall)      {}", stats(&s.fanout));
            println!("  slowest single peer, same round        {}", stats(&s.slowest_single));
            println!("  slowest peer's latency inside fan-out  {}", stats(&s.slowest_in_fanout));
            let over: Vec<f64> = s
                .fanout
                .iter()
                .zip(&s.slowest_single)
                .map(|(f, one)| f - one)
                .collect();
            let ratio: Vec<f64> = s
                .fanout
                .iter()
                .zip(&s.slowest_single)
                .map(|(f, one)| f / one)
                .collect();
            let mut r = ratio.clone();
            r.sort_by(|a, b| a.total_cmp(b));
            println!(
                "  fan-out minus slowest single           {}; ratio median {:.2}; failed calls {}",
                stats(&over),
                r.get(r.len() / 2).copied().unwrap_or(0.0),
                s.failures
            );
        }
        println!(
            "process CPU for the measured rounds (hub + all peers, both sides): {:.2} s over {} calls = {:.0} µs/call",
            cpu_used.as_secs_f64(),
            rounds * 32,
            cpu_used.as_secs_f64() * 1e6 / (rounds * 32) as f64
        );
        proxy_task.abort();
    });
}
