//! The per-message primitives without OpenSSL 3's per-call algorithm fetches.
//!
//! `Signer::new(MessageDigest::sha1(), key)` and `Crypter::new(Cipher::rc4(), …)` look the
//! signature, digest and cipher algorithms up in the provider store on every call, each
//! lookup taking the store's locks; on the MNET request path that cost is a sizeable share
//! of a call beyond its two private-key operations. An RSA PKCS#1 v1.5 signature is
//! deterministic: the padded DigestInfo of the SHA-1 hash, raised to the private exponent.
//! So it is built here from the one-shot SHA-1 and the RSA key's own operation, byte for
//! byte what the EVP path yields (`crypto::init` checks that on every start), and RC4 uses a
//! cipher fetched once.

use std::sync::OnceLock;

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::error::ErrorStack;
use openssl::pkey::{HasPublic, PKeyRef, Private};
use openssl::rsa::Padding;

/// DER prefix of a DigestInfo for SHA-1 (RFC 8017 §9.2, note 1), followed by the 20-byte hash.
const SHA1_DIGEST_INFO_PREFIX: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

fn digest_info(data: &[u8]) -> [u8; 35] {
    let mut info = [0u8; 35];
    info[..15].copy_from_slice(&SHA1_DIGEST_INFO_PREFIX);
    info[15..].copy_from_slice(&openssl::sha::sha1(data));
    info
}

pub(super) fn sign_sha1(key: &PKeyRef<Private>, data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let rsa = key.rsa()?;
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa.private_encrypt(&digest_info(data), &mut out, Padding::PKCS1)?;
    out.truncate(n);
    Ok(out)
}

/// As `RSA_verify`: the signature must be exactly the modulus long and decode to exactly
/// the expected DigestInfo.
pub(super) fn verify_sha1<T: HasPublic>(key: &PKeyRef<T>, data: &[u8], signature: &[u8]) -> bool {
    let Ok(rsa) = key.rsa() else {
        return false;
    };
    if signature.len() != rsa.size() as usize {
        return false;
    }
    let mut out = vec![0u8; rsa.size() as usize];
    match rsa.public_decrypt(signature, &mut out, Padding::PKCS1) {
        Ok(n) => out[..n] == digest_info(data),
        Err(_) => false,
    }
}

/// RC4 from the legacy provider, fetched once: `None` when the provider is not loaded.
fn rc4_cipher() -> Option<&'static Cipher> {
    static RC4: OnceLock<Option<Cipher>> = OnceLock::new();
    RC4.get_or_init(|| Cipher::fetch(None, "RC4", None).ok())
        .as_ref()
}

pub(super) fn rc4(key: &[u8], data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let Some(cipher) = rc4_cipher() else {
        return Err(ErrorStack::get());
    };
    let mut ctx = CipherCtx::new()?;
    ctx.encrypt_init(Some(cipher), None, None)?;
    // Session keys are 16 bytes from `openssl_seal`, but any length an unwrap yields is
    // accepted, as PHP's `openssl_open` does.
    ctx.set_key_length(key.len())?;
    ctx.encrypt_init(None, Some(key), None)?;
    let mut out = Vec::with_capacity(data.len() + 16);
    ctx.cipher_update_vec(data, &mut out)?;
    ctx.cipher_final_vec(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::sign::{Signer, Verifier};

    use super::*;

    #[test]
    fn direct_signatures_are_the_evp_ones_and_verify_both_ways() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        for message in [&b""[..], b"<methodCall/>", &[0xffu8; 5000][..]] {
            let mut signer = Signer::new(MessageDigest::sha1(), &key).unwrap();
            signer.update(message).unwrap();
            let evp = signer.sign_to_vec().unwrap();
            let direct = sign_sha1(&key, message).unwrap();
            assert_eq!(direct, evp);
            assert!(verify_sha1(&public, message, &evp));
            let mut verifier = Verifier::new(MessageDigest::sha1(), &public).unwrap();
            verifier.update(message).unwrap();
            assert!(verifier.verify(&direct).unwrap());
            // A wrong message, a flipped bit, a short or a long signature all fail.
            assert!(!verify_sha1(&public, b"other", &direct));
            let mut flipped = direct.clone();
            flipped[100] ^= 0x20;
            assert!(!verify_sha1(&public, message, &flipped));
            assert!(!verify_sha1(&public, message, &direct[1..]));
            let mut long = direct.clone();
            long.push(0);
            assert!(!verify_sha1(&public, message, &long));
        }
    }
}
