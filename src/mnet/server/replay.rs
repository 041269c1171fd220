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
/// window, and in the state database across restarts. On a shared (PostgreSQL) state the key
/// is claimed there before the call runs, so a copy sent to another instance is refused too.
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
    let key = crate::limits::replay_key(peer.id, &signed.signature, sealed_key);
    // Several instances on one PostgreSQL state: memory knows only this instance's requests,
    // so every request claims its key in the database before it runs (one statement).
    let shared = node.state.kind() == crate::store::DbKind::Postgres;
    let replayed = match node.limits.replay.check(&key, now) {
        Seen::Replay => true,
        Seen::New | Seen::AskDatabase if shared && node.limits.replay.window() > 0 => {
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
        Seen::New => false,
        Seen::AskDatabase => {
            let (hex, since) = (
                crate::limits::key_to_hex(&key),
                node.limits.replay.cutoff(now),
            );
            // A key memory let go of may not have reached the database yet.
            if node.replay_keys.any(|(queued, _)| *queued == hex) {
                true
            } else {
                match node
                    .state
                    .run(move |c| state::replay_key_seen(c, &hex, since))
                    .await
                {
                    Ok(seen) => seen,
                    Err(e) => {
                        tracing::warn!(error = %e, "replay check: state database unavailable");
                        return Some(faults::internal("state database unavailable"));
                    }
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
    if node.limits.replay.window() > 0 && !shared {
        // Off the request path: memory already refuses the key; the database is for a
        // restart and for when memory is full, and until the batch is written the queue
        // answers for it (above).
        node.replay_keys
            .push((crate::limits::key_to_hex(&key), now));
    }
    None
}

/// How long a replay key may wait in memory before its batch is written. Memory refuses a
/// replay at once whatever this is; it bounds what a crash (not a shutdown, which writes the
/// queue) forgets.
pub const REPLAY_KEY_BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer of replay keys into the state database, in batches.
pub fn replay_key_writes(
    db: crate::store::Db,
    background: Arc<crate::background::BackgroundWrites>,
) -> Arc<crate::background::Batched<(String, i64)>> {
    crate::background::Batched::new(
        background,
        REPLAY_KEY_BATCH_DELAY,
        move |batch: Arc<Vec<(String, i64)>>| {
            let db = db.clone();
            async move {
                let keys = batch.len();
                match db.run(move |c| state::insert_replay_keys(c, &batch)).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, keys, "replay keys not persisted");
                        false
                    }
                }
            }
        },
    )
}
