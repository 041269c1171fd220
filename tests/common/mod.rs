//! Shared by the integration tests: databases on both backends, and (below) real servers.
#![allow(dead_code)]

pub mod db;

pub use db::TestDb;

/// A fresh PostgreSQL database when a server is configured (see [`TestDb::postgres`]).
pub fn postgres_db() -> Option<TestDb> {
    TestDb::postgres()
}

/// Every backend available for this run: SQLite always, PostgreSQL when configured.
pub fn all_dbs() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite()];
    dbs.extend(TestDb::postgres());
    dbs
}

/// Every backend a source (Moodle) database can be on: [`all_dbs`] plus MySQL/MariaDB when
/// configured.
pub fn source_dbs() -> Vec<TestDb> {
    let mut dbs = all_dbs();
    dbs.extend(TestDb::mysql());
    dbs
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use usestats::app::App;
use usestats::config::Config;
use usestats::mnet::registration::{self, Registration, Sponsor};
use usestats::store::state;

/// A change to a test daemon's configuration before it starts.
pub type Tweak = Box<dyn FnOnce(&mut Config) + Send>;

/// A real usestats daemon on 127.0.0.1, port chosen by the OS, with its own directory,
/// keys and SQLite database.
pub struct TestApp {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    /// The console's own listener (`[console] listen`), when the console is on.
    pub console_addr: Option<SocketAddr>,
    pub wwwroot: String,
    pub dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    console_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    console_server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: tempfile::TempDir,
}

pub struct AppOptions {
    /// Identity to use instead of http://127.0.0.1:<port>.
    pub wwwroot: Option<String>,
    /// Key pair files (key, cert) to install as current before start, oldest first; the
    /// last one is current, the others archived.
    pub keys: Vec<(PathBuf, PathBuf)>,
    pub auto_register: bool,
    /// Build the demo site with these remote hosts (None: no demo data).
    pub demo_remote_hosts: Option<Vec<String>>,
    pub demo_log_rows: u64,
    pub demo_seed: u64,
    /// Local accounts and courses of the demo site (the default is a small site: 20 and 4).
    pub demo_users: u32,
    pub demo_courses: u32,
    pub tweak: Option<Tweak>,
    /// Serve https with this (certificate, key) PEM pair; the wwwroot becomes https.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            wwwroot: None,
            keys: Vec::new(),
            auto_register: false,
            demo_remote_hosts: None,
            demo_log_rows: 20_000,
            demo_seed: 7,
            demo_users: 20,
            demo_courses: 4,
            tweak: None,
            tls: None,
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the console's own listener.
    pub fn console_url(&self, path: &str) -> String {
        format!("http://{}{}", self.console(), path)
    }

    /// The console's listener address (the console is on unless a tweak turned it off).
    pub fn console(&self) -> SocketAddr {
        self.console_addr.expect("the console is on")
    }

    pub async fn stop(&mut self) {
        for tx in [self.shutdown.take(), self.console_shutdown.take()]
            .into_iter()
            .flatten()
        {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            let _ = handle.await;
        }
        if let Some(handle) = self.console_server.take() {
            let _ = handle.await;
        }
    }

    /// The audit log, newest first, once the rows of every call answered so far are in
    /// (they are written off the request path).
    pub async fn audit(&self) -> Vec<usestats::store::state::AuditEntry> {
        self.app.background.settled().await;
        self.app
            .state
            .run(|c| usestats::store::state::query_audit(c, None, None, 100_000))
            .await
            .unwrap()
    }

    /// Register another daemon as a peer of this one, the way `usestats peer add` does.
    pub async fn add_peer(&self, other: &TestApp) -> state::Peer {
        let vetted = registration::fetch(
            &self.app.client,
            &other.wwwroot,
            "moodle",
            state::SslVerification::None,
        )
        .await
        .expect("keyswap");
        registration::register(
            &self.app.client,
            &self.app.state,
            Registration {
                vetted,
                application: "moodle".into(),
                name: Some("peer".into()),
                ssl_verification: state::SslVerification::None,
                sponsor: Sponsor::Operator,
            },
            self.app.now(),
        )
        .await
        .expect("registration")
        .expect("an operator's registration always stores the peer")
    }

    /// Store a peer with any certificate, unvetted: for tests that play a host whose
    /// certificate does not match what it claims.
    pub async fn register_cert(&self, wwwroot: &str, pem: &str) -> state::Peer {
        let (w, p, now) = (wwwroot.to_string(), pem.to_string(), self.app.now());
        self.app
            .state
            .run(move |c| {
                state::upsert_peer(
                    c,
                    &state::NewPeer {
                        wwwroot: &w,
                        name: "peer",
                        application: "moodle",
                        public_key: &p,
                        public_key_expires: 0,
                        ssl_verification: state::SslVerification::None,
                    },
                    now,
                )
            })
            .await
            .unwrap()
    }

    pub async fn set_service(
        &self,
        peer_wwwroot: &str,
        service: &str,
        publish: Option<bool>,
        subscribe: Option<bool>,
    ) {
        let (w, s) = (peer_wwwroot.to_string(), service.to_string());
        self.app
            .state
            .run(move |c| {
                let peer = state::peer_by_wwwroot(c, &w)?.expect("peer registered");
                state::set_service(c, peer.id, &s, publish, subscribe)
            })
            .await
            .unwrap();
    }

    pub async fn grant(&self, home: &str, username: &str, site: bool, course: bool) {
        let (h, u, now) = (home.to_string(), username.to_string(), self.app.now());
        self.app
            .state
            .run(move |c| state::put_grant(c, &h, &u, site, course, now))
            .await
            .unwrap();
    }

    /// A grant that the peers in `via` may use on behalf of people of `home` ('*' = any peer).
    pub async fn grant_via(
        &self,
        home: &str,
        username: &str,
        site: bool,
        course: bool,
        via: &[&str],
    ) {
        let (h, u, now) = (home.to_string(), username.to_string(), self.app.now());
        let via: Vec<String> = via.iter().map(|p| p.to_string()).collect();
        self.app
            .state
            .run(move |c| state::put_grant_via(c, &h, &u, site, course, &via, now))
            .await
            .unwrap();
    }

    /// Call `method` on `peer` with this daemon's MNET client.
    pub async fn call_peer(
        &self,
        peer: &state::Peer,
        method: &str,
        params: Vec<usestats::xmlrpc::Value>,
    ) -> Result<usestats::xmlrpc::Value, usestats::mnet::client::ClientError> {
        self.app.client.call(peer, method, params).await
    }

    pub async fn peer(&self, wwwroot: &str) -> state::Peer {
        let w = wwwroot.to_string();
        self.app
            .state
            .run(move |c| state::peer_by_wwwroot(c, &w))
            .await
            .unwrap()
            .expect("peer")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for tx in [self.shutdown.take(), self.console_shutdown.take()]
            .into_iter()
            .flatten()
        {
            let _ = tx.send(());
        }
    }
}

impl AppOptions {
    /// The demo site these options give a daemon whose wwwroot is `local_wwwroot`.
    pub fn demo_site(
        &self,
        local_wwwroot: &str,
        remote_hosts: Vec<String>,
    ) -> usestats::demo::DemoOptions {
        usestats::demo::DemoOptions {
            seed: self.demo_seed,
            users: self.demo_users,
            courses: self.demo_courses,
            log_rows: self.demo_log_rows,
            local_wwwroot: local_wwwroot.to_string(),
            remote_hosts,
            progress: false,
            ..Default::default()
        }
    }
}

/// Build a demo site into the database at `url` through a writable connection of our own
/// (a daemon reads a separate source read-only).
pub async fn build_demo_at(url: &str, demo: usestats::demo::DemoOptions) {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = usestats::store::establish(&url).unwrap();
        usestats::demo::build_demo(&mut conn, "mdl_", &demo).unwrap();
    })
    .await
    .unwrap();
}

pub async fn spawn_app(mut options: AppOptions) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let wwwroot = options.wwwroot.clone().unwrap_or_else(|| {
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", addr.port())
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut config = Config::for_wwwroot(&wwwroot);
    config.path = dir.join("usestats.toml");
    config.base_dir = dir.clone();
    config.server.listen = addr.to_string();
    // The console on a listener of its own, as `serve` runs it, on a port of its own.
    let console_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.console.listen = console_listener.local_addr().unwrap().to_string();
    config.mnet.auto_register = options.auto_register;
    config.mnet.connect_timeout_secs = 2;
    config.mnet.request_timeout_secs = 10;
    config.audit.enabled = true;
    if let Some((cert, key)) = &options.tls {
        config.server.tls_cert = Some(cert.to_string_lossy().into_owned());
        config.server.tls_key = Some(key.to_string_lossy().into_owned());
    }
    if let Some(tweak) = options.tweak.take() {
        tweak(&mut config);
    }
    config.validate().unwrap();
    if !options.keys.is_empty() {
        let store = usestats::crypto::KeyStore::new(config.keys_dir(), config.keys.keep_archived);
        for (key, cert) in &options.keys {
            let id = usestats::crypto::Identity::from_pem(
                &std::fs::read(key).unwrap(),
                &std::fs::read(cert).unwrap(),
            )
            .unwrap();
            store.install(&id).unwrap();
        }
    }
    // A served app, as `usestats serve` opens it: its pools are the server's.
    config.database.role = usestats::config::PoolRole::Serve;
    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .unwrap()
        .unwrap();
    if let Some(remote_hosts) = options.demo_remote_hosts.clone() {
        let demo = options.demo_site(&wwwroot, remote_hosts);
        let prefix = app.config.source.prefix.clone();
        app.source
            .run(move |c| {
                usestats::demo::build_demo(c, &prefix, &demo).map_err(anyhow::Error::from)
            })
            .await
            .unwrap();
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(usestats::http::run(app.clone(), listener, async {
        let _ = rx.await;
    }));
    let (console_addr, console_shutdown, console_server) = if app.config.console.enabled {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let console_addr = console_listener.local_addr().unwrap();
        let server = tokio::spawn(usestats::http::run_surface(
            app.clone(),
            console_listener,
            async {
                let _ = rx.await;
            },
            usestats::console::Surface::Console,
        ));
        (Some(console_addr), Some(tx), Some(server))
    } else {
        (None, None, None)
    };
    TestApp {
        app,
        addr,
        console_addr,
        wwwroot,
        dir,
        shutdown: Some(tx),
        server: Some(server),
        console_shutdown,
        console_server,
        _tmp: tmp,
    }
}

/// POST raw bytes; returns (status, body).
pub async fn post(url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::post(url)
        .header("Content-Type", "text/xml")
        .header("User-Agent", "Moodle")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

pub async fn get(url: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/moodle")
}

/// The local learner of `app`'s demo site with the most log rows: (user id, username).
pub async fn busiest_learner(app: &TestApp) -> (i64, String) {
    let prefix = app.app.config.source.prefix.clone();
    app.app
        .source
        .run::<_, usestats::store::StoreError, _>(move |c| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
                #[diesel(sql_type = diesel::sql_types::Text)]
                username: String,
            }
            let rows: Vec<Row> = diesel::sql_query(format!(
                "SELECT u.id, u.username FROM {prefix}user u JOIN {prefix}logstore_standard_log l ON l.userid = u.id \
                 WHERE u.mnethostid = 1 AND u.username <> 'admin' GROUP BY u.id, u.username ORDER BY COUNT(*) DESC, u.id LIMIT 1"
            ))
            .load(c)?;
            Ok(rows.into_iter().next().map(|r| (r.id, r.username)).expect("a learner with logs"))
        })
        .await
        .unwrap()
}

/// The engine's report for `userid` over the whole log, computed on `app`'s own database.
pub async fn engine_report(app: &TestApp, userid: i64) -> usestats::stats::Report {
    let settings = usestats::reports::settings(&app.app.config.engine);
    let source = usestats::store::source::Source::new(&app.app.config.source.prefix).unwrap();
    let now = app.app.now();
    app.app
        .source
        .run(move |c| {
            usestats::reports::user_report(
                c,
                &source,
                &settings,
                userid,
                usestats::stats::Window {
                    from: 0,
                    to: now,
                    now,
                },
                false,
            )
            .map_err(anyhow::Error::from)
        })
        .await
        .unwrap()
}

/// Wait (up to 20 s, so a loaded machine is not a failure) until `ready()` holds.
pub async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "still not so after 20 s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Run the real `usestats` binary with `--config config` and `args`.
pub fn usestats_cli(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// The recorded Moodle traffic of `tests/vectors/moodle`: A is the Moodle that sent it, B
/// the host it was sent to, whose keys the vectors carry.
pub mod vector {
    use super::*;

    pub const A: &str = "http://127.0.0.1:18281";
    pub const B: &str = "http://127.0.0.1:18282";
    /// The timestamp inside the recorded requests.
    pub const CAPTURED_AT: i64 = 1_795_610_693;

    pub fn read(rel: &str) -> Vec<u8> {
        std::fs::read(vectors().join(rel)).unwrap()
    }

    /// The fault code of B's answer to A (opened with A's key, or read plain), if any.
    #[allow(dead_code)]
    pub fn fault_of(body: &[u8]) -> Option<i64> {
        use usestats::mnet::envelope;
        use usestats::xmlrpc::{self, Limits, Response};
        let xml = if envelope::document_kind(body) == envelope::DocumentKind::Encrypted {
            let a_key = openssl::pkey::PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap();
            let message = envelope::parse_encrypted(body).unwrap();
            let (plain, _) = envelope::open_with(&message, [&a_key]).unwrap();
            envelope::parse_signed(&plain).unwrap().object
        } else {
            body.to_vec()
        };
        match xmlrpc::parse_response(&xml, &Limits::default()).unwrap() {
            Response::Fault(f) => Some(f.code),
            Response::Success(_) => None,
        }
    }

    /// A daemon playing B, with A registered (unless its state already has A, as after a
    /// restart on the same database) and use_stats published to it.
    pub async fn peer(tweak: Option<Tweak>) -> TestApp {
        let b = spawn_app(AppOptions {
            wwwroot: Some(B.into()),
            keys: vec![(
                vectors().join("keys/B-old.key.pem"),
                vectors().join("keys/B-old.cert.pem"),
            )],
            tweak,
            ..Default::default()
        })
        .await;
        if b.app
            .state
            .run(|c| state::peer_by_wwwroot(c, A))
            .await
            .unwrap()
            .is_none()
        {
            b.register_cert(A, &String::from_utf8(read("keys/A.cert.pem")).unwrap())
                .await;
            b.set_service(A, "use_stats", Some(true), None).await;
        }
        b
    }
}

/// Compiles the app's log into its compiled store (what `serve` does in the background), so
/// that the answers the test then asks for come from the store.
#[allow(dead_code)]
pub async fn compile(app: &Arc<App>) -> usestats::compiled::CompileSummary {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let store = usestats::compiled::CompiledStore::for_config(&app.config, &app.state)
            .expect("compiled stats are on by default");
        let source = usestats::store::source::Source::new(&app.config.source.prefix).unwrap();
        let mut state = app.state.get().unwrap();
        let mut conn = app.source.get().unwrap();
        usestats::compiled::compile(
            &mut state,
            &mut conn,
            &source,
            &usestats::reports::settings(&app.config.engine),
            &store.source_key,
            app.now(),
            usestats::compiled::CompileOptions::default(),
        )
        .expect("compile")
    })
    .await
    .unwrap()
}
