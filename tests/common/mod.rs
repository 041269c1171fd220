//! Shared by the integration tests: databases on both backends, and (below) real servers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// A database that exists for one test. SQLite: a temporary file. PostgreSQL: a fresh
/// database on the server named by `USESTATS_TEST_PG_URL`, dropped afterwards.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg_admin
            && let Ok(mut conn) = usestats::store::establish(admin_url)
        {
            use diesel::RunQueryDsl;
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = dir
        .path()
        .join("test.sqlite3")
        .to_string_lossy()
        .into_owned();
    TestDb {
        url,
        _dir: Some(dir),
        pg_admin: None,
    }
}

/// `None` when no PostgreSQL server is configured, unless `USESTATS_REQUIRE_PG=1`, in which
/// case a missing server fails the test instead of skipping it.
pub fn postgres_db() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("USESTATS_TEST_PG_URL") else {
        if std::env::var("USESTATS_REQUIRE_PG").as_deref() == Ok("1") {
            panic!("USESTATS_REQUIRE_PG=1 but USESTATS_TEST_PG_URL is not set");
        }
        eprintln!("PostgreSQL tests skipped: USESTATS_TEST_PG_URL not set");
        return None;
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "usestats_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = usestats::store::establish(&admin_url).expect("PostgreSQL server for tests");
    {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .unwrap();
    }
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin_url.clone());
    Some(TestDb {
        url: format!("{base}/{name}"),
        _dir: None,
        pg_admin: Some((admin_url, name)),
    })
}

/// Every backend available for this run: SQLite always, PostgreSQL when configured.
pub fn all_dbs() -> Vec<TestDb> {
    let mut dbs = vec![sqlite_db()];
    dbs.extend(postgres_db());
    dbs
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use usestats::app::App;
use usestats::config::Config;
use usestats::store::state;

/// A change to a test daemon's configuration before it starts.
pub type Tweak = Box<dyn FnOnce(&mut Config) + Send>;

/// A real usestats daemon on 127.0.0.1, port chosen by the OS, with its own directory,
/// keys and SQLite database.
pub struct TestApp {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    pub wwwroot: String,
    pub dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
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
            tweak: None,
            tls: None,
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            let _ = handle.await;
        }
    }

    /// Register another daemon as a peer of this one, the way `usestats peer add` does.
    pub async fn add_peer(&self, other: &TestApp) -> state::Peer {
        let pem = self
            .app
            .client
            .keyswap(&self.app, &other.wwwroot, "moodle", 0, None)
            .await
            .expect("keyswap");
        let cert = usestats::crypto::parse_cert_pem(&pem).unwrap();
        let info = usestats::crypto::check_credentials(&cert, &other.wwwroot).unwrap();
        let (w, now) = (other.wwwroot.clone(), self.app.now());
        self.app
            .state
            .run(move |c| {
                state::upsert_peer(
                    c,
                    &state::NewPeer {
                        wwwroot: &w,
                        name: "peer",
                        application: "moodle",
                        public_key: &pem,
                        public_key_expires: info.not_after,
                        ssl_verification: 0,
                    },
                    now,
                )
            })
            .await
            .unwrap()
    }

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
                        ssl_verification: 0,
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
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn spawn_app(options: AppOptions) -> TestApp {
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
    config.mnet.auto_register = options.auto_register;
    config.mnet.connect_timeout_secs = 2;
    config.mnet.request_timeout_secs = 10;
    config.audit.enabled = true;
    if let Some((cert, key)) = &options.tls {
        config.server.tls_cert = Some(cert.to_string_lossy().into_owned());
        config.server.tls_key = Some(key.to_string_lossy().into_owned());
    }
    if let Some(tweak) = options.tweak {
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
    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .unwrap()
        .unwrap();
    if let Some(remote_hosts) = options.demo_remote_hosts {
        let demo = usestats::demo::DemoOptions {
            seed: options.demo_seed,
            users: 20,
            courses: 4,
            log_rows: options.demo_log_rows,
            local_wwwroot: wwwroot.clone(),
            remote_hosts,
            progress: false,
            ..Default::default()
        };
        let prefix = app.config.source.prefix.clone();
        app.source
            .run(move |c| {
                usestats::demo::build_demo(c, &prefix, &demo)
                    .map_err(|e| usestats::store::StoreError::Invalid(e.to_string()))
            })
            .await
            .unwrap();
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(usestats::http::run(app.clone(), listener, async {
        let _ = rx.await;
    }));
    TestApp {
        app,
        addr,
        wwwroot,
        dir,
        shutdown: Some(tx),
        server: Some(server),
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
