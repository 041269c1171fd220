//! Rows per second through the time engine, for one user with about a million log rows.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

#[path = "support/rows.rs"]
mod rows;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use usestats::stats::{Engine, Settings, Window, compute};

const ROWS: usize = 1_000_000;
use rows::{T0, synthetic_rows};

fn engine_throughput(c: &mut Criterion) {
    let rows = synthetic_rows(ROWS);
    let last = rows.last().map_or(T0, |row| row.time);
    let window = Window {
        from: T0,
        to: last,
        now: last + 60,
    };
    let settings = Settings::default();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("push_1m_rows", |b| {
        b.iter(|| {
            let mut engine = Engine::new(&settings, window, HashMap::new());
            for row in &rows {
                let _ = engine.push(black_box(row));
            }
            black_box(engine.finish())
        })
    });
    group.bench_function("push_1m_rows_keep_sessions", |b| {
        b.iter(|| {
            let mut engine = Engine::new(&settings, window, HashMap::new()).keep_sessions(true);
            for row in &rows {
                let _ = engine.push(black_box(row));
            }
            black_box(engine.finish())
        })
    });
    group.bench_function("compute_1m_rows_sorting", |b| {
        b.iter_batched(
            || rows.clone(),
            |rows| black_box(compute(&settings, window, HashMap::new(), rows)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, engine_throughput);
criterion_main!(benches);
