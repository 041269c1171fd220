//! The console in a real browser: headless Chromium driven through chromedriver (WebDriver),
//! against real daemons on 127.0.0.1. Needs chromedriver (Debian `chromium-driver`):
//! `USESTATS_TEST_CHROMEDRIVER` names it (default /usr/bin/chromedriver); with
//! `USESTATS_REQUIRE_BROWSER=1` (as `.ci/run` sets) a missing one fails the test, otherwise
//! it is skipped loudly. `USESTATS_SCREENSHOTS=DIR` writes the pages' PNGs there (that is how
//! docs/screenshots/ is made).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};

const PASSWORD: &str = "correct horse battery";

struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("USESTATS_TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("USESTATS_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "USESTATS_REQUIRE_BROWSER=1 but there is no chromedriver at {}",
        path.display()
    );
    eprintln!(
        "SKIPPED: no chromedriver at {} (Debian: apt-get install chromium chromium-driver)",
        path.display()
    );
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> Option<Browser> {
    let driver_path = chromedriver()?;
    let port = free_port();
    let driver = Command::new(&driver_path)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                "--proxy-server=direct://", "--proxy-bypass-list=*"
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return Some(Browser { client, driver }),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start a browser: {last:?}");
}

/// Does `act`, a click or a submit that loads another page, and waits for that page.
/// chromedriver can answer a click before the navigation it starts has begun: on a busy
/// machine the next command then reads the old page (how CI failed on stop 29). The old
/// page's root going stale is the sign that the new one has replaced it.
pub async fn and_load(
    b: &Client,
    act: impl std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
) {
    let old = b.find(Locator::Css("html")).await.unwrap();
    act.await.unwrap();
    for _ in 0..600 {
        if old.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(old.tag_name().await.is_err(), "no new page within 30 s");
    for _ in 0..600 {
        let state = b.execute("return document.readyState", vec![]).await;
        if matches!(state, Ok(serde_json::Value::String(s)) if s == "complete") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the new page did not finish loading within 30 s");
}

/// A console account on `app`.
async fn account(app: &TestApp, name: &str) {
    let (name, hash) = (
        name.to_string(),
        usestats::console::auth::hash_password(PASSWORD).unwrap(),
    );
    let now = app.app.now();
    app.app
        .state
        .run(move |c| usestats::store::state::set_console_user(c, &name, &hash, now))
        .await
        .unwrap();
}

async fn log_in(b: &Client, app: &TestApp, name: &str) {
    b.goto(&app.console_url("/console/")).await.unwrap();
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login"),
        "no page without login"
    );
    let form = b.form(Locator::Css("form")).await.unwrap();
    form.set_by_name("name", name).await.unwrap();
    form.set_by_name("password", PASSWORD).await.unwrap();
    and_load(b, form.submit()).await;
    assert_eq!(b.current_url().await.unwrap().path(), "/console/");
}

async fn screenshot(b: &Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 5_000,
        "a page, not a blank: {} bytes",
        png.len()
    );
    if let Some(dir) = std::env::var_os("USESTATS_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_see_our_key_and_add_a_peer() {
    let Some(browser) = browser().await else {
        return;
    };
    let b = &browser.client;
    let app = spawn_app(AppOptions {
        demo_remote_hosts: Some(Vec::new()),
        ..Default::default()
    })
    .await;
    account(&app, "alice").await;

    // A wrong password keeps us on the login page, with a message.
    b.goto(&app.console_url("/console/login")).await.unwrap();
    let form = b.form(Locator::Css("form")).await.unwrap();
    form.set_by_name("name", "alice").await.unwrap();
    form.set_by_name("password", "wrong password")
        .await
        .unwrap();
    and_load(b, form.submit()).await;
    let alert = b.find(Locator::Css("[role=alert]")).await.unwrap();
    assert!(
        alert
            .text()
            .await
            .unwrap()
            .contains("Wrong name or password")
    );

    log_in(b, &app, "alice").await;
    let shown = b
        .find(Locator::Id("fingerprint"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(shown, app.app.keyring().current.info().fingerprint_sha1);
    screenshot(b, "overview").await;

    // Add a peer: a second daemon, keyswapped through the form, confirmed after checking
    // the fingerprint the page shows.
    let other = spawn_app(AppOptions::default()).await;
    b.goto(&app.console_url("/console/peers")).await.unwrap();
    let add = b.form(Locator::Id("add-peer")).await.unwrap();
    add.set_by_name("wwwroot", &other.wwwroot).await.unwrap();
    and_load(b, add.submit()).await;
    let fingerprint = b
        .find(Locator::Id("fingerprint"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        fingerprint,
        other.app.keyring().current.info().fingerprint_sha1,
        "the confirm page shows the peer's own key"
    );
    and_load(b, b.find(Locator::Id("confirm")).await.unwrap().click()).await;
    let listed = b.source().await.unwrap();
    assert!(listed.contains(&other.wwwroot), "the peer is listed");
    let stored = app.peer(&other.wwwroot).await;
    assert_eq!(stored.public_key, other.app.keyring().current.cert_pem);
    screenshot(b, "peers").await;

    // Logging out ends the session: the overview asks for a login again.
    and_load(
        b,
        b.find(Locator::Css("form.logout button"))
            .await
            .unwrap()
            .click(),
    )
    .await;
    b.goto(&app.console_url("/console/")).await.unwrap();
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login")
    );
    browser.client.clone().close().await.unwrap();
}

/// The learner page's bars carry the seconds `usestats stats --format json` gives, and the
/// course page's CSV export is `usestats report --format csv`, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_bars_and_course_csv_match_the_command_line() {
    let Some(browser) = browser().await else {
        return;
    };
    let b = &browser.client;
    let app = spawn_app(AppOptions {
        demo_remote_hosts: Some(Vec::new()),
        ..Default::default()
    })
    .await;
    let config = app.dir.join("usestats.toml");
    std::fs::write(&config, app.app.config.to_toml()).unwrap();
    account(&app, "bob").await;
    log_in(b, &app, "bob").await;
    let (_, user) = busiest_learner(&app).await;
    let to = app.app.now().to_string();
    let cli = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = usestats_cli(&config, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let stats: serde_json::Value = serde_json::from_slice(&cli(vec![
        "--json".into(),
        "stats".into(),
        user.clone(),
        "--to".into(),
        to.clone(),
    ]))
    .unwrap();

    b.goto(&app.console_url(&format!("/console/learner?user={user}&to={to}")))
        .await
        .unwrap();
    let total = b.find(Locator::Id("total-seconds")).await.unwrap();
    assert_eq!(
        total.attr("data-seconds").await.unwrap().unwrap(),
        stats["total"].to_string()
    );
    let mut shown = std::collections::BTreeMap::new();
    for bar in b
        .find_all(Locator::Css("#course-chart rect.bar"))
        .await
        .unwrap()
    {
        let key = bar.attr("data-key").await.unwrap().unwrap();
        let seconds = bar.attr("data-seconds").await.unwrap().unwrap();
        shown.insert(key.parse::<i64>().unwrap(), seconds.parse::<i64>().unwrap());
    }
    let expected: std::collections::BTreeMap<i64, i64> = stats["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().unwrap(),
                c["coursetotal"].as_i64().unwrap(),
            )
        })
        .filter(|(_, seconds)| *seconds > 0)
        .collect();
    assert!(expected.len() >= 2, "{stats}");
    assert_eq!(shown, expected, "one bar per course, with its seconds");
    screenshot(b, "learner").await;

    let course = expected
        .iter()
        .filter(|(id, _)| **id > 0)
        .max_by_key(|(_, seconds)| **seconds)
        .map(|(id, _)| *id)
        .unwrap();
    b.goto(&app.console_url(&format!("/console/course?course=id:{course}&to={to}")))
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&cli(vec![
        "--json".into(),
        "report".into(),
        "--course".into(),
        format!("id:{course}"),
        "--to".into(),
        to.clone(),
    ]))
    .unwrap();
    let rows = b
        .find_all(Locator::Css("#learners tr[data-userid]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), report["learners"].as_array().unwrap().len());
    screenshot(b, "course").await;
    let href = b
        .find(Locator::Id("csv"))
        .await
        .unwrap()
        .prop("href")
        .await
        .unwrap()
        .unwrap();
    // Fetched with the browser's own session cookie (read here, where its path applies).
    let cookie = b
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == usestats::console::auth::SESSION_COOKIE)
        .expect("the session cookie");
    let bytes = {
        use http_body_util::{BodyExt, Empty};
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Empty<bytes::Bytes>>();
        let request = hyper::Request::get(href.as_str())
            .header("Cookie", format!("{}={}", cookie.name(), cookie.value()))
            .body(Empty::new())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        response.into_body().collect().await.unwrap().to_bytes()
    };
    let expected_csv = cli(vec![
        "report".into(),
        "--course".into(),
        format!("id:{course}"),
        "--to".into(),
        to,
        "--format".into(),
        "csv".into(),
    ]);
    assert_eq!(bytes.as_ref(), expected_csv.as_slice(), "the CSV export");
    browser.client.clone().close().await.unwrap();
}

// An admin's tasks on a site of real size (issue 24): each task is a module of its own under
// tests/browser_tasks/, run in turn on one 2 500-learner demo and one browser session.
#[path = "browser_tasks/a11y.rs"]
mod a11y;
#[path = "browser_tasks/course_pages.rs"]
mod course_pages;
#[path = "browser_tasks/exports.rs"]
mod exports;
#[path = "browser_tasks/find_learner.rs"]
mod find_learner;
#[path = "browser_tasks/revoke_token.rs"]
mod revoke_token;

/// Local accounts of the admin-task demo: an admin, teachers and about 2 400 learners.
pub const ADMIN_DEMO_USERS: u32 = 2_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_tasks_on_a_2500_learner_demo() {
    let Some(browser) = browser().await else {
        return;
    };
    let b = &browser.client;
    let app = spawn_app(AppOptions {
        demo_remote_hosts: Some(Vec::new()),
        demo_users: ADMIN_DEMO_USERS,
        demo_courses: 12,
        demo_log_rows: 300_000,
        ..Default::default()
    })
    .await;
    account(&app, "admin-tasks").await;
    log_in(b, &app, "admin-tasks").await;
    find_learner::run(b, &app).await;
    course_pages::run(b, &app).await;
    exports::run(b, &app).await;
    revoke_token::run(b, &app).await;
    a11y::run(b, &app).await;
}
