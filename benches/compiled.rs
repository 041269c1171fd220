//! Answers from the compiled store against full scans, in process (issue 12).
//!
//! `USESTATS_BENCH_DB=/path/usestats.sqlite3 cargo bench --bench compiled` reads a demo
//! database (`usestats demo --log-rows N`) that `usestats compile` has compiled; without it,
//! a 20 000-row demo is built and compiled in a temporary directory (a smoke run). It prints:
//!
//! * every user's report in one call (`reports::answer_users`, the path of
//!   `get_users_stats`), from the store and by full scan;
//! * the heaviest learner's report (`reports::answer_user`, the path of `get_stats` without
//!   its envelope and names), from the store: CPU per call over many calls;
//!
//! and checks that each compiled answer equals the full scan's.

#[path = "support/cpu.rs"]
mod cpu;

use std::time::Instant;

use diesel::RunQueryDsl;
use usestats::compiled::{self, CompileOptions, CompiledStore};
use usestats::config::EngineConfig;
use usestats::demo::{DemoOptions, build_demo};
use usestats::reports::{answer_user, answer_users, user_report, users_reports};
use usestats::stats::Window;
use usestats::store::source::Source;
use usestats::store::{Db, DbConnection};

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

fn ids(conn: &mut DbConnection, sql: &str) -> Vec<i64> {
    diesel::sql_query(sql)
        .load::<Id>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let wall = Instant::now();
    let cpu = cpu::process_cpu();
    let out = f();
    println!(
        "{label}: wall {:.3} s, cpu {:.3} s",
        wall.elapsed().as_secs_f64(),
        (cpu::process_cpu() - cpu).as_secs_f64()
    );
    out
}

fn main() {
    let _tmp;
    let path = match std::env::var("USESTATS_BENCH_DB") {
        Ok(path) => path,
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir
                .path()
                .join("bench.sqlite3")
                .to_string_lossy()
                .into_owned();
            let mut conn = usestats::store::establish(&path).unwrap();
            usestats::store::migrate_state(&mut conn).unwrap();
            build_demo(
                &mut conn,
                "mdl_",
                &DemoOptions {
                    log_rows: 20_000,
                    ..DemoOptions::default()
                },
            )
            .unwrap();
            _tmp = dir;
            path
        }
    };
    let db = Db::open(&path, 2).unwrap();
    usestats::store::migrate_state(&mut db.get().unwrap()).unwrap();
    let source = Source::new("mdl_").unwrap();
    let settings = usestats::reports::settings(&EngineConfig::default());
    // As `usestats` keys a store whose source is the state database itself (the demo).
    let mut store = CompiledStore {
        state: db.clone(),
        source_key: compiled::source_key("", "mdl_"),
        in_source: true,
        deletion_check: usestats::compiled::DeletionCheck::Census,
    };
    let mut conn = db.get().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let summary = timed("compile (brings the store up to date first)", || {
        let mut state = db.get().unwrap();
        compiled::compile(
            &mut state,
            &mut conn,
            &source,
            &settings,
            &store.source_key,
            now,
            CompileOptions::default(),
        )
        .unwrap()
    });
    println!("  {summary:?}");
    let users = ids(&mut conn, "SELECT id FROM mdl_user ORDER BY id");
    let heaviest = ids(
        &mut conn,
        "SELECT userid AS id FROM compiled_users ORDER BY raw_rows DESC LIMIT 1",
    )[0];
    let window = Window {
        from: 0,
        to: now,
        now,
    };

    // A term, as the issue measured it, and a `get_stats` with a `timefrom` in the middle
    // of the heaviest learner's history.
    let term = Window {
        from: 1_756_684_800, // 2025-09-01
        to: 1_767_225_600,   // 2026-01-01
        now,
    };
    let middle: i64 = {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            t: i64,
        }
        diesel::sql_query(format!(
            "SELECT timecreated AS t FROM mdl_logstore_standard_log WHERE userid = {heaviest} \
             ORDER BY timecreated LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM mdl_logstore_standard_log WHERE userid = {heaviest})"
        ))
        .get_result::<T>(&mut conn)
        .unwrap()
        .t
    };
    let statements = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        use diesel::connection::{Connection, InstrumentationEvent};
        let counter = statements.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    let counted = |f: &mut dyn FnMut()| {
        let before = statements.load(std::sync::atomic::Ordering::Relaxed);
        f();
        statements.load(std::sync::atomic::Ordering::Relaxed) - before
    };

    for check in [
        usestats::compiled::DeletionCheck::Census,
        usestats::compiled::DeletionCheck::Count,
    ] {
        store.deletion_check = check;
        println!("-- deletion_check = {check:?}");
        for (name, w) in [
            ("whole history", window),
            ("term 2025-09-01..2026-01-01", term),
        ] {
            for round in 1..=3 {
                let mut sent = 0;
                timed(
                    &format!("all {} users, {name}, compiled, round {round}", users.len()),
                    || {
                        sent = counted(&mut || {
                            answer_users(&mut conn, &source, &settings, Some(&store), &users, w)
                                .unwrap();
                        });
                    },
                );
                println!("  statements: {sent}");
            }
        }
        for (name, from) in [("timefrom 0", 0), ("timefrom mid-history", middle)] {
            let w = Window { from, to: now, now };
            let calls = 300u32;
            let cpu0 = cpu::process_cpu();
            let wall = Instant::now();
            for _ in 0..calls {
                answer_user(
                    &mut conn,
                    &source,
                    &settings,
                    Some(&store),
                    heaviest,
                    w,
                    false,
                )
                .unwrap();
            }
            let per_call_cpu = (cpu::process_cpu() - cpu0).as_secs_f64() / f64::from(calls) * 1e3;
            let per_call_wall = wall.elapsed().as_secs_f64() / f64::from(calls) * 1e3;
            println!(
                "heaviest learner (user {heaviest}), {name}, compiled: {per_call_cpu:.3} ms cpu, {per_call_wall:.3} ms wall per call over {calls} calls"
            );
        }
    }
    store.deletion_check = usestats::compiled::DeletionCheck::Census;
    for (name, w) in [("whole history", window), ("term", term)] {
        let compiled_all =
            answer_users(&mut conn, &source, &settings, Some(&store), &users, w).unwrap();
        let full_all = timed(
            &format!("all {} users, {name}, full scan", users.len()),
            || users_reports(&mut conn, &source, &settings, &users, w).unwrap(),
        );
        assert_eq!(
            compiled_all, full_all,
            "compiled answers equal full scans ({name})"
        );
    }
    for (name, from) in [("timefrom 0", 0), ("timefrom mid-history", middle)] {
        let w = Window { from, to: now, now };
        let full = timed(&format!("heaviest learner, {name}, full scan"), || {
            user_report(&mut conn, &source, &settings, heaviest, w, false).unwrap()
        });
        let compiled_one = answer_user(
            &mut conn,
            &source,
            &settings,
            Some(&store),
            heaviest,
            w,
            false,
        )
        .unwrap();
        assert_eq!(compiled_one, full);
        println!(
            "heaviest learner, {name}: {} rows extracted",
            full.rows_extracted
        );
    }
    println!("peak RSS {} MiB", cpu::peak_rss_kib() / 1024);
}
