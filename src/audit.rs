//! The audit trail: one row per MNET or web-service call, written off the request path so
//! that a slow or full state database never delays or fails an answer. Nothing secret is
//! recorded (no tokens, no message bodies).

use std::net::SocketAddr;

use crate::app::App;
use crate::store::state::{self, AuditEntry};

#[allow(clippy::too_many_arguments)]
pub fn record(
    app: &App,
    channel: &str,
    peer: &str,
    remote_addr: Option<SocketAddr>,
    method: &str,
    caller: &str,
    target: &str,
    status: &str,
    latency_ms: i64,
    bytes_in: usize,
    bytes_out: usize,
) {
    if !app.config.audit.enabled {
        return;
    }
    let entry = AuditEntry {
        id: 0,
        time: app.now(),
        channel: channel.into(),
        peer: peer.into(),
        remote_addr: remote_addr.map(|a| a.ip().to_string()).unwrap_or_default(),
        method: truncate(method, 200),
        caller: truncate(caller, 200),
        target: truncate(target, 200),
        status: truncate(status, 100),
        latency_ms,
        bytes_in: bytes_in as i64,
        bytes_out: bytes_out as i64,
    };
    let db = app.state.clone();
    app.background.spawn(async move {
        if let Err(e) = db.run(move |c| state::insert_audit(c, &entry)).await {
            tracing::warn!(error = %e, "audit entry not written");
        }
    });
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
