//! The MNET server pipeline (mnet-protocol.md §3.5, §9.5): strip encryption, strip
//! signature, authorise, dispatch, then sign and encrypt the answer the way the request
//! came. Every protocol problem becomes an XML-RPC fault with Moodle's code; nothing in a
//! request can make this code panic or execute a call it should not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use openssl::pkey::{PKey, Private};

use crate::audit::{Call, Channel};
use crate::crypto;
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

mod dispatch;
mod keyswap;
mod open;
mod replay;

use dispatch::dispatch;
use keyswap::keyswap;
use open::*;
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

/// How the request arrived; the answer mirrors it (§7.1).
#[derive(Default)]
struct Flags {
    encrypted: bool,
    signed: bool,
    verified: bool,
    peer: Option<Peer>,
    /// Index into our archived keys of the key that opened the request ("pushkey").
    archived_key: Option<usize>,
    /// The key of ours that opened the request: the answer is signed with it, whatever
    /// rotation happens meanwhile (the caller verifies with the certificate it sealed to).
    opened_with: Option<PKey<Private>>,
    /// The RSA-wrapped session key of the request: fresh and random for every message a
    /// sender seals, so it tells a replayed body from a repeated call.
    sealed_key: Vec<u8>,
    /// The peer as found in memory, with the services it may use; `None` once its key was
    /// refreshed during this request (the services are then read from the database).
    known: Option<Arc<KnownPeer>>,
    /// A known peer sealed the request to a key this instance does not hold.
    no_key: bool,
}

enum Answer {
    /// Sent as is: 7020, 7023 and anything before we know how the request was wrapped.
    Plain(Fault),
    Fault(Fault),
    Value(Value),
}

pub async fn handle(node: Arc<Node>, body: Bytes, remote_addr: Option<SocketAddr>) -> Outcome {
    let started = Instant::now();
    let mut flags = Flags::default();
    let mut call: Option<MethodCall> = None;
    let mut answer = process(&node, &body, remote_addr, &mut flags, &mut call).await;
    if flags.no_key && took_up_rotated_keys(&node).await {
        flags = Flags::default();
        call = None;
        answer = process(&node, &body, remote_addr, &mut flags, &mut call).await;
    }
    let (xml, fault_code, plain) = match &answer {
        Answer::Plain(f) => (xmlrpc::serialize_fault(f), Some(f.code), true),
        Answer::Fault(f) => (xmlrpc::serialize_fault(f), Some(f.code), false),
        Answer::Value(v) => (xmlrpc::serialize_response(v), None, false),
    };
    let answer_body = if plain {
        xml
    } else {
        let wrapping = node.clone();
        let sealing = Sealing::of(&flags);
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
    };
    let raw_peer = flags
        .peer
        .as_ref()
        .map(|p| p.wwwroot.clone())
        .unwrap_or_default();
    let raw_caller = call.as_ref().map(caller_of).unwrap_or_default();
    let raw_target = call
        .as_ref()
        .and_then(|c| c.params.get(1))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // Until the signature verified, the peer, caller and target are only claims: escaped
    // wherever they go, and marked as unverified in the log and the audit.
    let outcome = Outcome {
        body: answer_body,
        peer: untrusted::field(&raw_peer),
        method: recorded_method(call.as_ref().map(|c| c.name.as_str()).unwrap_or("")),
        caller: untrusted::field(&raw_caller),
        target: untrusted::field(&raw_target),
        status: match fault_code {
            Some(code) => format!("fault {code}"),
            None => "ok".into(),
        },
        fault_code,
        verified: flags.verified,
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let outcome_label = match fault_code {
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
        peer: &raw_peer,
        remote_addr,
        method: &outcome.method,
        caller: &raw_caller,
        target: &raw_target,
        status: &outcome.status,
        latency_ms,
        bytes_in: body.len(),
        bytes_out: outcome.body.len(),
        verified: outcome.verified,
    });
    outcome
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

/// How the answer is to be wrapped: what [`wrap`] needs of the request's [`Flags`], owned so
/// that the wrapping can run on the CPU pool.
struct Sealing {
    signed: bool,
    encrypted: bool,
    opened_with: Option<PKey<Private>>,
    peer_key: String,
}

impl Sealing {
    fn of(flags: &Flags) -> Sealing {
        Sealing {
            signed: flags.signed,
            encrypted: flags.encrypted,
            opened_with: flags.opened_with.clone(),
            peer_key: flags
                .peer
                .as_ref()
                .map(|p| p.public_key.clone())
                .unwrap_or_default(),
        }
    }
}

fn wrap(node: &Node, xml: Vec<u8>, flags: &Sealing, signing_key: &PKey<Private>) -> Vec<u8> {
    let mut out = xml;
    if flags.signed {
        match envelope::build_signed(&out, signing_key, node.wwwroot(), node.now()) {
            Ok(signed) => out = signed,
            Err(e) => tracing::error!(error = %e, "could not sign an answer"),
        }
    }
    if flags.encrypted {
        let cert = Some(&flags.peer_key)
            .filter(|pem| !pem.is_empty())
            .and_then(|pem| node.peer_keys.get(pem).ok());
        match cert {
            Some(public) => match envelope::build_encrypted(&out, &public, node.wwwroot()) {
                Ok(sealed) => out = sealed,
                Err(e) => tracing::error!(error = %e, "could not encrypt an answer"),
            },
            // Moodle would send an empty body (P31); the signed document at least tells
            // the caller what happened.
            None => tracing::warn!("no usable certificate on file to encrypt the answer"),
        }
    }
    out
}

/// With several instances, a peer may already hold the certificate another instance rotated
/// to a moment ago: look for it now rather than at the next poll. At most twice a second,
/// whoever sends such requests: a peer's name is all it takes.
async fn took_up_rotated_keys(node: &Arc<Node>) -> bool {
    if !node.key_home.is_shared() || !node.limits.key_follow.allow("") {
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

async fn process(
    node: &Arc<Node>,
    body: &Bytes,
    remote_addr: Option<SocketAddr>,
    flags: &mut Flags,
    call_out: &mut Option<MethodCall>,
) -> Answer {
    let limits = Limits {
        max_depth: node.config.server.max_xml_depth,
        max_elements: node.config.server.max_xml_elements,
    };

    // 1. What was sent. Only an encrypted request can be authenticated; anything else can
    // only be system/keyswap (about 2 KB), so it is refused unread beyond a few KB. From a
    // peer known in memory, the request is opened and checked in the same trip to the pool.
    let plain_limit = node.config.server.max_plain_body_bytes;
    let first = {
        let (reading, body) = (node.clone(), body.clone());
        node.cpu
            .run(move || first_pass(&reading, &body, plain_limit, &limits))
            .await
    };
    // 2. Strip encryption and the signature.
    let xml: CallText = match first {
        FirstPass::Opened {
            known,
            sealed_key,
            opened,
        } => match verified_call(node, known, sealed_key, opened, flags).await {
            Ok(text) => text,
            Err(answer) => return answer,
        },
        FirstPass::Read(Envelope::Encrypted(message)) => {
            let message = match message {
                Ok(m) => m,
                Err(EnvelopeError::Missing("wwwroot")) => {
                    return Answer::Plain(faults::unknown_host(""));
                }
                Err(EnvelopeError::EmptyCipherValue) => {
                    tracing::warn!(
                        "a peer sent empty CipherValues: it cannot use RC4 (OpenSSL 3 legacy provider not loaded on its side)"
                    );
                    return Answer::Plain(faults::no_key_match());
                }
                Err(e) => {
                    return Answer::Plain(Fault::new(
                        faults::NO_KEY_MATCH,
                        format!(
                            "Unreadable encrypted envelope: {}",
                            crate::text::echo::error_text(&e)
                        ),
                    ));
                }
            };
            let known = match lookup_peer(node, &message.wwwroot).await {
                Ok(Some(known)) => known,
                Ok(None) => return Answer::Plain(faults::unknown_host(&message.wwwroot)),
                Err(fault) => return Answer::Plain(fault),
            };
            let sealed_key = message.key.clone();
            let opened = {
                let (opening, sender) = (node.clone(), known.clone());
                node.cpu
                    .run(move || open_and_verify(&opening, &sender.peer, &message, &limits))
                    .await
            };
            match verified_call(node, known, sealed_key, opened, flags).await {
                Ok(text) => text,
                Err(answer) => return answer,
            }
        }
        FirstPass::Read(Envelope::Signed(signed)) => {
            // Signed but not encrypted: never executed (7021) unless it is a keyswap, so
            // the signature is not checked, no peer is looked up or called back, and the
            // answer goes plain: signing it would give any stranger an RSA private-key
            // operation of ours for a few bytes (Moodle never sends such a request).
            match signed {
                Ok(signed) => CallText::Raw(Bytes::from(signed.object)),
                Err(EnvelopeError::Missing("SignatureValue")) => {
                    return Answer::Fault(faults::not_signed());
                }
                Err(e) => {
                    return Answer::Fault(Fault::new(
                        faults::INVALID_REQUEST,
                        format!(
                            "Invalid request payload: signed envelope: {}",
                            crate::text::echo::error_text(&e)
                        ),
                    ));
                }
            }
        }
        FirstPass::Read(Envelope::Plain) => CallText::Raw(body.clone()),
        FirstPass::Read(Envelope::TooLarge) => {
            return Answer::Plain(Fault::new(
                faults::BODY_TOO_LARGE,
                format!(
                    "A request that is not encrypted may only be system/keyswap, of at most {plain_limit} bytes"
                ),
            ));
        }
    };

    // An encrypted request whose signature failed is refused before its call is read: a
    // keyswap never comes encrypted, so nothing in it could be served, and reading it would
    // be unauthenticated work of the sender's choosing.
    if flags.encrypted && !flags.verified {
        return Answer::Fault(faults::bad_signature());
    }

    // 3. The XML-RPC call itself: parsed on the CPU pool, since for a plain request (and
    // for a verified peer's large one) it is the bulk of the work.
    let parsed = match xml {
        CallText::Parsed(parsed) => parsed,
        CallText::Raw(xml) => {
            node.cpu
                .run(move || xmlrpc::parse_call(&xml, &limits))
                .await
        }
    };
    let call = match parsed {
        Ok(call) => call,
        Err(e) => return Answer::Fault(e.to_fault()),
    };
    *call_out = Some(call.clone());

    // 4. Only keyswap may come plain; everything else must be encrypted, signed, verified.
    if call.name == "system/keyswap" || call.name == "system.keyswap" {
        return keyswap(node, &call.params, remote_addr).await;
    }
    if !flags.encrypted {
        return Answer::Fault(faults::not_encrypted());
    }
    if !flags.signed {
        return Answer::Fault(faults::not_signed());
    }
    let Some(peer) = flags.peer.clone().filter(|_| flags.verified) else {
        return Answer::Fault(faults::bad_signature());
    };

    // 5. Dispatch.
    if !valid_method_name(&call.name) {
        return Answer::Fault(Fault::new(
            faults::BAD_METHOD_NAME,
            format!(
                "Invalid method name: {}",
                crate::text::echo::echo(&call.name)
            ),
        ));
    }
    let context = CallContext { peer, remote_addr };
    match dispatch(node, context, call, flags.known.clone()).await {
        Ok(value) => Answer::Value(value),
        Err(fault) => Answer::Fault(fault),
    }
}

/// An encrypted request from `known`, opened (or not) by [`open_and_verify`]: the stale-key
/// answer, the key refresh when the signature failed, then for a verified request the
/// per-peer rate limit, the timestamp window and the replay check. The call's text, or the
/// answer that ends the request.
async fn verified_call(
    node: &Arc<Node>,
    known: Arc<KnownPeer>,
    sealed_key: Vec<u8>,
    opened: Result<Opened, Unsealed>,
    flags: &mut Flags,
) -> Result<CallText, Answer> {
    let peer = &known.peer;
    flags.sealed_key = sealed_key;
    let opened = match opened {
        Ok(opened) => opened,
        Err(Unsealed::NoKey) => {
            flags.no_key = true;
            tracing::info!(peer = %peer.wwwroot, "no key of ours opens the request");
            return Err(Answer::Plain(faults::no_key_match()));
        }
        Err(Unsealed::Fault { signed, fault }) => {
            flags.encrypted = true;
            flags.signed = signed;
            flags.peer = Some(peer.clone());
            return Err(Answer::Fault(fault));
        }
    };
    flags.encrypted = true;
    flags.signed = true;
    flags.peer = Some(peer.clone());
    flags.known = Some(known.clone());
    flags.archived_key = opened.archived_key;
    flags.opened_with = Some(opened.opened_with.clone());
    if opened.archived_key.is_some() {
        // The caller holds an old certificate of ours: tell it the new one and do not run
        // the call (§5.4). It resends once.
        return Err(Answer::Fault(Fault::new(
            faults::STALE_KEY,
            node.keyring().current.cert_pem.clone(),
        )));
    }
    flags.verified = opened.verified;
    let signed = opened.signed;
    if !flags.verified
        && !peer.public_key.is_empty()
        && let Some(refreshed) = refresh_peer_key(node, peer).await
    {
        let (checking, object, signature) = (
            node.clone(),
            signed.object.clone(),
            signed.signature.clone(),
        );
        let with = refreshed.clone();
        flags.verified = node
            .cpu
            .run(move || verify_with(&checking, &with, &object, &signature))
            .await;
        flags.peer = Some(refreshed);
        flags.known = None;
    }
    if flags.verified {
        // Checked once the peer is proven, so the fault goes back signed and encrypted and
        // the peer's client can read it.
        if !node.limits.per_peer.allow(&peer.wwwroot) {
            node.metrics
                .rejected_rate
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(Answer::Fault(Fault::new(
                faults::RATE_LIMITED,
                "Too many calls from your host: slow down and try again in a minute",
            )));
        }
        if let Some(fault) = replay_or_stale(node, peer, &signed, &flags.sealed_key).await {
            return Err(Answer::Fault(fault));
        }
        // Batched: a write per call would take the database's write lock per call.
        node.contacts.note(peer.id, node.now());
    }
    Ok(match opened.call {
        Some(parsed) => CallText::Parsed(parsed),
        None => CallText::Raw(Bytes::from(signed.object)),
    })
}
