//! `usestats collect`: one user's time across peers, asked concurrently.

use std::sync::Arc;

use anyhow::{Context, bail};

use super::common::print_json;
use super::{CmdResult, Reported};
use crate::app::App;
use crate::cli::CollectArgs;
use crate::cli::output::{self, Table};

pub(super) async fn run(app: &Arc<App>, args: CollectArgs, json_out: bool) -> CmdResult {
    if args.estimator != crate::cli::EstimatorArg::UseStats {
        bail!(
            "collect asks peers over MNET, whose get_stats answers use_stats only; ask each host's web services or `usestats stats --estimator` for dedication"
        );
    }
    let (caller_name, caller_home) = parse_as_user(app, args.as_user.as_deref())?;
    let timefrom = args
        .from
        .as_deref()
        .map(output::parse_time)
        .transpose()?
        .unwrap_or(0);
    let peers = crate::collect::target_peers(app, &args.peers)
        .await
        .context("choosing the peers to ask")?;
    if peers.is_empty() && !args.include_local {
        bail!(
            "no peers to ask: subscribe to use_stats on some (`usestats peer subscribe PEER use_stats`)"
        );
    }
    let mut collection = crate::collect::collect(
        app,
        peers,
        (&caller_name, &caller_home),
        &args.username,
        args.scope,
        timefrom,
    )
    .await;
    if args.include_local {
        collection.hosts.insert(
            0,
            crate::collect::local_result(app, &args.username, args.scope, timefrom).await,
        );
        collection.total_minutes = collection.hosts.iter().filter_map(|h| h.minutes).sum();
    }
    if json_out {
        print_json(&collection);
    } else {
        print_table(&collection);
    }
    let answered = collection
        .hosts
        .iter()
        .filter(|h| matches!(h.status, crate::collect::PeerStatus::Ok))
        .count();
    if answered == 0 && !collection.hosts.is_empty() {
        return Err(Reported(format!(
            "no host answered ({} asked)",
            collection.hosts.len()
        ))
        .into());
    }
    Ok(())
}

/// Durations as `stats` and `report` print them: MNET's answers are whole minutes.
fn minutes(m: i64) -> String {
    crate::timefmt::duration(m.saturating_mul(60))
}

fn print_table(collection: &crate::collect::Collection) {
    println!(
        "user {} asked as {}, scope {}, from {}",
        collection.username,
        collection.caller,
        collection.scope,
        output::time(collection.timefrom)
    );
    println!("estimator {}", collection.estimator);
    let mut table = Table::new(&["host", "outcome", "latency", "time", "courses", "error"]);
    for h in &collection.hosts {
        table.row(vec![
            h.wwwroot.clone(),
            format!("{:?}", h.status).to_lowercase(),
            format!("{} ms", h.latency_ms),
            h.minutes.map(minutes).unwrap_or_else(|| "-".into()),
            h.courses
                .iter()
                .map(|c| format!("{} {}", c.shortname, minutes(c.minutes)))
                .collect::<Vec<_>>()
                .join(", "),
            h.error.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    println!(
        "total {} over {} hosts ({} ms)",
        minutes(collection.total_minutes),
        collection
            .hosts
            .iter()
            .filter(|h| h.minutes.is_some())
            .count(),
        collection.elapsed_ms
    );
}

fn parse_as_user(app: &App, as_user: Option<&str>) -> anyhow::Result<(String, String)> {
    match as_user {
        None => Ok(("admin".into(), app.wwwroot().to_string())),
        Some(text) => crate::cli::parse_as_user(text),
    }
}
