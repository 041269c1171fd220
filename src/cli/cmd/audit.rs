//! `usestats audit`: the recorded MNET and web-service calls.

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
