//! Acting on an [`Opened`] request: the per-peer limits, the replay check, then the call.
//! Only a keyswap may come plain; everything else must be encrypted, signed and verified.

use super::opened::{Verified, limits};
use super::*;

/// The answer to an opened request, and its call when one was read.
pub(super) async fn act(
    node: &Arc<Node>,
    opened: Opened,
    remote_addr: Option<SocketAddr>,
) -> (Result<Value, Fault>, Option<MethodCall>) {
    match opened {
        Opened::Refused(fault) | Opened::Unusable { fault, .. } => (Err(fault), None),
        Opened::NoKey => (Err(faults::no_key_match()), None),
        // §5.4: the caller resends once, sealed to the certificate in the fault.
        Opened::StaleKey { .. } => (
            Err(Fault::new(
                faults::STALE_KEY,
                node.keyring().current.cert_pem.clone(),
            )),
            None,
        ),
        // Refused before its call is read: a keyswap never comes encrypted, so nothing in
        // it could be served, and reading it would be unauthenticated work of the sender's
        // choosing.
        Opened::Unverified { .. } => (Err(faults::bad_signature()), None),
        Opened::Clear(xml) => match read_call(node, xml).await {
            Ok(call) => {
                let answer = if is_keyswap(&call.name) {
                    Ok(keyswap(node, &call.params, remote_addr).await)
                } else {
                    Err(faults::not_encrypted())
                };
                (answer, Some(call))
            }
            Err(fault) => (Err(fault), None),
        },
        Opened::Verified(verified) => serve(node, *verified, remote_addr).await,
    }
}

fn is_keyswap(method: &str) -> bool {
    method == "system/keyswap" || method == "system.keyswap"
}

/// The XML-RPC call itself, parsed on the CPU pool: for a plain request (and for a verified
/// peer's large one) it is the bulk of the work.
async fn read_call(node: &Node, xml: Bytes) -> Result<MethodCall, Fault> {
    let limits = limits(node);
    node.cpu
        .run(move || xmlrpc::parse_call(&xml, &limits))
        .await
        .map_err(|e| e.to_fault())
}

/// A verified request: admitted, its call read, then served.
async fn serve(
    node: &Arc<Node>,
    verified: Verified,
    remote_addr: Option<SocketAddr>,
) -> (Result<Value, Fault>, Option<MethodCall>) {
    if let Err(fault) = admit(node, &verified).await {
        return (Err(fault), None);
    }
    let peer = verified.peer().clone();
    // Refreshed, the peer's services are read from the database.
    let known = verified.refreshed.is_none().then_some(verified.sender);
    let call = match verified.call {
        Some(parsed) => parsed.map_err(|e| e.to_fault()),
        None => read_call(node, Bytes::from(verified.signed.object)).await,
    };
    let call = match call {
        Ok(call) => call,
        Err(fault) => return (Err(fault), None),
    };
    if is_keyswap(&call.name) {
        return (
            Ok(keyswap(node, &call.params, remote_addr).await),
            Some(call),
        );
    }
    if !valid_method_name(&call.name) {
        let fault = Fault::new(
            faults::BAD_METHOD_NAME,
            format!(
                "Invalid method name: {}",
                crate::text::echo::echo(&call.name)
            ),
        );
        return (Err(fault), Some(call));
    }
    let context = CallContext { peer, remote_addr };
    let answer = dispatch(node, context, call.clone(), known).await;
    (answer, Some(call))
}

/// Checked once the peer is proven, so the fault goes back signed and encrypted and the
/// peer's client can read it: the per-peer rate limit, the timestamp window and the replay
/// check.
async fn admit(node: &Node, verified: &Verified) -> Result<(), Fault> {
    let peer = &verified.sender.peer;
    if !node.limits.per_peer.allow(&peer.wwwroot) {
        node.metrics
            .rejected_rate
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(Fault::new(
            faults::RATE_LIMITED,
            "Too many calls from your host: slow down and try again in a minute",
        ));
    }
    if let Some(fault) = replay_or_stale(node, peer, &verified.signed, &verified.sealed_key).await {
        return Err(fault);
    }
    // Batched: a write per call would take the database's write lock per call.
    node.contacts.note(peer.id, node.now());
    Ok(())
}
