//! The MNET server pipeline (docs/protocol.md §3.5, §9.5): strip encryption, strip
//! signature, authorise, dispatch, then sign and encrypt the answer the way the request
//! came. Every protocol problem becomes an XML-RPC fault with Moodle's code; nothing in a
//! request can make this code panic or execute a call it should not.
//!
//! A request is first made into an `Opened` value (`opened.rs`): read, and when sealed,
//! opened and its signature checked. Only then is it acted on (`act.rs`), and the answer
//! wrapped as the `Opened` value says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use openssl::pkey::{PKey, Private};

use crate::audit::{Call, Channel};
use crate::crypto::{self, Keyring};
use crate::limits::Seen;
use crate::mnet::envelope::{self, DocumentKind, EnvelopeError};
use crate::mnet::faults;
use crate::mnet::known_peers::KnownPeer;
use crate::mnet::node::Node;
use crate::mnet::services::{CallContext, valid_method_name};
use crate::store::state::{self, Peer};
use crate::text::untrusted;
use crate::wwwroot::Wwwroot;
use crate::xmlrpc::{self, Fault, Limits, MethodCall, Value};

mod act;
mod dispatch;
mod keyswap;
mod open;
mod opened;
mod replay;

use act::act;
use dispatch::dispatch;
use keyswap::keyswap;
use open::*;
use opened::{Opened, open};
use replay::replay_or_stale;

/// What the HTTP layer sends back, plus what the audit log and metrics want to know (text
/// fields escaped, method names outside Moodle's charset replaced).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub body: Vec<u8>,
    pub peer: String,
    pub method: String,
    pub caller: String,
    pub target: String,
    /// `ok` or `fault <code>`.
    pub status: String,
    pub fault_code: Option<i64>,
    /// The peer was proven by its signature; otherwise peer, caller and target are claims.
    pub verified: bool,
}

pub async fn handle(node: Arc<Node>, body: Bytes, remote_addr: Option<SocketAddr>) -> Outcome {
    let started = Instant::now();
    let used = node.keyring();
    let opened = match open(&node, &body).await {
        Opened::NoKey if took_up_rotated_keys(&node, &used).await => open(&node, &body).await,
        opened => opened,
    };
    let sealing = opened.sealing();
    let verified = opened.verified();
    let sender = opened.sender().map(|p| p.wwwroot.clone());
    let (answer, call) = act(&node, opened, remote_addr).await;
    let (xml, fault_code) = match &answer {
        Ok(value) => (xmlrpc::serialize_response(value), None),
        Err(fault) => (xmlrpc::serialize_fault(fault), Some(fault.code)),
    };
    let answer_body = match sealing {
        Some(sealing) => seal(&node, xml, sealing).await,
        None => xml,
    };
    let named = Named::of(sender.unwrap_or_default(), call.as_ref());
    let method = call.as_ref().map(|c| c.name.as_str()).unwrap_or("");
    let outcome = outcome(answer_body, &named, method, fault_code, verified);
    record(&node, &outcome, &named, started, remote_addr, body.len());
    outcome
}

/// The request as its sender named it, unescaped: only claims until its signature verified.
struct Named {
    peer: String,
    caller: String,
    target: String,
}

impl Named {
    fn of(peer: String, call: Option<&MethodCall>) -> Named {
        Named {
            peer,
            caller: call.map(caller_of).unwrap_or_default(),
            target: call
                .and_then(|c| c.params.get(1))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// Until the signature verified, the peer, caller and target are only claims: escaped
/// wherever they go, and marked as unverified in the log and the audit.
fn outcome(
    body: Vec<u8>,
    named: &Named,
    method: &str,
    fault_code: Option<i64>,
    verified: bool,
) -> Outcome {
    Outcome {
        body,
        peer: untrusted::field(&named.peer),
        method: recorded_method(method),
        caller: untrusted::field(&named.caller),
        target: untrusted::field(&named.target),
        status: match fault_code {
            Some(code) => format!("fault {code}"),
            None => "ok".into(),
        },
        fault_code,
        verified,
    }
}

/// The call in the metrics, the log and the audit.
fn record(
    node: &Node,
    outcome: &Outcome,
    named: &Named,
    started: Instant,
    remote_addr: Option<SocketAddr>,
    bytes_in: usize,
) {
    let latency_ms = started.elapsed().as_millis() as i64;
    let outcome_label = match outcome.fault_code {
        Some(code) => format!("fault_{code}"),
        None => "ok".to_string(),
    };
    let served = outcome.method.is_empty()
        || SYSTEM_METHODS.contains(&outcome.method.as_str())
        || node.services.find(&outcome.method).is_some();
    node.metrics.record(
        Channel::Mnet,
        if served {
            &outcome.method
        } else {
            crate::metrics::OTHER_METHOD
        },
        &outcome_label,
        started.elapsed(),
    );
    tracing::info!(
        peer = %outcome.peer,
        method = %outcome.method,
        status = %outcome.status,
        verified = outcome.verified,
        latency_ms,
        "mnet call"
    );
    node.audit.record(Call {
        channel: Channel::Mnet,
        peer: &named.peer,
        remote_addr,
        method: &outcome.method,
        caller: &named.caller,
        target: &named.target,
        status: &outcome.status,
        latency_ms,
        bytes_in,
        bytes_out: outcome.body.len(),
        verified: outcome.verified,
    });
}

/// Recorded instead of a method name outside Moodle's charset, whose text is the sender's
/// to choose (a newline and a fake log line, terminal escapes, megabytes).
pub const INVALID_METHOD_NAME: &str = "(invalid method name)";

/// The `system/` methods we answer (and Moodle's old dotted keyswap name).
const SYSTEM_METHODS: [&str; 8] = [
    "system/keyswap",
    "system.keyswap",
    "system/listServices",
    "system/listMethods",
    "system/methodSignature",
    "system/methodHelp",
    "system/listFiles",
    "system/retrieveFile",
];

/// Longest method name recorded as is; Moodle's own are well under 100 characters.
const MAX_RECORDED_METHOD: usize = 200;

/// The method name as logs, audit and metrics may show it.
fn recorded_method(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else if name == "system.keyswap"
        || (name.len() <= MAX_RECORDED_METHOD && valid_method_name(name))
    {
        name.to_string()
    } else {
        INVALID_METHOD_NAME.to_string()
    }
}

fn caller_of(call: &MethodCall) -> String {
    let Some(user) = call.params.first() else {
        return String::new();
    };
    match (
        user.get("username").and_then(Value::as_str),
        user.get("remoteuserhostroot").and_then(Value::as_str),
    ) {
        (Some(name), Some(home)) => format!("{name}@{home}"),
        (Some(name), None) => name.to_string(),
        _ => String::new(),
    }
}

/// How an answer goes back to a sealed request: signed (unless the request's signed layer
/// could not be read) and encrypted to the peer's certificate. Owned, so that the wrapping
/// can run on the CPU pool.
struct Sealing {
    signed: bool,
    /// The key of ours that opened the request: the answer is signed with it, whatever
    /// rotation happens meanwhile (the caller verifies with the certificate it sealed to).
    /// `None` when the signed layer could not be read: the current key then signs.
    opened_with: Option<PKey<Private>>,
    peer_key: String,
}

async fn seal(node: &Arc<Node>, xml: Vec<u8>, sealing: Sealing) -> Vec<u8> {
    let wrapping = node.clone();
    node.cpu
        .run(move || {
            let keyring = wrapping.keyring();
            // Signed with the key that opened the request: an old one for a 7025, so that
            // the caller can verify it with the certificate it holds; and the one it was
            // sealed to even if another instance rotated our keys meanwhile.
            let signing_key: &PKey<Private> =
                sealing.opened_with.as_ref().unwrap_or(&keyring.current.key);
            wrap(&wrapping, xml, &sealing, signing_key)
        })
        .await
}

fn wrap(node: &Node, xml: Vec<u8>, sealing: &Sealing, signing_key: &PKey<Private>) -> Vec<u8> {
    let mut out = xml;
    if sealing.signed {
        match envelope::build_signed(&out, signing_key, node.wwwroot(), node.now()) {
            Ok(signed) => out = signed,
            Err(e) => tracing::error!(error = %e, "could not sign an answer"),
        }
    }
    let cert = Some(&sealing.peer_key)
        .filter(|pem| !pem.is_empty())
        .and_then(|pem| node.peer_keys.get(pem).ok());
    match cert {
        Some(public) => match envelope::build_encrypted(&out, &public, node.wwwroot()) {
            Ok(sealed) => out = sealed,
            Err(e) => tracing::error!(error = %e, "could not encrypt an answer"),
        },
        // Moodle would send an empty body (P31); the signed document at least tells the
        // caller what happened.
        None => tracing::warn!("no usable certificate on file to encrypt the answer"),
    }
    out
}

/// With several instances, a peer may already hold the certificate another instance rotated
/// to a moment ago: look for it now rather than at the next poll. At most twice a second,
/// whoever sends such requests: a peer's name is all it takes.
async fn took_up_rotated_keys(node: &Arc<Node>, used: &Arc<Keyring>) -> bool {
    if !node.key_home.is_shared() {
        return false;
    }
    let _one_look = node.key_follow.lock().await;
    // Another request took the rotated pair up after this one was tried with `used`.
    if !Arc::ptr_eq(used, &node.keyring()) {
        return true;
    }
    if !node.limits.key_follow.allow("") {
        return false;
    }
    let following = node.clone();
    let followed = tokio::task::spawn_blocking(move || {
        crate::keys::follow(&following.key_home, &following.keys)
    })
    .await;
    match followed {
        Ok(Ok(Some(ring))) => {
            tracing::info!(
                fingerprint = %ring.current.info().fingerprint_sha1,
                "took up our key pair rotated elsewhere (a request was sealed to it)"
            );
            true
        }
        Ok(Ok(None)) => false,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not check for a rotated key pair");
            false
        }
        Err(_) => false,
    }
}

async fn lookup_peer(node: &Arc<Node>, wwwroot: &str) -> Result<Option<Arc<KnownPeer>>, Fault> {
    node.known_peers
        .lookup(&node.state, wwwroot)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "state database unavailable");
            faults::internal("state database unavailable")
        })
}
