//! `system/keyswap`, the one method served to anyone, and self-registration
//! (`mnet.auto_register`) with its limits.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::crypto;
use crate::mnet::node::Node;
use crate::mnet::registration::{self, Registration, Sponsor, Vetted};
use crate::store::state::{self, SslVerification};
use crate::text::untrusted;
use crate::wwwroot::Wwwroot;
use crate::xmlrpc::Value;

/// `system/keyswap(wwwroot, pem, application)`: open to anyone; answers with our
/// certificate. It registers the caller only when auto-registration is on, the caller is
/// not known yet, its certificate matches its wwwroot, and the registration limits allow
/// (`limits.auto_register_*`: a stranger's keyswap costs us an outbound GET of the wwwroot
/// it claims, and a row). A known peer's record is never changed by keyswap: that would let
/// anyone replace a peer's key.
pub(super) async fn keyswap(
    node: &Arc<Node>,
    params: &[Value],
    remote_addr: Option<SocketAddr>,
) -> Value {
    let ours = Value::String(node.keyring().current.cert_pem.clone());
    if node.config.mnet.auto_register
        && let Some(candidate) = registration_candidate(node, params).await
    {
        register_caller(node, candidate, remote_addr).await;
    }
    ours
}

/// A keyswap caller we could register: unknown wwwroot, certificate valid for it.
async fn registration_candidate(node: &Arc<Node>, params: &[Value]) -> Option<Vetted> {
    let (Some(wwwroot), Some(pem)) = (
        params.first().and_then(Value::as_str),
        params.get(1).and_then(Value::as_str),
    ) else {
        return None;
    };
    if let Some(problem) = crate::wwwroot::problem(wwwroot) {
        tracing::info!(wwwroot = %untrusted::field(wwwroot), problem = %untrusted::field(&problem.to_string()), "keyswap: not registering the caller");
        return None;
    }
    let wwwroot = Wwwroot::normalized(wwwroot);
    let known = {
        let w = wwwroot.clone();
        node.state.run(move |c| state::peer_by_wwwroot(c, &w)).await
    };
    if !matches!(known, Ok(None)) {
        return None;
    }
    let Some(canonical) = crypto::canonical_pem(pem) else {
        tracing::info!(wwwroot = %untrusted::field(&wwwroot), "keyswap: the caller's certificate is not canonical PEM");
        return None;
    };
    match registration::vet(&wwwroot, &canonical) {
        Ok(vetted) => Some(vetted),
        Err(e) => {
            tracing::info!(wwwroot = %untrusted::field(&wwwroot), problem = %untrusted::field(&e.to_string()), "keyswap: not registering the caller");
            None
        }
    }
}

/// The limits come before the outbound GET of the caller's page, so a refused
/// registration costs nothing but the answer.
async fn register_caller(node: &Arc<Node>, candidate: Vetted, remote_addr: Option<SocketAddr>) {
    let registrations = &node.limits.registrations;
    let max_peers = registrations.max_peers;
    let full = node
        .state
        .run(move |c| state::count_auto_registered(c).map(|n| n >= max_peers))
        .await
        .unwrap_or(true);
    if full {
        tracing::info!(wwwroot = %untrusted::field(&candidate.wwwroot), max_peers, "keyswap: not registering the caller: limits.auto_register_max_peers reached");
        return;
    }
    if !registrations.allow(remote_addr.map(|a| a.ip())) {
        node.metrics
            .rejected_rate
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(wwwroot = %untrusted::field(&candidate.wwwroot), "keyswap: not registering the caller: too many registrations, see limits.auto_register_per_minute");
        return;
    }
    let registered = registration::register(
        &node.client,
        &node.state,
        Registration {
            vetted: candidate,
            application: "moodle".into(),
            name: None,
            ssl_verification: SslVerification::Full,
            sponsor: Sponsor::SelfIntroduced { max_peers },
        },
        node.now(),
    )
    .await;
    match registered {
        Ok(Some(peer)) => {
            tracing::info!(peer = %untrusted::field(&peer.wwwroot), "keyswap: registered a new peer")
        }
        Ok(None) => tracing::info!(
            "keyswap: not registering the caller: known meanwhile, or the cap was reached"
        ),
        Err(e) => tracing::warn!(error = %e, "keyswap: could not register the caller"),
    }
}
