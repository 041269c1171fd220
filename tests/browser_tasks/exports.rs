//! The admin's task that downloads XLSX and ODS and checks them by opening them (branch exports).
//!
//! From the course index, open a course page over a window from 2000-01-01 to now, follow its
//! XLSX and ODS links as the page gives them (fetched with the browser's own session cookie),
//! and open each file: its rows are the course's learners with the numbers `app.reports`
//! gives, and the file name carries the window's days.

use crate::common::TestApp;
use fantoccini::{Client, Locator};
use usestats::reports::CourseAsk;
use usestats::stats::Window;

#[allow(dead_code)]
#[path = "sheets.rs"]
mod sheets;

/// The window's first day, as the page's `from` takes it.
const FROM: &str = "2000-01-01";
const FROM_UNIX: i64 = 946_684_800;

/// A link's target fetched with the browser's session cookie: status, headers, body.
async fn fetch(b: &Client, href: &str) -> (u16, hyper::HeaderMap, Vec<u8>) {
    use http_body_util::{BodyExt, Empty};
    let cookie = b
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == usestats::console::auth::SESSION_COOKIE)
        .expect("the session cookie");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let request = hyper::Request::get(href)
        .header("Cookie", format!("{}={}", cookie.name(), cookie.value()))
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status.as_u16(), parts.headers, bytes)
}

pub async fn run(b: &Client, app: &TestApp) {
    // A course from the index, as an admin would pick one.
    b.goto(&app.console_url("/console/courses")).await.unwrap();
    let first = b
        .find(Locator::Css("a[href*='/console/course?']"))
        .await
        .expect("the index links to course pages");
    let href = first.prop("href").await.unwrap().unwrap();
    b.goto(&format!("{href}&from={FROM}")).await.unwrap();
    let course = b
        .current_url()
        .await
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "course")
        .map(|(_, v)| v.into_owned())
        .expect("the course page names its course");

    let now = app.app.now();
    let window = Window {
        from: FROM_UNIX,
        to: now,
        now,
    };
    let ask = CourseAsk {
        course: course.clone(),
        group: None,
        window,
    };
    let expected = app.app.reports.course(ask).await.unwrap();
    assert!(!expected.learners.is_empty(), "{course} has learners");
    let today = time::OffsetDateTime::from_unix_timestamp(now)
        .unwrap()
        .date();
    let stem = format!("course-{}-{FROM}_{today}", expected.course.shortname);

    for (id, content_type) in [
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ] {
        let link = b.find(Locator::Id(id)).await.unwrap();
        assert_eq!(
            link.text().await.unwrap(),
            format!("Download {}", id.to_uppercase())
        );
        let href = link.prop("href").await.unwrap().unwrap();
        assert!(
            href.contains(&format!("from={FROM}")),
            "the link keeps the window: {href}"
        );
        let (status, headers, bytes) = fetch(b, &href).await;
        assert_eq!(status, 200, "{href}");
        assert_eq!(headers["content-type"], content_type);
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert_eq!(
            disposition,
            format!("attachment; filename=\"{stem}.{id}\"; filename*=UTF-8''{stem}.{id}"),
            "the window's days are in the file name"
        );
        let rows = match id {
            "xlsx" => sheets::xlsx(&bytes).0,
            _ => sheets::ods(&bytes).0,
        };
        assert_eq!(rows[0][0].text, "userid");
        assert_eq!(rows[0][15].text, "coursetotal_hms");
        assert_eq!(
            rows.len(),
            expected.learners.len() + 1,
            "{id}: one row a learner"
        );
        for (row, learner) in rows[1..].iter().zip(&expected.learners) {
            assert!(row.iter().all(|c| !c.formula), "{id}: no formula");
            assert_eq!(row[0].value, learner.userid.to_string(), "{id}");
            assert_eq!(row[1].text, learner.username, "{id}");
            assert_eq!(row[7].value, learner.coursetotal.to_string(), "{id}");
            let shown_seconds = match id {
                "xlsx" => (row[15].value.parse::<f64>().unwrap() * 86_400.0).round() as i64,
                _ => sheets::iso_duration_seconds(&row[15].value),
            };
            assert_eq!(shown_seconds, learner.coursetotal, "{id}: h:mm:ss");
        }
    }
}
