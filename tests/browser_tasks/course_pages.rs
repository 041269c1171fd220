//! The admin's task that finds a course in the index, pages through it, sorts it and filters
//! it by group (branch course). The numbers are checked against the reports handle and the
//! demo's `groups_members` rows, never against what the page says of itself.

use std::collections::BTreeSet;

use crate::common::TestApp;
use fantoccini::{Client, Locator};
use usestats::reports::CourseAsk;
use usestats::stats::Window;

/// The value of `attribute` on the first element `css` finds.
async fn attr(b: &Client, css: &str, attribute: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .attr(attribute)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{css} has no {attribute}"))
}

/// `attribute` of every learner row on the page, in order.
async fn rows(b: &Client, attribute: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for row in b
        .find_all(Locator::Css("#learners tr[data-userid]"))
        .await
        .unwrap()
    {
        out.push(row.attr(attribute).await.unwrap().unwrap().parse().unwrap());
    }
    out
}

/// `#learner-count`'s (total, first, last).
async fn count(b: &Client) -> (i64, i64, i64) {
    let mut n = [0; 3];
    for (i, a) in ["data-total", "data-first", "data-last"].iter().enumerate() {
        n[i] = attr(b, "#learner-count", a).await.parse().unwrap();
    }
    (n[0], n[1], n[2])
}

/// The course's report through the reports handle, as the page asks it (window: all of it).
async fn report(app: &TestApp, course: i64, group: Option<String>) -> Vec<i64> {
    let now = app.app.now();
    let asked = CourseAsk {
        course: format!("id:{course}"),
        window: Window {
            from: 0,
            to: now,
            now,
        },
        group,
    };
    let report = app.app.reports.course(asked).await.unwrap();
    report.learners.iter().map(|l| l.userid).collect()
}

/// The members of a group, read from the demo's own table.
fn members(app: &TestApp, group: i64) -> BTreeSet<i64> {
    use diesel::{Connection, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Member {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        userid: i64,
    }
    let db = app.dir.join("usestats.sqlite3");
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let rows: Vec<Member> = diesel::sql_query(format!(
        "SELECT userid FROM mdl_groups_members WHERE groupid = {group}"
    ))
    .load(&mut conn)
    .unwrap();
    rows.into_iter().map(|m| m.userid).collect()
}

pub async fn run(b: &Client, app: &TestApp) {
    // The index, most learners first: the first course is a big one.
    b.goto(&app.console_url("/console/courses?sort=learners"))
        .await
        .unwrap();
    let first = b
        .find(Locator::Css("#courses-index tbody tr"))
        .await
        .unwrap();
    let course: i64 = first
        .attr("data-course")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    super::and_load(b, first.find(Locator::Css("a")).await.unwrap().click()).await;
    assert_eq!(b.current_url().await.unwrap().path(), "/console/course");
    let everyone = report(app, course, None).await;
    assert!(everyone.len() > 100, "course {course}: {}", everyone.len());
    let n = everyone.len() as i64;

    // Page 1, then page 2 by its link: the next 50 of the same total, none of page 1's.
    let one = rows(b, "data-userid").await;
    assert_eq!(count(b).await, (n, 1, 50));
    assert_eq!(one, everyone[..50]);
    super::and_load(b, b.find(Locator::Id("next")).await.unwrap().click()).await;
    let two = rows(b, "data-userid").await;
    assert_eq!(count(b).await, (n, 51, 100));
    assert_eq!(two, everyone[50..100]);
    assert!(two.iter().all(|id| !one.contains(id)));
    super::screenshot(b, "course-page-2").await;

    // Sorted by sessions (most first) from its heading; a second click turns the order.
    super::and_load(
        b,
        b.find(Locator::Id("sort-sessions")).await.unwrap().click(),
    )
    .await;
    let sessions = rows(b, "data-sessions").await;
    assert_eq!(sessions.len(), 50);
    assert!(sessions.windows(2).all(|w| w[0] >= w[1]), "{sessions:?}");
    let th = b.find(Locator::Css("th[aria-sort]")).await.unwrap();
    assert_eq!(
        th.attr("aria-sort").await.unwrap().as_deref(),
        Some("descending")
    );
    super::and_load(
        b,
        b.find(Locator::Id("sort-sessions")).await.unwrap().click(),
    )
    .await;
    let fewest = rows(b, "data-sessions").await;
    assert!(fewest.windows(2).all(|w| w[0] <= w[1]), "{fewest:?}");
    assert!(fewest[0] < sessions[0]);

    // A group from the picker: only its members, all of them, the count the page gives.
    let select = b.find(Locator::Id("group")).await.unwrap();
    let options = select.find_all(Locator::Css("option")).await.unwrap();
    assert!(options.len() >= 3, "all learners and two groups or more");
    let group: i64 = options[1]
        .attr("value")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    select.select_by_value(&group.to_string()).await.unwrap();
    super::and_load(
        b,
        b.find(Locator::Css("#window button[type=submit]"))
            .await
            .unwrap()
            .click(),
    )
    .await;
    let members = members(app, group);
    let want: Vec<i64> = everyone
        .iter()
        .copied()
        .filter(|id| members.contains(id))
        .collect();
    assert!(!want.is_empty() && want.len() < everyone.len());
    assert_eq!(report(app, course, Some(group.to_string())).await, want);
    let (total, first_shown, _) = count(b).await;
    assert_eq!(total, want.len() as i64);
    assert_eq!(first_shown, 1);
    assert_eq!(
        attr(b, "#enrolled", "data-count").await,
        want.len().to_string()
    );
    let shown = rows(b, "data-userid").await;
    assert!(!shown.is_empty());
    assert!(shown.iter().all(|id| members.contains(id)), "{shown:?}");
    let bars = b
        .find_all(Locator::Css("#learner-chart rect.bar"))
        .await
        .unwrap();
    for bar in bars {
        let key: i64 = bar
            .attr("data-key")
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        assert!(members.contains(&key), "the chart keeps the group too");
    }
    // The picker still shows the group, and the sort survived the form.
    assert_eq!(
        attr(b, "#group option[selected]", "value").await,
        group.to_string()
    );
    assert!(b.find(Locator::Css("#activities")).await.is_ok());
    super::screenshot(b, "course-group").await;
}
