//! The console over real HTTP: logins, sessions, CSRF, the login rate limit, escaping, the
//! overview, adding a peer against a second daemon (and refusing a key swapped meanwhile),
//! grants and tokens, and where the console answers at all.
//!
//! A small cookie-keeping client stands in for a browser. Each test's client speaks from
//! its own loopback address (127.0.0.N), so that the login limits, which count per address,
//! tell the test's clients apart.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use common::{AppOptions, TestApp, spawn_app};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use usestats::store::state;

const PASSWORD: &str = "correct horse battery staple";
const SCRIPT: &str = "<script>alert(1)</script>";
/// [`SCRIPT`] as askama escapes it: numeric entities (`&#60;` is `&lt;`).
const ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";

/// An answer: status, `Location`, body.
struct Page {
    status: u16,
    location: String,
    body: String,
}

/// A browser without JavaScript: keeps the cookies the console sets and sends them back.
struct Browser {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    cookies: HashMap<String, String>,
}

impl Browser {
    /// A browser for the daemon at `addr`, speaking from 127.0.0.`source`.
    fn new(addr: SocketAddr, source: u8) -> Browser {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source))));
        Browser {
            base: format!("http://{addr}"),
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<String>) -> Page {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("Cookie", cookie);
        }
        if form.is_some() {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let first = text.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send("POST", path, Some(form)).await
    }

    /// Submit the form `form_id` of `page` as a browser would: its hidden fields (the CSRF
    /// token among them), then `fields`.
    async fn submit(&mut self, page: &Page, form_id: &str, fields: &[(&str, &str)]) -> Page {
        let form = form_html(&page.body, form_id);
        let action = attribute(&form, "action").expect("the form has an action");
        let mut all = hidden_fields(&form);
        for (name, value) in fields {
            all.retain(|(n, _)| n != name);
            all.push((name.to_string(), value.to_string()));
        }
        let pairs: Vec<(&str, &str)> = all.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.post(&action, &pairs).await
    }

    /// Log in through the login form; the answer to the login POST.
    async fn login(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200);
        let csrf = hidden_fields(&form.body)
            .into_iter()
            .find(|(n, _)| n == "csrf")
            .unwrap()
            .1;
        self.post(
            "/console/login",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
    }

    async fn logged_in(addr: SocketAddr, source: u8, name: &str) -> Browser {
        let mut browser = Browser::new(addr, source);
        let answer = browser.login(name, PASSWORD).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        assert_eq!(answer.location, "/console/");
        browser
    }
}

/// The text of an attribute in the first tag of `html`.
fn attribute(html: &str, name: &str) -> Option<String> {
    let tag_end = html.find('>')?;
    let tag = &html[..tag_end];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The `<form id="…">` … `</form>` of a page.
fn form_html(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no element {id} in {page}"));
    let start = page[..at].rfind("<form").expect("a form");
    let end = page[start..].find("</form>").unwrap() + start;
    page[start..end].to_string()
}

/// Every `<input type="hidden">` of `html`: (name, value).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.match_indices("<input type=\"hidden\"")
        .map(|(i, _)| {
            let tag = &html[i..];
            (
                attribute(tag, "name").unwrap(),
                attribute(tag, "value").unwrap_or_default(),
            )
        })
        .collect()
}

/// The session's CSRF token, as a page's forms carry it.
fn csrf_of(page: &Page) -> String {
    hidden_fields(&page.body)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .expect("a form with a csrf field")
        .1
}

/// The text of the element with `id`, up to its closing tag.
fn element_text(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let start = page[at..].find('>').unwrap() + at + 1;
    let end = page[start..].find('<').unwrap() + start;
    unescape(&page[start..end])
}

/// A console account `name` with [`PASSWORD`] on `app`.
async fn account(app: &TestApp, name: &str) {
    let hash = usestats::console::auth::hash_password(PASSWORD).unwrap();
    let (name, now) = (name.to_string(), app.app.now());
    app.app
        .state
        .run(move |c| state::set_console_user(c, &name, &hash, now))
        .await
        .unwrap();
}

async fn peers_of(app: &TestApp) -> Vec<state::Peer> {
    app.app
        .state
        .run(|c| state::all_peers(c, true))
        .await
        .unwrap()
}

async fn grants_of(app: &TestApp) -> Vec<state::Grant> {
    app.app.state.run(state::list_grants).await.unwrap()
}

/// Every page and form path of the console.
const GET_PATHS: &[&str] = &[
    "/console/",
    "/console/peers",
    "/console/peers/grants",
    "/console/peers/tokens",
    "/console/learner",
    "/console/course",
    "/console/no-such-page",
];
const POST_PATHS: &[&str] = &[
    "/console/checks",
    "/console/peers/add",
    "/console/peers/confirm",
    "/console/peers/service",
    "/console/peers/remove",
    "/console/peers/grants/add",
    "/console/peers/grants/remove",
    "/console/peers/tokens/create",
    "/console/peers/tokens/revoke",
    "/console/logout",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_and_no_form_without_a_session() {
    let a = spawn_app(AppOptions::default()).await;
    account(&a, "admin").await;
    let mut anonymous = Browser::new(a.console(), 11);
    // A cookie that names no session is no session either.
    let mut forged = Browser::new(a.console(), 11);
    forged
        .cookies
        .insert("usestats_console".into(), "0".repeat(64));
    for browser in [&mut anonymous, &mut forged] {
        for path in GET_PATHS {
            let page = browser.get(path).await;
            assert_eq!(page.status, 303, "GET {path}: {}", page.body);
            // The login leads back to the page asked for (docs/console.md, deep links).
            assert!(page.location.starts_with("/console/login"), "GET {path}");
            assert!(!page.body.contains("<table"), "GET {path}");
        }
        for path in POST_PATHS {
            let page = browser
                .post(
                    path,
                    &[
                        ("csrf", "x"),
                        ("wwwroot", "http://127.0.0.1:9"),
                        ("home_wwwroot", "http://moodle.example.org"),
                        ("username", "someone"),
                        ("site", "1"),
                    ],
                )
                .await;
            assert_eq!(page.status, 303, "POST {path}: {}", page.body);
            assert_eq!(page.location, "/console/login", "POST {path}");
        }
    }
    assert!(grants_of(&a).await.is_empty(), "no grant was added");
    assert!(peers_of(&a).await.is_empty(), "no peer was added");
    // The same browser, logged in, sees the pages.
    let mut browser = Browser::logged_in(a.console(), 11, "admin").await;
    for path in [
        "/console/",
        "/console/peers",
        "/console/peers/grants",
        "/console/peers/tokens",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "GET {path}: {}", page.body);
        assert!(page.body.contains("Log out"), "GET {path}");
    }
    // Logging out ends the session: the cookie it held opens nothing any more.
    let held = browser.cookies.get("usestats_console").unwrap().clone();
    let page = browser.get("/console/").await;
    let out = browser
        .post("/console/logout", &[("csrf", &csrf_of(&page))])
        .await;
    assert_eq!((out.status, out.location.as_str()), (303, "/console/login"));
    browser.cookies.insert("usestats_console".into(), held);
    assert_eq!(browser.get("/console/").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    account(&a, "csrf").await;
    let mut browser = Browser::logged_in(a.console(), 12, "csrf").await;
    let page = browser.get("/console/peers/grants").await;
    let good = hidden_fields(&form_html(&page.body, "add-grant"))
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap()
        .1;
    assert_eq!(good.len(), 64);
    let grant = [
        ("home_wwwroot", "http://moodle.example.org"),
        ("username", "teacher"),
        ("site", "1"),
        ("course", "1"),
    ];
    let wrong = "0".repeat(64);
    for csrf in [None, Some(""), Some(wrong.as_str()), Some(&good[..63])] {
        let mut fields = grant.to_vec();
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let refused = browser.post("/console/peers/grants/add", &fields).await;
        assert_eq!(refused.status, 403, "csrf {csrf:?}: {}", refused.body);
        assert!(refused.body.contains("CSRF"), "{}", refused.body);
        // Neither the keyswap nor the registration runs.
        let mut fields = vec![("wwwroot", b.wwwroot.as_str()), ("ssl_verification", "0")];
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        for path in ["/console/peers/add", "/console/peers/confirm"] {
            let refused = browser.post(path, &fields).await;
            assert_eq!(refused.status, 403, "{path} csrf {csrf:?}");
        }
    }
    assert!(grants_of(&a).await.is_empty(), "no grant was added");
    assert!(peers_of(&a).await.is_empty(), "no peer was added");
    let b_audit = b.audit().await;
    assert!(
        b_audit.is_empty(),
        "no keyswap reached the peer: {b_audit:?}"
    );
    // The same form with the session's token goes through.
    let mut fields = grant.to_vec();
    fields.push(("csrf", &good));
    let done = browser.post("/console/peers/grants/add", &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(grants_of(&a).await.len(), 1);
    // A login form's token is no session's token.
    let login = Browser::new(a.console(), 12).get("/console/login").await;
    let login_token = hidden_fields(&login.body)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap()
        .1;
    let mut fields = vec![
        ("home_wwwroot", "http://other.example.org"),
        ("username", "x"),
        ("site", "1"),
    ];
    fields.push(("csrf", &login_token));
    assert_eq!(
        browser
            .post("/console/peers/grants/add", &fields)
            .await
            .status,
        403
    );
    assert_eq!(grants_of(&a).await.len(), 1);
}

/// Issue 22, N5: guesses at an account from one address leave its owner, at another address,
/// able to log in; the guesser meets its (address, account) limit, then its address limit
/// when it moves on to other names, and every attempt counts against one overall ceiling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_is_limited_per_address_and_account_and_locks_nobody_else_out() {
    let a = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| {
            c.console.login_attempts_per_minute = 4;
            c.console.login_attempts_per_address_per_minute = 6;
            c.console.login_attempts_overall_per_minute = 14;
        })),
        ..Default::default()
    })
    .await;
    account(&a, "limited").await;
    account(&a, "other").await;
    let mut guesser = Browser::new(a.console(), 13);
    // A full bucket: the first attempts are all checked (and wrong).
    for attempt in 0..4 {
        let refused = guesser.login("limited", "wrong password").await;
        assert_eq!(refused.status, 200, "attempt {attempt}: {}", refused.body);
        assert!(
            refused.body.contains("Wrong name or password"),
            "{}",
            refused.body
        );
    }
    // Then (once what refilled meanwhile is spent) 429, even with the right password.
    let mut limited = false;
    for _ in 0..4 {
        let answer = guesser.login("limited", "wrong password").await;
        if answer.status == 429 {
            limited = true;
            break;
        }
        assert_eq!(answer.status, 200);
    }
    assert!(limited, "never rate limited");
    let right = guesser.login("limited", PASSWORD).await;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(right.body.contains("Too many login attempts"));
    assert!(
        !guesser.cookies.contains_key("usestats_console"),
        "no session"
    );
    // The account's owner, from another address, is not locked out.
    let owner = Browser::new(a.console(), 14)
        .login("limited", PASSWORD)
        .await;
    assert_eq!(owner.status, 303, "{}", owner.body);
    // The guesser moving on to other names meets the limit of its address.
    let mut names = 0;
    loop {
        let answer = guesser.login(&format!("name{names}"), "x").await;
        if answer.status == 429 {
            break;
        }
        assert_eq!(answer.status, 200);
        names += 1;
        assert!(names <= 6, "the address limit never came");
    }
    // Every attempt counts against the overall ceiling: spent from more addresses, it holds
    // for everyone (a distributed guess is bounded too).
    let mut overall = false;
    for source in 20..40 {
        let answer = Browser::new(a.console(), source).login("other", "x").await;
        if answer.status == 429 {
            overall = true;
            break;
        }
    }
    assert!(overall, "the overall ceiling never came");
    let late = Browser::new(a.console(), 60).login("other", PASSWORD).await;
    assert_eq!(late.status, 429, "{}", late.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_from_peers_and_people_are_shown_escaped() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    account(&a, "escapes").await;
    let mut browser = Browser::logged_in(a.console(), 15, "escapes").await;
    // A peer named with markup, added through the console.
    let peers = browser.get("/console/peers").await;
    let confirm = browser
        .submit(
            &peers,
            "add-peer",
            &[
                ("wwwroot", &b.wwwroot),
                ("name", SCRIPT),
                ("ssl_verification", "0"),
            ],
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains(ESCAPED),
        "the name on the confirmation"
    );
    let done = browser.submit(&confirm, "confirm", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    // Registration keeps a name plain text (`text::from_peer::plain_name`); a name with
    // markup can still reach the state database another way (an older version, an edit by
    // hand): the pages must escape it whatever it holds.
    assert!(!peers_of(&a).await[0].name.contains('<'));
    let (pem, now) = (b.app.keyring().current.cert_pem.clone(), a.app.now());
    a.app
        .state
        .run(move |c| {
            let peer = state::peer_by_wwwroot(c, "http://xss.example.org")?;
            assert!(peer.is_none());
            state::upsert_peer(
                c,
                &state::NewPeer {
                    wwwroot: "http://xss.example.org",
                    name: SCRIPT,
                    application: "moodle",
                    public_key: &pem,
                    public_key_expires: now + 86_400,
                    ssl_verification: state::SslVerification::Full,
                },
                now,
            )
        })
        .await
        .unwrap();
    // A grant and a token for a person whose name is markup.
    let grants = browser.get("/console/peers/grants").await;
    let via = format!(
        "via-{}",
        peers_of(&a)
            .await
            .iter()
            .find(|p| p.wwwroot == b.wwwroot)
            .unwrap()
            .id
    );
    let added = browser
        .submit(
            &grants,
            "add-grant",
            &[
                ("home_wwwroot", &b.wwwroot),
                ("username", SCRIPT),
                ("course", "1"),
                (via.as_str(), b.wwwroot.as_str()),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let tokens = browser.get("/console/peers/tokens").await;
    let grant_id = grants_of(&a).await[0].id.to_string();
    let created = browser
        .submit(
            &tokens,
            "create-token",
            &[("grant", &grant_id), ("label", SCRIPT)],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    for path in [
        "/console/",
        "/console/peers",
        "/console/peers/grants",
        "/console/peers/tokens",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains(ESCAPED), "{path} shows the name escaped");
        assert!(
            !page.body.contains("<script"),
            "{path} carries no script: {}",
            page.body
        );
    }
    for page in [&confirm, &created] {
        assert!(!page.body.contains("<script"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_shown_once_and_never_again() {
    let a = spawn_app(AppOptions::default()).await;
    account(&a, "tokens").await;
    a.grant("http://moodle.example.org", "reporter", true, true)
        .await;
    let mut browser = Browser::logged_in(a.console(), 16, "tokens").await;
    let page = browser.get("/console/peers/tokens").await;
    assert!(page.body.contains("No tokens yet"));
    let grant_id = grants_of(&a).await[0].id.to_string();
    let created = browser
        .submit(
            &page,
            "create-token",
            &[
                ("grant", &grant_id),
                ("label", "ERP"),
                ("expires", "2999-01-01"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let token = element_text(&created.body, "token");
    assert_eq!(token.len(), 32, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    // The token works: it resolves to the grant.
    let (row, grant) = usestats::ws::tokens::check(&a.app, &token, None)
        .await
        .expect("the token is valid");
    assert_eq!(grant.username, "reporter");
    assert_eq!(row.label, "ERP");
    assert!(row.expires_at.is_some());
    // No later page holds it; the list names it by its prefix.
    for path in [
        "/console/",
        "/console/peers",
        "/console/peers/grants",
        "/console/peers/tokens",
    ] {
        let page = browser.get(path).await;
        assert!(!page.body.contains(&token), "{path} shows the token");
    }
    let list = browser.get("/console/peers/tokens").await;
    assert!(list.body.contains(&format!("{}…", &token[..8])));
    assert!(list.body.contains("reporter@http://moodle.example.org"));
    // Revoked from the list: the token no longer works.
    let id = hidden_fields(&table_html(&list.body, "token-list"))
        .into_iter()
        .find(|(n, _)| n == "token")
        .unwrap()
        .1;
    let revoked = browser
        .post(
            "/console/peers/tokens/revoke",
            &[
                ("csrf", &csrf_of(&list)),
                ("token", &id),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let checked = usestats::ws::tokens::check(&a.app, &token, None).await;
    assert!(
        matches!(checked, Err(usestats::ws::tokens::TokenProblem::Unknown)),
        "a revoked token is refused"
    );
    assert!(
        browser
            .get("/console/peers/tokens")
            .await
            .body
            .contains("revoked")
    );
    // Refused: a date in the past, a label with a newline.
    let page = browser.get("/console/peers/tokens").await;
    for (field, value) in [("expires", "2001-01-01"), ("label", "a\nb")] {
        let refused = browser
            .submit(
                &page,
                "create-token",
                &[("grant", &grant_id), (field, value)],
            )
            .await;
        assert_eq!(refused.status, 400, "{field}: {}", refused.body);
    }
    let tokens = a.app.state.run(state::list_tokens).await.unwrap();
    assert_eq!(tokens.len(), 1, "the refused ones were not stored");
}

/// Issue 22, N2: the console is served on its own listener only. On the main one, the one a
/// proxy forwards for MNET, `/console/` is 404 to every client, with or without forwarding
/// headers, and through a bare same-host proxy (one that connects from loopback and adds no
/// header, as nginx's plain `proxy_pass`, HAProxy without `forwardfor`, stunnel or socat do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_never_on_the_main_listener() {
    let a = spawn_app(AppOptions::default()).await;
    account(&a, "listen").await;
    let proxy = bare_proxy(a.addr).await;
    for main in [a.addr, proxy] {
        let mut browser = Browser::new(main, 17);
        for path in [
            "/console",
            "/console/",
            "/console/login",
            "/console/peers",
            "/console/static/console.css",
        ] {
            let page = browser.get(path).await;
            assert_eq!(page.status, 404, "{main} {path}: {}", page.body);
            assert!(!page.body.contains("<form"), "{main} {path}");
        }
        let tried = browser.login_post("listen", PASSWORD).await;
        assert_eq!(tried.status, 404, "{main}");
        assert!(!browser.cookies.contains_key("usestats_console"));
        // MNET and the home page are served there, without a link to the console.
        let home = browser.get("/").await;
        assert_eq!(home.status, 200);
        assert!(home.body.contains("<title>usestats</title>"));
        assert!(!home.body.contains("href=\"console"), "{}", home.body);
        assert_eq!(browser.get("/mnet/publickey.php").await.status, 200);
    }
    // The console's listener serves it, and nothing else.
    let mut console = Browser::logged_in(a.console(), 17, "listen").await;
    assert_eq!(console.get("/console/").await.status, 200);
    assert_eq!(console.get("/mnet/publickey.php").await.status, 404);
    assert_eq!(console.get("/").await.status, 404);
    // Off: no console anywhere, and no listener for it.
    let off = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| c.console.enabled = false)),
        ..Default::default()
    })
    .await;
    assert!(off.console_addr.is_none());
    assert_eq!(Browser::new(off.addr, 17).login_status().await, 404);
}

/// A same-host TCP proxy to `to` that forwards bytes and adds nothing: what a bare
/// `proxy_pass`, socat or stunnel is to the daemon (a loopback client).
async fn bare_proxy(to: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    at
}

impl Browser {
    /// The status of a GET of the login form.
    async fn login_status(&mut self) -> u16 {
        self.get("/console/login").await.status
    }

    /// A login POST without first fetching the form (there may be no form to fetch).
    async fn login_post(&mut self, name: &str, password: &str) -> Page {
        self.post(
            "/console/login",
            &[("csrf", "x"), ("name", name), ("password", password)],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_page_keeps_its_title_and_names_no_console_address() {
    let a = spawn_app(AppOptions::default()).await;
    let (status, home) = common::get(&a.url("/")).await;
    assert_eq!(status, 200);
    assert!(home.contains("<title>usestats</title>"), "{home}");
    assert!(home.contains("Console: on a listener of its own"), "{home}");
    assert!(!home.contains(&a.console().to_string()), "{home}");
}

/// The whole path: log in, add a peer through the console against a second daemon, publish
/// and subscribe use_stats, see its calls on the overview; and a key swapped between the
/// confirmation page and the confirmation is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_is_added_through_the_console_and_a_swapped_key_is_refused() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    account(&a, "operator").await;
    let mut browser = Browser::logged_in(a.console(), 18, "operator").await;
    let peers = browser.get("/console/peers").await;
    assert_eq!(peers.status, 200);
    // The first attempt: B changes its key after we saw it.
    let confirm = browser
        .submit(
            &peers,
            "add-peer",
            &[
                ("wwwroot", &format!("{}/", b.wwwroot)),
                ("ssl_verification", "0"),
            ],
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let first = b.app.keyring().current.info();
    assert_eq!(
        element_text(&confirm.body, "fingerprint"),
        first.fingerprint_sha1
    );
    assert_eq!(element_text(&confirm.body, "subject"), first.subject);
    b.app.rotate_keys().unwrap();
    let second = b.app.keyring().current.info();
    assert_ne!(first.fingerprint_sha1, second.fingerprint_sha1);
    let refused = browser.submit(&confirm, "confirm", &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("Not registered"), "{}", refused.body);
    assert!(refused.body.contains(&second.fingerprint_sha1));
    assert!(peers_of(&a).await.is_empty(), "nothing registered");
    // A hidden field that names another certificate is refused the same way.
    let confirm = browser
        .submit(
            &peers,
            "add-peer",
            &[("wwwroot", &b.wwwroot), ("ssl_verification", "0")],
        )
        .await;
    assert_eq!(
        element_text(&confirm.body, "fingerprint"),
        second.fingerprint_sha1
    );
    let tampered = browser
        .submit(&confirm, "confirm", &[("certificate", &"0".repeat(64))])
        .await;
    assert_eq!(tampered.status, 409);
    assert!(peers_of(&a).await.is_empty());
    // Confirmed as shown: registered with the certificate shown.
    let done = browser.submit(&confirm, "confirm", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        done.location.starts_with("/console/peers?added="),
        "{}",
        done.location
    );
    let registered = peers_of(&a).await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].wwwroot, b.wwwroot);
    let stored = usestats::crypto::parse_cert_pem(&registered[0].public_key).unwrap();
    assert_eq!(
        usestats::crypto::fingerprint_sha1(&stored),
        second.fingerprint_sha1
    );
    // A keyswap is a stranger's request (it proves nothing): counted, not given a row.
    b.app.background.settled().await;
    let keyswaps: i64 = b
        .app
        .state
        .run(|c| state::query_refused(c, None, 1000))
        .await
        .unwrap()
        .iter()
        .filter(|c| c.channel == "mnet" && c.reason == "ok")
        .map(|c| c.calls)
        .sum();
    assert_eq!(
        keyswaps, 5,
        "a keyswap for each confirmation page and each confirmation"
    );
    assert_eq!(
        registered[0].name, "usestats",
        "named after its home page's <title>"
    );
    let list = browser.get(&done.location).await;
    assert!(list.body.contains("Registered usestats"), "{}", list.body);
    let table = table_html(&list.body, "peer-list");
    assert!(
        table.contains(&format!("<code>{}</code>", b.wwwroot)),
        "{table}"
    );
    // Our own wwwroot and a non-wwwroot are refused before any keyswap.
    let peers = browser.get("/console/peers").await;
    for wwwroot in [a.wwwroot.as_str(), "ftp://x.example.org", "not a url"] {
        let refused = browser
            .submit(&peers, "add-peer", &[("wwwroot", wwwroot)])
            .await;
        assert_eq!(refused.status, 400, "{wwwroot}: {}", refused.body);
    }
    // Publish and subscribe use_stats with the toggles.
    let peer_id = registered[0].id.to_string();
    for side in ["publish", "subscribe"] {
        let page = browser.get("/console/peers").await;
        let csrf = csrf_of(&page);
        let toggled = browser
            .post(
                "/console/peers/service",
                &[
                    ("csrf", &csrf),
                    ("peer", &peer_id),
                    ("service", "use_stats"),
                    ("side", side),
                    ("on", "1"),
                ],
            )
            .await;
        assert_eq!(toggled.status, 303, "{}", toggled.body);
    }
    let id = registered[0].id;
    let services = a
        .app
        .state
        .run(move |c| state::own_services(c, id))
        .await
        .unwrap();
    assert_eq!(services.len(), 1);
    assert!(services[0].publish && services[0].subscribe, "{services:?}");
    let list = browser.get("/console/peers").await;
    assert!(list.body.contains("Unpublish") && list.body.contains("Unsubscribe"));
    // B calls A: the overview shows the peer and its calls, with the numbers in the SVG.
    let a_on_b = b.add_peer(&a).await;
    b.call_peer(&a_on_b, "system/listServices", Vec::new())
        .await
        .unwrap();
    b.call_peer(&a_on_b, "system/listServices", Vec::new())
        .await
        .unwrap();
    a.app.background.settled().await;
    let overview = browser.get("/console/").await;
    assert_eq!(overview.status, 200);
    let peers_table = table_html(&overview.body, "peers");
    assert!(peers_table.contains(&b.wwwroot), "{peers_table}");
    assert!(
        peers_table.contains("use_stats"),
        "published and subscribed"
    );
    assert!(
        overview.body.contains("<svg class=\"chart\""),
        "{}",
        overview.body
    );
    assert!(
        overview
            .body
            .contains(&format!("{}, ok: 2 calls</title>", b.wwwroot)),
        "{}",
        overview.body
    );
    let calls = table_html(&overview.body, "calls");
    assert!(
        calls.contains(&b.wwwroot) && calls.contains(">2<"),
        "{calls}"
    );
    // The doctor's checks, without a call to the peers until asked.
    let checks = table_html(&overview.body, "checks");
    assert!(checks.contains("state database") && checks.contains("status-OK"));
    assert!(!checks.contains(&format!("peer {}", b.wwwroot)));
    let checked = browser.submit(&overview, "check-peers", &[]).await;
    assert_eq!(checked.status, 200);
    let checks = table_html(&checked.body, "checks");
    assert!(checks.contains(&format!("peer {}", b.wwwroot)), "{checks}");
    // Removed: gone from the list, kept (deleted) on the overview.
    let list = browser.get("/console/peers").await;
    let removed = browser
        .submit(&list, &format!("remove-{id}"), &[("confirmed", "1")])
        .await;
    assert_eq!(removed.status, 303);
    assert!(peers_of(&a).await[0].deleted);
    let list = browser.get("/console/peers").await;
    assert!(!table_html(&list.body, "peer-list").contains(&b.wwwroot));
    let overview = browser.get("/console/").await;
    assert!(table_html(&overview.body, "peers").contains("deleted"));
}

/// The `<table id="…">` … `</table>` of a page.
fn table_html(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id} in {page}"));
    let start = page[..at].rfind("<table").unwrap();
    let end = page[start..].find("</table>").unwrap() + start;
    page[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_follow_the_command_lines_via_rules() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    account(&a, "grants").await;
    let peer = a.add_peer(&b).await;
    let mut browser = Browser::logged_in(a.console(), 19, "grants").await;
    let page = browser.get("/console/peers/grants").await;
    let via = format!("via-{}", peer.id);
    let home = "http://moodle.example.org";
    // Neither --site nor --course; a relay that is no peer: refused, as on the command line.
    let refused = browser
        .submit(
            &page,
            "add-grant",
            &[("home_wwwroot", home), ("username", "t")],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let refused = browser
        .submit(
            &page,
            "add-grant",
            &[
                ("home_wwwroot", home),
                ("username", "t"),
                ("site", "1"),
                ("via-99", "http://not-a-peer.example.org"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("is not one of our peers"),
        "{}",
        refused.body
    );
    assert!(grants_of(&a).await.is_empty());
    // Through B.
    let added = browser
        .submit(
            &page,
            "add-grant",
            &[
                ("home_wwwroot", "HTTP://Moodle.Example.org/"),
                ("username", "t"),
                ("site", "1"),
                (via.as_str(), b.wwwroot.as_str()),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let grants = grants_of(&a).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].home_wwwroot, home, "normalised");
    assert!(grants[0].site && !grants[0].course);
    assert_eq!(grants[0].via.as_slice(), std::slice::from_ref(&b.wwwroot));
    assert!(grants[0].honoured_from(&b.wwwroot) && grants[0].honoured_from(home));
    assert!(!grants[0].honoured_from("http://other.example.org"));
    let list = browser.get("/console/peers/grants").await;
    assert!(table_html(&list.body, "grant-list").contains(&b.wwwroot));
    // Added again: its rights and its whole via list are replaced (home only now); `*`
    // stands alone.
    let added = browser
        .submit(
            &page,
            "add-grant",
            &[("home_wwwroot", home), ("username", "t"), ("course", "1")],
        )
        .await;
    assert_eq!(added.status, 303);
    let grants = grants_of(&a).await;
    assert_eq!(grants.len(), 1);
    assert!(!grants[0].site && grants[0].course && grants[0].via.is_empty());
    assert!(
        table_html(
            &browser.get("/console/peers/grants").await.body,
            "grant-list"
        )
        .contains("home only")
    );
    let added = browser
        .submit(
            &page,
            "add-grant",
            &[
                ("home_wwwroot", home),
                ("username", "*"),
                ("site", "1"),
                ("via-any", "1"),
                (via.as_str(), b.wwwroot.as_str()),
            ],
        )
        .await;
    assert_eq!(added.status, 303);
    let any = grants_of(&a)
        .await
        .into_iter()
        .find(|g| g.username == "*")
        .unwrap();
    assert_eq!(any.via.as_slice(), ["*".to_string()]);
    // Removing a grant removes its tokens.
    usestats::ws::tokens::create(&a.app, home, "t", "x", None, "")
        .await
        .unwrap();
    let list = browser.get("/console/peers/grants").await;
    let csrf = csrf_of(&list);
    let removed = browser
        .post(
            "/console/peers/grants/remove",
            &[
                ("csrf", &csrf),
                ("home_wwwroot", home),
                ("username", "t"),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_eq!(grants_of(&a).await.len(), 1);
    assert!(
        a.app
            .state
            .run(state::list_tokens)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The overview's counts come from one GROUP BY over the time index: per hour, channel,
/// verified peer and status, within the window, on both backends.
#[test]
fn calls_per_hour_are_counted_by_the_database() {
    for db in common::all_dbs() {
        let mut conn = usestats::store::establish(&db.url()).unwrap();
        usestats::store::migrate_state(&mut conn).unwrap();
        let row = |time: i64, channel: &str, peer: &str, status: &str, verified: bool| {
            state::AuditEntry {
                time,
                channel: channel.into(),
                peer: peer.into(),
                status: status.into(),
                verified,
                ..Default::default()
            }
        };
        let h = 3600;
        let rows = vec![
            row(10 * h + 1, "mnet", "http://a", "ok", true),
            row(10 * h + 3599, "mnet", "http://a", "ok", true),
            row(10 * h + 5, "mnet", "http://a", "fault 7025", true),
            // Claimed peers are not grouped by: one bucket.
            row(10 * h + 6, "mnet", "http://claimed-1", "fault 7013", false),
            row(10 * h + 7, "mnet", "http://claimed-2", "fault 7013", false),
            row(11 * h, "ws", "", "ok", true),
            // Outside [10 h, 12 h).
            row(10 * h - 1, "mnet", "http://a", "ok", true),
            row(12 * h, "mnet", "http://a", "ok", true),
        ];
        state::insert_audit_batch(&mut conn, &rows).unwrap();
        let got = state::audit_calls_per_hour(&mut conn, 10 * h, 12 * h, 100).unwrap();
        let got: Vec<(i64, &str, &str, bool, &str, i64)> = got
            .iter()
            .map(|r| {
                (
                    r.hour,
                    r.channel.as_str(),
                    r.peer.as_str(),
                    r.verified,
                    r.status.as_str(),
                    r.calls,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (10 * h, "mnet", "", false, "fault 7013", 2),
                (10 * h, "mnet", "http://a", true, "fault 7025", 1),
                (10 * h, "mnet", "http://a", true, "ok", 2),
                (11 * h, "ws", "", true, "ok", 1),
            ],
            "{}",
            db.url()
        );
        assert_eq!(
            state::audit_calls_per_hour(&mut conn, 10 * h, 12 * h, 2)
                .unwrap()
                .len(),
            2,
            "the limit holds"
        );
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 22, N6: the login limiter kept every attempted name whole (up to a 64 KiB form
/// each): 600 attempts added 37.5 MB to the daemon. It keeps a short hash of (address, name)
/// now. A real `usestats serve`, whose memory is measured alone: the limits are set high so
/// that every attempt reaches the limiter, and malloc is told to keep one arena and to give
/// blocks over 128 KiB back at once, so that argon2's 19 MiB buffer per password check does
/// not stay behind in the resident size (without this the noise is tens of MB; with it the
/// daemon holds steady within a few hundred KiB, and the old limiter adds 35 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_attempted_names_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = {
        let held: Vec<_> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        held.iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect()
    };
    let config = dir.path().join("usestats.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nwwwroot = \"http://127.0.0.1:{0}\"\n[server]\nlisten = \"127.0.0.1:{0}\"\ncpu_threads = 1\n\
             [console]\nlisten = \"127.0.0.1:{1}\"\nlogin_attempts_per_minute = 100000\n\
             login_attempts_per_address_per_minute = 100000\nlogin_attempts_overall_per_minute = 100000\n",
            ports[0], ports[1]
        ),
    )
    .unwrap();
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(&config)
        .args(["console", "user", "add", "ops"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success());
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("MALLOC_ARENA_MAX", "1")
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let console: SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().unwrap();
    common::eventually("the console listens", || {
        std::net::TcpStream::connect(console).is_ok()
    })
    .await;
    let mut browsers: Vec<Browser> = (100..106).map(|n| Browser::new(console, n)).collect();
    // Two rounds first, so the pools and buffers exist before measuring.
    for _ in 0..2 {
        for browser in browsers.iter_mut() {
            let answer = browser.login(&"w".repeat(60_000), "x").await;
            assert_eq!(answer.status, 200);
        }
    }
    let before = rss_kib(serve.id());
    for round in 0..100 {
        for (i, browser) in browsers.iter_mut().enumerate() {
            // A name of 60 000 bytes, different for every attempt.
            let name = format!("{round}-{i}-{}", "n".repeat(60_000));
            let answer = browser.login(&name, "x").await;
            assert_eq!(answer.status, 200, "checked, and refused: {}", answer.body);
        }
    }
    let grown = rss_kib(serve.id()).saturating_sub(before);
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        grown < 8 * 1024,
        "600 attempted names of 60 kB each grew the daemon by {grown} KiB"
    );
}

// Safe actions (issue 24, point 4): a confirmation step before a removal or a revocation, a
// notice after every action, error pages that keep the form, and deep links through login.

/// `location` of a 303, followed: the page it leads to.
async fn follow(browser: &mut Browser, answer: &Page) -> Page {
    assert_eq!(answer.status, 303, "{}", answer.body);
    browser.get(&answer.location).await
}

/// The text of the page's `role=status` notice, or empty.
fn notice_of(page: &Page) -> String {
    if page.body.contains("id=\"notice\"") {
        element_text(&page.body, "notice")
    } else {
        String::new()
    }
}

async fn tokens_of(app: &TestApp) -> Vec<state::WsToken> {
    app.app.state.run(state::list_tokens).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_and_revoke_ask_first_and_act_only_once_confirmed() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions::default()).await;
    account(&a, "careful").await;
    let mut browser = Browser::logged_in(a.console(), 41, "careful").await;

    // A grant saved through the form: the next page says so.
    let home = "http://moodle.example.org";
    let page = browser.get("/console/peers/grants").await;
    let saved = browser
        .submit(
            &page,
            "add-grant",
            &[("home_wwwroot", home), ("username", "t"), ("site", "1")],
        )
        .await;
    assert!(
        saved.location.contains("notice=grant-saved"),
        "{}",
        saved.location
    );
    let page = follow(&mut browser, &saved).await;
    assert_eq!(notice_of(&page), format!("Saved the grant for t@{home}."));
    assert!(page.body.contains("role=\"status\" id=\"notice\""));

    // Two tokens for it, one named with markup.
    let (token, _) = usestats::ws::tokens::create(&a.app, home, "t", SCRIPT, None, "")
        .await
        .unwrap();
    usestats::ws::tokens::create(&a.app, home, "t", "other", None, "")
        .await
        .unwrap();
    let revoked_id = tokens_of(&a).await[0].id.to_string();

    // Revoke, first step: a page that says what will happen; the token still works.
    let list = browser.get("/console/peers/tokens").await;
    let asked = browser
        .submit(&list, &format!("revoke-{revoked_id}"), &[])
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains(&format!("{}…", &token[..8])));
    assert!(asked.body.contains(ESCAPED) && !asked.body.contains(SCRIPT));
    assert!(
        asked.body.contains("stops working at once"),
        "{}",
        asked.body
    );
    assert!(
        asked
            .body
            .contains("href=\"/console/peers/tokens\" id=\"cancel\"")
    );
    assert!(
        usestats::ws::tokens::check(&a.app, &token, None)
            .await
            .is_ok()
    );
    // The same POST again, without the confirmation field, changes nothing either.
    let again = browser
        .post(
            "/console/peers/tokens/revoke",
            &[("csrf", &csrf_of(&list)), ("token", &revoked_id)],
        )
        .await;
    assert_eq!(again.status, 200);
    assert!(tokens_of(&a).await.iter().all(|t| !t.revoked));
    // Confirmed: revoked, and the next page says so, the label escaped.
    let done = browser.submit(&asked, "confirm-form", &[]).await;
    assert!(
        done.location.contains("notice=token-revoked"),
        "{}",
        done.location
    );
    let page = follow(&mut browser, &done).await;
    assert!(notice_of(&page).starts_with(&format!("Revoked the token {}…", &token[..8])));
    assert!(page.body.contains(ESCAPED) && !page.body.contains(SCRIPT));
    assert!(
        usestats::ws::tokens::check(&a.app, &token, None)
            .await
            .is_err()
    );

    // Remove the grant: the page counts the tokens that go with it; nothing goes until
    // confirmed.
    let page = browser.get("/console/peers/grants").await;
    let asked = browser
        .post(
            "/console/peers/grants/remove",
            &[
                ("csrf", &csrf_of(&page)),
                ("home_wwwroot", home),
                ("username", "t"),
            ],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(
        asked
            .body
            .contains("Its 2 web-service tokens are deleted with it (1 of them active"),
        "{}",
        asked.body
    );
    assert_eq!(grants_of(&a).await.len(), 1);
    assert_eq!(tokens_of(&a).await.len(), 2);
    let done = browser.submit(&asked, "confirm-form", &[]).await;
    let page = follow(&mut browser, &done).await;
    assert_eq!(notice_of(&page), format!("Removed the grant for t@{home}."));
    assert!(grants_of(&a).await.is_empty());
    assert!(tokens_of(&a).await.is_empty());

    // Remove a peer: registered through the forms, then asked about, then removed.
    let peers = browser.get("/console/peers").await;
    let confirm = browser
        .submit(
            &peers,
            "add-peer",
            &[("wwwroot", &b.wwwroot), ("ssl_verification", "0")],
        )
        .await;
    let added = browser.submit(&confirm, "confirm", &[]).await;
    let list = follow(&mut browser, &added).await;
    let peer = peers_of(&a).await.remove(0);
    let asked = browser
        .submit(&list, &format!("remove-{}", peer.id), &[])
        .await;
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains(&b.wwwroot), "{}", asked.body);
    assert!(
        !peers_of(&a).await[0].deleted,
        "not removed before confirmation"
    );
    let done = browser.submit(&asked, "confirm-form", &[]).await;
    let page = follow(&mut browser, &done).await;
    assert!(
        notice_of(&page).starts_with(&format!("Removed the peer {} ({})", peer.name, b.wwwroot)),
        "{}",
        notice_of(&page)
    );
    assert!(peers_of(&a).await[0].deleted);

    // A notice is never made up by a link: another signature, or none, shows nothing.
    let forged = done.location.replace("peer-removed", "token-revoked");
    assert_eq!(notice_of(&browser.get(&forged).await), "");
    let made_up = "/console/peers?notice=peer-removed&about=Call+0800+now&sig=00";
    assert_eq!(notice_of(&browser.get(made_up).await), "");
    // Nor is it shown to another session (the signature is keyed by the session).
    account(&a, "other").await;
    let mut other = Browser::logged_in(a.console(), 42, "other").await;
    assert_eq!(notice_of(&other.get(&done.location).await), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_form_comes_back_as_typed_with_what_to_do() {
    let a = spawn_app(AppOptions::default()).await;
    account(&a, "typist").await;
    let mut browser = Browser::logged_in(a.console(), 43, "typist").await;

    // A peer that does not answer: the form again, in plain words, with what was typed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let wwwroot = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let peers = browser.get("/console/peers").await;
    let refused = browser
        .submit(
            &peers,
            "add-peer",
            &[
                ("wwwroot", &wwwroot),
                ("name", SCRIPT),
                ("application", "mahara"),
            ],
        )
        .await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    let alert = element_text(&refused.body, "form-error");
    assert_eq!(
        alert,
        format!(
            "Could not reach {wwwroot}: the connection was refused. Check the address and that the host is up."
        )
    );
    assert!(refused.body.contains("role=\"alert\" id=\"form-error\""));
    assert!(
        refused.body.contains("<h1>Peers</h1>"),
        "the heading says where, not a status"
    );
    let form = form_html(&refused.body, "add-peer");
    assert!(form.contains(&format!("value=\"{wwwroot}\"")), "{form}");
    assert!(form.contains(&format!("value=\"{ESCAPED}\"")), "{form}");
    assert!(
        form.contains("<option value=\"mahara\" selected>"),
        "{form}"
    );
    assert!(!refused.body.contains(SCRIPT));
    assert!(!refused.body.contains("tcp connect") && !refused.body.contains("client error"));
    // Not a wwwroot at all: refused before any call, the same way.
    let refused = browser
        .submit(&peers, "add-peer", &[("wwwroot", "moodle.example.org")])
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        element_text(&refused.body, "form-error").contains("is not the address of a Moodle site")
    );
    assert!(form_html(&refused.body, "add-peer").contains("value=\"moodle.example.org\""));
    assert!(peers_of(&a).await.is_empty());

    // A grant without rights: the form keeps the host, the name (escaped) and the ticks.
    let page = browser.get("/console/peers/grants").await;
    assert!(!page.body.contains("--via") && !page.body.contains("usestats grant"));
    let refused = browser
        .submit(
            &page,
            "add-grant",
            &[
                ("home_wwwroot", "http://moodle.example.org"),
                ("username", SCRIPT),
                ("via-any", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        element_text(&refused.body, "form-error"),
        "Tick site totals, course and activity detail, or both."
    );
    let form = form_html(&refused.body, "add-grant");
    assert!(form.contains(&format!("value=\"{ESCAPED}\"")), "{form}");
    assert!(
        form.contains("name=\"via-any\" value=\"1\" checked"),
        "{form}"
    );
    assert!(!refused.body.contains(SCRIPT));
    assert!(grants_of(&a).await.is_empty());

    // A token with an expiry in the past: the label and the date stay.
    state_grant(&a, "http://moodle.example.org", "t").await;
    let grant = grants_of(&a).await[0].id.to_string();
    let page = browser.get("/console/peers/tokens").await;
    let refused = browser
        .submit(
            &page,
            "create-token",
            &[
                ("grant", &grant),
                ("label", SCRIPT),
                ("expires", "2001-01-01"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(element_text(&refused.body, "form-error").starts_with("That expiry is in the past"));
    let form = form_html(&refused.body, "create-token");
    assert!(
        form.contains("value=\"2001-01-01\"") && form.contains(ESCAPED),
        "{form}"
    );
    assert!(tokens_of(&a).await.is_empty());
}

async fn state_grant(app: &TestApp, home: &str, user: &str) {
    let (home, user, now) = (home.to_string(), user.to_string(), app.app.now());
    app.app
        .state
        .run(move |c| state::put_grant_via(c, &home, &user, true, false, &[], now))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_link_survives_login_and_no_login_leads_off_site() {
    let a = spawn_app(AppOptions::default()).await;
    account(&a, "linked").await;
    let asked = "/console/learner?user=nobody&from=2026-01-01";
    for (next, lands) in [
        (asked, asked),
        ("/console/peers/tokens", "/console/peers/tokens"),
        ("//evil.example", "/console/"),
        ("https://evil.example", "/console/"),
        ("/console/../evil", "/console/"),
        ("/console//evil.example", "/console/"),
        ("/\\evil.example", "/console/"),
    ] {
        let mut browser = Browser::new(a.console(), 44);
        // Without a session, a page sends to the login, which carries where to go back.
        if lands != "/console/" {
            let sent = browser.get(next).await;
            assert_eq!(sent.status, 303, "{next}");
            let expected = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            assert_eq!(sent.location, format!("/console/login?{expected}"));
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish();
        let form = browser.get(&format!("/console/login?{query}")).await;
        let carried = hidden_fields(&form.body)
            .into_iter()
            .find(|(n, _)| n == "next");
        assert_eq!(
            carried.as_ref().map(|(_, v)| v.as_str()),
            (lands != "/console/").then_some(next),
            "{next}"
        );
        // A forged field is checked as strictly as the query.
        let csrf = csrf_of(&form);
        let logged = browser
            .post(
                "/console/login",
                &[
                    ("csrf", &csrf),
                    ("name", "linked"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(logged.status, 303, "{next}: {}", logged.body);
        assert_eq!(logged.location, lands, "{next}");
    }
}
