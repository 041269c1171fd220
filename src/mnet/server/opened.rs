//! A request made into an [`Opened`] value: what it is, and all the pipeline needs to know
//! of how it came before it acts on it (§3.5, §4.3).

use super::*;

/// What a request turned out to be, once read and, when sealed, opened and its signature
/// checked.
pub(super) enum Opened {
    /// Refused before its call is read, and answered plain: too large to be a keyswap, an
    /// unreadable envelope, an unknown sender, the state database unavailable.
    Refused(Fault),
    /// A known peer sealed it to a key this instance does not hold: a plain 7023, unless a
    /// key pair another instance rotated to opens it on a second try.
    NoKey,
    /// Not encrypted: plain XML-RPC, or the object of a signed envelope whose signature is
    /// not checked. Only a keyswap is served, and the answer goes plain: signing it would
    /// give any stranger an RSA private-key operation of ours for a few bytes (Moodle never
    /// sends such a request).
    Clear(Bytes),
    /// Sealed by a known peer and opened, but with no readable signed layer (`signed` is
    /// false) or one naming another host: refused with `fault`, sealed back to the peer.
    Unusable {
        peer: Peer,
        signed: bool,
        fault: Fault,
    },
    /// Opened with one of our archived keys: the caller holds an old certificate of ours.
    /// Its call is not run; the answer tells it the new one, signed with the old key.
    StaleKey {
        peer: Peer,
        opened_with: PKey<Private>,
    },
    /// Opened, but the signature fails with the peer's certificate, refreshed or not.
    Unverified {
        peer: Peer,
        opened_with: PKey<Private>,
    },
    /// Opened, and the signature verified: the peer is proven.
    Verified(Box<Verified>),
}

pub(super) struct Verified {
    /// The sender as found by its wwwroot, with the services it may use.
    pub(super) sender: Arc<KnownPeer>,
    /// The sender as on file after its key was refreshed during this request, its
    /// signature verifying only with the new key; its services are then read from the
    /// database.
    pub(super) refreshed: Option<Peer>,
    pub(super) opened_with: PKey<Private>,
    pub(super) signed: envelope::SignedMessage,
    /// The RSA-wrapped session key of the request: fresh and random for every message a
    /// sender seals, so it tells a replayed body from a repeated call.
    pub(super) sealed_key: Vec<u8>,
    /// The call, read on the pool with the signature check; `None` when the signature
    /// verified only after a key refresh.
    pub(super) call: Option<Result<MethodCall, xmlrpc::XmlRpcError>>,
}

impl Verified {
    /// The peer the call runs for and the answer is sealed to.
    pub(super) fn peer(&self) -> &Peer {
        self.refreshed.as_ref().unwrap_or(&self.sender.peer)
    }
}

impl Opened {
    /// The peer a sealed request came from; `None` when it was not opened.
    pub(super) fn sender(&self) -> Option<&Peer> {
        match self {
            Opened::Refused(_) | Opened::NoKey | Opened::Clear(_) => None,
            Opened::Unusable { peer, .. }
            | Opened::StaleKey { peer, .. }
            | Opened::Unverified { peer, .. } => Some(peer),
            Opened::Verified(verified) => Some(verified.peer()),
        }
    }

    pub(super) fn verified(&self) -> bool {
        matches!(self, Opened::Verified(_))
    }

    /// How the answer mirrors the request (§7.1): `None` to send it as is.
    pub(super) fn sealing(&self) -> Option<Sealing> {
        let (signed, opened_with) = match self {
            Opened::Refused(_) | Opened::NoKey | Opened::Clear(_) => return None,
            Opened::Unusable { signed, .. } => (*signed, None),
            Opened::StaleKey { opened_with, .. } | Opened::Unverified { opened_with, .. } => {
                (true, Some(opened_with.clone()))
            }
            Opened::Verified(verified) => (true, Some(verified.opened_with.clone())),
        };
        Some(Sealing {
            signed,
            opened_with,
            peer_key: self.sender()?.public_key.clone(),
        })
    }
}

/// How deep and how large an XML-RPC call may be.
pub(super) fn limits(node: &Node) -> Limits {
    Limits {
        max_depth: node.config.server.max_xml_depth,
        max_elements: node.config.server.max_xml_elements,
    }
}

/// Only an encrypted request can be authenticated; anything else can only be
/// system/keyswap (about 2 KB), so it is refused unread beyond a few KB. From a peer known
/// in memory, the request is opened and checked in the same trip to the pool.
pub(super) async fn open(node: &Arc<Node>, body: &Bytes) -> Opened {
    let limits = limits(node);
    let plain_limit = node.config.server.max_plain_body_bytes;
    let first = {
        let (reading, body) = (node.clone(), body.clone());
        node.cpu
            .run(move || first_pass(&reading, &body, plain_limit, &limits))
            .await
    };
    match first {
        FirstPass::Unsealed {
            known,
            sealed_key,
            unsealed,
        } => checked(node, known, sealed_key, unsealed).await,
        FirstPass::Read(Envelope::Encrypted(message)) => look_up_and_open(node, message).await,
        FirstPass::Read(Envelope::Signed(Ok(signed))) => Opened::Clear(Bytes::from(signed.object)),
        FirstPass::Read(Envelope::Signed(Err(EnvelopeError::Missing("SignatureValue")))) => {
            Opened::Refused(faults::not_signed())
        }
        FirstPass::Read(Envelope::Signed(Err(e))) => Opened::Refused(Fault::new(
            faults::INVALID_REQUEST,
            format!(
                "Invalid request payload: signed envelope: {}",
                crate::text::echo::error_text(&e)
            ),
        )),
        FirstPass::Read(Envelope::Plain) => Opened::Clear(body.clone()),
        FirstPass::Read(Envelope::TooLarge) => Opened::Refused(Fault::new(
            faults::BODY_TOO_LARGE,
            format!(
                "A request that is not encrypted may only be system/keyswap, of at most {plain_limit} bytes"
            ),
        )),
    }
}

/// An encrypted request from a sender not known in memory: looked up in the database, then
/// opened and checked in a second trip to the pool.
async fn look_up_and_open(
    node: &Arc<Node>,
    message: Result<envelope::EncryptedMessage, EnvelopeError>,
) -> Opened {
    let message = match message {
        Ok(message) => message,
        Err(e) => return Opened::Refused(unreadable(e)),
    };
    let known = match lookup_peer(node, &message.wwwroot).await {
        Ok(Some(known)) => known,
        Ok(None) => return Opened::Refused(faults::unknown_host(&message.wwwroot)),
        Err(fault) => return Opened::Refused(fault),
    };
    let sealed_key = message.key.clone();
    let unsealed = {
        let (opening, sender, limits) = (node.clone(), known.clone(), limits(node));
        node.cpu
            .run(move || open_and_verify(&opening, &sender.peer, &message, &limits))
            .await
    };
    checked(node, known, sealed_key, unsealed).await
}

/// The fault for an encrypted envelope that cannot be read.
fn unreadable(e: EnvelopeError) -> Fault {
    match e {
        EnvelopeError::Missing("wwwroot") => faults::unknown_host(""),
        EnvelopeError::EmptyCipherValue => {
            tracing::warn!(
                "a peer sent empty CipherValues: it cannot use RC4 (OpenSSL 3 legacy provider not loaded on its side)"
            );
            faults::no_key_match()
        }
        e => Fault::new(
            faults::NO_KEY_MATCH,
            format!(
                "Unreadable encrypted envelope: {}",
                crate::text::echo::error_text(&e)
            ),
        ),
    }
}

/// An encrypted request from `known`, as [`open_and_verify`] left it, with the peer's key
/// refreshed when the signature failed.
async fn checked(
    node: &Arc<Node>,
    known: Arc<KnownPeer>,
    sealed_key: Vec<u8>,
    unsealed: Result<Unsealed, Unopened>,
) -> Opened {
    let peer = &known.peer;
    let unsealed = match unsealed {
        Ok(unsealed) => unsealed,
        Err(Unopened::NoKey) => {
            tracing::info!(peer = %peer.wwwroot, "no key of ours opens the request");
            return Opened::NoKey;
        }
        Err(Unopened::Fault { signed, fault }) => {
            let peer = peer.clone();
            return Opened::Unusable {
                peer,
                signed,
                fault,
            };
        }
    };
    let opened_with = unsealed.opened_with;
    if unsealed.archived_key.is_some() {
        let peer = peer.clone();
        return Opened::StaleKey { peer, opened_with };
    }
    let (verified, refreshed) = if unsealed.verified || peer.public_key.is_empty() {
        (unsealed.verified, None)
    } else {
        match verified_after_refresh(node, peer, &unsealed.signed).await {
            Some((verified, now_on_file)) => (verified, Some(now_on_file)),
            None => (false, None),
        }
    };
    if !verified {
        let peer = refreshed.unwrap_or_else(|| peer.clone());
        return Opened::Unverified { peer, opened_with };
    }
    Opened::Verified(Box::new(Verified {
        sender: known,
        refreshed,
        opened_with,
        signed: unsealed.signed,
        sealed_key,
        call: unsealed.call,
    }))
}

/// When the peer's key changed ([`refresh_peer_key`]): the signature checked again with the
/// new one, and the peer as now on file.
async fn verified_after_refresh(
    node: &Arc<Node>,
    peer: &Peer,
    signed: &envelope::SignedMessage,
) -> Option<(bool, Peer)> {
    let refreshed = refresh_peer_key(node, peer).await?;
    let (checking, with) = (node.clone(), refreshed.clone());
    let (object, signature) = (signed.object.clone(), signed.signature.clone());
    let verified = node
        .cpu
        .run(move || verify_with(&checking, &with, &object, &signature))
        .await;
    Some((verified, refreshed))
}
