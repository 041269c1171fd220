//! Reading a peer's answer: open it with one of our keys, require the signed envelope,
//! and check the signature against the peer's certificate on file.

use super::ClientError;
use super::error::peer_says;
use crate::crypto;
use crate::mnet::envelope::{self, DocumentKind};
use crate::xmlrpc::{self, Limits, Response};

/// Open a peer's answer with our keys, read it, and check its signature against the peer's
/// certificate on file. A plain answer is always an error: a fault (7020, 7023, 7021…) or
/// an answer we cannot trust.
pub(super) fn open_answer(
    keyring: &crate::crypto::Keyring,
    peer_key: &openssl::pkey::PKey<openssl::pkey::Public>,
    answer: &[u8],
) -> Result<(envelope::SignedMessage, Response, bool), ClientError> {
    let answer = trim_ascii(answer);
    if envelope::document_kind(answer) != DocumentKind::Encrypted {
        // A plain 7023 is not followed by a keyswap: only a 7025 signed with the key on
        // file may change a peer's key (docs/decisions.md, Authorisation).
        return Err(match xmlrpc::parse_response(answer, &Limits::default()) {
            Ok(Response::Fault(f)) => ClientError::fault(f.code, &f.string, false),
            Ok(Response::Success(_)) => ClientError::NotEncrypted,
            Err(e) => ClientError::Protocol(peer_says(&e.to_string())),
        });
    }
    let message = envelope::parse_encrypted(answer)
        .map_err(|e| ClientError::Protocol(peer_says(&e.to_string())))?;
    let keys =
        std::iter::once(&keyring.current.key).chain(keyring.archived.iter().map(|id| &id.key));
    let (plain, _) = envelope::open_with(&message, keys).ok_or(ClientError::NoKeyMatch)?;
    if !envelope::looks_signed(&plain) {
        return Err(ClientError::NotSigned);
    }
    let signed = envelope::parse_signed(&plain)
        .map_err(|e| ClientError::Protocol(peer_says(&e.to_string())))?;
    let response = xmlrpc::parse_response(&signed.object, &Limits::default())
        .map_err(|e| ClientError::Protocol(peer_says(&e.to_string())))?;
    let verified = crypto::verify_sha1(peer_key, &signed.object, &signed.signature);
    Ok((signed, response, verified))
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}
