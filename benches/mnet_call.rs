//! CPU cost of one signed + encrypted MNET call (issue 2).
//!
//! `cargo bench --bench mnet_call` measures, in one process:
//!
//! 1. the reference: one RSA-2048 private-key operation (RSA-SHA1 sign, PKCS#1 v1.5 unwrap)
//!    and the public ones, through the same `crypto` functions the daemon uses;
//! 2. the envelope round trip without HTTP, phase by phase, on one thread (client send:
//!    serialise + sign + seal; server open: parse + unwrap + RC4 + parse + verify + parse
//!    call; server answer: serialise + sign + seal; client open: the same as server open);
//! 3. full calls over loopback between two in-process daemons (`system/listServices` with
//!    the audit log on and off, and `use_stats_rpc_get_stats` on a small demo site), the
//!    client and the server each on their own tokio runtime so that the CPU of each side is
//!    read from its threads;
//!    plus `system/listServices` the way Moodle's curl sends it: a client thread outside
//!    both runtimes builds each signed + encrypted request, opens a new TCP connection per
//!    call (`Connection: close`), and opens and checks each answer;
//! 4. the per-call state writes of the server path (peer last-contact update, audit row, the
//!    replay key's synced claim).
//!
//! `USESTATS_BENCH_CALLS` (default 1000) sets the number of full calls per variant and
//! `USESTATS_BENCH_OPS` (default 2000) the envelope round trips. `USESTATS_BENCH_ONLY=fresh`
//! runs only the RSA reference and the new-connection-per-call variant, so that a profile of
//! the `srv` threads (`perf record`, callgrind) holds that variant alone. Without `--bench` (as under
//! `cargo test --all-targets`) it does a few of each as a smoke run.

// The shared test harness; its lints are reported where the tests build it.
#[allow(clippy::collapsible_if, clippy::type_complexity)]
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{AppOptions, TestApp, spawn_app};
use usestats::collect::caller_struct;
use usestats::crypto;
use usestats::mnet::envelope;
use usestats::store::state;
use usestats::xmlrpc::{self, Limits, MethodCall, Response, Value};

fn env_count(name: &str, default: usize, smoke: usize, benching: bool) -> usize {
    if !benching {
        return smoke;
    }
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime(name: &'static str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        // Blocking threads must live through a measurement: their CPU is read from /proc.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("runtime")
}

/// One named, never-inlined frame per measured operation, so that an instruction profile
/// (`valgrind --tool=callgrind`, then `callgrind_annotate --inclusive=yes`) reports each
/// operation's instructions under its own name: `mnet_call::op_sign` and so on, each
/// called exactly `USESTATS_BENCH_OPS` times.
macro_rules! named_ops {
    ($($name:ident),*) => {
        $(
            #[inline(never)]
            fn $name(f: &mut dyn FnMut()) {
                f()
            }
        )*
    };
}

named_ops!(
    op_sign,
    op_unwrap,
    op_verify,
    op_seal,
    op_client_send,
    op_server_open,
    op_server_answer,
    op_client_open,
    op_pem_to_key,
    op_pem_parse,
    op_touch_peer,
    op_insert_audit,
    op_claim_replay_key,
    op_insert_replay_key_unsynced,
    op_peer_by_wwwroot,
    op_effective_services
);

/// Per-operation CPU time of `f` (run `n` times inside the named frame `op`), on this
/// thread.
fn per_op(n: usize, op: fn(&mut dyn FnMut()), mut f: impl FnMut()) -> (Duration, Duration) {
    let (cpu0, wall0) = (cpu::thread_cpu(), Instant::now());
    for _ in 0..n {
        op(&mut f);
    }
    (
        (cpu::thread_cpu() - cpu0) / n as u32,
        wall0.elapsed() / n as u32,
    )
}

fn report(label: &str, (cpu, wall): (Duration, Duration)) -> Duration {
    println!(
        "  {label:<52} cpu {:>8.1} µs/op   wall {:>8.1} µs/op",
        cpu::us(cpu),
        cpu::us(wall)
    );
    cpu
}

fn rsa_reference(n: usize, key: &openssl::pkey::PKey<openssl::pkey::Private>) -> Duration {
    println!("RSA-2048 through usestats::crypto (same OpenSSL as the daemon), {n} ops each:");
    let public = openssl::pkey::PKey::public_key_from_der(&key.public_key_to_der().unwrap())
        .expect("public key");
    let message = vec![b'x'; 600];
    let signature = crypto::sign_sha1(key, &message).unwrap();
    let (data, wrapped) = crypto::seal(&public, &message).unwrap();
    let sign = report(
        "sign_sha1 (private op)",
        per_op(n, op_sign, || {
            black_box(crypto::sign_sha1(key, black_box(&message)).unwrap());
        }),
    );
    let open = report(
        "open: RSA unwrap (private op) + RC4 600 B",
        per_op(n, op_unwrap, || {
            black_box(crypto::open(key, black_box(&wrapped), &data).unwrap());
        }),
    );
    report(
        "verify_sha1 (public op)",
        per_op(n, op_verify, || {
            black_box(crypto::verify_sha1(
                &public,
                &message,
                black_box(&signature),
            ));
        }),
    );
    report(
        "seal: RSA wrap (public op) + RC4 600 B",
        per_op(n, op_seal, || {
            black_box(crypto::seal(&public, black_box(&message)).unwrap());
        }),
    );
    let private = (sign + open) / 2;
    println!(
        "  => one RSA-2048 private op ≈ {:.1} µs CPU ({:.0}/s on one core)",
        cpu::us(private),
        1.0 / private.as_secs_f64()
    );
    private
}

/// The envelope round trip without HTTP: what each side computes for one call.
fn envelope_round_trip(n: usize, client: &TestApp, server: &TestApp, private_op: Duration) {
    let client_ring = client.app.keyring();
    let server_ring = server.app.keyring();
    let client_pem = client_ring.current.cert_pem.clone();
    let server_public = server_ring.current.cert.public_key().unwrap();
    let limits = Limits::default();
    let call = MethodCall {
        name: "system/listServices".into(),
        params: Vec::new(),
    };
    let answer_value = Value::Array(vec![Value::Struct(vec![
        ("name".into(), Value::from("use_stats")),
        ("apiversion".into(), Value::from("1")),
        ("publish".into(), Value::from("1")),
        ("subscribe".into(), Value::from("0")),
    ])]);
    let now = 1_800_000_000;

    // One of each document, to time each phase on its own.
    let request = {
        let xml = xmlrpc::serialize_call(&call);
        let signed =
            envelope::build_signed(&xml, &client_ring.current.key, &client.wwwroot, now).unwrap();
        envelope::build_encrypted(&signed, &server_public, &client.wwwroot).unwrap()
    };
    let answer = {
        let xml = xmlrpc::serialize_response(&answer_value);
        let signed =
            envelope::build_signed(&xml, &server_ring.current.key, &server.wwwroot, now).unwrap();
        let client_public = crypto::parse_cert_pem(&client_pem)
            .unwrap()
            .public_key()
            .unwrap();
        envelope::build_encrypted(&signed, &client_public, &server.wwwroot).unwrap()
    };
    println!(
        "Envelope round trip without HTTP (system/listServices; request {} B, answer {} B), {n} each:",
        request.len(),
        answer.len()
    );

    let client_send = report(
        "client send: serialise + sign + seal",
        per_op(n, op_client_send, || {
            let xml = xmlrpc::serialize_call(black_box(&call));
            let signed =
                envelope::build_signed(&xml, &client_ring.current.key, &client.wwwroot, now)
                    .unwrap();
            black_box(envelope::build_encrypted(&signed, &server_public, &client.wwwroot).unwrap());
        }),
    );
    let server_open = report(
        "server open: parse + unwrap + RC4 + parse + verify",
        per_op(n, op_server_open, || {
            let message = envelope::parse_encrypted(black_box(&request)).unwrap();
            let keys = std::iter::once(&server_ring.current.key)
                .chain(server_ring.archived.iter().map(|id| &id.key));
            let (plain, _) = envelope::open_with(&message, keys).unwrap();
            let signed = envelope::parse_signed(&plain).unwrap();
            // As the server does: the peer's certificate is parsed from its stored PEM.
            let key = crypto::parse_cert_pem(&client_pem)
                .unwrap()
                .public_key()
                .unwrap();
            assert!(crypto::verify_sha1(&key, &signed.object, &signed.signature));
            black_box(xmlrpc::parse_call(&signed.object, &limits).unwrap());
        }),
    );
    let server_answer = report(
        "server answer: serialise + sign + seal",
        per_op(n, op_server_answer, || {
            let xml = xmlrpc::serialize_response(black_box(&answer_value));
            let signed =
                envelope::build_signed(&xml, &server_ring.current.key, &server.wwwroot, now)
                    .unwrap();
            let key = crypto::parse_cert_pem(&client_pem)
                .unwrap()
                .public_key()
                .unwrap();
            black_box(envelope::build_encrypted(&signed, &key, &server.wwwroot).unwrap());
        }),
    );
    let client_open = report(
        "client open: parse + unwrap + RC4 + parse + verify",
        per_op(n, op_client_open, || {
            let message = envelope::parse_encrypted(black_box(&answer)).unwrap();
            let keys = std::iter::once(&client_ring.current.key);
            let (plain, _) = envelope::open_with(&message, keys).unwrap();
            let signed = envelope::parse_signed(&plain).unwrap();
            let response = xmlrpc::parse_response(&signed.object, &limits).unwrap();
            assert!(crypto::verify_sha1(
                &server_public,
                &signed.object,
                &signed.signature
            ));
            black_box(matches!(response, Response::Success(_)));
        }),
    );
    // The server parses the caller's stored PEM twice per call (verify_with, then wrap) and
    // the client once (attempt_inner): what one parse costs.
    report(
        "  of which: stored PEM -> X509 -> public key",
        per_op(n, op_pem_to_key, || {
            let cert = crypto::parse_cert_pem(black_box(&client_pem)).unwrap();
            black_box(cert.public_key().unwrap());
        }),
    );
    report(
        "  of which: stored PEM -> X509 only",
        per_op(n, op_pem_parse, || {
            black_box(crypto::parse_cert_pem(black_box(&client_pem)).unwrap());
        }),
    );
    let client_side = client_send + client_open;
    let server_side = server_open + server_answer;
    println!(
        "  => client side {:.1} µs = {:.2} private-op equivalents; server side {:.1} µs = {:.2}; both {:.1} µs = {:.2}",
        cpu::us(client_side),
        client_side.as_secs_f64() / private_op.as_secs_f64(),
        cpu::us(server_side),
        server_side.as_secs_f64() / private_op.as_secs_f64(),
        cpu::us(client_side + server_side),
        (client_side + server_side).as_secs_f64() / private_op.as_secs_f64()
    );
}

/// `client` may call `server`, which publishes use_stats to it and grants admin@client.
async fn link(client: &TestApp, server: &TestApp) -> state::Peer {
    server.add_peer(client).await;
    let peer = client.add_peer(server).await;
    client
        .set_service(&server.wwwroot, "use_stats", None, Some(true))
        .await;
    server
        .set_service(&client.wwwroot, "use_stats", Some(true), None)
        .await;
    server.grant(&client.wwwroot, "admin", true, true).await;
    peer
}

fn bench_options(audit: bool, demo_for: Option<String>) -> AppOptions {
    AppOptions {
        demo_remote_hosts: demo_for.map(|w| vec![w]),
        demo_log_rows: 20_000,
        tweak: Some(Box::new(move |config: &mut usestats::config::Config| {
            config.audit.enabled = audit;
            // Load settings: no rate limit, a high concurrency cap.
            config.limits.per_ip_per_minute = 0;
            config.limits.per_peer_per_minute = 0;
            config.limits.max_concurrent_requests = 4096;
        })),
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn full_calls(
    label: &str,
    n: usize,
    client_rt: &tokio::runtime::Runtime,
    client: &TestApp,
    peer: &state::Peer,
    method: &'static str,
    params: Vec<Value>,
    private_op: Duration,
) {
    let app = client.app.clone();
    let peer = peer.clone();
    // Warm up: connection pool, caches.
    let warm = {
        let (app, peer, params) = (app.clone(), peer.clone(), params.clone());
        client_rt
            .block_on(async move { app.client.call_uninstrumented(&peer, method, params).await })
    };
    if let Err(e) = warm {
        panic!("{label}: warm-up call failed: {e}");
    }
    let (srv0, cli0, proc0, wall0) = (
        cpu::threads_cpu("srv"),
        cpu::threads_cpu("cli"),
        cpu::process_cpu(),
        Instant::now(),
    );
    let errors = client_rt
        .block_on(client_rt.spawn(async move {
            let mut errors = 0usize;
            for _ in 0..n {
                match app
                    .client
                    .call_uninstrumented(&peer, method, params.clone())
                    .await
                {
                    Ok(value) => {
                        black_box(value);
                    }
                    Err(_) => errors += 1,
                }
            }
            errors
        }))
        .expect("call loop");
    let wall = wall0.elapsed();
    let (srv, cli, proc) = (
        cpu::threads_cpu("srv") - srv0,
        cpu::threads_cpu("cli") - cli0,
        cpu::process_cpu() - proc0,
    );
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let eq = |d: Duration| d.as_secs_f64() / n as f64 / private_op.as_secs_f64();
    println!(
        "  {label}: {n} calls, {errors} errors, wall {:.1} µs/call ({:.0} calls/s sequential)",
        per(wall),
        n as f64 / wall.as_secs_f64()
    );
    println!(
        "    cpu/call: server threads {:.1} µs ({:.2} private ops), client threads {:.1} µs ({:.2}), whole process {:.1} µs ({:.2})",
        per(srv),
        eq(srv),
        per(cli),
        eq(cli),
        per(proc),
        eq(proc)
    );
}

fn state_writes(n: usize, server: &TestApp, peer_id: i64) {
    println!("Per-call state writes on the server's SQLite state database, {n} each, one thread:");
    let mut conn = server.app.state.get().expect("state connection");
    let mut t = 1_800_000_000i64;
    report(
        "touch_peer (UPDATE peers.last_connect_time)",
        per_op(n, op_touch_peer, || {
            t += 1;
            state::touch_peer(&mut conn, peer_id, t).unwrap();
        }),
    );
    let entry = state::AuditEntry {
        id: 0,
        time: t,
        channel: "mnet".into(),
        peer: server.wwwroot.clone(),
        remote_addr: "127.0.0.1".into(),
        method: "system/listServices".into(),
        caller: String::new(),
        target: String::new(),
        status: "ok".into(),
        latency_ms: 3,
        bytes_in: 3000,
        bytes_out: 2500,
        verified: true,
    };
    report(
        "insert_audit (INSERT audit_log)",
        per_op(n, op_insert_audit, || {
            state::insert_audit(&mut conn, &entry).unwrap();
        }),
    );
    // Every signed call claims its replay key before it runs, synced to disk (issue 22, K2).
    let mut key = 0u64;
    report(
        "claim_replay_key (INSERT, synced; every signed call)",
        per_op(n, op_claim_replay_key, || {
            key += 1;
            let hex = format!("{key:032x}");
            assert!(state::claim_replay_key(&mut conn, &hex, t, t - 86_400).unwrap());
        }),
    );
    // What the same row cost before, written unsynced (it then rode in a batch, after the
    // answer).
    report(
        "the same INSERT, not synced (before issue 22)",
        per_op(n, op_insert_replay_key_unsynced, || {
            use diesel::RunQueryDsl;
            key += 1;
            diesel::sql_query(format!(
                "INSERT INTO replay_keys (key_hash, seen_at) VALUES ('{key:032x}', {t})"
            ))
            .execute(&mut *conn)
            .unwrap();
        }),
    );
    report(
        "peer_by_wwwroot (SELECT, every call)",
        per_op(n, op_peer_by_wwwroot, || {
            black_box(state::peer_by_wwwroot(&mut conn, &server.wwwroot).unwrap());
        }),
    );
    report(
        "effective_services (2 SELECTs, every call)",
        per_op(n, op_effective_services, || {
            black_box(state::effective_services(&mut conn, peer_id).unwrap());
        }),
    );
}

/// With `USESTATS_BENCH_GATE=PATH`, around the measured loop: create `PATH.<here>`, then
/// wait (polling, so that a tool watching the process gets to run) until `PATH.<then>`
/// exists. A driver script zeroes callgrind's counters at `ready` (`callgrind_control -z`)
/// and dumps them at `done` (`callgrind_control -d`), so the dump holds the measured calls
/// alone, whatever the setup (key generation, demo site) cost.
fn gate(here: &str, then: &str) {
    let Ok(path) = std::env::var("USESTATS_BENCH_GATE") else {
        return;
    };
    std::fs::write(format!("{path}.{here}"), b"").expect("gate file");
    let go = std::path::PathBuf::from(format!("{path}.{then}"));
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `system/listServices` as Moodle's curl sends it: a new connection per call, each request
/// built fresh (the server refuses a replay), each answer opened and checked. The client
/// runs on a plain thread, so the `srv` threads' CPU is the server's alone.
fn fresh_connection_calls(n: usize, client: &TestApp, server: &TestApp, private_op: Duration) {
    use std::io::{Read, Write};
    let (client_ring, server_ring) = (client.app.keyring(), server.app.keyring());
    let server_public = server_ring.current.cert.public_key().unwrap();
    let (addr, wwwroot) = (server.addr, client.wwwroot.clone());
    let limits = Limits::default();
    let one_call = move || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let call = MethodCall {
            name: "system/listServices".into(),
            params: Vec::new(),
        };
        let xml = xmlrpc::serialize_call(&call);
        let signed = envelope::build_signed(&xml, &client_ring.current.key, &wwwroot, now).unwrap();
        let body = envelope::build_encrypted(&signed, &server_public, &wwwroot).unwrap();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let head = format!(
            "POST /mnet/xmlrpc/server.php HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(answer.starts_with(b"HTTP/1.1 200"), "HTTP status");
        let message = envelope::parse_encrypted(&answer[split..]).unwrap();
        let (plain, _) =
            envelope::open_with(&message, std::iter::once(&client_ring.current.key)).unwrap();
        let signed = envelope::parse_signed(&plain).unwrap();
        match xmlrpc::parse_response(&signed.object, &limits).unwrap() {
            Response::Success(value) => {
                black_box(value);
            }
            other => panic!("listServices answered {other:?}"),
        }
    };
    let one_call = std::sync::Arc::new(one_call);
    let warm = one_call.clone();
    std::thread::spawn(move || warm())
        .join()
        .expect("warm-up call");
    gate("ready", "go");
    let (srv0, wall0) = (cpu::threads_cpu("srv"), Instant::now());
    let calls = one_call.clone();
    std::thread::Builder::new()
        .name("fresh-client".into())
        .spawn(move || (0..n).for_each(|_| calls()))
        .unwrap()
        .join()
        .expect("call loop");
    let (srv, wall) = (cpu::threads_cpu("srv") - srv0, wall0.elapsed());
    gate("done", "end");
    println!(
        "  system/listServices, new connection per call, audit on: {n} calls, wall {:.1} µs/call",
        wall.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "    cpu/call: server threads {:.1} µs ({:.2} private ops)",
        srv.as_secs_f64() * 1e6 / n as f64,
        srv.as_secs_f64() / n as f64 / private_op.as_secs_f64()
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let calls = env_count("USESTATS_BENCH_CALLS", 1000, 5, benching);
    let ops = env_count("USESTATS_BENCH_OPS", 2000, 5, benching);

    let server_rt = runtime("srv");
    let client_rt = runtime("cli");
    let client = client_rt.block_on(spawn_app(bench_options(false, None)));
    let server_audit = server_rt.block_on(spawn_app(bench_options(true, None)));
    let server_plain = server_rt.block_on(spawn_app(bench_options(false, None)));
    let server_demo =
        server_rt.block_on(spawn_app(bench_options(true, Some(client.wwwroot.clone()))));
    let mut peers = Vec::new();
    for server in [&server_audit, &server_plain, &server_demo] {
        // Setup only: where its blocking work runs does not matter.
        peers.push(client_rt.block_on(link(&client, server)));
    }

    println!(
        "usestats mnet_call bench: OpenSSL {}, RC4 backend {:?}",
        openssl::version::version(),
        crypto::rc4_backend()
    );
    let private_op = rsa_reference(ops, &server_audit.app.keyring().current.key);
    println!();
    if std::env::var("USESTATS_BENCH_ONLY").as_deref() == Ok("fresh") {
        fresh_connection_calls(calls, &client, &server_audit, private_op);
        return;
    }
    envelope_round_trip(ops, &client, &server_audit, private_op);
    println!();
    println!(
        "Full calls over loopback HTTP, sequential, client and server daemons in this process (1 tokio worker each):"
    );
    full_calls(
        "system/listServices, audit on",
        calls,
        &client_rt,
        &client,
        &peers[0],
        "system/listServices",
        Vec::new(),
        private_op,
    );
    full_calls(
        "system/listServices, audit off",
        calls,
        &client_rt,
        &client,
        &peers[1],
        "system/listServices",
        Vec::new(),
        private_op,
    );
    fresh_connection_calls(calls, &client, &server_audit, private_op);
    let stats_params = vec![
        caller_struct("admin", &client.wwwroot, &client.wwwroot),
        Value::from("admin"),
        Value::from(""),
        Value::Int(2),
        Value::Int(0),
    ];
    full_calls(
        "use_stats_rpc_get_stats admin scope 2 (20k-row demo), audit on",
        calls,
        &client_rt,
        &client,
        &peers[2],
        usestats::services::use_stats::GET_STATS,
        stats_params,
        private_op,
    );
    println!();
    let client_on_server = server_rt.block_on(server_audit.peer(&client.wwwroot)).id;
    state_writes(ops, &server_audit, client_on_server);
}
