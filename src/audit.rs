//! The audit trail: one row per MNET or web-service call, written off the request path so
//! that a slow or full state database never delays or fails an answer. Nothing secret is
//! recorded (no tokens, no message bodies). Text fields are escaped and bounded
//! ([`untrusted`]): most of them come from the caller, and `verified` says whether the
//! caller was proven to be who the row names.

use std::net::SocketAddr;

use crate::app::App;
use crate::store::state::{self, AuditEntry};
use crate::untrusted;

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
    verified: bool,
) {
    if !app.config.audit.enabled {
        return;
    }
    let entry = AuditEntry {
        id: 0,
        time: app.now(),
        channel: channel.into(),
        peer: untrusted::field(peer),
        remote_addr: remote_addr.map(|a| a.ip().to_string()).unwrap_or_default(),
        method: untrusted::field(method),
        caller: untrusted::field(caller),
        target: untrusted::field(target),
        status: untrusted::escape(status, 100),
        latency_ms,
        bytes_in: bytes_in as i64,
        bytes_out: bytes_out as i64,
        verified,
    };
    let db = app.state.clone();
    app.background.spawn(async move {
        if let Err(e) = db.run(move |c| state::insert_audit(c, &entry)).await {
            tracing::warn!(error = %e, "audit entry not written");
        }
    });
}
