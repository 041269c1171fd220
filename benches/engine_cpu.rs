//! The in-memory engine rate of `benches/engine.rs`, in CPU time of the measuring thread
//! (the criterion bench reports wall time, which a busy shared machine inflates). Same
//! synthetic rows (`benches/support/rows.rs`), same settings.
//!
//! `cargo bench --bench engine_cpu` (`USESTATS_BENCH_REPEAT`, default 10 passes of 1M rows).

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/rows.rs"]
mod rows;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use usestats::stats::{Engine, Settings, Window, compute};

use rows::{T0, synthetic_rows};

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
