//! `usestats audit`: the recorded MNET and web-service calls, or (`--refused`) the counts of
//! requests refused before authentication.

use std::sync::Arc;

use anyhow::Context;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::output::{self, Table};
use crate::store::state;

pub(super) async fn run(
    app: &Arc<App>,
    peer: Option<String>,
    since: Option<String>,
    limit: i64,
    json_out: bool,
) -> CmdResult {
    let since = since.as_deref().map(output::parse_time).transpose()?;
    let entries = app
        .state
        .run(move |c| state::query_audit(c, peer.as_deref(), since, limit.clamp(1, 100_000)))
        .await
        .context("reading the audit log")?;
    if json_out {
        print_json(&entries);
        return Ok(());
    }
    let mut table = Table::new(&[
        "time", "channel", "peer", "verified", "from", "method", "caller", "target", "status",
        "ms", "in", "out",
    ]);
    // Rows written before escaping on the way in may hold raw control characters: a
    // terminal must never receive them.
    let shown = |text: &str| crate::text::terminal(text);
    for e in entries {
        table.row(vec![
            output::time(e.time),
            shown(&e.channel),
            shown(&e.peer),
            if e.verified { "yes" } else { "NO (claimed)" }.to_string(),
            shown(&e.remote_addr),
            shown(&e.method),
            shown(&e.caller),
            shown(&e.target),
            shown(&e.status),
            e.latency_ms.to_string(),
            e.bytes_in.to_string(),
            e.bytes_out.to_string(),
        ]);
    }
    if table.is_empty() {
        println!("no calls recorded");
    } else {
        print!("{}", table.render());
    }
    Ok(())
}

/// `usestats audit --refused`: requests refused before authentication, one line per minute,
/// source address, channel and reason, with the samples kept.
pub(super) async fn run_refused(
    app: &Arc<App>,
    since: Option<String>,
    limit: i64,
    json_out: bool,
) -> CmdResult {
    let since = since.as_deref().map(output::parse_time).transpose()?;
    let counts = app
        .state
        .run(move |c| state::query_refused(c, since, limit.clamp(1, 100_000)))
        .await
        .context("reading the audit's counts of refused requests")?;
    if json_out {
        print_json(&counts);
        return Ok(());
    }
    let mut table = Table::new(&[
        "minute", "from", "channel", "reason", "requests", "in", "samples",
    ]);
    let shown = |text: &str| crate::text::terminal(text);
    for c in counts {
        table.row(vec![
            output::time(c.minute),
            shown(&c.remote_addr),
            shown(&c.channel),
            shown(&c.reason),
            c.calls.to_string(),
            c.bytes_in.to_string(),
            // Stored escaped, one a line; shown on one line, escaped again for the terminal.
            c.samples.lines().map(shown).collect::<Vec<_>>().join(" | "),
        ]);
    }
    if table.is_empty() {
        println!("no refused requests recorded");
    } else {
        print!("{}", table.render());
    }
    Ok(())
}
