//! The admin's task that revokes a token with the confirmation step (branch actions): a grant
//! and a token made through the console, then Revoke: the first click only asks (the token
//! still works), Cancel keeps it, Confirm revokes it and the next page says so.

use crate::common::TestApp;
use fantoccini::{Client, Locator};
use usestats::store::state;

const HOME: &str = "http://revoke-task.example.org";
const USER: &str = "revoker";
const LABEL: &str = "revoke task";

/// The text of `css` on the page, waiting for it: a click that submits a form may return
/// before the next page is there.
async fn text(b: &Client, css: &str) -> String {
    b.wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Clicks what loads another page, and waits for it.
async fn click(b: &Client, css: &str) {
    let target = b
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    super::and_load(b, target.click()).await;
}

async fn works(app: &TestApp, token: &str) -> bool {
    usestats::ws::tokens::check(&app.app, token, None)
        .await
        .is_ok()
}

pub async fn run(b: &Client, app: &TestApp) {
    // A grant, through its form: the next page says it was saved.
    b.goto(&app.console_url("/console/peers/grants"))
        .await
        .unwrap();
    let form = b.form(Locator::Id("add-grant")).await.unwrap();
    form.set_by_name("home_wwwroot", HOME).await.unwrap();
    form.set_by_name("username", USER).await.unwrap();
    b.find(Locator::Css("#add-grant input[name=site]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    super::and_load(b, form.submit()).await;
    assert_eq!(
        text(b, "#notice").await,
        format!("Saved the grant for {USER}@{HOME}.")
    );
    let grant = app
        .app
        .state
        .run(state::list_grants)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.username == USER)
        .expect("the grant is stored");

    // A token for it: shown once, on the answer to the form.
    b.goto(&app.console_url("/console/peers/tokens"))
        .await
        .unwrap();
    let form = b.form(Locator::Id("create-token")).await.unwrap();
    form.set_by_name("grant", &grant.id.to_string())
        .await
        .unwrap();
    form.set_by_name("label", LABEL).await.unwrap();
    super::and_load(b, form.submit()).await;
    let token = text(b, "code#token").await;
    assert!(
        works(app, &token).await,
        "a new token opens the web services"
    );
    let id = app
        .app
        .state
        .run(state::list_tokens)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.label == LABEL)
        .expect("the token is stored")
        .id;
    let prefix = format!("{}…", &token[..8]);

    // Revoke, first click: a page that says what will happen, and nothing happened yet.
    b.goto(&app.console_url("/console/peers/tokens"))
        .await
        .unwrap();
    click(b, &format!("#revoke-{id} button")).await;
    text(b, "#confirm-form").await;
    assert_eq!(
        text(b, "h1").await,
        format!("Revoke the token {prefix} ({LABEL})?")
    );
    let said = text(b, "#consequences").await;
    assert!(
        said.contains(&format!("as {USER}@{HOME}")) && said.contains("stops working"),
        "{said}"
    );
    assert!(works(app, &token).await, "asking revokes nothing");

    // Cancel keeps it: listed as active, still working.
    click(b, "#cancel").await;
    text(b, "#create-token").await;
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/peers/tokens")
    );
    let row = text(b, &format!("tr[data-token='{id}']")).await;
    assert!(row.contains("active") && row.contains(&prefix), "{row}");
    assert!(works(app, &token).await, "cancel keeps the token");

    // Confirm: revoked, the next page says so, and the token no longer authenticates.
    click(b, &format!("#revoke-{id} button")).await;
    text(b, "#confirm-form").await;
    click(b, "#confirm").await;
    assert_eq!(
        text(b, "#notice").await,
        format!("Revoked the token {prefix} ({LABEL}): it no longer opens the web services.")
    );
    let notice = b.find(Locator::Id("notice")).await.unwrap();
    assert_eq!(
        notice.attr("role").await.unwrap().as_deref(),
        Some("status")
    );
    let row = text(b, &format!("tr[data-token='{id}']")).await;
    assert!(row.contains("revoked"), "{row}");
    assert!(
        b.find(Locator::Css(&format!("#revoke-{id}")))
            .await
            .is_err(),
        "no Revoke button on a revoked token"
    );
    assert!(!works(app, &token).await, "a revoked token is refused");
    let stored = app.app.state.run(state::list_tokens).await.unwrap();
    assert!(stored.iter().any(|t| t.id == id && t.revoked));
}
