//! The accessibility check of every console page (branch actions; issue 24, "Done means"):
//! axe-core (fetched by `scripts/fetch-axe`, named by `USESTATS_AXE_JS`) runs on each page,
//! at a desktop width and at 420 px, and no violation may be serious or critical. Besides
//! axe: one `main` with a skip link to it, and nothing wider than a 420 px window.
//!
//! axe is injected with WebDriver's script execution, which the page's CSP (no script at all)
//! does not govern: the console itself still runs no JavaScript.

use std::time::Duration;

use crate::common::{TestApp, busiest_learner, spawn_app};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, Locator};
use usestats::store::state;

const WIDE: (u32, u32) = (1280, 1000);
const NARROW: u32 = 420;

/// axe-core's source, from `USESTATS_AXE_JS` (or where `scripts/fetch-axe` puts it). Missing
/// is a failure when `USESTATS_REQUIRE_BROWSER=1`, otherwise the axe part is skipped loudly.
fn axe_source() -> Option<String> {
    let path = std::env::var_os("USESTATS_AXE_JS")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let fetched =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/axe/axe.min.js");
            fetched.exists().then_some(fetched)
        });
    match path {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("USESTATS_AXE_JS={}: {e}", path.display())),
        ),
        None => {
            assert!(
                std::env::var("USESTATS_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "USESTATS_REQUIRE_BROWSER=1 but there is no axe-core: run scripts/fetch-axe and set USESTATS_AXE_JS"
            );
            eprintln!(
                "SKIPPED: the axe-core checks (no USESTATS_AXE_JS; scripts/fetch-axe fetches it)"
            );
            None
        }
    }
}

/// axe's violations on the current page, as JSON: [{id, impact, help, nodes: [{target, summary}]}].
async fn axe_violations(b: &Client, axe: &str) -> Vec<serde_json::Value> {
    let loaded = b
        .execute(&format!("{axe}\n;return typeof window.axe;"), Vec::new())
        .await
        .expect("axe-core injected");
    assert_eq!(loaded, "object", "axe-core loaded despite the page's CSP");
    let script = r#"
        const done = arguments[arguments.length - 1];
        window.axe.run(document, {
            runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
            resultTypes: ['violations'],
        }).then(r => done(JSON.stringify(r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => ({ target: n.target, summary: n.failureSummary })),
        }))))).catch(e => done(JSON.stringify({ error: String(e) })));
    "#;
    let answer = b.execute_async(script, Vec::new()).await.expect("axe ran");
    let parsed: serde_json::Value =
        serde_json::from_str(answer.as_str().expect("a JSON text")).expect("axe's JSON");
    assert!(parsed.get("error").is_none(), "axe failed: {parsed}");
    parsed.as_array().cloned().unwrap_or_default()
}

/// Our own checks, with or without axe: a single `main`, a skip link to it (pages with the
/// layout), and no horizontal scrolling of the page at the current width.
async fn own_checks(b: &Client, page: &str, with_layout: bool) {
    let found = b
        .execute(
            r#"
            const main = document.querySelectorAll('main');
            const skip = document.querySelector('a.skip');
            return {
                mains: main.length,
                skip: skip ? skip.getAttribute('href') : null,
                target: !!document.getElementById('main'),
                scroll: document.documentElement.scrollWidth,
                width: document.documentElement.clientWidth,
            };
            "#,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(found["mains"], 1, "{page}: one main landmark");
    if with_layout {
        assert_eq!(
            found["skip"], "#main",
            "{page}: a skip link to the main content"
        );
        assert_eq!(found["target"], true, "{page}: the skip link's target");
    }
    let (scroll, width) = (
        found["scroll"].as_i64().unwrap(),
        found["width"].as_i64().unwrap(),
    );
    assert!(
        scroll <= width,
        "{page}: the page is {scroll} px wide in a {width} px window"
    );
}

/// The checks of the page the browser shows, named `page` in failures: at the desktop width
/// and at 420 px.
async fn check(b: &Client, axe: Option<&str>, page: &str, with_layout: bool) {
    for width in [WIDE.0, NARROW] {
        b.set_window_size(width, WIDE.1).await.unwrap();
        let inner = b
            .execute("return window.innerWidth;", Vec::new())
            .await
            .unwrap();
        assert!(
            inner.as_u64().unwrap() <= u64::from(width),
            "{page}: the window is {inner} px wide, asked {width}"
        );
        own_checks(b, &format!("{page} at {width} px"), with_layout).await;
        let Some(axe) = axe else { continue };
        let violations = axe_violations(b, axe).await;
        let serious: Vec<&serde_json::Value> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        for v in &violations {
            eprintln!(
                "axe, {page} at {width} px: {} ({}): {}",
                v["id"], v["impact"], v["help"]
            );
        }
        assert!(
            serious.is_empty(),
            "{page} at {width} px: serious or critical accessibility violations:\n{}",
            serde_json::to_string_pretty(&serious).unwrap()
        );
    }
    b.set_window_size(WIDE.0, WIDE.1).await.unwrap();
}

async fn visit(b: &Client, app: &TestApp, axe: Option<&str>, path: &str) {
    b.goto(&app.console_url(path)).await.unwrap();
    check(b, axe, path, true).await;
}

/// Waits for `css` on the page: a click that submits a form may return before the next page
/// is there.
async fn wait_for(b: &Client, css: &str) {
    b.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Clicks what loads another page, and waits for it.
async fn click(b: &Client, css: &str) {
    let target = b
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    super::and_load(b, target.click()).await;
}

/// A grant and a token of this task's own, so that the lists and the revoke confirmation
/// have something to show whatever the other tasks did.
async fn a_token(app: &TestApp) -> i64 {
    let now = app.app.now();
    app.app
        .state
        .run(move |c| {
            state::put_grant_via(c, "http://a11y.example.org", "a11y", true, true, &[], now)
        })
        .await
        .unwrap();
    let (_, row) = usestats::ws::tokens::create(
        &app.app,
        "http://a11y.example.org",
        "a11y",
        "a11y check",
        None,
        "",
    )
    .await
    .unwrap();
    row.id
}

/// The checks can fail: on a page given an image without a text alternative and a block
/// wider than the window, axe reports the image and the page is found too wide.
async fn canary(b: &Client, app: &TestApp, axe: Option<&str>) {
    b.goto(&app.console_url("/console/")).await.unwrap();
    b.execute(
        r#"
        const img = document.createElement('img');
        img.src = 'data:,';
        document.querySelector('main').append(img);
        const wide = document.createElement('div');
        wide.style.width = '3000px';
        wide.textContent = 'wide';
        document.querySelector('main').append(wide);
        return document.documentElement.scrollWidth > document.documentElement.clientWidth;
        "#,
        Vec::new(),
    )
    .await
    .map(|wider| assert_eq!(wider, true, "the overflow check sees a wide page"))
    .unwrap();
    if let Some(axe) = axe {
        let found = axe_violations(b, axe).await;
        assert!(
            found
                .iter()
                .any(|v| v["id"] == "image-alt" && v["impact"] == "critical"),
            "axe finds an image without alt: {found:?}"
        );
    }
}

pub async fn run(b: &Client, app: &TestApp) {
    let axe = axe_source();
    let axe = axe.as_deref();
    b.update_timeouts(TimeoutConfiguration::new(
        Some(Duration::from_secs(120)),
        None,
        None,
    ))
    .await
    .unwrap();
    canary(b, app, axe).await;
    let token = a_token(app).await;
    let (_, learner) = busiest_learner(app).await;
    let part: String = learner.chars().take(3).collect();

    for path in [
        "/console/",
        "/console/peers",
        "/console/peers/grants",
        "/console/peers/tokens",
        "/console/learners",
        &format!("/console/learners?q={part}"),
        "/console/learner",
        &format!("/console/learner?user={learner}"),
        "/console/courses",
        "/console/course",
        "/console/no-such-page",
    ] {
        visit(b, app, axe, path).await;
    }
    // A course page, reached from the index.
    b.goto(&app.console_url("/console/courses")).await.unwrap();
    click(b, "#courses-index tbody a").await;
    wait_for(b, "form#window input[name=course]").await;
    check(b, axe, "a course page", true).await;

    // The add-peer form refused (an address nobody answers at), then a real peer's
    // confirmation page, cancelled.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    b.goto(&app.console_url("/console/peers")).await.unwrap();
    let form = b.form(Locator::Id("add-peer")).await.unwrap();
    form.set_by_name("wwwroot", &nobody).await.unwrap();
    super::and_load(b, form.submit()).await;
    wait_for(b, "#form-error").await;
    check(b, axe, "the add-peer form, refused", true).await;
    let peer = spawn_app(Default::default()).await;
    let form = b.form(Locator::Id("add-peer")).await.unwrap();
    form.set_by_name("wwwroot", &peer.wwwroot).await.unwrap();
    super::and_load(b, form.submit()).await;
    wait_for(b, "#fingerprint").await;
    check(b, axe, "the peer confirmation", true).await;
    click(b, "form.actions a").await;
    wait_for(b, "#add-peer").await;

    // The grant form refused (no rights ticked), and the revoke confirmation (cancelled).
    b.goto(&app.console_url("/console/peers/grants"))
        .await
        .unwrap();
    let form = b.form(Locator::Id("add-grant")).await.unwrap();
    form.set_by_name("home_wwwroot", "http://a11y.example.org")
        .await
        .unwrap();
    form.set_by_name("username", "nobody").await.unwrap();
    super::and_load(b, form.submit()).await;
    wait_for(b, "#form-error").await;
    check(b, axe, "the grant form, refused", true).await;
    b.goto(&app.console_url("/console/peers/tokens"))
        .await
        .unwrap();
    click(b, &format!("#revoke-{token} button")).await;
    wait_for(b, "#confirm-form").await;
    check(b, axe, "the revoke confirmation", true).await;
    click(b, "#cancel").await;
    wait_for(b, "#create-token").await;

    // Last, logged out: the login page (this task runs last; it leaves the browser there).
    click(b, "form.logout button").await;
    wait_for(b, "body.login").await;
    b.goto(&app.console_url("/console/")).await.unwrap();
    check(b, axe, "the login page", false).await;
}
