//! The console: server-rendered pages for people under `/console/` (docs/console.md). Pages
//! come from askama templates, which escape every value; charts are SVG drawn here, readable
//! without JavaScript; nothing is fetched from elsewhere.
//!
//! Access: only on a listener of its own (`[console] listen`, loopback by default), never on
//! the main one, which a proxy may forward for MNET and the web services: there `/console/`
//! is 404, as if there were no console, whatever the client or its headers. Every page but
//! the login needs a session; every form carries the session's CSRF token; logins are rate
//! limited per (address, account), per address and overall (`limits::LoginLimits`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};

use crate::app::App;

/// An answer, as the HTTP layer sends it.
use crate::body::HttpResponse;

/// Which listener a request came on: the main one, or the console's own
/// (`[console] listen`). Defined here, below the HTTP layer that passes it in, so that the
/// console needs nothing from that layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Main,
    Console,
}

pub mod auth;
pub mod charts;
pub mod notice;
mod pages;
pub mod return_path;

/// Form bodies are small: a login, a peer's URL, a grant.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What every page's layout shows: who is logged in, and the token its forms carry.
pub struct Layout {
    pub user: String,
    pub csrf: String,
    pub site: String,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    /// What the last action did (`notice`), shown in a `role=status` region; often empty.
    pub notice: String,
}

impl Layout {
    /// The same layout, marking `section` in the navigation.
    pub fn at(&self, section: &'static str) -> Layout {
        Layout {
            user: self.user.clone(),
            csrf: self.csrf.clone(),
            site: self.site.clone(),
            section,
            notice: self.notice.clone(),
        }
    }
}

/// A request as the pages see it: who, what, with which query and form fields.
pub struct ConsoleRequest {
    pub app: Arc<App>,
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
    pub layout: Layout,
}

impl ConsoleRequest {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn field(&self, name: &str) -> &str {
        self.form.get(name).map(String::as_str).unwrap_or("")
    }
}

/// What a page handler gives back.
pub enum Reply {
    Html(String),
    /// A page with another status than 200: a form shown again with what went wrong.
    Page(StatusCode, String),
    /// 303 to a path under /console/ (after a form).
    Redirect(String),
    /// A download: content type, file name, bytes.
    File(&'static str, String, Vec<u8>),
    NotFound,
    /// A page that could not be made; the text is shown to the user (escaped).
    Error(StatusCode, String),
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    site: &'a str,
    csrf: &'a str,
    message: &'a str,
    /// The page to go to once logged in (a checked `return_path`), or empty.
    next: &'a str,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    layout: &'a Layout,
    title: &'a str,
    message: &'a str,
}

pub async fn handle(
    app: Arc<App>,
    request: Request<Incoming>,
    remote: Option<SocketAddr>,
    surface: Surface,
) -> HttpResponse {
    if !reachable(&app.config.console, surface) {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    let path = request.uri().path().to_string();
    let path = match path.find("/console") {
        Some(i) => path[i..].to_string(),
        None => path,
    };
    if path == "/console" {
        return redirect("/console/");
    }
    if path == "/console/static/console.css" {
        return with_headers(
            StatusCode::OK,
            "text/css; charset=utf-8",
            include_str!("console.css").as_bytes().to_vec(),
            true,
        );
    }
    let raw_query = request.uri().query().unwrap_or("").to_string();
    let query = parse_pairs(raw_query.as_bytes());
    let cookies = cookies(&request);
    let method = request.method().clone();
    let form = if method == Method::POST {
        match read_form(&app, request).await {
            Ok(form) => form,
            Err(response) => return response,
        }
    } else {
        HashMap::new()
    };
    let site = app.config.site.name.clone();
    if path == "/console/login" {
        let next = match method {
            Method::POST => form.get("next"),
            _ => query.get("next"),
        }
        .and_then(|n| return_path::local(n))
        .unwrap_or("")
        .to_string();
        return login(&app, method, &form, &cookies, remote, (&site, &next)).await;
    }
    let (user, csrf) = match signed_in(&app, &cookies).await {
        Ok(found) => found,
        Err(response) if method == Method::GET && response.status() == StatusCode::SEE_OTHER => {
            // A page asked for without a session is where the login leads back to.
            let asked = match raw_query.as_str() {
                "" => path.clone(),
                q => format!("{path}?{q}"),
            };
            return redirect(&return_path::login_location(&asked));
        }
        Err(response) => return response,
    };
    let layout = Layout {
        user: user.name.clone(),
        notice: if method == Method::GET {
            notice::shown(&query, &csrf)
        } else {
            String::new()
        },
        csrf: csrf.clone(),
        site,
        section: "",
    };
    if method == Method::POST
        && !auth::same_token(form.get("csrf").map(String::as_str).unwrap_or(""), &csrf)
    {
        return page_error(
            Some(&layout),
            StatusCode::FORBIDDEN,
            "This form is out of date or did not come from this console (CSRF check failed). Go back, reload the page and try again.",
        );
    }
    if path == "/console/logout" && method == Method::POST {
        return logout(&app, &cookies).await;
    }
    let request = ConsoleRequest {
        app,
        method,
        path,
        query,
        form,
        layout,
    };
    let reply = pages::route(&request).await;
    respond(reply, &request.layout)
}

/// Ends the session the cookie names, and the cookie.
async fn logout(app: &Arc<App>, cookies: &HashMap<String, String>) -> HttpResponse {
    if let Some(token) = cookies.get(auth::SESSION_COOKIE)
        && let Err(e) = auth::close_session(app, token).await
    {
        tracing::warn!(error = %e, "console: session not closed");
    }
    let mut response = redirect("/console/login");
    set_cookie(
        &mut response,
        &expired_cookie(auth::SESSION_COOKIE, secure(app)),
    );
    response
}

/// A POSTed form, read within the body limits; a response to send instead when it is too
/// large or too slow.
async fn read_form(
    app: &App,
    request: Request<Incoming>,
) -> Result<HashMap<String, String>, HttpResponse> {
    let (parts, body) = request.into_parts();
    let within = std::time::Duration::from_secs(app.config.limits.body_read_timeout_secs);
    match crate::body::read_body_within(
        &parts.headers,
        body,
        MAX_FORM_BYTES,
        within,
        &app.body_budget,
    )
    .await
    {
        Ok((body, _budget)) => Ok(parse_pairs(&body)),
        Err(_) => Err(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is too large or came too slowly\n",
        )),
    }
}

/// The signed-in account and its CSRF token, from the session cookie; otherwise the response
/// to send (to the login page, or "unavailable" when sessions cannot be read).
async fn signed_in(
    app: &Arc<App>,
    cookies: &HashMap<String, String>,
) -> Result<(crate::store::state::ConsoleUser, String), HttpResponse> {
    let session = match cookies.get(auth::SESSION_COOKIE) {
        Some(token) => auth::session(app, token).await,
        None => Ok(None),
    };
    match session {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(redirect("/console/login")),
        Err(e) => {
            tracing::warn!(error = %e, "console: sessions unreadable");
            Err(page_error(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "The state database is unavailable.",
            ))
        }
    }
}

/// A page's reply as an HTTP response.
fn respond(reply: Reply, layout: &Layout) -> HttpResponse {
    match reply {
        Reply::Html(body) => with_headers(
            StatusCode::OK,
            "text/html; charset=utf-8",
            body.into_bytes(),
            false,
        ),
        Reply::Page(status, body) => {
            with_headers(status, "text/html; charset=utf-8", body.into_bytes(), false)
        }
        Reply::Redirect(to) => redirect(&to),
        Reply::File(content_type, name, bytes) => {
            let mut response = with_headers(StatusCode::OK, content_type, bytes, false);
            if let Ok(value) = HeaderValue::from_str(&content_disposition(&name)) {
                response.headers_mut().insert("Content-Disposition", value);
            }
            response
        }
        Reply::NotFound => page_error(
            Some(layout),
            StatusCode::NOT_FOUND,
            "There is no such page.",
        ),
        Reply::Error(status, message) => page_error(Some(layout), status, &message),
    }
}

/// Whether the console answers on `surface`: on its own listener, to whoever reaches it (the
/// operator chose who can, by its address); on the main one, never. A same-host proxy in
/// front of MNET connects from loopback on behalf of anyone, with or without forwarding
/// headers, so nothing about a request on the main listener can say it comes from a person
/// the operator trusts.
fn reachable(config: &crate::config::ConsoleConfig, surface: Surface) -> bool {
    config.enabled && surface == Surface::Console
}

async fn login(
    app: &Arc<App>,
    method: Method,
    form: &HashMap<String, String>,
    cookies: &HashMap<String, String>,
    remote: Option<SocketAddr>,
    (site, next): (&str, &str),
) -> HttpResponse {
    let secure = secure(app);
    // Every answer of the form keeps the page to return to.
    let login_form =
        |site: &str, message: &str, secure: bool| login_page(site, message, secure, next);
    if method != Method::POST {
        return login_form(site, "", secure);
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let expected = cookies
        .get(auth::LOGIN_COOKIE)
        .map(String::as_str)
        .unwrap_or("");
    if expected.is_empty() || !auth::same_token(field("csrf"), expected) {
        return login_form(site, "The login form expired: try again.", secure);
    }
    let (name, password) = (field("name").trim(), field("password"));
    let address = remote.map(|r| r.ip().to_string()).unwrap_or_default();
    if let Err(refused) = app.limits.logins.allow(&address, name) {
        tracing::info!(address = %address, over = refused.as_str(), "console: login rate limit");
        let mut response = login_form(
            site,
            "Too many login attempts: wait a minute and try again.",
            secure,
        );
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return response;
    }
    let user = match auth::check_login(app, name, password).await {
        Ok(user) => user,
        Err(e) => {
            tracing::warn!(error = %e, "console: login not checked");
            return page_error(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "The state database is unavailable.",
            );
        }
    };
    let Some(user) = user else {
        tracing::info!(address = %address, account = %crate::text::from_peer::one_line(name, 64), "console: login refused");
        return login_form(site, "Wrong name or password.", secure);
    };
    match auth::open_session(app, &user).await {
        Ok((token, _csrf)) => {
            tracing::info!(account = %user.name, "console: logged in");
            let mut response = redirect(if next.is_empty() { "/console/" } else { next });
            set_cookie(
                &mut response,
                &session_cookie(auth::SESSION_COOKIE, &token, secure),
            );
            set_cookie(&mut response, &expired_cookie(auth::LOGIN_COOKIE, secure));
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "console: session not opened");
            page_error(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "The state database is unavailable.",
            )
        }
    }
}

fn login_page(site: &str, message: &str, secure: bool, next: &str) -> HttpResponse {
    let token = match auth::random_token() {
        Ok(t) => t,
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "no randomness\n"),
    };
    let page = LoginPage {
        site,
        csrf: &token,
        message,
        next,
    };
    let mut response = render(StatusCode::OK, &page);
    set_cookie(
        &mut response,
        &session_cookie(auth::LOGIN_COOKIE, &token, secure),
    );
    response
}

/// The cookie flags: `Secure` when we serve https ourselves or our wwwroot is https (a TLS
/// proxy in front).
fn secure(app: &App) -> bool {
    app.config.server.tls_cert.is_some() || app.wwwroot().starts_with("https://")
}

fn session_cookie(name: &str, value: &str, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

fn expired_cookie(name: &str, secure: bool) -> String {
    format!(
        "{name}=; Path=/console/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

fn set_cookie(response: &mut HttpResponse, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

fn cookies<B>(request: &Request<B>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for header in request.headers().get_all(hyper::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                out.insert(name.to_string(), value.to_string());
            }
        }
    }
    out
}

fn parse_pairs(bytes: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// RFC 6266: `filename` for clients that know nothing else, in ASCII letters, digits and
/// `-_.` (anything else as `_`), then `filename*` (RFC 8187) with the name as it is, UTF-8
/// percent-encoded, which browsers prefer when both are given.
fn content_disposition(name: &str) -> String {
    format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        safe_file_name(name),
        percent_encoding::utf8_percent_encode(name, ATTR_CHAR)
    )
}

/// What RFC 8187's `attr-char` leaves unencoded.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => with_headers(status, "text/html; charset=utf-8", html.into_bytes(), false),
        Err(e) => {
            tracing::error!(error = %e, "console: a page did not render");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered\n",
            )
        }
    }
}

fn page_error(layout: Option<&Layout>, status: StatusCode, message: &str) -> HttpResponse {
    // Before a session there is no layout to show: the message alone, as text.
    let Some(layout) = layout else {
        return with_headers(
            status,
            "text/plain; charset=utf-8",
            format!("{message}\n").into_bytes(),
            false,
        );
    };
    render(
        status,
        &MessagePage {
            layout,
            title: what_happened(status),
            message,
        },
    )
}

/// An error page's heading: what happened, in words, rather than the HTTP status.
fn what_happened(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Nothing found here",
        StatusCode::FORBIDDEN => "The form was not accepted",
        StatusCode::BAD_REQUEST => "That cannot be done as asked",
        StatusCode::CONFLICT => "Something changed meanwhile",
        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => "The other site did not answer",
        StatusCode::SERVICE_UNAVAILABLE => "The console cannot reach its data",
        _ => "Something went wrong on our side",
    }
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    with_headers(
        status,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
        false,
    )
}

fn redirect(to: &str) -> HttpResponse {
    let mut response = with_headers(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Vec::new(),
        false,
    );
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Every console answer: no caching of pages (they show who may do what), no framing, no
/// sniffing, no referrer, and a policy that allows nothing but this console's own styles and
/// forms (the charts are inline SVG, and there is no script at all).
fn with_headers(
    status: StatusCode,
    content_type: &str,
    body: Vec<u8>,
    cacheable: bool,
) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let fixed = [
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Cache-Control",
            if cacheable {
                "max-age=3600"
            } else {
                "no-store"
            },
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_answers_on_its_own_listener_only() {
        let mut config = crate::config::ConsoleConfig::default();
        assert!(reachable(&config, Surface::Console));
        assert!(!reachable(&config, Surface::Main));
        config.enabled = false;
        assert!(!reachable(&config, Surface::Console));
    }

    #[test]
    fn downloads_name_their_file_in_ascii_and_in_utf8() {
        assert_eq!(
            content_disposition("course-Économie_1-2026-06-01_2026-06-30.xlsx"),
            "attachment; filename=\"course-_conomie_1-2026-06-01_2026-06-30.xlsx\"; \
             filename*=UTF-8''course-%C3%89conomie_1-2026-06-01_2026-06-30.xlsx"
        );
        let hostile = content_disposition("a\"; b\r\n=x.csv");
        assert!(
            hostile.starts_with("attachment; filename=\"a___b___x.csv\"; "),
            "{hostile}"
        );
        assert!(hostile.ends_with("filename*=UTF-8''a%22%3B%20b%0D%0A%3Dx.csv"));
        assert!(HeaderValue::from_str(&hostile).is_ok());
    }
}
