//! The audit trail: one row per MNET or web-service call, written off the request path so
//! that a slow or full state database never delays or fails an answer, and in batches: one
//! transaction per [`BATCH_DELAY`] instead of one per call (shutdown and
//! `BackgroundWrites::settled` write what is queued). Nothing secret is
//! recorded (no tokens, no message bodies). Text fields are escaped and bounded
//! ([`untrusted`]): most of them come from the caller, and `verified` says whether the
//! caller was proven to be who the row names.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::background::{BackgroundWrites, Batched};
use crate::clock::Clock;
use crate::store::Db;
use crate::store::state::{self, AuditEntry};
use crate::text::untrusted;

/// Which door a call came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An MNET XML-RPC call.
    Mnet,
    /// A Moodle-style REST web-service call.
    Ws,
}

impl Channel {
    /// The name stored in `audit_log.channel` and used as the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Mnet => "mnet",
            Channel::Ws => "ws",
        }
    }
}

/// One call as the audit trail records it. The text fields are as the caller sent them:
/// [`Audit::record`] bounds and escapes them.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub channel: Channel,
    /// The peer the request claims to come from (MNET), empty for web services.
    pub peer: &'a str,
    pub remote_addr: Option<SocketAddr>,
    pub method: &'a str,
    pub caller: &'a str,
    pub target: &'a str,
    pub status: &'a str,
    pub latency_ms: i64,
    pub bytes_in: usize,
    pub bytes_out: usize,
    /// The caller was proven to be who `peer`/`caller` name.
    pub verified: bool,
}

/// How long an audit row may wait in memory before its batch is written.
pub const BATCH_DELAY: Duration = Duration::from_millis(100);

/// The handle that writes the trail: the state database, off the request path.
#[derive(Clone)]
pub struct Audit {
    enabled: bool,
    clock: Arc<Clock>,
    rows: Arc<Batched<AuditEntry>>,
}

impl Audit {
    pub fn new(
        enabled: bool,
        state: Db,
        clock: Arc<Clock>,
        background: Arc<BackgroundWrites>,
    ) -> Audit {
        let rows = Batched::new(
            background,
            BATCH_DELAY,
            move |batch: Arc<Vec<AuditEntry>>| {
                let db = state.clone();
                async move {
                    let rows = batch.len();
                    match db.run(move |c| state::insert_audit_batch(c, &batch)).await {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::warn!(error = %e, rows, "audit entry not written");
                            false
                        }
                    }
                }
            },
        );
        Audit {
            enabled,
            clock,
            rows,
        }
    }

    pub fn record(&self, call: Call<'_>) {
        if !self.enabled {
            return;
        }
        let entry = AuditEntry {
            id: 0,
            time: self.clock.now(),
            channel: call.channel.as_str().into(),
            peer: untrusted::field(call.peer),
            remote_addr: call
                .remote_addr
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            method: untrusted::field(call.method),
            caller: untrusted::field(call.caller),
            target: untrusted::field(call.target),
            status: untrusted::escape(call.status, 100),
            latency_ms: call.latency_ms,
            bytes_in: call.bytes_in as i64,
            bytes_out: call.bytes_out as i64,
            verified: call.verified,
        };
        self.rows.push(entry);
    }
}
