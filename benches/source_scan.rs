//! Load and scan throughput of the source layer on real databases.
//!
//! `cargo bench --bench source_scan` loads a demo site of `USESTATS_BENCH_ROWS` log rows
//! (default 1 000 000) into a temporary SQLite file, and into a scratch PostgreSQL database when
//! `USESTATS_BENCH_PG_URL` names a server whose role may create databases, then times the
//! per-user and the many-user scans. `USESTATS_BENCH_SKIP_SQLITE=1` runs PostgreSQL only.

#[path = "support/scratch.rs"]
mod scratch;

use std::time::Instant;

use diesel::SqliteConnection;
use diesel::prelude::*;
use scratch::{drop_database, scratch_database};
use usestats::demo::{DemoOptions, build_demo};
use usestats::store::DbConnection;
use usestats::store::source::{Source, UserField};

fn run(label: &str, conn: &mut DbConnection, rows: u64) {
    let opts = DemoOptions {
        log_rows: rows,
        progress: true,
        ..DemoOptions::default()
    };
    let summary = build_demo(conn, "mdl_", &opts).expect("demo load");
    println!(
        "{label}: demo load {} log rows in {:.2} s = {:.0} rows/s",
        summary.log_rows,
        summary.seconds,
        summary.log_rows as f64 / summary.seconds
    );

    let source = Source::new("mdl_").unwrap();
    let all: Vec<i64> = (1..=summary.users as i64).collect();
    let started = Instant::now();
    let mut n = 0u64;
    let mut checksum = 0i64;
    source
        .for_each_users_log(conn, &all, 0, i64::MAX, |r| {
            n += 1;
            checksum = checksum.wrapping_add(r.time);
        })
        .expect("scan");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: all-users scan {n} rows in {secs:.2} s = {:.0} rows/s (checksum {checksum})",
        n as f64 / secs
    );

    let started = Instant::now();
    let mut n = 0u64;
    for name in &summary.sample_usernames {
        let user = source
            .find_user(conn, UserField::Username, name)
            .unwrap()
            .unwrap();
        n += source
            .for_each_user_log(conn, user.id, 0, i64::MAX, |_| {})
            .expect("scan");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: per-user scans of {:?}: {n} rows in {secs:.3} s = {:.0} rows/s",
        summary.sample_usernames,
        n as f64 / secs
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and then a small
    // smoke run keeps the target working without a long debug-build load.
    let benching = std::env::args().any(|a| a == "--bench");
    let rows = if benching {
        std::env::var("USESTATS_BENCH_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        2_000
    };

    if std::env::var("USESTATS_BENCH_SKIP_SQLITE").as_deref() != Ok("1") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db");
        let mut conn = DbConnection::Sqlite(
            SqliteConnection::establish(&path.to_string_lossy()).expect("sqlite"),
        );
        run("sqlite", &mut conn, rows);
    }

    if let Ok(admin_url) = std::env::var("USESTATS_BENCH_PG_URL") {
        let (mut admin, name, url) = scratch_database(&admin_url, "");
        let mut conn = usestats::store::establish(&url).expect("bench database");
        run("postgres", &mut conn, rows);
        drop(conn);
        drop_database(&mut admin, &name);
    }
}
