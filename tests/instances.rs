//! Issue 13, "Done means": several `usestats serve` processes on one PostgreSQL state behind
//! a real nginx (round-robin), and a calling peer that runs get_stats for 30 s while one
//! instance is killed (SIGKILL) and restarted and `usestats keys rotate` runs with another
//! instance's configuration.
//!
//! Asserted: every answer equals the one computed before the run (`usestats stats --format
//! xml`); the only failed calls are those in flight on the killed instance (at most one per
//! client); a sealed request executed by one instance is refused as a replay (7041) by
//! another; afterwards every instance serves the rotated certificate, the calling peer has
//! stored it (it followed through 7025, the only way it could learn it) and its calls
//! succeed. The counts and the longest gap between successful calls around the kill are
//! printed (`INSTANCES {json}`).
//!
//! Needs PostgreSQL (`USESTATS_TEST_PG_URL`, see tests/common/db.rs) and nginx
//! (`USESTATS_TEST_NGINX=/usr/sbin/nginx`; `USESTATS_REQUIRE_NGINX=1` makes a missing one a
//! failure, as .ci/run does). The same harness measures throughput with 1 or 3 instances
//! and the failover gap: `bench_instances` (ignored; scripts/bench/instances.sh runs it).
//! Only 127.0.0.1 is used.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use usestats::mnet::client::ClientError;
use usestats::mnet::envelope;
use usestats::mnet::registration::{self, Registration, Sponsor};
use usestats::services::use_stats::{self, Answer};
use usestats::store::state::SslVerification;
use usestats::xmlrpc::{self, Limits, MethodCall, Response, Value};

/// Concurrent callers during the run.
const CLIENTS: usize = 4;
const RUN: Duration = Duration::from_secs(30);
const KILL_AT: Duration = Duration::from_secs(8);
const RESTART_AT: Duration = Duration::from_secs(12);
const ROTATE_AT: Duration = Duration::from_secs(18);
/// The variable the instances read the key-encryption key from (`[keys] kek_env`).
const KEK_ENV: &str = "USESTATS_KEK";

/// The nginx binary named by `USESTATS_TEST_NGINX`; None (and a loud message) when it is
/// not set and `USESTATS_REQUIRE_NGINX` is not 1.
fn nginx_binary() -> Option<PathBuf> {
    match std::env::var("USESTATS_TEST_NGINX") {
        Ok(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "USESTATS_TEST_NGINX={} is not a file",
                path.display()
            );
            Some(path)
        }
        _ => {
            if std::env::var("USESTATS_REQUIRE_NGINX").as_deref() == Ok("1") {
                panic!("USESTATS_REQUIRE_NGINX=1 but USESTATS_TEST_NGINX is not set");
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n*** several-instances test SKIPPED: it needs nginx; set \
                 USESTATS_TEST_NGINX=/usr/sbin/nginx (Debian package nginx-light) ***\n"
            );
            None
        }
    }
}

/// Free ports on 127.0.0.1, all held until every one is chosen so none comes twice.
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// GET without panicking on a refused connection: (status, body), or None.
async fn try_get(url: &str) -> Option<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let request = client.get(url.parse().ok()?);
    let response = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Wait (up to 30 s) until `url` answers 200.
async fn wait_ok(what: &str, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, _)) = try_get(url).await {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not come up ({url})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn canonical(pem: &str) -> String {
    usestats::crypto::canonical_pem(pem).unwrap_or_else(|| panic!("not a certificate: {pem}"))
}

/// The last `lines` lines of a log, without the one-per-call lines of successful calls.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !(l.contains(" mnet call ") && l.contains("status=ok")))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One `usestats serve` process: its own directory, configuration and log.
struct Instance {
    port: u16,
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

/// N instances on one fresh PostgreSQL state, same wwwroot (nginx's URL), same
/// key-encryption key, and nginx in front of them.
struct Cluster {
    /// nginx's URL: the cluster's one MNET identity.
    wwwroot: String,
    kek: String,
    instances: Vec<Instance>,
    nginx_bin: PathBuf,
    nginx_dir: PathBuf,
    nginx: Option<Child>,
    _db: TestDb,
    _tmp: tempfile::TempDir,
}

/// How big the demo site is.
struct DemoSize {
    users: u32,
    courses: u32,
    log_rows: u64,
}

impl Cluster {
    /// Configurations for `n` instances; None when PostgreSQL or nginx is not configured
    /// (and not required).
    fn prepare(n: usize) -> Option<Cluster> {
        let nginx_bin = nginx_binary()?;
        let db = TestDb::postgres()?;
        let tmp = tempfile::tempdir().unwrap();
        let ports = free_ports(n + 1);
        let wwwroot = format!("http://127.0.0.1:{}", ports[0]);
        let mut kek = [0u8; 32];
        openssl::rand::rand_bytes(&mut kek).unwrap();
        let kek = hex::encode(kek);
        let instances = ports[1..]
            .iter()
            .enumerate()
            .map(|(i, &port)| {
                let dir = tmp.path().join(format!("instance-{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                let config = dir.join("usestats.toml");
                // Identical but for the port: what an operator deploys to N hosts.
                let text = format!(
                    r#"[site]
wwwroot = "{wwwroot}"
name = "usestats cluster"

[server]
listen = "127.0.0.1:{port}"

[keys]
dir = "keys"
kek_env = "{KEK_ENV}"

[state]
url = "{state}"

[mnet]
connect_timeout_secs = 2
request_timeout_secs = 10

[limits]
# A load test through one proxy address: no per-address or per-peer limit.
per_ip_per_minute = 0
per_peer_per_minute = 0

[log]
level = "info"
"#,
                    state = db.url(),
                );
                std::fs::write(&config, text).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
                Instance {
                    port,
                    dir,
                    config,
                    child: None,
                }
            })
            .collect();
        let nginx_dir = tmp.path().join("nginx");
        std::fs::create_dir_all(&nginx_dir).unwrap();
        let cluster = Cluster {
            wwwroot,
            kek,
            instances,
            nginx_bin,
            nginx_dir,
            nginx: None,
            _db: db,
            _tmp: tmp,
        };
        cluster.write_nginx_config(ports[0]);
        Some(cluster)
    }

    fn size(&self) -> usize {
        self.instances.len()
    }

    fn config(&self, i: usize) -> &Path {
        &self.instances[i].config
    }

    /// A URL on instance `i` itself, not through nginx.
    fn direct(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.instances[i].port)
    }

    /// nginx as examples/nginx-upstream.conf sets it up (round-robin, a POST that reached
    /// no instance goes to the next, one already sent is not retried), with everything it
    /// writes in its own directory and in the foreground.
    fn write_nginx_config(&self, port: u16) {
        let d = self.nginx_dir.display();
        let servers: String = self
            .instances
            .iter()
            .map(|i| {
                format!(
                    "        server 127.0.0.1:{} max_fails=1 fail_timeout=2s;\n",
                    i.port
                )
            })
            .collect();
        let text = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$remote_addr "$request" $status $upstream_addr $upstream_status $request_time';
    access_log {d}/access.log upstream;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream usestats {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 32m;
        location / {{
            proxy_pass http://usestats;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 75s;
        }}
    }}
}}
"#
        );
        std::fs::write(self.nginx_dir.join("nginx.conf"), text).unwrap();
    }

    async fn start_nginx(&mut self) {
        let log = self.nginx_dir.join("stderr.log");
        let child = Command::new(&self.nginx_bin)
            .arg("-p")
            .arg(&self.nginx_dir)
            .arg("-c")
            .arg(self.nginx_dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.nginx_dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start nginx");
        self.nginx = Some(child);
        let url = format!("{}/healthz", self.wwwroot);
        wait_ok("nginx (and an instance behind it)", &url).await;
    }

    /// `usestats --config <instance i> ARGS`, with the key-encryption key in the
    /// environment as the instances have it.
    async fn cli(&self, i: usize, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
            .arg("--config")
            .arg(self.config(i))
            .args(args)
            .env(KEK_ENV, &self.kek)
            .env_remove("USESTATS_CONFIG")
            .current_dir(&self.instances[i].dir)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap()
    }

    /// [`Cluster::cli`] that must succeed; its standard output.
    async fn cli_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.cli(i, args).await;
        assert!(
            out.status.success(),
            "usestats {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Start `usestats serve` for instance `i` (its log: instance-i/serve.log, appended).
    fn spawn(&mut self, i: usize) {
        let instance = &mut self.instances[i];
        assert!(instance.child.is_none(), "instance {i} is running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(instance.dir.join("serve.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_usestats"))
            .arg("--config")
            .arg(&instance.config)
            .args(["serve", "--console-listen", "127.0.0.1:0"])
            .env(KEK_ENV, &self.kek)
            .env_remove("USESTATS_CONFIG")
            .current_dir(&instance.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start usestats serve");
        instance.child = Some(child);
    }

    async fn wait_healthy(&self, i: usize) {
        wait_ok(&format!("instance {i}"), &self.direct(i, "/healthz")).await;
    }

    /// SIGKILL instance `i`: no shutdown, calls in flight are cut.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.instances[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every instance's certificate, straight from each (GET /mnet/publickey.php).
    async fn certificates(&self) -> Vec<String> {
        let mut certs = Vec::new();
        for i in 0..self.size() {
            let (status, body) = try_get(&self.direct(i, "/mnet/publickey.php"))
                .await
                .unwrap_or_else(|| panic!("instance {i} does not answer"));
            assert_eq!(status, 200, "publickey.php on instance {i}: {body}");
            certs.push(canonical(&body));
        }
        certs
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if let Some(mut nginx) = self.nginx.take() {
            let _ = nginx.kill();
            let _ = nginx.wait();
        }
        for i in 0..self.instances.len() {
            self.kill(i);
        }
        if failed {
            // The temp dir goes with us: show what the processes said.
            let mut err = std::io::stderr();
            for (i, instance) in self.instances.iter().enumerate() {
                let _ = writeln!(
                    err,
                    "--- instance {i} (127.0.0.1:{}) serve.log, last lines:\n{}",
                    instance.port,
                    tail(&instance.dir.join("serve.log"), 40)
                );
            }
            let _ = writeln!(
                err,
                "--- nginx error.log:\n{}",
                tail(&self.nginx_dir.join("error.log"), 40)
            );
        }
    }
}

/// The calling peer: an in-process usestats with its own SQLite state, registered with the
/// cluster both ways, use_stats published to it and admin@it granted.
struct Caller {
    peer: TestApp,
    cluster: String,
    target: String,
    /// The right answer's message, computed before the run by `usestats stats --format xml`.
    expected: String,
}

impl Caller {
    fn params(&self) -> Vec<Value> {
        vec![
            usestats::collect::caller_struct("admin", &self.peer.wwwroot, &self.peer.wwwroot),
            Value::String(self.target.clone()),
            Value::from(""),
            Value::Int(3),
            Value::Int(0),
        ]
    }

    /// One get_stats through nginx, with the cluster's certificate as stored now (as Moodle
    /// reads mnet_host for every call): the answer, and whether the call had to follow a
    /// 7025 (only asked for when `detailed`: it costs a state write per call).
    async fn call(&self, detailed: bool) -> Result<(Value, bool), ClientError> {
        let peer = self.peer.peer(&self.cluster).await;
        let client = &self.peer.app.client;
        if detailed {
            client
                .call_detailed(&peer, use_stats::GET_STATS, self.params())
                .await
                .map(|r| (r.value, r.rekeyed))
        } else {
            client
                .call_uninstrumented(&peer, use_stats::GET_STATS, self.params())
                .await
                .map(|v| (v, false))
        }
    }

    /// None when the answer is the expected one, else what is wrong with it.
    fn wrong(&self, value: &Value) -> Option<String> {
        match Answer::from_value(value) {
            Some(a)
                if a.status == use_stats::RPC_SUCCESS
                    && a.message.as_deref() == Some(&self.expected) =>
            {
                None
            }
            Some(a) => Some(format!(
                "status {} errors {:?} message {}",
                a.status,
                a.errors,
                a.message.unwrap_or_default()
            )),
            None => Some(format!("not a use_stats answer: {value:?}")),
        }
    }

    async fn stored_certificate(&self) -> String {
        canonical(&self.peer.peer(&self.cluster).await.public_key)
    }

    /// The exact request the caller would send for one get_stats, signed and sealed to
    /// `cert`: what an eavesdropper could capture and replay.
    fn sealed_request(&self, cert: &str) -> Vec<u8> {
        let ring = self.peer.app.keyring();
        let call = MethodCall {
            name: use_stats::GET_STATS.into(),
            params: self.params(),
        };
        let signed = envelope::build_signed(
            &xmlrpc::serialize_call(&call),
            &ring.current.key,
            &self.peer.wwwroot,
            self.peer.app.now(),
        )
        .unwrap();
        let cert = usestats::crypto::parse_cert_pem(cert).unwrap();
        let public = usestats::crypto::public_key_of(&cert).unwrap();
        envelope::build_encrypted(&signed, &public, &self.peer.wwwroot).unwrap()
    }

    /// An answer to [`Caller::sealed_request`], opened with the caller's key (or read plain).
    fn open_answer(&self, body: &[u8]) -> Response {
        let xml = if envelope::document_kind(body) == envelope::DocumentKind::Encrypted {
            let ring = self.peer.app.keyring();
            let message = envelope::parse_encrypted(body).unwrap();
            let (plain, _) = envelope::open_with(&message, [&ring.current.key])
                .expect("the answer is sealed to the caller");
            envelope::parse_signed(&plain).unwrap().object
        } else {
            body.to_vec()
        };
        xmlrpc::parse_response(&xml, &Limits::default()).unwrap()
    }
}

/// Keys, demo site (with the caller's users), every instance and nginx up, the caller
/// registered both ways and granted, and the expected answer checked once.
async fn link(cluster: &mut Cluster, size: DemoSize) -> Caller {
    let peer = spawn_app(AppOptions::default()).await;
    // Our key pair, sealed into the state database under the key-encryption key.
    cluster.cli_ok(0, &["keys", "generate"]).await;
    let demo = cluster
        .cli_ok(
            0,
            &[
                "--json",
                "demo",
                "--users",
                &size.users.to_string(),
                "--courses",
                &size.courses.to_string(),
                "--log-rows",
                &size.log_rows.to_string(),
                "--remote-host",
                &peer.wwwroot,
            ],
        )
        .await;
    let demo: serde_json::Value = serde_json::from_str(&demo).unwrap();
    let target = demo["sample_usernames"][0].as_str().unwrap().to_string();
    let expected = cluster
        .cli_ok(0, &["stats", &target, "--format", "xml"])
        .await
        .trim()
        .to_string();
    assert!(expected.starts_with("<USE_STATS>"), "{expected}");

    for i in 0..cluster.size() {
        cluster.spawn(i);
        cluster.wait_healthy(i).await;
    }
    cluster.start_nginx().await;

    // The caller keyswaps with the cluster through nginx, as a Moodle would.
    let vetted = registration::fetch(
        &peer.app.client,
        &cluster.wwwroot,
        "moodle",
        SslVerification::None,
    )
    .await
    .expect("keyswap through nginx");
    registration::register(
        &peer.app.client,
        &peer.app.state,
        Registration {
            vetted,
            application: "moodle".into(),
            name: Some("cluster".into()),
            ssl_verification: SslVerification::None,
            sponsor: Sponsor::Operator,
        },
        peer.app.now(),
    )
    .await
    .expect("registration")
    .expect("stored");
    peer.set_service(&cluster.wwwroot, "use_stats", None, Some(true))
        .await;
    // The cluster registers the caller with its own keyswap (any instance's configuration
    // will do: they share the state).
    let w = peer.wwwroot.clone();
    cluster
        .cli_ok(
            1 % cluster.size(),
            &["peer", "add", &w, "--yes", "--ssl-verification", "0"],
        )
        .await;
    cluster
        .cli_ok(2 % cluster.size(), &["peer", "publish", &w, "use_stats"])
        .await;
    cluster
        .cli_ok(0, &["grant", "add", &w, "admin", "--site", "--course"])
        .await;

    let caller = Caller {
        peer,
        cluster: cluster.wwwroot.clone(),
        target,
        expected,
    };
    // Each instance sees the new peer within its known-peers TTL; then every instance gives
    // the answer computed by `usestats stats`.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut good = 0;
    while good < 2 * cluster.size() {
        match caller.call(false).await {
            Ok((value, _)) if caller.wrong(&value).is_none() => good += 1,
            outcome => {
                good = 0;
                assert!(
                    Instant::now() < deadline,
                    "the calling peer gets no right answer before the run: {outcome:?}, expected {}",
                    caller.expected
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    caller
}

/// One call of the run: when it started and ended (from the run's start) and how it went.
#[derive(Debug, Clone)]
struct Outcome {
    client: usize,
    start: Duration,
    end: Duration,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Right { rekeyed: bool },
    Wrong(String),
    Failed(String),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Right { rekeyed } => write!(f, "right (rekeyed: {rekeyed})"),
            Kind::Wrong(what) => write!(f, "WRONG ANSWER: {what}"),
            Kind::Failed(error) => write!(f, "failed: {error}"),
        }
    }
}

/// `clients` callers in a loop until `t0 + duration`.
fn spawn_load(
    caller: Arc<Caller>,
    clients: usize,
    t0: Instant,
    duration: Duration,
    detailed: bool,
) -> tokio::task::JoinHandle<Vec<Outcome>> {
    tokio::spawn(async move {
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                let caller = caller.clone();
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    while t0.elapsed() < duration {
                        let start = t0.elapsed();
                        let kind = match caller.call(detailed).await {
                            Ok((value, rekeyed)) => match caller.wrong(&value) {
                                None => Kind::Right { rekeyed },
                                Some(what) => Kind::Wrong(what),
                            },
                            Err(e) => Kind::Failed(e.to_string()),
                        };
                        outcomes.push(Outcome {
                            client,
                            start,
                            end: t0.elapsed(),
                            kind,
                        });
                    }
                    outcomes
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort_by_key(|o| o.end);
        all
    })
}

/// The longest time without a successful answer among the gaps that overlap [from, to]
/// (the end of one success to the end of the next; a window's edges count as successes
/// only when none fell in it).
fn longest_gap(outcomes: &[Outcome], from: Duration, to: Duration) -> Duration {
    let ends: Vec<Duration> = outcomes
        .iter()
        .filter(|o| matches!(o.kind, Kind::Right { .. }))
        .map(|o| o.end)
        .collect();
    ends.windows(2)
        .filter(|w| w[1] >= from && w[0] <= to)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(to.saturating_sub(from))
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[derive(Debug, serde::Serialize)]
struct Summary {
    instances: usize,
    clients: usize,
    seconds: f64,
    calls: usize,
    right: usize,
    wrong: usize,
    failed: usize,
    rekeyed: usize,
    calls_per_second: f64,
    p50_ms: u64,
    p99_ms: u64,
    longest_gap_ms: u64,
    gap_around_kill_ms: Option<u64>,
    gap_around_rotation_ms: Option<u64>,
}

fn summarise(
    instances: usize,
    clients: usize,
    outcomes: &[Outcome],
    seconds: f64,
    kill: Option<(Duration, Duration)>,
    rotation: Option<(Duration, Duration)>,
) -> Summary {
    let count = |f: fn(&Kind) -> bool| outcomes.iter().filter(|o| f(&o.kind)).count();
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.end - o.start).collect();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .map_or(0, ms)
    };
    let whole = Duration::from_secs_f64(seconds);
    Summary {
        instances,
        clients,
        seconds,
        calls: outcomes.len(),
        right: count(|k| matches!(k, Kind::Right { .. })),
        wrong: count(|k| matches!(k, Kind::Wrong(_))),
        failed: count(|k| matches!(k, Kind::Failed(_))),
        rekeyed: count(|k| matches!(k, Kind::Right { rekeyed: true })),
        calls_per_second: outcomes.len() as f64 / seconds.max(1e-9),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        longest_gap_ms: ms(longest_gap(outcomes, Duration::ZERO, whole)),
        gap_around_kill_ms: kill.map(|(from, to)| ms(longest_gap(outcomes, from, to))),
        gap_around_rotation_ms: rotation.map(|(from, to)| ms(longest_gap(outcomes, from, to))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_survive_a_kill_and_a_rotation_behind_nginx() {
    let Some(mut cluster) = Cluster::prepare(3) else {
        return;
    };
    let caller = Arc::new(
        link(
            &mut cluster,
            DemoSize {
                users: 20,
                courses: 4,
                log_rows: 20_000,
            },
        )
        .await,
    );
    let before = cluster.certificates().await;
    assert!(
        before.iter().all(|c| *c == before[0]),
        "the instances serve different certificates: the key pair is not shared"
    );
    assert_eq!(caller.stored_certificate().await, before[0]);

    let t0 = Instant::now();
    let load = spawn_load(caller.clone(), CLIENTS, t0, RUN, true);
    tokio::time::sleep_until((t0 + KILL_AT).into()).await;
    let killed_from = t0.elapsed();
    cluster.kill(0);
    let killed_to = t0.elapsed();
    tokio::time::sleep_until((t0 + RESTART_AT).into()).await;
    cluster.spawn(0);
    cluster.wait_healthy(0).await;
    let back = t0.elapsed();
    tokio::time::sleep_until((t0 + ROTATE_AT).into()).await;
    let rotation_from = t0.elapsed();
    // Another instance's configuration than the killed one's.
    let rotated = cluster.cli_ok(1, &["--json", "keys", "rotate"]).await;
    let rotation_to = t0.elapsed();
    let rotated: serde_json::Value = serde_json::from_str(&rotated).unwrap();
    let new_cert = canonical(rotated["pem"].as_str().expect("keys rotate --json: pem"));
    assert_ne!(new_cert, before[0], "keys rotate made a new certificate");
    let outcomes = load.await.unwrap();
    let seconds = t0.elapsed().as_secs_f64();

    let summary = summarise(
        cluster.size(),
        CLIENTS,
        &outcomes,
        seconds,
        Some((killed_from, back)),
        Some((rotation_from, rotation_to + Duration::from_secs(5))),
    );
    println!("INSTANCES {}", serde_json::to_string(&summary).unwrap());
    println!(
        "instance 0 killed at {} ms, serving again at {} ms; keys rotate (instance 1's config) {}–{} ms",
        ms(killed_from),
        ms(back),
        ms(rotation_from),
        ms(rotation_to)
    );
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.kind, Kind::Failed(_)))
        .collect();
    for o in &failed {
        println!(
            "failed call: client {} {}–{} ms: {}",
            o.client,
            ms(o.start),
            ms(o.end),
            o.kind
        );
    }
    let wrong: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.kind, Kind::Wrong(_)))
        .collect();
    assert!(wrong.is_empty(), "wrong answers: {wrong:#?}");
    assert!(
        summary.right > 10 * CLIENTS,
        "too few calls to mean anything: {summary:?}"
    );
    // Only calls in flight on the killed instance may fail: begun before the kill (one
    // second of slack for nginx noticing its kept-alive connections are gone), ended after,
    // at most one per client.
    assert!(
        failed.len() <= CLIENTS,
        "{} failed calls, more than the {CLIENTS} that can be in flight",
        failed.len()
    );
    for o in &failed {
        assert!(
            o.end >= killed_from && o.start <= killed_to + Duration::from_secs(1),
            "a call failed that was not in flight at the kill ({}–{} ms): {o:?}",
            ms(killed_from),
            ms(killed_to)
        );
    }

    // Every instance serves the rotated certificate, and the caller holds it: it can only
    // have learnt it from a 7025 signed with the old key.
    let after = cluster.certificates().await;
    for (i, cert) in after.iter().enumerate() {
        assert_eq!(
            *cert, new_cert,
            "instance {i} does not serve the new certificate"
        );
    }
    assert_eq!(
        caller.stored_certificate().await,
        new_cert,
        "the calling peer did not follow the rotation"
    );
    assert!(summary.rekeyed > 0, "no call followed a 7025: {summary:?}");
    let (value, rekeyed) = caller.call(true).await.expect("a call after the run");
    assert_eq!(caller.wrong(&value), None);
    assert!(!rekeyed, "the caller's certificate is current");

    // A captured request, sent to instance 0 and then, byte for byte, to instance 1.
    let body = caller.sealed_request(&new_cert);
    let (status, first) = post(&cluster.direct(0, "/mnet/xmlrpc/server.php"), body.clone()).await;
    assert_eq!(status, 200);
    match caller.open_answer(&first) {
        Response::Success(value) => assert_eq!(caller.wrong(&value), None),
        Response::Fault(f) => panic!("the original request failed: {f:?}"),
    }
    let (_, again) = post(&cluster.direct(1, "/mnet/xmlrpc/server.php"), body).await;
    match caller.open_answer(&again) {
        Response::Fault(f) => assert_eq!(
            f.code,
            usestats::mnet::faults::REPLAYED,
            "replay on another instance: {f:?}"
        ),
        Response::Success(_) => panic!("a request replayed to another instance was executed"),
    }
}

/// Throughput through nginx with `USESTATS_BENCH_INSTANCES` instances (default 3),
/// `USESTATS_BENCH_CLIENTS` callers (8) for `USESTATS_BENCH_SECONDS` (30); with
/// `USESTATS_BENCH_KILL=1` instance 0 is killed at a third of the run and restarted 4 s
/// later, for the failover gap. Demo size: `USESTATS_BENCH_USERS`, `_COURSES`,
/// `_LOG_ROWS` (60, 8, 200 000: `usestats demo`'s defaults). Prints `BENCH {json}`.
/// No assertion on the numbers: they go to BENCHMARKS.md (scripts/bench/instances.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench/instances.sh"]
async fn bench_instances() {
    let var = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = var("USESTATS_BENCH_INSTANCES", 3) as usize;
    let clients = var("USESTATS_BENCH_CLIENTS", 8) as usize;
    let duration = Duration::from_secs(var("USESTATS_BENCH_SECONDS", 30));
    let kill = var("USESTATS_BENCH_KILL", 0) == 1 && n > 1;
    let Some(mut cluster) = Cluster::prepare(n) else {
        return;
    };
    let caller = Arc::new(
        link(
            &mut cluster,
            DemoSize {
                users: var("USESTATS_BENCH_USERS", 60) as u32,
                courses: var("USESTATS_BENCH_COURSES", 8) as u32,
                log_rows: var("USESTATS_BENCH_LOG_ROWS", 200_000),
            },
        )
        .await,
    );
    let t0 = Instant::now();
    let load = spawn_load(caller.clone(), clients, t0, duration, false);
    let mut window = None;
    if kill {
        tokio::time::sleep_until((t0 + duration / 3).into()).await;
        let from = t0.elapsed();
        cluster.kill(0);
        tokio::time::sleep_until((t0 + duration / 3 + Duration::from_secs(4)).into()).await;
        cluster.spawn(0);
        cluster.wait_healthy(0).await;
        window = Some((from, t0.elapsed()));
    }
    let outcomes = load.await.unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    let summary = summarise(n, clients, &outcomes, seconds, window, None);
    for o in outcomes
        .iter()
        .filter(|o| !matches!(o.kind, Kind::Right { .. }))
    {
        println!(
            "not right: client {} {}–{} ms: {}",
            o.client,
            ms(o.start),
            ms(o.end),
            o.kind
        );
    }
    println!("BENCH {}", serde_json::to_string(&summary).unwrap());
}
