//! The replay check and the timestamp window of a verified request.

use super::*;

/// Protections beyond Moodle (§4.5, P29), lenient so real Moodle clients pass: the
/// timestamp must be within the window of our clock, and a signed request is executed
/// once. A replay is the same signature in the same sealed envelope (same wrapped session
/// key). The signature alone cannot be the key: PKCS#1 v1.5 signatures are deterministic and
/// cover only the XML-RPC, so a Moodle repeating an identical call in the same second, or
/// resending after 7025 (vectors 05a/05b), signs the same bytes again, but always seals them
/// with a fresh random session key. Bit-flipping the unsigned timestamp through RC4 keeps
/// the wrapped key, so such a replay is still caught — as long as the key is remembered,
/// which is why keys are kept for `replay_window_secs` (a day), far past the timestamp
/// window, and in the state database across restarts.
///
/// A key is claimed in the state database before the call runs, in one statement, and on
/// SQLite that statement is synced to disk before it returns (`state::claim_replay_key`):
/// a request answered just before a crash, a kill or a power cut is still refused after the
/// restart (issue 22, K2), and on a shared PostgreSQL state a copy sent to another instance
/// is refused too. Memory answers first for the replays it knows, with no database trip.
pub(super) async fn replay_or_stale(
    node: &Node,
    peer: &Peer,
    signed: &envelope::SignedMessage,
    sealed_key: &[u8],
) -> Option<Fault> {
    let now = node.now();
    let window = node.config.limits.timestamp_window_secs;
    // abs_diff: a timestamp near i64::MIN or MAX must not wrap into the window.
    let skew = signed.timestamp.abs_diff(now);
    if window > 0 && skew > window.unsigned_abs() {
        node.metrics
            .rejected_replay
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let side = if signed.timestamp > now {
            "ahead of"
        } else {
            "behind"
        };
        return Some(Fault::new(
            faults::STALE_TIMESTAMP,
            format!(
                "The request's timestamp is {skew} s {side} our clock (limit {window} s): check the clocks"
            ),
        ));
    }
    if node.limits.replay.window() <= 0 {
        return None;
    }
    let key = crate::limits::replay_key(peer.id, &signed.signature, sealed_key);
    let replayed = match node.limits.replay.check(&key, now) {
        Seen::Replay => true,
        Seen::New | Seen::AskDatabase => {
            let (hex, since) = (
                crate::limits::key_to_hex(&key),
                node.limits.replay.cutoff(now),
            );
            match node
                .state
                .run(move |c| state::claim_replay_key(c, &hex, now, since))
                .await
            {
                Ok(claimed) => !claimed,
                Err(e) => {
                    // Refusing is the safe side: the peer retries with a fresh envelope.
                    tracing::warn!(error = %e, "replay check: state database unavailable");
                    return Some(faults::internal("state database unavailable"));
                }
            }
        }
    };
    if replayed {
        node.metrics
            .rejected_replay
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Some(Fault::new(
            faults::REPLAYED,
            "This signed request was already received: replays are refused",
        ));
    }
    None
}
