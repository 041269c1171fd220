//! Opening a request: its outer envelope read without knowing the sender, then RSA and RC4
//! to open it and the signature check against the certificate on file (on the CPU pool),
//! and the key refresh when a signature fails.

use super::*;

/// A request body as first read: its outer envelope, parsed as far as it can be without
/// knowing the sender.
pub(super) enum Envelope {
    Encrypted(Result<envelope::EncryptedMessage, EnvelopeError>),
    Signed(Result<envelope::SignedMessage, EnvelopeError>),
    Plain,
    /// Not encrypted and over the plaintext limit.
    TooLarge,
}

impl Envelope {
    /// Only an encrypted request is read whatever its size: anything else can only be a
    /// keyswap and is refused unread beyond `plain_limit` bytes.
    pub(super) fn read(body: &[u8], plain_limit: usize) -> Envelope {
        match envelope::document_kind(body) {
            DocumentKind::Encrypted => Envelope::Encrypted(envelope::parse_encrypted(body)),
            _ if body.len() > plain_limit => Envelope::TooLarge,
            DocumentKind::Signed => Envelope::Signed(envelope::parse_signed(body)),
            DocumentKind::Other => Envelope::Plain,
        }
    }
}

/// What the first trip to the CPU pool made of a request.
pub(super) enum FirstPass {
    /// Only read: not encrypted, unreadable, or from a sender not known in memory (it is
    /// then looked up in the database, and opened in a second trip).
    Read(Envelope),
    /// Encrypted, from a peer known in memory, and opened and checked in the same trip.
    Unsealed {
        known: Arc<KnownPeer>,
        sealed_key: Vec<u8>,
        unsealed: Result<Unsealed, Unopened>,
    },
}

/// The envelope read and, when the sender is a peer known in memory, opened and checked:
/// one trip to the CPU pool for a peer's usual request instead of two around a database
/// lookup. An unknown sender costs what it did before: the envelope read, no RSA.
pub(super) fn first_pass(
    node: &Node,
    body: &[u8],
    plain_limit: usize,
    limits: &Limits,
) -> FirstPass {
    match Envelope::read(body, plain_limit) {
        Envelope::Encrypted(Ok(message)) => match node.known_peers.cached(&message.wwwroot) {
            Some(known) => {
                let unsealed = open_and_verify(node, &known.peer, &message, limits);
                FirstPass::Unsealed {
                    known,
                    sealed_key: message.key,
                    unsealed,
                }
            }
            None => FirstPass::Read(Envelope::Encrypted(Ok(message))),
        },
        other => FirstPass::Read(other),
    }
}

/// An encrypted request opened with one of our keys, its signed layer read and checked
/// against the certificate on file.
pub(super) struct Unsealed {
    pub(super) signed: envelope::SignedMessage,
    /// Index into our archived keys of the key that opened the request ("pushkey").
    pub(super) archived_key: Option<usize>,
    /// That key itself, taken from the keyring the request was opened with.
    pub(super) opened_with: openssl::pkey::PKey<openssl::pkey::Private>,
    pub(super) verified: bool,
    /// The call, read in the same job once the signature verified (one trip to the pool
    /// instead of two).
    pub(super) call: Option<Result<MethodCall, xmlrpc::XmlRpcError>>,
}

pub(super) enum Unopened {
    /// No key of ours opens it: a plain 7023.
    NoKey,
    /// Opened, but unusable: answered with this fault, signed when the signed layer was
    /// readable.
    Fault { signed: bool, fault: Fault },
}

/// RSA and RC4 to open the request, then the signature check: the CPU-heavy part of an
/// MNET request, run on the CPU pool.
pub(super) fn open_and_verify(
    node: &Node,
    peer: &Peer,
    message: &envelope::EncryptedMessage,
    limits: &Limits,
) -> Result<Unsealed, Unopened> {
    let keyring = node.keyring();
    let keys =
        std::iter::once(&keyring.current.key).chain(keyring.archived.iter().map(|id| &id.key));
    let (plain, index) = envelope::open_with(message, keys).ok_or(Unopened::NoKey)?;
    let signed = match envelope::parse_signed(&plain) {
        Ok(s) => s,
        Err(EnvelopeError::Missing("SignatureValue")) => {
            return Err(Unopened::Fault {
                signed: false,
                fault: faults::not_signed(),
            });
        }
        Err(e) => {
            return Err(Unopened::Fault {
                signed: false,
                fault: Fault::new(
                    faults::INVALID_REQUEST,
                    format!("Invalid request payload: signed envelope: {e}"),
                ),
            });
        }
    };
    if Wwwroot::normalized(&signed.wwwroot) != peer.wwwroot {
        return Err(Unopened::Fault {
            signed: true,
            fault: Fault::new(
                faults::BAD_SIGNATURE,
                "The signed and the encrypted envelope name different hosts",
            ),
        });
    }
    let archived_key = index.checked_sub(1);
    let opened_with = match archived_key {
        None => keyring.current.key.clone(),
        Some(i) => keyring
            .archived
            .get(i)
            .map(|id| id.key.clone())
            .unwrap_or_else(|| keyring.current.key.clone()),
    };
    let verified =
        archived_key.is_none() && verify_with(node, peer, &signed.object, &signed.signature);
    let call = verified.then(|| xmlrpc::parse_call(&signed.object, limits));
    Ok(Unsealed {
        signed,
        archived_key,
        opened_with,
        verified,
        call,
    })
}

pub(super) fn verify_with(node: &Node, peer: &Peer, object: &[u8], signature: &[u8]) -> bool {
    node.peer_keys
        .get(&peer.public_key)
        .map(|key| crypto::verify_sha1(&key, object, signature))
        .unwrap_or(false)
}

/// §4.3 step 6: the signature failed with the certificate on file. Ask the peer (plain
/// keyswap) whether its key changed; if so, make an authenticated call encrypted to the old
/// certificate so that the peer answers 7025 with its new one, which the client stores.
/// Returns the peer as now on file when its key changed. The new key is stored only from a
/// 7025 signed with the certificate on file (the client refuses any other), and at most one
/// refresh per peer per minute is tried: anyone can send a request naming a peer.
pub(super) async fn refresh_peer_key(node: &Arc<Node>, peer: &Peer) -> Option<Peer> {
    if !node.limits.key_refresh.allow(&peer.wwwroot) {
        tracing::info!(peer = %peer.wwwroot, "key refresh: already tried within the last minute");
        return None;
    }
    let fetched = match node.client.fetch_certificate(peer).await {
        Ok(fetched) => fetched,
        Err(e) => {
            tracing::info!(peer = %peer.wwwroot, error = %e, "key refresh: keyswap failed");
            return None;
        }
    };
    if crypto::canonical_pem(&fetched).as_deref() == Some(peer.public_key.as_str()) {
        return None;
    }
    if let Err(e) = node
        .client
        .call_rekey_by_7025_only(peer, "system/listServices", Vec::new())
        .await
    {
        tracing::info!(peer = %peer.wwwroot, error = %e, "key refresh: listServices failed");
    }
    let id = peer.id;
    let now_on_file = node
        .state
        .run(move |c| state::peer_by_id(c, id))
        .await
        .ok()
        .flatten()?;
    (now_on_file.public_key != peer.public_key).then_some(now_on_file)
}
