//! The console's learner and course pages over real HTTP (issue 14): logged in as a person
//! would be (login form, CSRF cookie and field, session cookie), their numbers compared with
//! what the `usestats` binary prints for the same window.

mod common;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use common::{AppOptions, TestApp, busiest_learner, spawn_app, usestats_cli};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// The window every comparison uses: explicit at both ends, inside the demo's log (which ends
/// on 2026-10-31), so that "now" plays no part.
const FROM: &str = "2026-10-01";
const TO: &str = "2026-10-25";

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 page")
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// `name=value` of each `Set-Cookie`.
    fn cookies(&self) -> HashMap<String, String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| {
                let first = v.to_str().ok()?.split(';').next()?;
                let (name, value) = first.split_once('=')?;
                Some((name.to_string(), value.to_string()))
            })
            .collect()
    }
}

async fn send(method: &str, url: &str, cookie: &str, form: Option<&[(&str, &str)]>) -> Answer {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder().method(method).uri(url);
    if !cookie.is_empty() {
        request = request.header("Cookie", cookie);
    }
    let body = match form {
        Some(fields) => {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish()
        }
        None => String::new(),
    };
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// A daemon with the demo site, a console account, and a logged-in session.
struct Console {
    app: TestApp,
    /// `Cookie` header value of the session.
    cookie: String,
    config: std::path::PathBuf,
}

impl Console {
    async fn start() -> Console {
        Console::start_with(AppOptions {
            demo_remote_hosts: Some(vec![]),
            ..Default::default()
        })
        .await
    }

    async fn start_with(options: AppOptions) -> Console {
        let app = spawn_app(options).await;
        // The account, as `usestats console user add` makes it.
        let hash = usestats::console::auth::hash_password("correct horse").unwrap();
        let now = app.app.now();
        app.app
            .state
            .run(move |c| usestats::store::state::set_console_user(c, "teacher", &hash, now))
            .await
            .unwrap();
        // The login form: its CSRF token comes as a cookie and as a hidden field.
        let form = send("GET", &app.console_url("/console/login"), "", None).await;
        assert_eq!(form.status, 200);
        let token = form.cookies()["usestats_console_login"].clone();
        assert!(
            form.text()
                .contains(&format!(r#"name="csrf" value="{token}""#)),
            "the form carries the cookie's token"
        );
        let login_cookie = format!("usestats_console_login={token}");
        let logged = send(
            "POST",
            &app.console_url("/console/login"),
            &login_cookie,
            Some(&[
                ("name", "teacher"),
                ("password", "correct horse"),
                ("csrf", &token),
            ]),
        )
        .await;
        assert_eq!(logged.status, 303, "{}", logged.text());
        assert_eq!(logged.header("location"), "/console/");
        let session = logged.cookies()["usestats_console"].clone();
        assert!(!session.is_empty());
        // The command line reads the daemon's own files: the same database, the same keys.
        let config = app.dir.join("usestats.toml");
        std::fs::write(&config, format!("[site]\nwwwroot = \"{}\"\n", app.wwwroot)).unwrap();
        Console {
            cookie: format!("usestats_console={session}"),
            app,
            config,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        send("GET", &self.app.console_url(path), &self.cookie, None).await
    }

    /// The `usestats` binary's standard output, on this daemon's configuration.
    async fn cli(&self, args: &[&str]) -> Vec<u8> {
        let config = self.config.clone();
        let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = owned.iter().map(String::as_str).collect();
            usestats_cli(&config, &args)
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "usestats {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    async fn cli_json(&self, args: &[&str]) -> Value {
        serde_json::from_slice(&self.cli(args).await).unwrap()
    }

    /// Runs SQL on the demo database (a connection of its own: names are read at answer time).
    fn sql(&self, statement: &str) {
        use diesel::{Connection, RunQueryDsl};
        let db = self.app.dir.join("usestats.sqlite3");
        let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
}

/// The attributes of every `<name …>` tag of `html`, in order (values unescaped of the
/// entities askama writes).
fn tags(html: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    let mut found = Vec::new();
    let open = format!("<{name}");
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at + open.len()..];
        if !rest.starts_with([' ', '>', '/', '\n']) {
            continue;
        }
        let end = rest.find('>').unwrap();
        let mut attributes = BTreeMap::new();
        let mut text = &rest[..end];
        while let Some(eq) = text.find("=\"") {
            let key = text[..eq].trim().rsplit(' ').next().unwrap().to_string();
            let value_end = text[eq + 2..].find('"').unwrap();
            let value = &text[eq + 2..eq + 2 + value_end];
            attributes.insert(
                key,
                value
                    .replace("&quot;", "\"")
                    .replace("&#34;", "\"")
                    .replace("&#39;", "'")
                    .replace("&apos;", "'")
                    .replace("&lt;", "<")
                    .replace("&#60;", "<")
                    .replace("&gt;", ">")
                    .replace("&#62;", ">")
                    .replace("&amp;", "&")
                    .replace("&#38;", "&"),
            );
            text = &text[eq + 2 + value_end + 1..];
        }
        found.push(attributes);
    }
    found
}

/// The part of `html` from the element that opens with `start` to the next `end`.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page"));
    let len = html[at..].find(end).unwrap();
    &html[at..at + len + end.len()]
}

fn as_i64(text: &str) -> i64 {
    text.parse().unwrap()
}

#[tokio::test]
async fn learner_page_numbers_equal_stats_json() {
    let console = Console::start().await;
    let (_, user) = busiest_learner(&console.app).await;
    let stats = console
        .cli_json(&[
            "stats", &user, "--from", FROM, "--to", TO, "--format", "json",
        ])
        .await;
    let total = stats["total"].as_i64().unwrap();
    assert!(total > 0, "the window holds time: {stats}");
    // The command line answered by a full scan (nothing compiled yet); the page answers from
    // the compiled store, as a served console does.
    let compiled = common::compile(&console.app.app).await;
    assert!(compiled.rows_read > 0 && compiled.segments > 0);

    let page = console
        .get(&format!("/console/learner?user={user}&from={FROM}&to={TO}"))
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    // The total.
    let shown_total = tags(&html, "strong")
        .into_iter()
        .find(|t| t.get("id").map(String::as_str) == Some("total-seconds"))
        .expect("the total");
    assert_eq!(as_i64(&shown_total["data-seconds"]), total);
    // One bar per course, with the course's `coursetotal`, in an SVG that parses as XML.
    let chart = section(&html, r#"<svg id="course-chart""#, "</svg>");
    let mut reader = quick_xml::Reader::from_str(chart);
    while !matches!(
        reader.read_event().expect("the chart is XML"),
        quick_xml::events::Event::Eof
    ) {}
    let bars: BTreeMap<i64, i64> = tags(chart, "rect")
        .into_iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("bar"))
        .map(|t| (as_i64(&t["data-key"]), as_i64(&t["data-seconds"])))
        .collect();
    let expected: BTreeMap<i64, i64> = stats["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().unwrap(),
                c["coursetotal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(expected.len() >= 2, "{stats}");
    assert_eq!(bars, expected);
    // Every activity's time, per course.
    let mut modules = BTreeMap::new();
    for table in html
        .split(r#"<table class="modules" data-course=""#)
        .skip(1)
    {
        let course = as_i64(&table[..table.find('"').unwrap()]);
        let table = &table[..table.find("</table>").unwrap()];
        for row in tags(table, "tr")
            .into_iter()
            .filter(|t| t.contains_key("data-cmid"))
        {
            modules.insert(
                (course, as_i64(&row["data-cmid"])),
                as_i64(&row["data-seconds"]),
            );
        }
    }
    let mut expected_modules = BTreeMap::new();
    for c in stats["courses"].as_array().unwrap() {
        for m in c["modules"].as_array().unwrap() {
            expected_modules.insert(
                (c["id"].as_i64().unwrap(), m["cmid"].as_i64().unwrap()),
                m["elapsed"].as_i64().unwrap(),
            );
        }
    }
    assert!(!expected_modules.is_empty());
    assert_eq!(modules, expected_modules);
    // Session figures, and the calendar's days add up to the total (sum of sessions = total).
    let count = tags(&html, "dd")
        .into_iter()
        .find_map(|t| t.get("data-count").cloned())
        .unwrap();
    assert_eq!(as_i64(&count), stats["sessions"]["count"].as_i64().unwrap());
    let calendar = section(&html, r#"<svg id="sessions-chart""#, "</svg>");
    let days: i64 = tags(calendar, "rect")
        .iter()
        .filter_map(|t| t.get("data-seconds"))
        .map(|s| as_i64(s))
        .sum();
    assert_eq!(days, total);
    // The window picker keeps the window.
    let form = tags(&html, "form")
        .into_iter()
        .find(|t| t.get("id").map(String::as_str) == Some("window"))
        .expect("the window picker");
    assert_eq!(form["action"], "/console/learner");
    let inputs = tags(&html, "input");
    let value_of = |name: &str| {
        inputs
            .iter()
            .find(|t| t.get("name").map(String::as_str) == Some(name))
            .map(|t| (t.get("type").cloned(), t["value"].clone()))
            .unwrap()
    };
    assert_eq!(value_of("from"), (Some("date".into()), FROM.to_string()));
    assert_eq!(value_of("to"), (Some("date".into()), TO.to_string()));

    // The same window as unix times gives the same numbers: a date as `to` runs through the
    // last second of its day.
    let (from, to) = (
        usestats::timefmt::parse_time(FROM).unwrap(),
        usestats::timefmt::parse_time(TO).unwrap() + usestats::timefmt::DAY - 1,
    );
    let page = console
        .get(&format!("/console/learner?user={user}&from={from}&to={to}"))
        .await;
    assert!(
        page.text()
            .contains(&format!(r#"id="total-seconds" data-seconds="{total}""#))
    );
}

#[tokio::test]
async fn course_csv_equals_report_csv_and_the_table_sorts() {
    let console = Console::start().await;
    let (_, user) = busiest_learner(&console.app).await;
    let stats = console
        .cli_json(&[
            "stats", &user, "--from", FROM, "--to", TO, "--format", "json",
        ])
        .await;
    // The busiest learner's busiest real course.
    let course = stats["courses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_i64().unwrap() > 1)
        .max_by_key(|c| c["coursetotal"].as_i64().unwrap())
        .unwrap();
    let id = course["id"].as_i64().unwrap();
    let shortname = course["shortname"].as_str().unwrap().to_string();
    let course_arg = format!("id:{id}");

    // CSV: byte for byte the command line's.
    let cli_csv = console
        .cli(&[
            "report",
            "--course",
            &course_arg,
            "--from",
            FROM,
            "--to",
            TO,
            "--format",
            "csv",
        ])
        .await;
    // That was a full scan (nothing compiled yet); the page answers from the compiled store.
    let compiled = common::compile(&console.app.app).await;
    assert!(compiled.rows_read > 0 && compiled.segments > 0);
    let csv = console
        .get(&format!(
            "/console/course.csv?course=id:{id}&from={FROM}&to={TO}"
        ))
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(
        csv.header("content-disposition")
            .starts_with("attachment; filename=\""),
        "{}",
        csv.header("content-disposition")
    );
    // The window is in the name, in ASCII and in UTF-8 (RFC 6266).
    assert!(
        csv.header("content-disposition")
            .contains(&format!("-{FROM}_{TO}.csv\"; filename*=UTF-8''course-")),
        "{}",
        csv.header("content-disposition")
    );
    assert!(cli_csv.len() > 200, "{}", String::from_utf8_lossy(&cli_csv));
    assert_eq!(
        String::from_utf8(csv.body.clone()).unwrap(),
        String::from_utf8(cli_csv.clone()).unwrap()
    );
    assert_eq!(csv.body, cli_csv);

    // The page: the shortname finds the course too; the CSV link keeps course and window.
    let report = console
        .cli_json(&[
            "report",
            "--course",
            &course_arg,
            "--from",
            FROM,
            "--to",
            TO,
            "--format",
            "json",
        ])
        .await;
    let learners = report["learners"].as_array().unwrap();
    assert!(learners.len() >= 3, "{report}");
    let page = console
        .get(&format!(
            "/console/course?course={shortname}&from={FROM}&to={TO}"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let link = tags(&html, "a")
        .into_iter()
        .find(|t| t.get("id").map(String::as_str) == Some("csv"))
        .expect("the CSV link");
    assert_eq!(
        link["href"],
        format!("/console/course.csv?course=id%3A{id}&from={FROM}&to={TO}")
    );
    let csv_again = console.get(&link["href"]).await;
    assert_eq!(csv_again.body, cli_csv);

    // sort=time (the default): the report's order, most time first, each with its seconds.
    let rows = |html: &str| -> Vec<(i64, i64)> {
        let table = section(html, r#"<table id="learners""#, "</table>");
        tags(table, "tr")
            .into_iter()
            .filter(|t| t.contains_key("data-userid"))
            .map(|t| (as_i64(&t["data-userid"]), as_i64(&t["data-seconds"])))
            .collect()
    };
    let expected: Vec<(i64, i64)> = learners
        .iter()
        .map(|l| {
            (
                l["userid"].as_i64().unwrap(),
                l["coursetotal"].as_i64().unwrap(),
            )
        })
        .collect();
    let by_time = rows(&html);
    assert_eq!(by_time, expected);
    assert!(by_time.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(by_time[0].1 > 0);
    // The chart has the same learners' seconds.
    let chart = section(&html, r#"<svg id="learner-chart""#, "</svg>");
    let bars: Vec<(i64, i64)> = tags(chart, "rect")
        .into_iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("bar"))
        .map(|t| (as_i64(&t["data-key"]), as_i64(&t["data-seconds"])))
        .collect();
    assert_eq!(bars, expected.iter().take(20).copied().collect::<Vec<_>>());

    // sort=name: by last name, first name, id.
    let page = console
        .get(&format!(
            "/console/course?course=id:{id}&from={FROM}&to={TO}&sort=name"
        ))
        .await;
    assert_eq!(page.status, 200);
    let by_name = rows(&page.text());
    let mut named: Vec<&Value> = learners.iter().collect();
    named.sort_by_key(|l| {
        (
            l["lastname"].as_str().unwrap().to_string(),
            l["firstname"].as_str().unwrap().to_string(),
            l["userid"].as_i64().unwrap(),
        )
    });
    let expected_by_name: Vec<(i64, i64)> = named
        .iter()
        .map(|l| {
            (
                l["userid"].as_i64().unwrap(),
                l["coursetotal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_name, expected_by_name);
    assert_ne!(by_name, by_time, "the two orders differ on this course");
    assert!(page.text().contains(r#"aria-sort="ascending""#));
    // Anything else is refused, not guessed.
    let bad = console
        .get(&format!("/console/course?course=id:{id}&sort=shoesize"))
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_reversed_window_is_refused_e15() {
    let console = Console::start().await;
    let (_, user) = busiest_learner(&console.app).await;
    for path in [
        format!("/console/learner?user={user}&from=2026-10-15&to=2026-10-01"),
        "/console/course?course=2&from=2026-10-15&to=2026-10-01".to_string(),
        "/console/course.csv?course=2&from=2026-10-15&to=2026-10-01".to_string(),
    ] {
        let page = console.get(&path).await;
        assert_eq!(page.status, 400, "{path}");
        let text = page.text();
        assert!(
            text.contains("The window ends before it starts: to (2026-10-01) is earlier than from (2026-10-15)"),
            "{path}: {text}"
        );
        // A message page, in the console's layout.
        assert!(text.contains(r#"class="message""#), "{text}");
        assert!(text.contains("/console/logout"));
    }
    // The command line refuses the same window.
    let refused = usestats_cli(
        &console.config,
        &["stats", &user, "--from", "2026-10-15", "--to", "2026-10-01"],
    );
    assert_eq!(refused.status.code(), Some(1));
    // A date that does not exist is refused with what was wrong.
    let bad = console
        .get(&format!("/console/learner?user={user}&from=2026-02-30"))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text().contains("not a unix time or a date"),
        "{}",
        bad.text()
    );
    // Without an end, a start later than now is an empty window (nothing happened yet), not
    // an error (E15).
    let future = console
        .get(&format!("/console/learner?user={user}&from=2100-01-01"))
        .await;
    assert_eq!(future.status, 200);
    assert!(
        future
            .text()
            .contains(r#"id="total-seconds" data-seconds="0""#)
    );
}

#[tokio::test]
async fn unknown_learner_or_course_gets_a_message_page() {
    let console = Console::start().await;
    // Not a username: sent to the search, which says nobody matches.
    let page = console.get("/console/learner?user=nobody.at.all").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), "/console/learners?q=nobody.at.all");
    let search = console.get(&page.header("location")).await;
    assert_eq!(search.status, 200);
    assert!(
        search.text().contains(r#"id="no-match""#),
        "{}",
        search.text()
    );
    // Not a course id or short name: sent to the course index, filtered by it.
    for (path, q) in [
        ("/console/course?course=no-such-course", "no-such-course"),
        ("/console/course?course=id:999999", "id%3A999999"),
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.header("location"), format!("/console/courses?q={q}"));
        let index = console.get(&page.header("location")).await;
        assert!(index.text().contains("No course matches."), "{path}");
    }
    // The export has no page to send anyone to: a message.
    let page = console
        .get("/console/course.csv?course=no-such-course")
        .await;
    assert_eq!(page.status, 404);
    assert!(
        page.text().contains("There is no course"),
        "{}",
        page.text()
    );
    assert!(page.text().contains(r#"class="message""#));
    // Without a name: the form alone.
    let empty = console.get("/console/learner").await;
    assert_eq!(empty.status, 200);
    assert!(empty.text().contains(r#"<form id="window""#));
    assert!(!empty.text().contains("total-seconds"));
    // And nothing without a session.
    let anonymous = send(
        "GET",
        &console.app.console_url("/console/learner?user=x"),
        "",
        None,
    )
    .await;
    assert_eq!(anonymous.status, 303);
    // To the login, which leads back here afterwards (docs/console.md, deep links).
    assert_eq!(
        anonymous.header("location"),
        "/console/login?next=%2Fconsole%2Flearner%3Fuser%3Dx"
    );
    let anonymous = send(
        "GET",
        &console.app.console_url("/console/course.csv?course=2"),
        "",
        None,
    )
    .await;
    assert_eq!(anonymous.status, 303);
    assert!(anonymous.body.is_empty());
}

#[tokio::test]
async fn names_with_markup_are_shown_escaped() {
    let console = Console::start().await;
    let (userid, user) = busiest_learner(&console.app).await;
    let stats = console
        .cli_json(&[
            "stats", &user, "--from", FROM, "--to", TO, "--format", "json",
        ])
        .await;
    let course = stats["courses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"].as_i64().unwrap() > 1)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let cmid = stats["courses"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["modules"].as_array().unwrap())
        .next()
        .unwrap()["cmid"]
        .as_i64()
        .unwrap();
    console.sql(&format!(
        "UPDATE mdl_course SET shortname = '<script>alert(1)</script>&c', fullname = '<img src=x onerror=alert(2)>' WHERE id = {course}"
    ));
    console.sql(&format!(
        "UPDATE mdl_user SET firstname = '<script>alert(3)</script>', lastname = '\"><b>x</b>' WHERE id = {userid}"
    ));
    // An activity's name lives in its module's own table.
    {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Cm {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            instance: i64,
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let db = console.app.dir.join("usestats.sqlite3");
        let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        let cm: Cm = diesel::sql_query(format!(
            "SELECT cm.instance, m.name FROM mdl_course_modules cm JOIN mdl_modules m ON m.id = cm.module WHERE cm.id = {cmid}"
        ))
        .get_result(&mut conn)
        .unwrap();
        diesel::sql_query(format!(
            "UPDATE mdl_{} SET name = '<script>alert(4)</script>' WHERE id = {}",
            cm.name, cm.instance
        ))
        .execute(&mut conn)
        .unwrap();
    }
    let learner = console
        .get(&format!("/console/learner?user={user}&from={FROM}&to={TO}"))
        .await
        .text();
    let course_page = console
        .get(&format!(
            "/console/course?course=id:{course}&from={FROM}&to={TO}"
        ))
        .await
        .text();
    // An unknown name goes to the search page, which repeats it.
    let sent = console
        .get("/console/learner?user=%3Cscript%3Ealert(5)%3C%2Fscript%3E")
        .await;
    assert_eq!(sent.status, 303);
    let unknown = console.get(&sent.header("location")).await.text();
    for (page, shows) in [
        (
            &learner,
            vec![
                "&lt;script&gt;alert(1)&lt;/script&gt;&amp;c",
                "&lt;script&gt;alert(3)&lt;/script&gt;",
                "&lt;script&gt;alert(4)&lt;/script&gt;",
                "&lt;img src=x onerror=alert(2)&gt;",
            ],
        ),
        (
            &course_page,
            vec![
                "&lt;script&gt;alert(3)&lt;/script&gt;",
                "&lt;img src=x onerror=alert(2)&gt;",
            ],
        ),
        (&unknown, vec!["&lt;script&gt;alert(5)&lt;/script&gt;"]),
    ] {
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>x"), "{page}");
        for escaped in shows {
            // askama writes numeric entities (`&#60;`), the charts named ones (`&lt;`): compare
            // what a browser shows.
            let shown = page
                .replace("&#60;", "&lt;")
                .replace("&#62;", "&gt;")
                .replace("&#38;", "&amp;")
                .replace("&#34;", "&quot;");
            assert!(shown.contains(escaped), "{escaped} not in {page}");
        }
    }
    // The chart's title for that course: escaped in SVG too, and still the course's bar.
    let chart = section(&learner, r#"<svg id="course-chart""#, "</svg>");
    assert!(
        chart.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;&amp;c: "),
        "{chart}"
    );
    assert!(chart.contains(&format!(r#"data-key="{course}""#)));
}

/// Issue 22, N4: a learner sets their own name to something a spreadsheet splitting on `;`
/// (or a tab) would run as a formula. Both exports (the console's and `usestats report`)
/// give the same bytes, and no cell they hold starts a formula under any separator.
#[tokio::test]
async fn names_like_formulas_are_defused_for_every_separator_in_both_csvs() {
    let console = Console::start().await;
    let (_, user) = busiest_learner(&console.app).await;
    let stats = console
        .cli_json(&[
            "stats", &user, "--from", FROM, "--to", TO, "--format", "json",
        ])
        .await;
    let course = stats["courses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_i64().unwrap() > 1)
        .max_by_key(|c| c["coursetotal"].as_i64().unwrap())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    // A learner the course's report lists (its enrolled learners).
    let listed = console
        .cli_json(&[
            "report",
            "--course",
            &format!("id:{course}"),
            "--from",
            FROM,
            "--to",
            TO,
            "--format",
            "json",
        ])
        .await;
    let userid = listed["learners"][0]["userid"].as_i64().expect("a learner");
    console.sql(&format!(
        "UPDATE mdl_user SET firstname = 'a;=1+1', lastname = 'b' || char(9) || '@SUM(1);x,-2' WHERE id = {userid}"
    ));
    let course_arg = format!("id:{course}");
    let cli_csv = console
        .cli(&[
            "report",
            "--course",
            &course_arg,
            "--from",
            FROM,
            "--to",
            TO,
            "--format",
            "csv",
        ])
        .await;
    let page = console
        .get(&format!(
            "/console/course.csv?course=id:{course}&from={FROM}&to={TO}"
        ))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body, cli_csv, "the two exports are the same bytes");
    let text = String::from_utf8(cli_csv).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{userid},")))
        .expect("the learner's line");
    assert!(
        line.contains("\"a;'=1+1\",\"b\t'@SUM(1);x,'-2\""),
        "quoted, and defused after each separator: {line}"
    );
    for separator in [',', ';', '\t'] {
        for cell in text.split(['\r', '\n']).flat_map(|l| l.split(separator)) {
            let bare = cell.trim_start_matches(['"', ' ']);
            assert!(
                !bare.starts_with(['=', '+', '-', '@']),
                "a cell {cell:?} split on {separator:?} starts a formula:\n{text}"
            );
        }
    }
}

/// The learner and course pages show the estimators side by side (docs/engine.md §8) with
/// the totals `usestats stats|report --estimator all` gives for the same window, and a
/// sentence on why dedication differs.
#[tokio::test]
async fn estimators_side_by_side_equal_the_command_line() {
    let console = Console::start().await;
    let (_, user) = busiest_learner(&console.app).await;
    let window = ["--from", FROM, "--to", TO];
    let mut args = vec!["--json", "stats", user.as_str(), "--estimator", "all"];
    args.extend_from_slice(&window);
    let stats = console.cli_json(&args).await;
    let expected: BTreeMap<String, i64> = stats["estimators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["total"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(expected.len(), 3);
    assert!(expected["dedication"] > 0, "{stats}");
    let shown = |html: &str| -> BTreeMap<String, i64> {
        let table = section(html, r#"<table id="estimators""#, "</table>");
        tags(table, "tr")
            .into_iter()
            .filter(|t| t.contains_key("data-estimator"))
            .map(|t| (t["data-estimator"].clone(), as_i64(&t["data-seconds"])))
            .collect()
    };
    let page = console
        .get(&format!("/console/learner?user={user}&from={FROM}&to={TO}"))
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(shown(&html), expected);
    assert!(
        html.contains("dedication gives no credit after the last click of a session"),
        "{html}"
    );

    // The course page: every enrolled learner's totals added up, per estimator.
    let course = stats["estimators"][1]["courses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_i64().unwrap() > 1)
        .max_by_key(|c| c["total"].as_i64().unwrap())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let id = format!("id:{course}");
    let mut args = vec![
        "--json",
        "report",
        "--course",
        id.as_str(),
        "--estimator",
        "all",
    ];
    args.extend_from_slice(&window);
    let report = console.cli_json(&args).await;
    let expected: BTreeMap<String, i64> = report["estimators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["total"].as_i64().unwrap(),
            )
        })
        .collect();
    let page = console
        .get(&format!("/console/course?course={id}&from={FROM}&to={TO}"))
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(shown(&html), expected);
    assert!(html.contains(r#"<table id="learner-estimators">"#));
}

#[tokio::test]
async fn learners_are_found_by_part_of_a_name_and_courses_paged_in_the_index() {
    let console = Console::start().await;
    let (userid, username) = busiest_learner(&console.app).await;
    let json = console
        .cli_json(&["--json", "users", "--search", &username])
        .await;
    let me = &json["users"][0];
    assert_eq!(me["id"].as_i64(), Some(userid));
    assert_eq!(me["match"], "exact");
    let last = me["lastname"].as_str().unwrap().to_string();
    // Part of the last name, in another case: the page lists the same people as the command.
    let part: String = last.chars().take(3).collect::<String>().to_uppercase();
    let page = console
        .get(&format!(
            "/console/learners?q={}",
            form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    let cli = console
        .cli_json(&["--json", "users", "--search", &part, "--limit", "100"])
        .await;
    let listed = section(&html, r#"<table id="learners""#, "</table>");
    let links: Vec<String> = tags(listed, "a")
        .iter()
        .map(|a| a["href"].clone())
        .collect();
    let want: Vec<String> = cli["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "/console/learner?user={}",
                form_urlencoded::byte_serialize(u["username"].as_str().unwrap().as_bytes())
                    .collect::<String>()
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        links, want,
        "the page and `usestats users` list the same people, in order"
    );
    let mine = format!("/console/learner?user={username}");
    assert!(links.contains(&mine), "{links:?}");
    // The link opens the learner's report.
    let opened = console.get(&mine).await;
    assert_eq!(opened.status, 200);
    assert!(opened.text().contains("total-seconds"));
    // Nobody: said in words.
    let none = console.get("/console/learners?q=zzzz-nobody").await;
    assert!(none.text().contains(r#"id="no-match""#));

    // The course index: 4 demo courses (the front page is not one), sortable, linked.
    let index = console.get("/console/courses?sort=learners").await;
    assert_eq!(index.status, 200);
    let html = index.text();
    assert!(html.contains("Courses 1–4 of 4."), "{html}");
    let rows = tags(section(&html, "<tbody>", "</tbody>"), "tr");
    let ids: Vec<i64> = rows.iter().map(|r| as_i64(&r["data-course"])).collect();
    assert_eq!(ids.len(), 4);
    let courses = console
        .cli_json(&["--json", "courses", "--sort", "learners"])
        .await;
    let cli_ids: Vec<i64> = courses["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, cli_ids, "the page and `usestats courses` agree");
    // Each row links to the course's page; a filter keeps the matching ones; past the end, no next page.
    let first = &courses["courses"][0];
    let link = format!("/console/course?course=id%3A{}", first["id"]);
    assert!(html.contains(&link), "{link}");
    let course = console.get(&link).await;
    assert_eq!(course.status, 200);
    let part = first["shortname"].as_str().unwrap()[..2].to_lowercase();
    let filtered = console.get(&format!("/console/courses?q={part}")).await;
    assert!(
        filtered
            .text()
            .contains(first["shortname"].as_str().unwrap())
    );
    let past = console.get("/console/courses?page=9").await;
    assert!(past.text().contains("past the last one"));
    assert!(!past.text().contains(r#"id="next""#));
    // Nothing without a session.
    let anonymous = send(
        "GET",
        &console.app.console_url("/console/learners?q=a"),
        "",
        None,
    )
    .await;
    assert_eq!(anonymous.status, 303);
}

/// A course of a few hundred learners, for the pages that page.
async fn big_course() -> Console {
    Console::start_with(AppOptions {
        demo_remote_hosts: Some(vec![]),
        demo_users: 400,
        demo_courses: 2,
        demo_log_rows: 30_000,
        ..Default::default()
    })
    .await
}

/// The learner rows of a course page: (userid, the row's data attributes).
fn learner_rows(html: &str) -> Vec<BTreeMap<String, String>> {
    if !html.contains(r#"<table id="learners""#) {
        return Vec::new();
    }
    let table = section(html, r#"<table id="learners""#, "</table>");
    tags(table, "tr")
        .into_iter()
        .filter(|t| t.contains_key("data-userid"))
        .collect()
}

fn ids(rows: &[BTreeMap<String, String>]) -> Vec<i64> {
    rows.iter().map(|r| as_i64(&r["data-userid"])).collect()
}

/// `#learner-count`'s numbers: (total matching, first shown, last shown).
fn count(html: &str) -> (i64, i64, i64) {
    let tag = tags(html, "p")
        .into_iter()
        .find(|t| t.get("id").map(String::as_str) == Some("learner-count"))
        .expect("the learner count");
    (
        as_i64(&tag["data-total"]),
        as_i64(&tag["data-first"]),
        as_i64(&tag["data-last"]),
    )
}

/// The integer column `sql` selects as `v`, from the daemon's demo database.
fn ints(console: &Console, sql: &str) -> Vec<i64> {
    use diesel::{Connection, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        v: i64,
    }
    let db = console.app.dir.join("usestats.sqlite3");
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let rows: Vec<V> = diesel::sql_query(sql).load(&mut conn).unwrap();
    rows.into_iter().map(|r| r.v).collect()
}

/// The report's learners in the order the page's rule gives for a column: the column's value
/// (most first, or A first, or as asked), then last name, first name and id.
fn ordered_by(learners: &[Value], column: &str, descending: bool) -> Vec<i64> {
    let mut rows: Vec<&Value> = learners.iter().collect();
    let name = |l: &Value| {
        (
            l["lastname"].as_str().unwrap().to_string(),
            l["firstname"].as_str().unwrap().to_string(),
            l["userid"].as_i64().unwrap(),
        )
    };
    let number = |l: &Value, field: &str| l[field].as_i64().unwrap_or(-1);
    rows.sort_by(|a, b| {
        let by_column = match column {
            "name" => std::cmp::Ordering::Equal,
            "username" => a["username"].as_str().cmp(&b["username"].as_str()),
            "course" => number(a, "coursetime").cmp(&number(b, "coursetime")),
            "activities" => number(a, "activitytime").cmp(&number(b, "activitytime")),
            "other" => number(a, "othertime").cmp(&number(b, "othertime")),
            "time" => number(a, "coursetotal").cmp(&number(b, "coursetotal")),
            "sessions" => number(a, "sessions").cmp(&number(b, "sessions")),
            "last" => number(a, "last_access").cmp(&number(b, "last_access")),
            other => panic!("no column {other}"),
        };
        let by_column = if descending {
            by_column.reverse()
        } else {
            by_column
        };
        let by_name = name(a).cmp(&name(b));
        let by_name = if column == "name" && descending {
            by_name.reverse()
        } else {
            by_name
        };
        by_column.then(by_name)
    });
    rows.iter().map(|l| l["userid"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn course_page_pages_sorts_and_filters_on_the_server() {
    let console = big_course().await;
    let report = console
        .cli_json(&["--json", "report", "--course", "id:2"])
        .await;
    let learners = report["learners"].as_array().unwrap().clone();
    let n = learners.len() as i64;
    assert!(n > 100, "the course has {n} learners: too few to page");
    let by_time: Vec<i64> = learners
        .iter()
        .map(|l| l["userid"].as_i64().unwrap())
        .collect();

    // Pages of 50 (the default) and of 100: the report's order, cut where the page says.
    let one = console.get("/console/course?course=id:2").await;
    assert_eq!(one.status, 200);
    let html = one.text();
    assert_eq!(ids(&learner_rows(&html)), by_time[..50]);
    assert_eq!(count(&html), (n, 1, 50));
    assert!(html.contains(&format!("Showing 1–50 of {n} learners")));
    let next = tags(&html, "a")
        .into_iter()
        .find(|t| t.get("id").map(String::as_str) == Some("next"))
        .expect("a next page");
    let two = console.get(&next["href"]).await.text();
    assert_eq!(ids(&learner_rows(&two)), by_time[50..100]);
    assert_eq!(count(&two), (n, 51, 100));
    assert!(two.contains(r#"aria-current="page""#));
    let last_page = (n as usize).div_ceil(100);
    let last = console
        .get(&format!(
            "/console/course?course=id:2&per_page=100&page={last_page}"
        ))
        .await
        .text();
    assert_eq!(ids(&learner_rows(&last)), by_time[(last_page - 1) * 100..]);
    assert_eq!(count(&last).2, n);
    assert!(!last.contains(r#"id="next""#));

    // The chart keeps the 20 with the most time.
    let chart = section(&html, r#"<svg id="learner-chart""#, "</svg>");
    let bars: Vec<i64> = tags(chart, "rect")
        .into_iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("bar"))
        .map(|t| as_i64(&t["data-key"]))
        .collect();
    assert_eq!(bars, by_time[..20]);
    assert!(chart.contains("The 20 learners with the most time"));

    // Every column, both ways: the order the report's numbers give.
    for column in [
        "name",
        "username",
        "course",
        "activities",
        "other",
        "time",
        "sessions",
        "last",
    ] {
        for dir in ["asc", "desc"] {
            let page = console
                .get(&format!(
                    "/console/course?course=id:2&sort={column}&dir={dir}&per_page=100&page=2"
                ))
                .await;
            assert_eq!(page.status, 200, "{column} {dir}");
            let html = page.text();
            let want = ordered_by(&learners, column, dir == "desc");
            assert_eq!(
                ids(&learner_rows(&html)),
                want[100..want.len().min(200)],
                "{column} {dir}"
            );
            let table = section(&html, r#"<table id="learners""#, "</table>");
            let heading = section(table, "<thead>", "</thead>");
            let sorted: Vec<BTreeMap<String, String>> = tags(heading, "th")
                .into_iter()
                .filter(|t| t.contains_key("aria-sort"))
                .collect();
            assert_eq!(sorted.len(), 1, "{column} {dir}");
            assert_eq!(
                sorted[0]["aria-sort"],
                if dir == "desc" {
                    "descending"
                } else {
                    "ascending"
                }
            );
            assert!(heading.contains(&format!(r#"id="sort-{column}""#)));
        }
    }

    // The filter: part of a name or username, ignoring case, over every page.
    let someone = &learners[learners.len() / 2];
    let part = someone["lastname"].as_str().unwrap()[..3].to_uppercase();
    let want: Vec<i64> = learners
        .iter()
        .filter(|l| {
            let name = format!(
                "{} {}",
                l["firstname"].as_str().unwrap(),
                l["lastname"].as_str().unwrap()
            )
            .to_lowercase();
            name.contains(&part.to_lowercase())
                || l["username"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains(&part.to_lowercase())
        })
        .map(|l| l["userid"].as_i64().unwrap())
        .collect();
    assert!(!want.is_empty() && (want.len() as i64) < n);
    let filtered = console
        .get(&format!(
            "/console/course?course=id:2&per_page=100&q={part}"
        ))
        .await
        .text();
    assert_eq!(count(&filtered).0, want.len() as i64);
    assert_eq!(ids(&learner_rows(&filtered)), want[..want.len().min(100)]);
    let nobody = console
        .get("/console/course?course=id:2&q=zzzz-nobody")
        .await
        .text();
    assert!(learner_rows(&nobody).is_empty());
    assert!(nobody.contains("No learner matches"));
}

#[tokio::test]
async fn course_page_cuts_to_a_group_and_adds_up_its_activities() {
    let console = big_course().await;
    let groups = ints(
        &console,
        "SELECT id AS v FROM mdl_groups WHERE courseid = 2 ORDER BY id",
    );
    assert!((2..=5).contains(&groups.len()));
    let group = groups[0];
    let members = ints(
        &console,
        &format!("SELECT userid AS v FROM mdl_groups_members WHERE groupid = {group}"),
    );
    let course = console
        .cli_json(&["--json", "report", "--course", "id:2"])
        .await;
    let enrolled: Vec<&Value> = course["learners"].as_array().unwrap().iter().collect();
    let want: Vec<i64> = enrolled
        .iter()
        .map(|l| l["userid"].as_i64().unwrap())
        .filter(|id| members.contains(id))
        .collect();
    assert!(!want.is_empty() && want.len() < enrolled.len());

    // The command line, by id and by name: the members only, and the group named.
    let by_id = console
        .cli_json(&[
            "--json",
            "report",
            "--course",
            "id:2",
            "--group",
            &group.to_string(),
        ])
        .await;
    let name = by_id["group"]["name"].as_str().unwrap().to_string();
    assert_eq!(by_id["group"]["id"].as_i64(), Some(group));
    let by_name = console
        .cli_json(&["--json", "report", "--course", "id:2", "--group", &name])
        .await;
    let without_window = |mut v: Value| {
        v.as_object_mut().unwrap().remove("window");
        v
    };
    assert_eq!(without_window(by_name), without_window(by_id.clone()));
    let cli_ids: Vec<i64> = by_id["learners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["userid"].as_i64().unwrap())
        .collect();
    assert_eq!(cli_ids, want);
    assert!(
        course.get("group").is_none(),
        "no group named when none is asked"
    );

    // The page: the same learners, their total, a CSV link that keeps the group.
    let page = console
        .get(&format!(
            "/console/course?course=id:2&group={group}&per_page=100"
        ))
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    let mut shown = ids(&learner_rows(&html));
    let (total, _, _) = count(&html);
    assert_eq!(total, want.len() as i64);
    let mut page_no = 1;
    while (shown.len() as i64) < total {
        page_no += 1;
        let more = console
            .get(&format!(
                "/console/course?course=id:2&group={group}&per_page=100&page={page_no}"
            ))
            .await
            .text();
        shown.extend(ids(&learner_rows(&more)));
    }
    assert_eq!(shown, want);
    assert!(html.contains(&format!(r#"<option value="{group}" selected>"#)));
    let sum: i64 = by_id["learners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["coursetotal"].as_i64().unwrap())
        .sum();
    assert_eq!(by_id["total"].as_i64(), Some(sum));
    assert!(html.contains(&format!(r#"id="course-total" data-seconds="{sum}""#)));
    let csv = console
        .get(&format!("/console/course.csv?course=id:2&group={group}"))
        .await;
    let cli_csv = console
        .cli(&[
            "report", "--course", "id:2", "--group", &name, "--format", "csv",
        ])
        .await;
    assert_eq!(csv.body, cli_csv);
    assert_eq!(
        String::from_utf8_lossy(&cli_csv).lines().count(),
        want.len() + 1
    );

    // The activities: each the sum of the learners' own, and together their activity time.
    for (report, query) in [
        (&course, String::new()),
        (&by_id, format!("&group={group}")),
    ] {
        let activity_time: i64 = report["learners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["activitytime"].as_i64().unwrap())
            .sum();
        let listed: i64 = report["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["elapsed"].as_i64().unwrap())
            .sum();
        assert_eq!(listed, activity_time, "{query}");
        assert!(activity_time > 0);
        let html = console
            .get(&format!("/console/course?course=id:2{query}"))
            .await
            .text();
        let table = section(&html, r#"<table id="activities""#, "</table>");
        let rows: Vec<(i64, i64)> = tags(table, "tr")
            .into_iter()
            .filter(|t| t.contains_key("data-cmid"))
            .map(|t| (as_i64(&t["data-cmid"]), as_i64(&t["data-seconds"])))
            .collect();
        let want: Vec<(i64, i64)> = report["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["cmid"].as_i64().unwrap(), a["elapsed"].as_i64().unwrap()))
            .collect();
        assert_eq!(rows, want, "{query}");
        assert!(table.contains(&format!(
            r#"id="activities-total" data-seconds="{activity_time}""#
        )));
    }
    // One learner's activities, as the learner page's engine gives them, add into the rows.
    let busiest = &by_id["learners"][0];
    let stats = console
        .cli_json(&[
            "--json",
            "stats",
            busiest["username"].as_str().unwrap(),
            "--course",
            "id:2",
        ])
        .await;
    let modules = stats["courses"][0]["modules"].as_array().unwrap();
    assert!(!modules.is_empty());
    for m in modules {
        let cmid = m["cmid"].as_i64().unwrap();
        let row = by_id["activities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["cmid"].as_i64() == Some(cmid))
            .expect("the learner's activity is listed");
        assert!(row["elapsed"].as_i64() >= m["elapsed"].as_i64());
    }
}

#[tokio::test]
async fn course_page_refuses_bad_values_with_a_message() {
    let console = big_course().await;
    let foreign = ints(
        &console,
        "SELECT id AS v FROM mdl_groups WHERE courseid = 3 ORDER BY id",
    )[0];
    for (query, status, says) in [
        ("page=-1", 400, "pages count from 1"),
        ("page=0", 400, "pages count from 1"),
        ("page=abc", 400, "pages count from 1"),
        ("per_page=7", 400, "50 or 100"),
        ("sort=bogus", 400, "cannot sort by"),
        ("dir=sideways", 400, "not a direction"),
        (&format!("group={foreign}") as &str, 404, "has no group"),
        ("group=No+such+group", 404, "has no group"),
    ] {
        for path in ["/console/course", "/console/course.csv"] {
            if path.ends_with(".csv") && !query.starts_with("group") {
                continue;
            }
            let page = console.get(&format!("{path}?course=id:2&{query}")).await;
            assert_eq!(page.status, status, "{path} {query}: {}", page.text());
            assert!(
                page.text().contains(says),
                "{path} {query}: {}",
                page.text()
            );
        }
    }
    // A page past the last one says so, and how many there are.
    let far = console.get("/console/course?course=id:2&page=999999").await;
    assert_eq!(far.status, 200);
    assert!(learner_rows(&far.text()).is_empty());
    assert!(far.text().contains("past the last one"));
    // The command line refuses another course's group too, and changes nothing.
    let config = console.config.clone();
    let group = foreign.to_string();
    let out = tokio::task::spawn_blocking(move || {
        usestats_cli(&config, &["report", "--course", "id:2", "--group", &group])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no group"));
}
