//! A learner's sessions, the window presets and the inclusive "to" date (issue 24), on a
//! served demo site: `usestats stats USER --sessions` against the same binary's totals, a log
//! row on the afternoon of a window's last day counted by the command line and the console,
//! and the console's preset links against the daemon's (pinned) clock.

mod common;

use std::path::PathBuf;

use common::{AppOptions, TestApp, busiest_learner, spawn_app, usestats_cli};
use serde_json::Value;
use time::{Date, Duration, Month, OffsetDateTime};
use usestats::timefmt::{DAY, parse_time};

/// A daemon with the demo site, the command line on its configuration, and a console
/// session opened as the login form opens one.
struct Site {
    app: TestApp,
    config: PathBuf,
    cookie: String,
}

impl Site {
    async fn start(pinned: Option<i64>) -> Site {
        let app = spawn_app(AppOptions {
            demo_remote_hosts: Some(vec![]),
            ..Default::default()
        })
        .await;
        if let Some(at) = pinned {
            app.app.clock.pin(at);
        }
        let (name, password) = ("sessions", "a long enough password");
        let hash = usestats::console::auth::hash_password(password).unwrap();
        let now = app.app.now();
        app.app
            .state
            .run(move |c| usestats::store::state::set_console_user(c, name, &hash, now))
            .await
            .unwrap();
        let account = usestats::console::auth::check_login(&app.app, name, password)
            .await
            .unwrap()
            .expect("the account logs in");
        let (token, _) = usestats::console::auth::open_session(&app.app, &account)
            .await
            .unwrap();
        // The command line reads the daemon's own files: the same database, the same keys.
        let config = app.dir.join("usestats.toml");
        std::fs::write(&config, format!("[site]\nwwwroot = \"{}\"\n", app.wwwroot)).unwrap();
        Site {
            cookie: format!("{}={token}", usestats::console::auth::SESSION_COOKIE),
            app,
            config,
        }
    }

    /// A console page: (status, body).
    async fn page(&self, path: &str) -> (u16, String) {
        use http_body_util::{BodyExt, Empty};
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Empty<bytes::Bytes>>();
        let request = hyper::Request::get(self.app.console_url(path))
            .header("Cookie", &self.cookie)
            .body(Empty::new())
            .unwrap();
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// The binary's exit code, standard output and standard error.
    async fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let config = self.config.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            usestats_cli(&config, &args)
        })
        .await
        .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn cli_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.cli(args).await;
        assert_eq!(code, Some(0), "usestats {args:?}: {err}");
        out
    }

    async fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.cli_ok(&all).await).unwrap()
    }

    /// Copies one of the course-page rows of `userid` to each of `times`.
    fn copy_rows(&self, userid: i64, times: &[i64]) {
        for time in times {
            self.sql(&format!(
                "INSERT INTO mdl_logstore_standard_log (eventname, component, action, target, \
                 objecttable, objectid, crud, edulevel, contextid, contextlevel, \
                 contextinstanceid, userid, courseid, relateduserid, anonymous, other, \
                 timecreated, origin, ip, realuserid) \
                 SELECT eventname, component, action, target, objecttable, objectid, crud, \
                 edulevel, contextid, contextlevel, contextinstanceid, userid, courseid, \
                 relateduserid, anonymous, other, {time}, origin, ip, realuserid \
                 FROM mdl_logstore_standard_log \
                 WHERE userid = {userid} AND contextlevel = 50 AND courseid > 1 ORDER BY id LIMIT 1"
            ));
        }
    }

    /// Runs SQL on the demo database (a connection of its own: the daemon reads it read-only).
    fn sql(&self, statement: &str) {
        use diesel::{Connection, RunQueryDsl};
        let db = self.app.dir.join("usestats.sqlite3");
        let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
}

/// The value of `attribute` in the first tag of `html` that contains `marker`.
fn attribute(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let at = html.find(marker)?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..start + html[start..].find('>')?];
    let key = format!(" {attribute}=\"");
    let value = &tag[tag.find(&key)? + key.len()..];
    Some(
        value[..value.find('"')?]
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

/// The `<tr …>` rows of the table whose opening tag holds `id`.
fn table_rows<'a>(html: &'a str, id: &str) -> Vec<&'a str> {
    let Some(at) = html.find(&format!("id=\"{id}\"")) else {
        return Vec::new();
    };
    let table = &html[at..at + html[at..].find("</table>").unwrap()];
    table.split("<tr data-").skip(1).collect()
}

fn seconds(row: &str, name: &str) -> i64 {
    let key = format!("{name}=\"");
    let value = &row[row.find(&key).unwrap() + key.len()..];
    value[..value.find('"').unwrap()].parse().unwrap()
}

/// `h:mm:ss`, as the session lists write durations.
fn is_hms(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[1].len() == 2
        && parts[2].len() == 2
}

#[tokio::test]
async fn sessions_add_up_to_the_learners_total() {
    let site = Site::start(None).await;
    let (_, user) = busiest_learner(&site.app).await;
    // An explicit end, so that the clock does not move between two runs.
    let to = site.app.app.now().to_string();
    let stats = site.cli_json(&["stats", &user, "--to", &to]).await;
    let listed = site
        .cli_json(&["stats", &user, "--to", &to, "--sessions"])
        .await;
    let sessions = listed["sessions"].as_array().unwrap();
    assert!(sessions.len() >= 2, "{listed}");
    assert_eq!(listed["count"], stats["sessions"]["count"]);
    assert_eq!(sessions.len() as i64, listed["count"].as_i64().unwrap());
    // The engine's sessions hold every counted lap (§2.6): they add up to the total.
    let durations: i64 = sessions
        .iter()
        .map(|s| s["duration"].as_i64().unwrap())
        .sum();
    assert_eq!(durations, stats["total"].as_i64().unwrap());
    assert_eq!(listed["total"], stats["total"]);
    assert_eq!(listed["window"]["to"], stats["window"]["to"]);
    let mut previous = 0;
    for s in sessions {
        let (start, end) = (s["start"].as_i64().unwrap(), s["end"].as_i64().unwrap());
        assert!(previous <= start && start <= end, "oldest first: {s}");
        previous = start;
        assert_eq!(parse_time(s["start_iso"].as_str().unwrap()).unwrap(), start);
        assert_eq!(parse_time(s["end_iso"].as_str().unwrap()).unwrap(), end);
        assert!(s["start_iso"].as_str().unwrap().contains('T'), "ISO 8601");
        let courses = s["courses"].as_array().unwrap();
        assert!(!courses.is_empty(), "{s}");
        assert!(
            courses
                .iter()
                .all(|c| !c["shortname"].as_str().unwrap().is_empty())
        );
    }

    // The table: the headings, then one line per session with an h:mm:ss duration.
    let table = site
        .cli_ok(&["stats", &user, "--to", &to, "--sessions"])
        .await;
    let lines: Vec<&str> = table.lines().collect();
    let heading = lines
        .iter()
        .position(|l| l.starts_with("start"))
        .unwrap_or_else(|| panic!("no headings: {table}"));
    let headings: Vec<&str> = lines[heading].split_whitespace().collect();
    assert_eq!(headings, ["start", "end", "duration", "events", "courses"]);
    let rows = &lines[heading + 2..];
    assert_eq!(rows.len(), sessions.len(), "{table}");
    for (row, s) in rows.iter().zip(sessions) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[0], s["start_iso"].as_str().unwrap());
        assert!(is_hms(cells[2]), "{row}");
        let (h, m, sec) = {
            let p: Vec<i64> = cells[2].split(':').map(|p| p.parse().unwrap()).collect();
            (p[0], p[1], p[2])
        };
        assert_eq!(h * 3600 + m * 60 + sec, s["duration"].as_i64().unwrap());
    }

    // With --course: the sessions that touched it, as many as `stats --course` counts.
    let course = sessions
        .iter()
        .flat_map(|s| s["courses"].as_array().unwrap())
        .map(|c| c["id"].as_i64().unwrap())
        .find(|&id| id > 1)
        .expect("a session in a course");
    let course_arg = format!("id:{course}");
    let in_course = site
        .cli_json(&[
            "stats",
            &user,
            "--to",
            &to,
            "--course",
            &course_arg,
            "--sessions",
        ])
        .await;
    let scoped = site
        .cli_json(&["stats", &user, "--to", &to, "--course", &course_arg])
        .await;
    assert_eq!(in_course["count"], scoped["sessions"]["count"]);
    let touched = in_course["sessions"].as_array().unwrap();
    assert!(!touched.is_empty() && touched.len() <= sessions.len());
    assert!(touched.iter().all(|s| {
        s["courses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == course)
    }));

    // No session in the window: a line that says so, and an empty list.
    let quiet = ["--from", "2001-01-01", "--to", "2001-01-31"];
    let none = site
        .cli_ok(&[&["stats", user.as_str(), "--sessions"][..], &quiet].concat())
        .await;
    assert!(
        none.contains(&format!("no sessions for {user} in this window")),
        "{none}"
    );
    let empty = site
        .cli_json(&[&["stats", user.as_str(), "--sessions"][..], &quiet].concat())
        .await;
    assert_eq!(empty["count"], 0);
    assert_eq!(empty["sessions"], serde_json::json!([]));

    // What --sessions cannot do is refused, with what to do instead.
    let (code, _, err) = site
        .cli(&["stats", &user, "--sessions", "--format", "xml"])
        .await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--sessions lists use_stats' sessions"),
        "{err}"
    );
    let (code, _, err) = site
        .cli(&["stats", &user, "--sessions", "--estimator", "dedication"])
        .await;
    assert_eq!(code, Some(1), "{err}");
}

/// The second of `date` at `clock` (UTC).
fn at(date: &str, clock: &str) -> i64 {
    parse_time(&format!("{date}T{clock}Z")).unwrap()
}

#[tokio::test]
async fn a_date_as_to_counts_its_whole_day_on_the_command_line_and_the_console() {
    let site = Site::start(None).await;
    let (userid, user) = busiest_learner(&site.app).await;
    // A day after the demo's log ends (2026-10-31), with one row of the learner's at 15:00: a
    // copy of one of their course-page rows.
    let (day, before) = ("2026-11-05", "2026-11-04");
    let afternoon = at(day, "15:00:00");
    let window_of =
        |from: &str, to: &str| ["--from".to_string(), from.into(), "--to".into(), to.into()];
    let rows_in = |from: &str, to: &str| {
        let window = window_of(from, to);
        let site = &site;
        let user = user.clone();
        async move {
            let mut args = vec!["stats", user.as_str()];
            args.extend(window.iter().map(String::as_str));
            site.cli_json(&args).await["rows"].as_i64().unwrap()
        }
    };
    assert_eq!(rows_in("2026-11-01", "2026-11-30").await, 0, "nothing yet");
    site.copy_rows(userid, &[afternoon]);
    // Through the end of the day named as "to"; not with the day before.
    assert_eq!(rows_in(day, day).await, 1);
    assert_eq!(rows_in("2026-11-01", day).await, 1);
    assert_eq!(rows_in("2026-11-01", before).await, 0);
    // A unix time or an instant as "to" is that very second.
    assert_eq!(rows_in("2026-11-01", &afternoon.to_string()).await, 1);
    assert_eq!(rows_in("2026-11-01", &(afternoon - 1).to_string()).await, 0);
    assert_eq!(rows_in("2026-11-01", "2026-11-05T15:00:00Z").await, 1);
    assert_eq!(rows_in("2026-11-01", "2026-11-05T16:59:59+02:00").await, 0);
    let one_day = site
        .cli_json(&["stats", &user, "--from", day, "--to", day])
        .await;
    let total = one_day["total"].as_i64().unwrap();
    assert!(total > 0, "{one_day}");
    assert_eq!(one_day["window"]["to"], at(day, "23:59:59"));
    let listed = site
        .cli_json(&["stats", &user, "--from", day, "--to", day, "--sessions"])
        .await;
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["sessions"][0]["start"], afternoon);

    // The console's form, the same window: the row is counted, listed, and the page says
    // which days it answered for.
    let (status, html) = site
        .page(&format!("/console/learner?user={user}&from={day}&to={day}"))
        .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        attribute(&html, "id=\"total-seconds\"", "data-seconds"),
        Some(total.to_string())
    );
    let rows = table_rows(&html, "session-list");
    assert_eq!(rows.len(), 1);
    assert_eq!(seconds(rows[0], "start"), afternoon);
    assert!(html.contains("Window: 5 Nov 2026 – 5 Nov 2026 (inclusive, days in UTC)"));
    assert_eq!(
        attribute(&html, "id=\"window-shown\"", "data-to"),
        Some(at(day, "23:59:59").to_string())
    );
    assert_eq!(
        attribute(&html, "name=\"to\"", "value").as_deref(),
        Some(day),
        "the picker keeps the day"
    );
    let (_, html) = site
        .page(&format!(
            "/console/learner?user={user}&from=2026-11-01&to={before}"
        ))
        .await;
    assert_eq!(
        attribute(&html, "id=\"total-seconds\"", "data-seconds").as_deref(),
        Some("0")
    );
    assert!(html.contains(r#"<p id="no-sessions""#));
}

/// The first and last day of each preset the console offers, for a clock on `today`.
fn expected_presets(today: Date) -> Vec<(String, Date, Date)> {
    let first_of_month = today.replace_day(1).unwrap();
    let end_of_last_month = first_of_month.previous_day().unwrap();
    let mut expected: Vec<(String, Date, Date)> = [7, 30, 90]
        .iter()
        .map(|&n| {
            (
                format!("Last {n} days"),
                today - Duration::days(n - 1),
                today,
            )
        })
        .collect();
    expected.push(("This month".into(), first_of_month, today));
    expected.push((
        "Last month".into(),
        end_of_last_month.replace_day(1).unwrap(),
        end_of_last_month,
    ));
    expected.push((
        "This year".into(),
        Date::from_calendar_date(today.year(), Month::January, 1).unwrap(),
        today,
    ));
    expected
}

fn midnight(day: Date) -> i64 {
    day.midnight().assume_utc().unix_timestamp()
}

/// The preset links of a page: (label, href, data-from, data-to).
fn preset_links(html: &str) -> Vec<(String, String, String, String)> {
    html.split(r#"<a class="preset""#)
        .skip(1)
        .map(|link| {
            let tag = format!("<a class=\"preset\"{link}");
            let label = &link[link.find('>').unwrap() + 1..link.find("</a>").unwrap()];
            let get = |name: &str| attribute(&tag, "class=\"preset\"", name).unwrap();
            (
                label.to_string(),
                get("href"),
                get("data-from"),
                get("data-to"),
            )
        })
        .collect()
}

#[tokio::test]
async fn presets_are_windows_of_whole_days_relative_to_the_clock() {
    // Mid-morning on a day inside the demo's log, so that the presets hold time.
    let now = at("2026-10-20", "10:30:00");
    let site = Site::start(Some(now)).await;
    let (_, user) = busiest_learner(&site.app).await;
    let today = OffsetDateTime::from_unix_timestamp(now).unwrap().date();
    let expected = expected_presets(today);

    let (status, html) = site
        .page(&format!("/console/learner?user={user}&page=3"))
        .await;
    assert_eq!(status, 200);
    let links = preset_links(&html);
    assert_eq!(links.len(), expected.len(), "{links:?}");
    for ((label, href, from, to), (want_label, first, last)) in links.iter().zip(&expected) {
        assert_eq!(label, want_label);
        assert_eq!(from, &usestats::timefmt::date(midnight(*first)).unwrap());
        assert_eq!(to, &usestats::timefmt::date(midnight(*last)).unwrap());
        assert!(href.starts_with("/console/learner?"), "{href}");
        assert!(href.contains(&format!("user={user}")) && !href.contains("page="));
        // Following it: the page answers over exactly those days, and marks the preset.
        let (status, page) = site.page(href).await;
        assert_eq!(status, 200, "{href}");
        assert_eq!(
            attribute(&page, "id=\"window-shown\"", "data-from"),
            Some(midnight(*first).to_string()),
            "{label}"
        );
        assert_eq!(
            attribute(&page, "id=\"window-shown\"", "data-to"),
            Some((midnight(*last) + DAY - 1).to_string()),
            "{label}"
        );
        let current: Vec<_> = preset_links(&page)
            .into_iter()
            .zip(page.split(r#"<a class="preset""#).skip(1))
            .filter(|(_, tag)| tag[..tag.find('>').unwrap()].contains("aria-current"))
            .map(|((label, ..), _)| label)
            .collect();
        assert_eq!(current, std::slice::from_ref(label));
    }
    let last_30 = &links[1].1;
    let (_, page) = site.page(last_30).await;
    assert!(
        attribute(&page, "id=\"total-seconds\"", "data-seconds")
            .is_some_and(|s| s.parse::<i64>().unwrap() > 0),
        "the last 30 days hold time"
    );

    // The course page keeps its course and sort in the preset links.
    let (status, html) = site.page("/console/course?course=2&sort=name").await;
    assert_eq!(status, 200);
    let links = preset_links(&html);
    assert_eq!(links.len(), expected.len());
    for (_, href, ..) in &links {
        assert!(href.starts_with("/console/course?course=2&"), "{href}");
        assert!(href.contains("sort=name"), "{href}");
    }

    // `--last N` on the command line is the console's "last N days" (here on the real clock).
    let stats = site.cli_json(&["stats", &user, "--last", "30d"]).await;
    let real_today = OffsetDateTime::now_utc().date();
    assert_eq!(
        stats["window"]["from"],
        midnight(real_today - Duration::days(29))
    );
    assert_eq!(stats["window"]["to"], midnight(real_today) + DAY - 1);
    let (code, _, err) = site
        .cli(&["stats", &user, "--last", "30d", "--from", "2026-01-01"])
        .await;
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = site.cli(&["stats", &user, "--last", "0d"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("not a number of days"), "{err}");
}

#[tokio::test]
async fn a_long_session_list_shows_the_latest_and_says_how_many_there_are() {
    let site = Site::start(None).await;
    let (userid, user) = busiest_learner(&site.app).await;
    // After the demo's log: one row every two hours, each a session of its own (the threshold
    // is an hour), more than the page lists.
    let first = at("2026-11-10", "00:00:00");
    let listed = 100;
    let times: Vec<i64> = (0..listed as i64 + 20).map(|k| first + k * 7_200).collect();
    site.copy_rows(userid, &times);
    let path = format!("/console/learner?user={user}&from=2026-11-10");
    let (status, html) = site.page(&path).await;
    assert_eq!(status, 200);
    let cli = site
        .cli_json(&["stats", &user, "--from", "2026-11-10", "--sessions"])
        .await;
    assert_eq!(cli["count"], times.len());
    let rows = table_rows(&html, "session-list");
    assert_eq!(rows.len(), listed);
    assert_eq!(
        attribute(&html, "id=\"session-list-count\"", "data-total"),
        Some(times.len().to_string())
    );
    assert!(html.contains(&format!(
        "Showing the latest {listed} of {} sessions, newest first",
        times.len()
    )));
    // Newest first: the last rows' sessions, in reverse.
    let starts: Vec<i64> = rows.iter().map(|r| seconds(r, "start")).collect();
    let newest: Vec<i64> = times.iter().rev().take(listed).copied().collect();
    assert_eq!(starts, newest);
    for row in &rows {
        assert_eq!(
            seconds(row, "seconds"),
            cli["sessions"][0]["duration"].as_i64().unwrap(),
            "each copied row is a session of the last-ping credit"
        );
    }
}
