//! The HTTP surface: hyper 1 on tokio. `run(app, listener, shutdown)` serves until the
//! shutdown future resolves, then lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::app::App;
use crate::mnet::faults;
use crate::xmlrpc::{self, Fault};

pub type HttpResponse = Response<Full<Bytes>>;

const XML: &str = "text/xml; charset=utf-8";

pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

fn xml_fault(fault: Fault) -> HttpResponse {
    respond(StatusCode::OK, XML, xmlrpc::serialize_fault(&fault))
}

/// Serve connections from `listener` until `shutdown` completes; then stop accepting and
/// wait (up to 30 s) for the calls in flight, then (up to 10 s) for their audit rows.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    crate::limits::load_replay_keys_at_start(&app).await;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let tls = match (&app.config.server.tls_cert, &app.config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(
            &app.config.resolve(cert),
            &app.config.resolve(key),
        )?),
        _ => None,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            app.config.limits.header_read_timeout_secs,
        ));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let service = hyper::service::service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(route(app, request, Some(remote)).await) }
                });
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let served = match tls {
                        None => {
                            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                        Some(acceptor) => {
                            let Some(stream) = tls_handshake(&acceptor, stream).await else {
                                return;
                            };
                            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                    };
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("calls still running after 30 s; stopping anyway");
        }
    }
    // The answered calls' audit rows and contact times are still on their way.
    if tokio::time::timeout(Duration::from_secs(10), app.background.settled())
        .await
        .is_err()
    {
        tracing::warn!(
            pending = app.background.pending(),
            "audit rows still unwritten after 10 s; stopping anyway"
        );
    }
    Ok(())
}

/// TLS for sites whose wwwroot is https and that are not behind a proxy: OpenSSL with
/// Mozilla's intermediate profile, certificate chain and key from PEM files.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<Arc<openssl::ssl::SslAcceptor>> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let io_error = |what: &str, e: openssl::error::ErrorStack| {
        std::io::Error::other(format!("TLS {what}: {e}"))
    };
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| io_error("setup", e))?;
    builder
        .set_certificate_chain_file(cert)
        .map_err(|e| io_error(&format!("certificate {}", cert.display()), e))?;
    builder
        .set_private_key_file(key, SslFiletype::PEM)
        .map_err(|e| io_error(&format!("key {}", key.display()), e))?;
    builder
        .check_private_key()
        .map_err(|e| io_error("key does not match the certificate", e))?;
    Ok(Arc::new(builder.build()))
}

/// A client that does not finish its handshake in 10 s is dropped.
async fn tls_handshake(
    acceptor: &openssl::ssl::SslAcceptor,
    stream: tokio::net::TcpStream,
) -> Option<tokio_openssl::SslStream<tokio::net::TcpStream>> {
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).ok()?;
    let mut stream = tokio_openssl::SslStream::new(ssl, stream).ok()?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        std::pin::Pin::new(&mut stream).accept(),
    )
    .await
    {
        Ok(Ok(())) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// The request path below our wwwroot: a wwwroot such as `https://host/usestats` makes
/// Moodle call `/usestats/mnet/xmlrpc/server.php`. Paths without the prefix are served too,
/// for a reverse proxy that strips it.
fn local_path<'a>(app: &App, path: &'a str) -> &'a str {
    let wwwroot = app.wwwroot();
    let prefix = wwwroot
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    if prefix.is_empty() {
        return path;
    }
    match path.strip_prefix(prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The endpoints that do real work: they count against the concurrency cap and the
/// per-address rate limit.
fn is_guarded(path: &str) -> bool {
    matches!(
        path,
        "/mnet/xmlrpc/server.php" | "/api/xmlrpc/server.php" | "/webservice/rest/server.php"
    )
}

pub async fn route(
    app: Arc<App>,
    request: Request<Incoming>,
    remote: Option<SocketAddr>,
) -> HttpResponse {
    let path = local_path(&app, request.uri().path()).to_string();
    if !is_guarded(&path) {
        return dispatch(app, request, remote).await;
    }
    let Ok(_permit) = app.limits.in_flight.try_acquire() else {
        app.metrics
            .rejected_busy
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut response = respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "too many requests in progress, retry shortly\n",
        );
        response
            .headers_mut()
            .insert("Retry-After", HeaderValue::from_static("1"));
        return response;
    };
    if let Some(ip) = remote.map(|r| r.ip())
        && !app.limits.per_ip.allow(&ip.to_string())
    {
        app.metrics
            .rejected_rate
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(%ip, "rate limit: request refused");
        return if path.starts_with("/webservice") {
            respond(
                StatusCode::OK,
                "application/json",
                "{\"exception\":\"moodle_exception\",\"errorcode\":\"toomanyrequests\",\"message\":\"Too many requests from your address: try again in a minute\"}",
            )
        } else {
            xml_fault(Fault::new(
                faults::RATE_LIMITED,
                "Too many requests from your address: try again in a minute",
            ))
        };
    }
    // A guard, because hyper drops this future when the client goes away mid-call.
    struct InFlight(Arc<App>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0
                .metrics
                .in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    app.metrics
        .in_flight
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _in_flight = InFlight(app.clone());
    dispatch(app.clone(), request, remote).await
}

async fn dispatch(
    app: Arc<App>,
    request: Request<Incoming>,
    remote: Option<SocketAddr>,
) -> HttpResponse {
    let path = local_path(&app, request.uri().path()).to_string();
    match (request.method().clone(), path.as_str()) {
        (Method::POST, "/mnet/xmlrpc/server.php") | (Method::POST, "/api/xmlrpc/server.php") => {
            mnet_endpoint(app, request, remote).await
        }
        (_, "/mnet/xmlrpc/server.php") | (_, "/api/xmlrpc/server.php") => {
            let mut response = respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "MNET requests are POSTed XML-RPC\n",
            );
            response
                .headers_mut()
                .insert("Allow", HeaderValue::from_static("POST"));
            response
        }
        (Method::GET, "/mnet/publickey.php") | (Method::GET, "/api/xmlrpc/publickey.php") => {
            respond(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                app.keyring().current.cert_pem.clone(),
            )
        }
        (Method::GET, "/") | (Method::HEAD, "/") => home_page(&app),
        (Method::GET, "/healthz") => health(&app).await,
        (Method::GET, "/metrics") => metrics(&app).await,
        (Method::GET, "/webservice/rest/server.php")
        | (Method::POST, "/webservice/rest/server.php")
            if app.config.ws.enabled =>
        {
            crate::ws::endpoint(app, request, remote).await
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        ),
    }
}

/// Read at most `limit` bytes of body. `Err` carries the answer to send instead.
pub async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, Option<usize>> {
    read_body_within(request, limit, Duration::from_secs(30)).await
}

/// As [`read_body`], giving up when the client has not sent the whole body in `within`.
pub async fn read_body_within(
    request: Request<Incoming>,
    limit: usize,
    within: Duration,
) -> Result<Bytes, Option<usize>> {
    match tokio::time::timeout(within, read_body_unbounded(request, limit)).await {
        Ok(result) => result,
        Err(_) => Err(None),
    }
}

async fn read_body_unbounded(
    request: Request<Incoming>,
    limit: usize,
) -> Result<Bytes, Option<usize>> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Some(limit));
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Some(limit))
        }
        Err(_) => Err(None),
    }
}

async fn mnet_endpoint(
    app: Arc<App>,
    request: Request<Incoming>,
    remote: Option<SocketAddr>,
) -> HttpResponse {
    let limit = app.config.server.max_body_bytes;
    let within = Duration::from_secs(app.config.limits.body_read_timeout_secs);
    let body = match read_body_within(request, limit, within).await {
        Ok(body) => body,
        Err(Some(limit)) => {
            tracing::info!(?remote, limit, "refused an oversized MNET request");
            return xml_fault(Fault::new(
                faults::BODY_TOO_LARGE,
                format!("Request body larger than {limit} bytes"),
            ));
        }
        Err(None) => {
            return xml_fault(Fault::new(
                15,
                "Invalid request payload: the body could not be read",
            ));
        }
    };
    let outcome = crate::mnet::server::handle(app, &body, remote).await;
    respond(StatusCode::OK, XML, outcome.body)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Moodle reads the `<title>` of this page to name a new peer.
fn home_page(app: &App) -> HttpResponse {
    let name = html_escape(&app.config.site.name);
    let wwwroot = html_escape(app.wwwroot());
    let info = app.keyring().current.info();
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name}</title></head>\n<body>\n<h1>{name}</h1>\n<p>usestats {version}: a Moodle MNET peer serving use_stats for {wwwroot}.</p>\n<ul>\n<li>MNET endpoint: <code>{wwwroot}/mnet/xmlrpc/server.php</code> (register as application \"moodle\")</li>\n<li>Certificate: <a href=\"mnet/publickey.php\">mnet/publickey.php</a>, SHA-1 fingerprint <code>{fp}</code></li>\n<li>Web services: <code>{wwwroot}/webservice/rest/server.php</code></li>\n</ul>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
        fp = info.fingerprint_sha1,
    );
    respond(StatusCode::OK, "text/html; charset=utf-8", body)
}

/// 200 when the state database answers, and the source too when it is a separate database
/// (a Moodle's): without it no number can be served.
async fn health(app: &Arc<App>) -> HttpResponse {
    let mut databases = vec![("state", &app.state)];
    if app.config.source_is_separate() {
        databases.push(("source", &app.source));
    }
    for (name, db) in databases {
        let probed = db
            .run(|c| crate::store::probe(c).map_err(crate::store::StoreError::Query))
            .await;
        if let Err(e) = probed {
            return respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("{name} database unavailable: {e}\n"),
            );
        }
    }
    respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
}

/// `usestats serve`: run until SIGTERM or Ctrl-C, with the maintenance loop (key rotation
/// before expiry, audit retention) alongside.
pub async fn serve_forever(app: Arc<App>, listener: TcpListener) -> std::io::Result<()> {
    let maintenance = tokio::spawn(maintenance_loop(app.clone()));
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down: finishing the calls in flight");
    };
    let result = run(app, listener, shutdown).await;
    maintenance.abort();
    result
}

/// Once a minute: rotate our key when its certificate is about to expire (peers follow
/// through 7025), and drop audit entries past their retention.
pub async fn maintenance_loop(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        maintenance_once(&app).await;
    }
}

pub async fn maintenance_once(app: &Arc<App>) {
    // `usestats keys rotate` run by an operator changes the files under a running daemon.
    let on_disk = std::fs::read_to_string(app.keystore.dir().join("current.cert.pem")).ok();
    if on_disk.is_some_and(|pem| pem != app.keyring().current.cert_pem) {
        match app.reload_keys() {
            Ok(()) => tracing::info!(
                fingerprint = %app.keyring().current.info().fingerprint_sha1,
                "picked up a key pair rotated on disk"
            ),
            Err(e) => tracing::error!(error = %e, "could not reload the rotated key pair"),
        }
    }
    let before_days = i64::from(app.config.keys.rotate_before_days);
    if before_days > 0 {
        let expires = app.keyring().current.info().not_after;
        if expires - before_days * 86_400 <= app.now() {
            let rotating = app.clone();
            match tokio::task::spawn_blocking(move || rotating.rotate_keys()).await {
                Ok(Ok(ring)) => tracing::info!(
                    fingerprint = %ring.current.info().fingerprint_sha1,
                    "rotated our key before it expires"
                ),
                Ok(Err(e)) => tracing::error!(error = %e, "automatic key rotation failed"),
                Err(e) => tracing::error!(error = %e, "automatic key rotation failed"),
            }
        }
    }
    crate::limits::prune_replay_keys(app).await;
    let retention = i64::from(app.config.audit.retention_days);
    if retention > 0 {
        let cutoff = app.now() - retention * 86_400;
        if let Err(e) = app
            .state
            .run(move |c| crate::store::state::prune_audit(c, cutoff))
            .await
        {
            tracing::warn!(error = %e, "audit retention not applied");
        }
    }
}

async fn metrics(app: &Arc<App>) -> HttpResponse {
    let peers = app
        .state
        .run(|c| crate::store::state::all_peers(c, false))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.wwwroot, p.public_key_expires, p.last_connect_time))
        .collect::<Vec<_>>();
    respond(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        app.metrics.render(&peers, app.now()),
    )
}
