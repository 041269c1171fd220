//! The HTTP surface: hyper 1 on tokio. `run(app, listener, shutdown)` serves until the
//! shutdown future resolves, then lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::SemaphorePermit;

use crate::app::App;
use crate::mnet::faults;
use crate::xmlrpc::{self, Fault};

pub mod conn;
mod serve;
mod tls;

pub use serve::{run, run_surface, serve_forever};
pub use tls::tls_acceptor;

use crate::body::{BodyError, HttpResponse, read_body_within};
use crate::console::Surface;

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

/// Answer one request. `conn` is the connection it came on: while a request is processed
/// (not while its body is still arriving) the connection is busy, so it is neither closed as
/// idle nor evicted at the connection cap.
pub async fn route(
    app: Arc<App>,
    request: Request<Incoming>,
    remote: Option<SocketAddr>,
    conn: Option<Arc<conn::ConnState>>,
    surface: Surface,
) -> HttpResponse {
    let path = local_path(&app, request.uri().path()).to_string();
    if path == "/console" || path.starts_with("/console/") {
        let _busy = conn.as_ref().map(|c| c.busy());
        return crate::console::handle(app, request, remote, surface).await;
    }
    if surface == Surface::Console {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        );
    }
    if !is_guarded(&path) {
        let _busy = conn.as_ref().map(|c| c.busy());
        return dispatch(app, request, remote).await;
    }
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
    // The body is read before a request slot is taken: a slot is held only while a request
    // is processed, so clients that send their bodies slowly (or never) cannot take every
    // slot. They hold only their own connection, until the body deadline.
    let (parts, body) = request.into_parts();
    let receiving = Receiving::new(&app);
    let body = read_guarded_body(&app, &parts, &path, body).await;
    drop(receiving);
    // The budget's share of this body is held until the request is answered.
    let (body, _budget) = match body {
        Ok(read) => read,
        Err(response) => return response,
    };
    let _busy = conn.as_ref().map(|c| c.busy());
    let Ok(_permit) = app.limits.in_flight.try_acquire() else {
        app.metrics
            .rejected_busy
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return busy_response();
    };
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
    match (parts.method.clone(), path.as_str()) {
        (Method::POST, "/mnet/xmlrpc/server.php") | (Method::POST, "/api/xmlrpc/server.php") => {
            mnet_endpoint(app.clone(), body, remote).await
        }
        (Method::GET | Method::POST, "/webservice/rest/server.php") if app.config.ws.enabled => {
            let answer = crate::ws::endpoint(app.clone(), &parts, body, remote).await;
            respond(StatusCode::OK, answer.content_type, answer.body)
        }
        _ => not_guarded(&path),
    }
}

fn busy_response() -> HttpResponse {
    let mut response = respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        "too many requests in progress, retry shortly\n",
    );
    response
        .headers_mut()
        .insert("Retry-After", HeaderValue::from_static("1"));
    response
}

/// Counts a request in [`App::receiving`] while its body comes in; a guard, because hyper
/// drops the future when the client goes away.
struct Receiving<'a>(&'a App);

impl<'a> Receiving<'a> {
    fn new(app: &'a App) -> Receiving<'a> {
        app.receiving
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Receiving(app)
    }
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.0
            .receiving
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The answer for a guarded path asked with a method it does not serve.
fn not_guarded(path: &str) -> HttpResponse {
    if path.starts_with("/webservice") {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        );
    }
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

/// The body of a guarded request within its endpoint's size limit and the body deadline,
/// or the endpoint's own answer for a body too large or not sent in time.
async fn read_guarded_body<'a>(
    app: &'a App,
    parts: &http::request::Parts,
    path: &str,
    body: Incoming,
) -> Result<(Bytes, Option<SemaphorePermit<'a>>), HttpResponse> {
    let within = Duration::from_secs(app.config.limits.body_read_timeout_secs);
    let mnet = !path.starts_with("/webservice");
    let limit = if mnet {
        app.config.server.max_body_bytes
    } else {
        crate::ws::MAX_FORM_BYTES
    };
    if parts.method != Method::POST {
        return Ok((Bytes::new(), None));
    }
    match read_body_within(&parts.headers, body, limit, within, &app.body_budget).await {
        Ok(read) => Ok(read),
        Err(BodyError::TooLarge(limit)) if mnet => {
            tracing::info!(limit, "refused an oversized MNET request");
            Err(xml_fault(Fault::new(
                faults::BODY_TOO_LARGE,
                format!("Request body larger than {limit} bytes"),
            )))
        }
        Err(BodyError::TooLarge(_)) => Err(respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain; charset=utf-8",
            "request body too large\n",
        )),
        Err(BodyError::OverBudget) => {
            app.metrics
                .rejected_busy
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(busy_response())
        }
        Err(BodyError::Unreadable) if mnet => Err(xml_fault(Fault::new(
            faults::INVALID_REQUEST,
            "Invalid request payload: the body could not be read in time",
        ))),
        Err(BodyError::Unreadable) => Err(respond(
            StatusCode::REQUEST_TIMEOUT,
            "text/plain; charset=utf-8",
            "request body not received in time\n",
        )),
    }
}

async fn dispatch(
    app: Arc<App>,
    request: Request<Incoming>,
    _remote: Option<SocketAddr>,
) -> HttpResponse {
    let path = local_path(&app, request.uri().path()).to_string();
    match (request.method().clone(), path.as_str()) {
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
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        ),
    }
}

async fn mnet_endpoint(app: Arc<App>, body: Bytes, remote: Option<SocketAddr>) -> HttpResponse {
    let outcome = crate::mnet::server::handle(app.node.clone(), body, remote).await;
    respond(StatusCode::OK, XML, outcome.body)
}

/// Moodle reads the `<title>` of this page to name a new peer.
fn home_page(app: &App) -> HttpResponse {
    let name = crate::text::markup::html(&app.config.site.name);
    let wwwroot = crate::text::markup::html(app.wwwroot());
    let info = app.keyring().current.info();
    // The console is on a listener of its own, whose address is not announced here.
    let console = if app.config.console.enabled {
        "<li>Console: on a listener of its own</li>\n"
    } else {
        ""
    };
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name}</title></head>\n<body>\n<h1>{name}</h1>\n<p>usestats {version}: a Moodle MNET peer serving use_stats for {wwwroot}.</p>\n<ul>\n<li>MNET endpoint: <code>{wwwroot}/mnet/xmlrpc/server.php</code> (register as application \"moodle\")</li>\n<li>Certificate: <a href=\"mnet/publickey.php\">mnet/publickey.php</a>, SHA-1 fingerprint <code>{fp}</code></li>\n<li>Web services: <code>{wwwroot}/webservice/rest/server.php</code></li>\n{console}</ul>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
        fp = info.fingerprint_sha1,
    );
    respond(StatusCode::OK, "text/html; charset=utf-8", body)
}

/// 200 when the state database answers, and the source too when it is a separate database
/// (a Moodle's) holding Moodle's log: without it no number can be served. A source that is
/// missing, empty or down is 503, naming why.
async fn health(app: &Arc<App>) -> HttpResponse {
    let mut databases = vec![("state", &app.state, "SELECT 1".to_string())];
    if app.config.source_is_separate() {
        databases.push((
            "source",
            &app.source,
            crate::store::source_probe(&app.config.source.prefix),
        ));
    }
    for (name, db, probe) in databases {
        let probed = db
            .run(move |c| {
                use diesel::RunQueryDsl;
                diesel::sql_query(probe)
                    .execute(c)
                    .map_err(crate::store::StoreError::Query)
            })
            .await;
        if let Err(e) = probed {
            return respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("{name} database unavailable: {e}\n"),
            );
        }
    }
    let mut body = String::from("ok\n");
    if app.config.engine.compiled
        && let Ok(Some(meta)) = app.state.run(crate::store::state::compiled_meta).await
        && let Some(line) = crate::compiled::first_compile_line(&meta)
    {
        // Still healthy: answers are full scans meanwhile, slower but right.
        body.push_str(&line);
        body.push('\n');
    }
    respond(StatusCode::OK, "text/plain; charset=utf-8", body)
}

async fn metrics(app: &Arc<App>) -> HttpResponse {
    let instances = match app.metrics.instances.get(&app.state, app.now()).await {
        Ok(rows) => Some(rows),
        Err(e) => {
            tracing::debug!(error = %e, "instances not read for /metrics");
            None
        }
    };
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
        app.metrics.render(
            &peers,
            instances.as_ref().map(|rows| rows.as_slice()),
            app.now(),
        ),
    )
}
