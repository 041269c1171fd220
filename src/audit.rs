//! The audit trail: one row per verified MNET or web-service call, and for requests refused
//! before they were authenticated a count per (minute, source address, channel, reason) with
//! the first few kept as samples: anyone can send those, and a row each would let a stranger
//! fill the state database (docs/decisions.md, "Exposure and what strangers may store"). Written off
//! the request path so that a slow or full state database never delays or fails an answer,
//! on a connection of their own (`store::Db::writers`) so that they never take the request
//! path's, and in batches: one transaction per [`BATCH_DELAY`] instead of one per call
//! (shutdown and `BackgroundWrites::settled` write what is queued). Nothing secret is
//! recorded (no tokens, no message bodies). Text fields are escaped and bounded
//! ([`untrusted`]): most of them come from the caller, and `verified` says whether the
//! caller was proven to be who the row names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::background::{BackgroundWrites, Batched};
use crate::clock::Clock;
use crate::store::Db;
use crate::store::state::{self, AuditEntry, REFUSED_SAMPLES, RefusedCount};
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
    refused: Arc<Batched<Refused>>,
}

/// One request refused before authentication, on its way to its count.
#[derive(Debug, Clone)]
struct Refused {
    time: i64,
    remote_addr: String,
    channel: &'static str,
    reason: String,
    bytes_in: i64,
    /// The request's fields, escaped: kept if its count has room for samples.
    sample: String,
}

impl Audit {
    /// `state` is the connection the writes use: the writers' own (`store::Db::writers`).
    pub fn new(
        enabled: bool,
        state: Db,
        clock: Arc<Clock>,
        background: Arc<BackgroundWrites>,
    ) -> Audit {
        let db = state.clone();
        let rows = Batched::new(
            background.clone(),
            BATCH_DELAY,
            move |batch: Arc<Vec<AuditEntry>>| {
                let db = db.clone();
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
        let refused = Batched::new(background, BATCH_DELAY, move |batch: Arc<Vec<Refused>>| {
            let db = state.clone();
            async move {
                let counts = counted(&batch);
                let requests = batch.len();
                match db.run(move |c| state::add_refused_counts(c, &counts)).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, requests, "refused requests not counted in the audit");
                        false
                    }
                }
            }
        });
        Audit {
            enabled,
            clock,
            rows,
            refused,
        }
    }

    pub fn record(&self, call: Call<'_>) {
        if !self.enabled {
            return;
        }
        let time = self.clock.now();
        let remote_addr = call
            .remote_addr
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        if !call.verified {
            self.refused.push(Refused {
                time,
                remote_addr,
                channel: call.channel.as_str(),
                // Our own status text (a fault code, an exception code, `ok`), never the
                // sender's: the counts cannot be split into rows of the sender's choosing.
                reason: untrusted::escape(call.status, 100),
                bytes_in: call.bytes_in as i64,
                sample: sample(&call),
            });
            return;
        }
        let entry = AuditEntry {
            id: 0,
            time,
            channel: call.channel.as_str().into(),
            peer: untrusted::field(call.peer),
            remote_addr,
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

/// A refused request as its count's sample shows it: the fields it claimed, escaped and cut
/// (no body, no token).
fn sample(call: &Call<'_>) -> String {
    let mut line = String::new();
    for (name, value) in [
        ("method", call.method),
        ("peer", call.peer),
        ("caller", call.caller),
        ("target", call.target),
    ] {
        if !value.is_empty() {
            line.push_str(&format!("{name}={} ", untrusted::field(value)));
        }
    }
    line.push_str(&format!("bytes={}", call.bytes_in));
    line
}

/// A batch of refused requests as one count per (minute, address, channel, reason), each
/// with at most [`REFUSED_SAMPLES`] samples.
fn counted(batch: &[Refused]) -> Vec<RefusedCount> {
    let mut counts: HashMap<(i64, &str, &str, &str), RefusedCount> = HashMap::new();
    for r in batch {
        let minute = r.time - r.time.rem_euclid(60);
        let count = counts
            .entry((minute, &r.remote_addr, r.channel, &r.reason))
            .or_insert_with(|| RefusedCount {
                minute,
                remote_addr: r.remote_addr.clone(),
                channel: r.channel.to_string(),
                reason: r.reason.clone(),
                first_time: r.time,
                last_time: r.time,
                ..RefusedCount::default()
            });
        count.calls += 1;
        count.bytes_in += r.bytes_in;
        count.first_time = count.first_time.min(r.time);
        count.last_time = count.last_time.max(r.time);
        if count.sampled < REFUSED_SAMPLES {
            if count.sampled > 0 {
                count.samples.push('\n');
            }
            count.samples.push_str(&r.sample);
            count.sampled += 1;
        }
    }
    let mut out: Vec<RefusedCount> = counts.into_values().collect();
    // A fixed order: two instances adding to the same counts take their row locks in it.
    out.sort_by(|a, b| {
        (a.minute, &a.remote_addr, &a.channel, &a.reason).cmp(&(
            b.minute,
            &b.remote_addr,
            &b.channel,
            &b.reason,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(time: i64, addr: &str, reason: &str, method: &str) -> Refused {
        Refused {
            time,
            remote_addr: addr.into(),
            channel: "mnet",
            reason: reason.into(),
            bytes_in: 10,
            sample: format!("method={method} bytes=10"),
        }
    }

    #[test]
    fn refused_requests_are_counted_per_minute_address_and_reason_with_a_few_samples() {
        let mut batch = Vec::new();
        for i in 0..50 {
            batch.push(refused(
                600 + i,
                "192.0.2.1",
                "fault 7020",
                &format!("m{i}"),
            ));
        }
        batch.push(refused(660, "192.0.2.1", "fault 7020", "next minute"));
        batch.push(refused(610, "192.0.2.2", "fault 7020", "other address"));
        batch.push(refused(610, "192.0.2.1", "fault 7021", "other reason"));
        let counts = counted(&batch);
        assert_eq!(counts.len(), 4, "{counts:?}");
        let busy = &counts[0];
        assert_eq!(
            (busy.minute, busy.remote_addr.as_str(), busy.reason.as_str()),
            (600, "192.0.2.1", "fault 7020")
        );
        assert_eq!((busy.calls, busy.bytes_in), (50, 500));
        assert_eq!((busy.first_time, busy.last_time), (600, 649));
        assert_eq!(busy.sampled, REFUSED_SAMPLES);
        assert_eq!(
            busy.samples,
            "method=m0 bytes=10\nmethod=m1 bytes=10\nmethod=m2 bytes=10"
        );
    }
}
