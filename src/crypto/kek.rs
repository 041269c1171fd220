//! The key-encryption key (KEK): it seals our private keys when they live in a state database
//! shared by several instances, so that a copy of the database (a backup, a replica, a
//! read-only role) does not hand out the key every peer trusts. The KEK itself never enters
//! the database; each instance reads it from a file or an environment variable.
//!
//! A sealed key is `nonce (12) | ciphertext | tag (16)`, AES-256-GCM, with the certificate's
//! fingerprint as associated data: a sealed key moved onto another row does not open.

use openssl::hash::{MessageDigest, hash};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

use super::CryptoError;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A 256-bit key-encryption key and its short public id (which KEK sealed a row).
#[derive(Clone)]
pub struct Kek {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for Kek {
    // The key must never reach a log line; its id may.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("a key-encryption key is 64 hexadecimal characters (32 bytes); this one is not")]
    Malformed,
    #[error("the sealed private key does not open with key-encryption key {0}")]
    DoesNotOpen(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl Kek {
    /// 64 hex characters, surrounding whitespace ignored (a file ends with a newline).
    pub fn parse(text: &str) -> Result<Kek, KekError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(KekError::Malformed);
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or(KekError::Malformed)?, 16)
                .map_err(|_| KekError::Malformed)?;
        }
        Kek::from_bytes(key)
    }

    pub fn generate() -> Result<Kek, KekError> {
        let mut key = [0u8; 32];
        openssl::rand::rand_bytes(&mut key).map_err(CryptoError::from)?;
        Kek::from_bytes(key)
    }

    fn from_bytes(key: [u8; 32]) -> Result<Kek, KekError> {
        // A hash under a label: the id names the KEK without being a hash of the bare key.
        let mut labelled = b"usestats key-encryption key id\0".to_vec();
        labelled.extend_from_slice(&key);
        let digest = hash(MessageDigest::sha256(), &labelled).map_err(CryptoError::from)?;
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Kek { key, id })
    }

    /// The text form written to a KEK file.
    pub fn to_hex(&self) -> String {
        self.key.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        openssl::rand::rand_bytes(&mut nonce).map_err(CryptoError::from)?;
        let mut tag = [0u8; TAG_LEN];
        let sealed = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            context,
            plaintext,
            &mut tag,
        )
        .map_err(CryptoError::from)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, KekError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(KekError::DoesNotOpen(self.id.clone()));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            context,
            body,
            tag,
        )
        .map_err(|_| KekError::DoesNotOpen(self.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seal_then_open_round_trips(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                      context in proptest::collection::vec(any::<u8>(), 0..64)) {
            let kek = Kek::generate().unwrap();
            let sealed = kek.seal(&data, &context).unwrap();
            prop_assert_eq!(sealed.len(), data.len() + NONCE_LEN + TAG_LEN);
            prop_assert_eq!(kek.open(&sealed, &context).unwrap(), data);
        }

        #[test]
        fn any_flipped_bit_or_other_context_refuses(data in proptest::collection::vec(any::<u8>(), 1..256),
                                                    bit in any::<usize>()) {
            let kek = Kek::generate().unwrap();
            let mut sealed = kek.seal(&data, b"fp").unwrap();
            prop_assert!(kek.open(&sealed, b"other").is_err());
            let bit = bit % (sealed.len() * 8);
            sealed[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(kek.open(&sealed, b"fp").is_err());
        }
    }

    #[test]
    fn parse_accepts_only_32_bytes_of_hex() {
        let kek = Kek::generate().unwrap();
        let again = Kek::parse(&format!("{}\n", kek.to_hex())).unwrap();
        assert_eq!(again.id(), kek.id());
        assert_eq!(kek.id().len(), 16);
        let other = Kek::generate().unwrap();
        assert_ne!(other.id(), kek.id());
        let sealed = kek.seal(b"secret", b"fp").unwrap();
        assert!(matches!(
            other.open(&sealed, b"fp"),
            Err(KekError::DoesNotOpen(_))
        ));
        for bad in [
            "",
            "00",
            &"g".repeat(64),
            &"0".repeat(63),
            &"0".repeat(66),
            "é".repeat(32).as_str(),
        ] {
            assert!(
                matches!(Kek::parse(bad), Err(KekError::Malformed)),
                "{bad:?}"
            );
        }
        assert!(!format!("{kek:?}").contains(&kek.to_hex()));
    }
}
