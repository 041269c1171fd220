//! The admin's task that finds a learner by part of the last name and opens their sessions
//! (branch sessions): the search form, the matching result, then the learner page's session
//! list, whose count is what `usestats stats USER --sessions --format json` gives for the
//! window the page answered.

use crate::common::{TestApp, busiest_learner, usestats_cli};
use fantoccini::{Client, Locator};

/// Part of `lastname` (without its first and last letters when it is long enough) that the
/// search lists `username` for, among fewer matches than the page's limit.
async fn part_of_last_name(app: &TestApp, username: &str, lastname: &str) -> String {
    let letters: Vec<char> = lastname.chars().collect();
    let mut candidates = Vec::new();
    if letters.len() >= 5 {
        candidates.push(letters[1..letters.len() - 1].iter().collect::<String>());
    }
    candidates.push(lastname.to_string());
    for part in candidates {
        let found = app.app.reports.find_users(part.clone(), 100).await.unwrap();
        let listed = found.users.iter().any(|f| f.user.username == username);
        if listed && !found.truncated {
            return part;
        }
    }
    panic!("no part of {lastname} lists {username} among fewer than 100 people");
}

pub async fn run(b: &Client, app: &TestApp) {
    let (_, username) = busiest_learner(app).await;
    let person = app
        .app
        .reports
        .find_users(username.clone(), 1)
        .await
        .unwrap()
        .users
        .into_iter()
        .find(|f| f.user.username == username)
        .expect("the learner is found by username")
        .user;
    let part = part_of_last_name(app, &username, &person.lastname).await;

    // Typed into the search form, as a person would.
    b.goto(&app.console_url("/console/learners")).await.unwrap();
    let form = b.form(Locator::Id("search")).await.unwrap();
    form.set_by_name("q", &part).await.unwrap();
    super::and_load(b, form.submit()).await;
    let url = b.current_url().await.unwrap();
    assert_eq!(url.path(), "/console/learners");
    let results = b
        .find_all(Locator::Css("#learners tbody tr"))
        .await
        .unwrap();
    assert!(!results.is_empty(), "people match {part}");
    let href = format!(
        "/console/learner?user={}",
        form_urlencoded::byte_serialize(username.as_bytes()).collect::<String>()
    );
    super::and_load(
        b,
        b.find(Locator::Css(&format!("#learners a[href=\"{href}\"]")))
            .await
            .unwrap_or_else(|e| panic!("{username} among the matches of {part}: {e}"))
            .click(),
    )
    .await;

    // Their page: the session list, durations as h:mm:ss.
    let url = b.current_url().await.unwrap();
    assert_eq!(url.path(), "/console/learner");
    assert!(url.query().unwrap_or("").contains(&username), "{url}");
    let rows = b
        .find_all(Locator::Css("#session-list tbody tr"))
        .await
        .unwrap();
    assert!(!rows.is_empty(), "{username} has sessions");
    for cell in b
        .find_all(Locator::Css("#session-list td.duration"))
        .await
        .unwrap()
    {
        let text = cell.text().await.unwrap();
        let parts: Vec<&str> = text.split(':').collect();
        assert!(
            parts.len() == 3
                && parts.iter().all(|p| p.parse::<u32>().is_ok())
                && parts[1].len() == 2
                && parts[2].len() == 2,
            "h:mm:ss: {text}"
        );
    }
    let shown = b.find(Locator::Id("window-shown")).await.unwrap();
    let to = shown.attr("data-to").await.unwrap().unwrap();
    let total: usize = b
        .find(Locator::Id("session-list-count"))
        .await
        .unwrap()
        .attr("data-total")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= rows.len());
    // The list is below the charts: scrolled to for the screenshot (WebDriver's own script,
    // which the page's policy does not govern; the page has none).
    b.execute(
        "document.getElementById('session-list-heading').scrollIntoView()",
        Vec::new(),
    )
    .await
    .unwrap();
    crate::screenshot(b, "learner-sessions").await;

    // The command line, over the window the page answered.
    let config = app.dir.join("find_learner.toml");
    std::fs::write(&config, app.app.config.to_toml()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        usestats_cli(
            &config,
            &[
                "stats",
                &username,
                "--to",
                &to,
                "--sessions",
                "--format",
                "json",
            ],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["count"].as_u64(), Some(total as u64), "{cli}");
    assert_eq!(cli["sessions"].as_array().unwrap().len(), total);
}
