//! End-to-end engine throughput from SQLite (issue 3): every user's log streamed out of a
//! demo database and through the time engine.
//!
//! `USESTATS_BENCH_DB=/path/usestats.sqlite3 cargo bench --bench engine_sqlite` reads an
//! existing demo database (built by `usestats demo --log-rows N`); without it, a demo site
//! of `USESTATS_BENCH_ROWS` rows (default 1 000 000) is built in a temporary directory.
//! `USESTATS_BENCH_MODE` picks what runs, so that each can be run under `/usr/bin/time -v`
//! for its own peak memory:
//!
//! * `scan`: the extraction query alone (`Source::for_each_users_log` over all users,
//!   ordered by user, time, id), rows counted and discarded;
//! * `reports`: `reports::users_reports` for all users in one scan (scan + engine), the
//!   many-user path of the web services;
//! * `per-user`: `reports::user_report` once per user (one ordered query each), the
//!   path of `use_stats_rpc_get_stats` and `usestats stats`;
//! * `all` (default): the three in a row.

#[path = "support/cpu.rs"]
mod cpu;

use std::time::Instant;

use diesel::RunQueryDsl;
use usestats::config::EngineConfig;
use usestats::demo::{DemoOptions, build_demo};
use usestats::stats::Window;
use usestats::store::DbConnection;
use usestats::store::source::Source;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

struct Probe {
    wall: Instant,
    cpu: std::time::Duration,
}

impl Probe {
    fn start() -> Probe {
        Probe {
            wall: Instant::now(),
            cpu: cpu::process_cpu(),
        }
    }

    fn finish(&self, label: &str, rows: u64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu_s = (cpu::process_cpu() - self.cpu).as_secs_f64();
        println!(
            "{label}: {rows} rows; wall {wall:.2} s = {:.0} rows/s; cpu {cpu_s:.2} s = {:.0} rows/cpu-s; peak RSS so far {} MiB",
            rows as f64 / wall,
            rows as f64 / cpu_s.max(1e-9),
            cpu::peak_rss_kib() / 1024
        );
    }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let mode = std::env::var("USESTATS_BENCH_MODE").unwrap_or_else(|_| "all".into());
    let _tmp;
    let path = match std::env::var("USESTATS_BENCH_DB") {
        Ok(path) => path,
        Err(_) => {
            let rows = if benching {
                std::env::var("USESTATS_BENCH_ROWS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1_000_000)
            } else {
                2_000
            };
            let dir = tempfile::tempdir().unwrap();
            let path = dir
                .path()
                .join("bench.sqlite3")
                .to_string_lossy()
                .into_owned();
            _tmp = dir;
            let mut conn = usestats::store::establish(&path).expect("sqlite");
            let opts = DemoOptions {
                log_rows: rows,
                progress: benching,
                ..DemoOptions::default()
            };
            let summary = build_demo(&mut conn, "mdl_", &opts).expect("demo");
            println!(
                "built a demo site of {} log rows in {:.1} s",
                summary.log_rows, summary.seconds
            );
            path
        }
    };
    let mut conn: DbConnection = usestats::store::establish(&path).expect("open database");
    let source = Source::new("mdl_").unwrap();
    let settings = usestats::reports::settings(&EngineConfig::default());
    let users: Vec<i64> = diesel::sql_query("SELECT id FROM mdl_user ORDER BY id")
        .load::<Id>(&mut conn)
        .expect("users")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 10 * 365 * 86_400;
    let window = Window {
        from: 0,
        to: now,
        now,
    };
    println!(
        "database {path}: {} users; mode {mode}; baseline peak RSS {} MiB",
        users.len(),
        cpu::peak_rss_kib() / 1024
    );

    // Rows the extraction yields; in the single modes counted first, untimed (which also
    // warms the page cache as the scan of `all` does).
    let mut extracted = 0u64;
    if mode != "all" && mode != "scan" {
        extracted = source
            .for_each_users_log(&mut conn, &users, window.from, window.to, |_| {})
            .expect("count");
    }
    if mode == "scan" || mode == "all" {
        let probe = Probe::start();
        let mut checksum = 0i64;
        extracted = source
            .for_each_users_log(&mut conn, &users, window.from, window.to, |row| {
                checksum = checksum.wrapping_add(row.time);
            })
            .expect("scan");
        probe.finish(
            &format!("scan only (extraction query, all users; checksum {checksum})"),
            extracted,
        );
    }
    if mode == "reports" || mode == "all" {
        let probe = Probe::start();
        let reports =
            usestats::reports::users_reports(&mut conn, &source, &settings, &users, window)
                .expect("reports");
        let total: i64 = reports.values().map(|r| r.total).sum();
        probe.finish(
            &format!(
                "users_reports (one scan + engine, {} reports, grand total {} h)",
                reports.len(),
                total / 3600
            ),
            extracted,
        );
    }
    if mode == "per-user" || mode == "all" {
        let probe = Probe::start();
        let mut total = 0i64;
        for &user in &users {
            let report =
                usestats::reports::user_report(&mut conn, &source, &settings, user, window, false)
                    .expect("report");
            total += report.total;
        }
        probe.finish(
            &format!(
                "user_report per user ({} queries, grand total {} h)",
                users.len(),
                total / 3600
            ),
            extracted,
        );
    }
}
