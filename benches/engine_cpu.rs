//! The in-memory engine rate of `benches/engine.rs`, in CPU time of the measuring thread
//! (the criterion bench reports wall time, which a busy shared machine inflates). Same
//! synthetic rows (the generator is copied from `benches/engine.rs`), same settings.
//!
//! `cargo bench --bench engine_cpu` (`USESTATS_BENCH_REPEAT`, default 10 passes of 1M rows).

#[path = "support/cpu.rs"]
mod cpu;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use usestats::stats::{Engine, LogRow, ModuleInfo, Settings, Window, compute};

const T0: i64 = 1_600_000_000;

/// A deterministic mix resembling a busy learner: mostly module and course views in a handful
/// of courses, regular logins and logouts, graded echoes, captured rows and long breaks.
fn synthetic_rows(count: usize) -> Vec<LogRow> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut time = T0;
    (0..count)
        .map(|index| {
            let draw = next();
            time += match draw % 100 {
                0 => 7_200,
                1..=10 => 0,
                _ => (draw >> 8) as i64 % 300,
            };
            let course = 2 + (draw >> 20) as i64 % 8;
            let (course, level, action, target, module) = match (draw >> 32) % 50 {
                0 => (0, 10, "loggedin", "user", ModuleInfo::NotModule),
                1 => (0, 10, "loggedout", "user", ModuleInfo::NotModule),
                2 => (course, 50, "graded", "user", ModuleInfo::NotModule),
                3 => (
                    course,
                    70,
                    "viewed",
                    "course_module",
                    ModuleInfo::Cm {
                        cmid: 9_000 + course,
                        module: Some("learningtimecheck".to_string()),
                        section: Some(1),
                    },
                ),
                4..=19 => (course, 50, "viewed", "course", ModuleInfo::NotModule),
                _ => (
                    course,
                    70,
                    "viewed",
                    "course_module",
                    ModuleInfo::Cm {
                        cmid: course * 100 + (draw >> 40) as i64 % 25,
                        module: Some("quiz".to_string()),
                        section: Some(course * 10 + (draw >> 48) as i64 % 5),
                    },
                ),
            };
            LogRow {
                id: index as i64 + 1,
                userid: 42,
                time,
                course: Some(course),
                context_level: level,
                action: action.to_string(),
                target: target.to_string(),
                origin: Some("web".to_string()),
                realuserid: None,
                module,
            }
        })
        .collect()
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (rows_n, repeat) = if benching {
        let repeat = std::env::var("USESTATS_BENCH_REPEAT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        (1_000_000, repeat)
    } else {
        (10_000, 1)
    };
    let rows = synthetic_rows(rows_n);
    let last = rows.last().map_or(T0, |row| row.time);
    let window = Window {
        from: T0,
        to: last,
        now: last + 60,
    };
    let settings = Settings::default();
    let total = (rows_n * repeat) as f64;
    let run = |label: &str, keep: bool| {
        let (cpu0, wall0) = (cpu::thread_cpu(), Instant::now());
        for _ in 0..repeat {
            let mut engine = Engine::new(&settings, window, HashMap::new()).keep_sessions(keep);
            for row in &rows {
                let _ = engine.push(black_box(row));
            }
            black_box(engine.finish());
        }
        let (cpu_s, wall) = (
            (cpu::thread_cpu() - cpu0).as_secs_f64(),
            wall0.elapsed().as_secs_f64(),
        );
        println!(
            "{label}: {repeat} x {rows_n} rows: cpu {:.1} ns/row = {:.2} M rows/cpu-s; wall {:.2} M rows/s",
            cpu_s * 1e9 / total,
            total / cpu_s / 1e6,
            total / wall / 1e6
        );
    };
    run("push (streaming)", false);
    run("push, keep_sessions", true);
    let (mut cpu_sum, mut wall_sum) = (0.0, 0.0);
    for _ in 0..repeat {
        let input = rows.clone();
        let (cpu0, wall0) = (cpu::thread_cpu(), Instant::now());
        black_box(compute(&settings, window, HashMap::new(), input));
        cpu_sum += (cpu::thread_cpu() - cpu0).as_secs_f64();
        wall_sum += wall0.elapsed().as_secs_f64();
    }
    println!(
        "compute (sorts first): {repeat} x {rows_n} rows: cpu {:.1} ns/row = {:.2} M rows/cpu-s; wall {:.2} M rows/s",
        cpu_sum * 1e9 / total,
        total / cpu_sum / 1e6,
        total / wall_sum / 1e6
    );
    println!(
        "peak RSS {} MiB (the input rows are held in memory)",
        cpu::peak_rss_kib() / 1024
    );
}
