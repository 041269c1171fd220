//! Counters for `GET /metrics` (Prometheus text format). Cheap to update from any task; the
//! peers' key expiry and last contact are read from the state database at scrape time, the
//! instances sharing it every few seconds at most ([`Metrics::instances`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::audit::Channel;
use crate::instances::SeenCache;
use crate::store::state::InstanceRow;

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// (channel, method, outcome) → count.
    requests: Mutex<BTreeMap<(String, String, String), u64>>,
    /// channel → latency histogram.
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub rejected_busy: AtomicU64,
    pub rejected_rate: AtomicU64,
    pub rejected_replay: AtomicU64,
    pub in_flight: AtomicU64,
    /// The instances seen lately, as the last scrape read them.
    pub instances: SeenCache,
}

impl Metrics {
    /// One answered call. `method` is the name of a method we serve, or [`OTHER_METHOD`].
    pub fn record(&self, channel: Channel, method: &str, outcome: &str, latency: Duration) {
        let channel = channel.as_str();
        let method = method_label(method);
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((channel.to_string(), method.to_string(), outcome.to_string()))
                .or_default() += 1;
        }
        if let Ok(mut latency_map) = self.latency.lock() {
            let histogram = latency_map.entry(channel.to_string()).or_default();
            let seconds = latency.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    histogram.counts[i] += 1;
                }
            }
            histogram.total += 1;
            histogram.sum += seconds;
        }
    }

    /// `instances` is None when they could not be read: their series are left out rather
    /// than shown as zero instances by a daemon that is plainly running.
    pub fn render(
        &self,
        peers: &[(String, i64, i64)],
        instances: Option<&[InstanceRow]>,
        now: i64,
    ) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        self.render_counters(&mut out);
        render_peers(&mut out, peers, now);
        if let Some(instances) = instances {
            render_instances(&mut out, instances);
        }
        out
    }

    /// Calls by outcome, and how long they took.
    fn render_requests(&self, out: &mut String) {
        out.push_str("# HELP usestats_requests_total Calls by channel, method and outcome.\n");
        out.push_str("# TYPE usestats_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((channel, method, outcome), count) in requests.iter() {
                out.push_str(&format!(
                    "usestats_requests_total{{channel=\"{channel}\",method=\"{method}\",outcome=\"{outcome}\"}} {count}\n"
                ));
            }
        }
        out.push_str("# HELP usestats_request_duration_seconds Time to answer a call.\n");
        out.push_str("# TYPE usestats_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (channel, h) in latency.iter() {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    out.push_str(&format!(
                        "usestats_request_duration_seconds_bucket{{channel=\"{channel}\",le=\"{bound}\"}} {}\n",
                        h.counts[i]
                    ));
                }
                out.push_str(&format!(
                    "usestats_request_duration_seconds_bucket{{channel=\"{channel}\",le=\"+Inf\"}} {}\n",
                    h.total
                ));
                out.push_str(&format!(
                    "usestats_request_duration_seconds_sum{{channel=\"{channel}\"}} {}\n",
                    h.sum
                ));
                out.push_str(&format!(
                    "usestats_request_duration_seconds_count{{channel=\"{channel}\"}} {}\n",
                    h.total
                ));
            }
        }
    }

    /// RSA operations, compiled answers, refusals and requests in flight.
    fn render_counters(&self, out: &mut String) {
        let ops = crate::crypto::operation_counts();
        out.push_str(
            "# HELP usestats_rsa_operations_total RSA private and public key operations.\n",
        );
        out.push_str("# TYPE usestats_rsa_operations_total counter\n");
        for (operation, count) in ops {
            out.push_str(&format!(
                "usestats_rsa_operations_total{{operation=\"{operation}\"}} {count}\n"
            ));
        }
        out.push_str(
            "# HELP usestats_compiled_answers_total Users answered from the compiled stats, and by a full scan of the log instead.\n",
        );
        out.push_str("# TYPE usestats_compiled_answers_total counter\n");
        for (source, count) in crate::compiled::answer_counts() {
            out.push_str(&format!(
                "usestats_compiled_answers_total{{source=\"{source}\"}} {count}\n"
            ));
        }
        out.push_str(
            "# HELP usestats_dedication_answers_total Dedication answers (users × variants) from the compiled store, and read live instead.\n",
        );
        out.push_str("# TYPE usestats_dedication_answers_total counter\n");
        for (source, count) in crate::compiled::dedication::dedication_answer_counts() {
            out.push_str(&format!(
                "usestats_dedication_answers_total{{source=\"{source}\"}} {count}\n"
            ));
        }
        out.push_str(
            "# HELP usestats_dedication_block_answers_total Of the dedication answers from the compiled store, those added up from its blocks of days (no session list asked).\n",
        );
        out.push_str("# TYPE usestats_dedication_block_answers_total counter\n");
        out.push_str(&format!(
            "usestats_dedication_block_answers_total {}\n",
            crate::compiled::dedication::block_answer_count()
        ));
        for (name, help, value) in [
            (
                "usestats_rejected_busy_total",
                "Requests refused with 503 (too many in flight).",
                self.rejected_busy.load(Ordering::Relaxed),
            ),
            (
                "usestats_rejected_rate_total",
                "Requests refused by a rate limit.",
                self.rejected_rate.load(Ordering::Relaxed),
            ),
            (
                "usestats_rejected_replay_total",
                "Requests refused as replays or out of the time window.",
                self.rejected_replay.load(Ordering::Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        out.push_str("# HELP usestats_requests_in_flight Requests being answered now.\n# TYPE usestats_requests_in_flight gauge\n");
        out.push_str(&format!(
            "usestats_requests_in_flight {}\n",
            self.in_flight.load(Ordering::Relaxed)
        ));
    }
}

/// Per peer: when the certificate we hold expires, and the last successful contact.
fn render_peers(out: &mut String, peers: &[(String, i64, i64)], now: i64) {
    out.push_str("# HELP usestats_peer_key_expiry_seconds Seconds until the certificate we hold for a peer expires.\n");
    out.push_str("# TYPE usestats_peer_key_expiry_seconds gauge\n");
    for (wwwroot, expires, _) in peers {
        out.push_str(&format!(
            "usestats_peer_key_expiry_seconds{{peer=\"{}\"}} {}\n",
            label(wwwroot),
            expires - now
        ));
    }
    out.push_str("# HELP usestats_peer_last_contact_timestamp_seconds Last successful contact with a peer (unix time).\n");
    out.push_str("# TYPE usestats_peer_last_contact_timestamp_seconds gauge\n");
    for (wwwroot, _, last) in peers {
        out.push_str(&format!(
            "usestats_peer_last_contact_timestamp_seconds{{peer=\"{}\"}} {last}\n",
            label(wwwroot)
        ));
    }
}

/// The instances sharing the state database (those that beat in the last five minutes):
/// how many, and one series per instance whose labels say which version and key it runs.
fn render_instances(out: &mut String, instances: &[InstanceRow]) {
    out.push_str("# HELP usestats_instances_seen Instances of usestats that beat on this state database in the last 5 minutes.\n");
    out.push_str("# TYPE usestats_instances_seen gauge\n");
    out.push_str(&format!("usestats_instances_seen {}\n", instances.len()));
    out.push_str("# HELP usestats_instance_info An instance seen in the last 5 minutes, with its version and the fingerprint of the key it signs with.\n");
    out.push_str("# TYPE usestats_instance_info gauge\n");
    for row in instances {
        out.push_str(&format!(
            "usestats_instance_info{{id=\"{}\",version=\"{}\",key_fingerprint=\"{}\"}} 1\n",
            label(&row.id),
            label(&row.version),
            label(&row.key_fingerprint)
        ));
    }
}

/// The label of a call to a method we do not serve. Callers pass a method's own name only
/// for the methods they serve, so a stranger sending thousands of made-up names adds one
/// series, not thousands.
pub const OTHER_METHOD: &str = "other";

fn method_label(method: &str) -> &str {
    if method.is_empty() { "-" } else { method }
}

/// A label value as the Prometheus text format wants it: backslash, double quote and line
/// feed escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_series_escape_their_labels() {
        let row = InstanceRow {
            id: "0123456789abcdef".into(),
            host: "h".into(),
            pid: 7,
            version: "1.0\"} 99\nfake_metric{x=\"\\".into(),
            listen: "127.0.0.1:1".into(),
            key_fingerprint: "ab:cd".into(),
            started_at: 1,
            seen_at: 2,
        };
        let text = Metrics::default().render(&[], Some(std::slice::from_ref(&row)), 10);
        assert!(text.contains("usestats_instances_seen 1\n"), "{text}");
        assert!(
            text.contains(
                "usestats_instance_info{id=\"0123456789abcdef\",version=\"1.0\\\"} 99\\nfake_metric{x=\\\"\\\\\",key_fingerprint=\"ab:cd\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("fake_metric")),
            "{text}"
        );
        let unread = Metrics::default().render(&[], None, 10);
        assert!(!unread.contains("usestats_instance"), "{unread}");
    }
}
