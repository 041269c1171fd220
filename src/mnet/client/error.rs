//! Every way a call to a peer can fail, and what of it may be passed on.

use crate::crypto::CryptoError;
use crate::store::StoreError;
use crate::text::from_peer;

/// Text from the peer, made safe to keep, log and show.
pub(super) fn peer_says(text: &str) -> String {
    from_peer::one_line(text, from_peer::FAULT_TEXT_MAX_CHARS)
}

fn unauthenticated_note(authenticated: &bool) -> &'static str {
    if *authenticated {
        ""
    } else {
        " (unauthenticated: not signed by the peer)"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("peer {0} is not registered")]
    UnknownPeer(String),
    #[error("peer {0} is deleted")]
    DeletedPeer(String),
    #[error("cannot reach {url}: {message}")]
    Transport { url: String, message: String },
    #[error("no answer from {url} within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url} answered HTTP {status} (not an MNET answer)")]
    HttpStatus { url: String, status: u16 },
    #[error("the answer is not encrypted")]
    NotEncrypted,
    #[error("none of our keys opens the answer")]
    NoKeyMatch,
    #[error("the answer is not signed")]
    NotSigned,
    #[error("the peer's clock is {offset} s ahead of ours (limit {limit} s)")]
    ClockDrift { offset: i64, limit: i64 },
    #[error("the answer's signature does not verify with the peer's certificate")]
    InvalidSignature,
    #[error("remote fault {code}{}: {string}", unauthenticated_note(authenticated))]
    Fault {
        code: i64,
        /// Cut and cleaned by [`ClientError::fault`].
        string: String,
        /// Whether the fault came signed by the peer's key on file; a plain fault is
        /// anyone's word and is never relayed to a caller.
        authenticated: bool,
    },
    #[error("{url} sent more than {limit} bytes, the cap for this kind of answer")]
    TooLarge { url: String, limit: usize },
    #[error("the peer rotated its key but sent an unusable certificate: {0}")]
    BadNewCertificate(String),
    /// A 7025 must be signed with the key we hold for the peer: one signed only by the key
    /// it announces proves nothing about who sent it (docs/decisions.md, Authorisation).
    #[error(
        "the peer announced a new certificate in a 7025 that does not verify with the certificate on file; the key was not changed (if the peer really changed its key, register it again with `usestats peer add`)"
    )]
    UnverifiedRotation,
    #[error("keyswap failed: {0}")]
    Keyswap(String),
    #[error("unreadable answer: {0}")]
    Protocol(String),
    #[error("setting up TLS: {0}")]
    TlsSetup(#[source] openssl::error::ErrorStack),
    #[error("no usable certificate on file for {0}")]
    NoCertificate(String),
    #[error("signing or encrypting the call: {0}")]
    Sealing(#[source] CryptoError),
    #[error("the state database: {0}")]
    State(#[source] StoreError),
}

impl ClientError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }

    /// A fault from the peer, its text cut and cleaned.
    pub fn fault(code: i64, string: &str, authenticated: bool) -> ClientError {
        ClientError::Fault {
            code,
            string: peer_says(string),
            authenticated,
        }
    }

    /// What may be passed on to whoever asked us to call the peer (forwarding): never text
    /// the peer did not sign.
    pub fn relayable(&self) -> String {
        match self {
            ClientError::Fault {
                code,
                authenticated: false,
                ..
            } => format!("unauthenticated fault {code} from the peer (its text is not relayed)"),
            ClientError::Keyswap(_) | ClientError::Protocol(_) => {
                "the peer's answer is unreadable".into()
            }
            other => other.to_string(),
        }
    }
}
