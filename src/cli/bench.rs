//! `usestats bench`: N concurrent MNET clients doing signed+encrypted get_stats calls for D
//! seconds against a running peer, reporting throughput, latency percentiles and errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::app::App;
use crate::cli::BenchArgs;
use crate::collect::caller_struct;
use crate::services::use_stats::{self, Answer};
use crate::store::state::{self, Peer};
use crate::xmlrpc::Value;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub peer: String,
    pub clients: usize,
    pub seconds: f64,
    pub calls: u64,
    pub errors: u64,
    pub calls_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// A few distinct error messages, for diagnosis.
    pub error_samples: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Run the load. A call counts as an error when it fails at the MNET level or the
/// use_stats answer is not status 200.
pub async fn run(
    app: &Arc<App>,
    peer: Peer,
    target: &str,
    caller: (&str, &str),
    clients: usize,
    duration: Duration,
    scope: i64,
) -> BenchResult {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let caller_value = caller_struct(caller.0, caller.1, app.wwwroot());
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (app, peer, caller_value, target) = (
            app.clone(),
            peer.clone(),
            caller_value.clone(),
            target.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            while Instant::now() < deadline {
                let params = vec![
                    caller_value.clone(),
                    Value::String(target.clone()),
                    Value::from(""),
                    Value::Int(scope),
                    Value::Int(0),
                ];
                let begun = Instant::now();
                let outcome = app
                    .client
                    .call_uninstrumented(&peer, use_stats::GET_STATS, params)
                    .await;
                latencies.push(begun.elapsed());
                match outcome {
                    Ok(value) => match Answer::from_value(&value) {
                        Some(a) if a.status == use_stats::RPC_SUCCESS => {}
                        Some(a) => errors.push(format!("status {}", a.status)),
                        None => errors.push("not a use_stats answer".to_string()),
                    },
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors.extend(e);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let mut samples: Vec<String> = errors.clone();
    samples.sort();
    samples.dedup();
    samples.truncate(5);
    BenchResult {
        peer: peer.wwwroot,
        clients,
        seconds,
        calls: latencies.len() as u64,
        errors: errors.len() as u64,
        calls_per_second: latencies.len() as f64 / seconds.max(1e-9),
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        error_samples: samples,
    }
}

pub async fn run_cli(app: &Arc<App>, args: BenchArgs, json_out: bool) -> anyhow::Result<()> {
    let wanted = crate::wwwroot::Wwwroot::normalized(&args.peer);
    let lookup = wanted.clone();
    let peer = app
        .state
        .run(move |c| state::peer_by_wwwroot(c, &lookup))
        .await
        .with_context(|| format!("looking up peer {wanted}"))?
        .filter(|p| !p.deleted && !p.is_all_hosts())
        .with_context(|| format!("no peer {wanted}"))?;
    let (name, home) = match args.as_user.as_deref() {
        None => ("admin".to_string(), app.wwwroot().to_string()),
        Some(text) => crate::cli::parse_as_user(text)?,
    };
    let result = run(
        app,
        peer,
        &args.username,
        (&name, &home),
        args.clients,
        Duration::from_secs(args.seconds.max(1)),
        args.scope,
    )
    .await;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
    } else {
        println!(
            "{} clients, {:.1} s: {} calls, {} errors, {:.1} calls/s; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            result.clients,
            result.seconds,
            result.calls,
            result.errors,
            result.calls_per_second,
            result.p50_ms,
            result.p90_ms,
            result.p99_ms,
            result.max_ms
        );
        for sample in &result.error_samples {
            println!("error: {sample}");
        }
    }
    if result.errors > 0 {
        bail!("{} calls failed", result.errors);
    }
    Ok(())
}
