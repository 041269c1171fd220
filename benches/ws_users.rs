//! get_users_stats for every user of a demo site: the one-scan path the web service takes
//! against the same work done user by user.
//!
//! ```text
//! cargo bench --bench ws_users                                    # 1 000 000 rows, 2 000 users
//! USESTATS_BENCH_ROWS=10000000 cargo bench --bench ws_users       # the documented run
//! ```
//!
//! `USESTATS_BENCH_USERS` sets the demo's local accounts (default 2 000; a call takes at most
//! `ws.max_users_per_call`, raised here to fit). The site is built by `usestats::demo` in a
//! temporary SQLite file, in a scratch PostgreSQL database when `USESTATS_BENCH_PG_URL`
//! names a server whose role may create databases, and in a scratch MySQL/MariaDB database
//! read as a separate source when `USESTATS_BENCH_MYSQL_URL` names one
//! (`USESTATS_BENCH_SKIP_SQLITE=1` leaves SQLite out). Then, on the same database:
//!
//! * engine: `reports::users_reports` (one ordered scan for all users) plus
//!   `Source::grades_for_users` (one query), against `reports::user_report` plus
//!   `Source::user_course_grades` for each user in turn; each twice, alternating, so that
//!   neither profits alone from a warm cache. The reports must be equal. Then the bare SQL
//!   scan (no engine) and the per-uid user lookups, to show where the time goes.
//! * HTTP: one `block_use_stats_get_users_stats` call naming every user, against one
//!   `block_use_stats_get_user_stats` call per user, through a real daemon on 127.0.0.1.

#[path = "support/scratch.rs"]
mod scratch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use diesel::RunQueryDsl;
use scratch::{drop_database, scratch_database};
use serde_json::Value as Json;
use usestats::app::App;
use usestats::config::Config;
use usestats::demo::{DemoOptions, build_demo};
use usestats::stats::{Report, Window};
use usestats::store::source::{Source, UserField};
use usestats::store::{StoreError, state};

const HOME: &str = "https://bench.example.org";

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

struct Timed<T> {
    secs: f64,
    value: T,
}

fn timed<T>(f: impl FnOnce() -> T) -> Timed<T> {
    let started = Instant::now();
    let value = f();
    Timed {
        secs: started.elapsed().as_secs_f64(),
        value,
    }
}

type Reports = (HashMap<i64, Report>, HashMap<(i64, i64), String>);

async fn engine_paths(app: &Arc<App>, ids: Arc<Vec<i64>>, window: Window, label: &str) {
    let settings = usestats::reports::settings(&app.config.engine);
    let (one, per_user, scan, lookups) = app
        .source
        .run(move |c| {
            let source = Source::new("mdl_").unwrap();
            let one_scan = |c: &mut usestats::store::DbConnection| -> Reports {
                let reports = usestats::reports::users_reports(c, &source, &settings, &ids, window)
                    .expect("one scan");
                let grades = source.grades_for_users(c, &ids).expect("grades");
                (reports, grades)
            };
            let user_by_user = |c: &mut usestats::store::DbConnection| -> Reports {
                let mut reports = HashMap::with_capacity(ids.len());
                let mut grades = HashMap::new();
                for id in ids.iter() {
                    let report =
                        usestats::reports::user_report(c, &source, &settings, *id, window, false)
                            .expect("user report");
                    reports.insert(*id, report);
                    for (course, grade) in source.user_course_grades(c, *id).expect("grades") {
                        grades.insert((*id, course), grade);
                    }
                }
                (reports, grades)
            };
            let mut one = Vec::new();
            let mut per_user = Vec::new();
            for _ in 0..2 {
                one.push(timed(|| one_scan(c)));
                per_user.push(timed(|| user_by_user(c)));
            }
            // What the one-scan path is made of: the rows alone, without the engine, and
            // the per-uid user lookups the web service does before the scan.
            let scan = timed(|| {
                source
                    .for_each_users_log(c, &ids, window.from, window.to, |_| {})
                    .expect("scan")
            });
            let lookups = timed(|| {
                for id in ids.iter() {
                    source
                        .find_user(c, UserField::Id, &id.to_string())
                        .expect("lookup")
                        .expect("user");
                }
            });
            Ok::<_, StoreError>((one, per_user, scan, lookups))
        })
        .await
        .unwrap();
    // Same numbers both ways, or the comparison means nothing.
    assert!(
        one[0].value == per_user[0].value,
        "one scan and user by user differ"
    );
    let rows: u64 = one[0].value.0.values().map(|r| r.rows_extracted).sum();
    let show = |name: &str, runs: &[Timed<Reports>]| {
        let secs: Vec<String> = runs.iter().map(|r| format!("{:.3}", r.secs)).collect();
        let best = runs.iter().map(|r| r.secs).fold(f64::MAX, f64::min);
        println!(
            "{label}: engine {name}: {} s (best {best:.3} s, {:.0} rows/s)",
            secs.join(" / "),
            rows as f64 / best
        );
    };
    println!(
        "{label}: {} users, {rows} extracted rows, {} course grades",
        one[0].value.0.len(),
        one[0].value.1.len()
    );
    show("users_reports, one scan + one grades query", &one);
    show("user_report + grades per user", &per_user);
    println!(
        "{label}: of which the SQL scan alone: {:.3} s ({} rows, {:.0} rows/s); user lookups, one query per uid: {:.3} s",
        scan.secs,
        scan.value,
        scan.value as f64 / scan.secs,
        lookups.secs
    );
}

async fn post(url: &str, body: String) -> String {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.expect("HTTP call");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

async fn http_paths(app: &Arc<App>, ids: &[i64], label: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webservice/rest/server.php",
        listener.local_addr().unwrap()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(usestats::http::run(app.clone(), listener, async {
        let _ = stopped.await;
    }));
    let now = app.now();
    app.state
        .run(move |c| state::put_grant(c, HOME, "bench", false, true, now))
        .await
        .unwrap();
    let (token, _) = usestats::ws::tokens::create(app, HOME, "bench", "bench", None, "")
        .await
        .unwrap();
    let common = format!("wstoken={token}&moodlewsrestformat=json&uidsource=id");

    let mut body = format!("{common}&wsfunction=block_use_stats_get_users_stats");
    for (i, id) in ids.iter().enumerate() {
        body.push_str(&format!("&uids%5B{i}%5D={id}"));
    }
    let started = Instant::now();
    let answer = post(&url, body).await;
    let one_call = started.elapsed().as_secs_f64();
    let parsed: Json = serde_json::from_str(&answer).expect("JSON answer");
    let items = parsed
        .as_array()
        .unwrap_or_else(|| panic!("a list, got {}", &answer[..answer.len().min(300)]));
    assert_eq!(items.len(), ids.len());

    let started = Instant::now();
    let mut sessions = 0u64;
    for id in ids {
        let answer = post(
            &url,
            format!("{common}&wsfunction=block_use_stats_get_user_stats&uid={id}"),
        )
        .await;
        let parsed: Json = serde_json::from_str(&answer).expect("JSON answer");
        sessions += parsed["sessions"]["sessions"].as_u64().unwrap_or(0);
    }
    let per_user = started.elapsed().as_secs_f64();
    let batch_sessions: u64 = items
        .iter()
        .map(|u| u["sessions"]["sessions"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        sessions, batch_sessions,
        "one call and per-user calls differ"
    );
    println!(
        "{label}: HTTP get_users_stats, one call for {} users: {one_call:.3} s ({} bytes of JSON)",
        ids.len(),
        answer.len()
    );
    println!(
        "{label}: HTTP get_user_stats, one call per user: {per_user:.3} s ({:.1} ms per call)",
        per_user * 1000.0 / ids.len() as f64
    );
    let _ = stop.send(());
    let _ = server.await;
}

/// `source_url`: a separate Moodle database (MySQL), filled through a writable connection of
/// our own because the daemon reads a separate source read-only.
async fn run(
    label: &str,
    dir: &std::path::Path,
    state_url: String,
    source_url: Option<String>,
    rows: u64,
    users: u32,
) {
    let mut config = Config::for_wwwroot("http://127.0.0.1:1");
    config.path = dir.join("usestats.toml");
    config.base_dir = dir.to_path_buf();
    config.state.url = state_url;
    config.source.url = source_url.clone().unwrap_or_default();
    // Every user in one call: the point of the measurement.
    config.ws.max_users_per_call = config.ws.max_users_per_call.max(users as usize + 100);
    config.audit.enabled = false;
    config.validate().unwrap();
    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .unwrap()
        .expect("app");
    let opts = DemoOptions {
        log_rows: rows,
        users,
        local_wwwroot: "http://127.0.0.1:1".into(),
        progress: rows >= 1_000_000,
        ..DemoOptions::default()
    };
    let summary = match source_url {
        Some(url) => tokio::task::spawn_blocking(move || {
            let mut conn = usestats::store::establish(&url).expect("source");
            build_demo(&mut conn, "mdl_", &opts).expect("demo load")
        })
        .await
        .unwrap(),
        None => app
            .source
            .run(move |c| build_demo(c, "mdl_", &opts).map_err(anyhow::Error::from))
            .await
            .expect("demo load"),
    };
    println!(
        "{label}: demo site: {} users, {} courses, {} log rows, built in {:.1} s",
        summary.users, summary.courses, summary.log_rows, summary.seconds
    );
    let ids: Vec<i64> = app
        .source
        .run::<_, usestats::store::StoreError, _>(|c| {
            Ok(
                diesel::sql_query("SELECT id FROM mdl_user WHERE deleted = 0 ORDER BY id")
                    .load::<Id>(c)?
                    .into_iter()
                    .map(|r| r.id)
                    .collect(),
            )
        })
        .await
        .unwrap();
    let now = app.now();
    let window = Window {
        from: 0,
        to: now,
        now,
    };
    engine_paths(&app, Arc::new(ids.clone()), window, label).await;
    http_paths(&app, &ids, label).await;
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and then a small
    // smoke run keeps the target working (and the two paths equal) without a long load.
    let benching = std::env::args().any(|a| a == "--bench");
    let (rows, users) = if benching {
        (
            env_or("USESTATS_BENCH_ROWS", 1_000_000),
            env_or("USESTATS_BENCH_USERS", 2_000) as u32,
        )
    } else {
        (3_000, 12)
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        if std::env::var("USESTATS_BENCH_SKIP_SQLITE").as_deref() != Ok("1") {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bench.sqlite3");
            run(
                "sqlite",
                dir.path(),
                path.to_string_lossy().into_owned(),
                None,
                rows,
                users,
            )
            .await;
        }
        if let Ok(admin_url) = std::env::var("USESTATS_BENCH_PG_URL") {
            let (mut admin, name, url) = scratch_database(&admin_url, "");
            let dir = tempfile::tempdir().unwrap();
            run("postgres", dir.path(), url, None, rows, users).await;
            drop_database(&mut admin, &name);
        }
        if let Ok(admin_url) = std::env::var("USESTATS_BENCH_MYSQL_URL") {
            let (mut admin, name, url) = scratch_database(
                &admin_url,
                " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            );
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state.sqlite3");
            let state = state.to_string_lossy().into_owned();
            run("mysql", dir.path(), state, Some(url), rows, users).await;
            drop_database(&mut admin, &name);
        }
    });
}
