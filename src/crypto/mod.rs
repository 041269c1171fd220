//! Keys, certificates and the two MNET primitives: RSA-SHA1 signatures and RC4 + RSA
//! PKCS#1 v1.5 sealing (PHP's `openssl_seal(…, 'RC4')`).
//!
//! OpenSSL 3 only offers RC4 through its legacy provider, so `init` loads that provider
//! once and keeps the handle for the life of the process. When the provider is missing a
//! pure-Rust RC4 takes over; SHA-1 signatures have no such fallback, so a host whose
//! crypto policy forbids them cannot run an MNET peer and `init` says so.

mod direct;
pub mod kek;
pub mod key_store;
pub mod keyring;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::provider::Provider;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509NameRef};
use rc4::{KeyInit, StreamCipher};

pub use key_store::{KeyProblem, KeyStore};
pub use keyring::{Keyring, KeyringCell};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("not a PEM certificate")]
    NotACertificate,
    #[error("the RSA key could not unwrap the session key")]
    KeyUnwrap,
    #[error(
        "empty session key (the sender could not use RC4: OpenSSL 3 legacy provider missing on its side)"
    )]
    EmptySessionKey,
    #[error(
        "SHA-1 signatures are not usable on this host ({0}); MNET needs RSA-SHA1: allow SHA-1 in the OpenSSL crypto policy"
    )]
    Sha1Forbidden(String),
    #[error("crypto self-test failed: {0}")]
    SelfTest(#[source] SelfTestFailure),
    #[error("key store {path}: {message}")]
    KeyStore { path: String, message: String },
}

/// What the start-up self-test found wrong.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestFailure {
    #[error("{0}")]
    KeyGeneration(#[source] openssl::error::ErrorStack),
    #[error("the direct RSA-SHA1 signature differs from OpenSSL's EVP one")]
    SignaturesDiffer,
    #[error("seal/open round trip differs")]
    RoundTrip,
}

/// Which RC4 implementation seals and opens messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rc4Backend {
    OpenSsl,
    PureRust,
}

#[derive(Debug, Clone)]
pub struct CryptoStatus {
    pub openssl_version: String,
    pub legacy_provider: bool,
    pub rc4: Rc4Backend,
}

static LEGACY_PROVIDER: OnceLock<Option<Provider>> = OnceLock::new();

/// RSA operations since start, for `/metrics`: sign, verify, seal (public encrypt), open
/// (private decrypt). Private-key operations are where the CPU goes.
static RSA_SIGN: AtomicU64 = AtomicU64::new(0);
static RSA_VERIFY: AtomicU64 = AtomicU64::new(0);
static RSA_SEAL: AtomicU64 = AtomicU64::new(0);
static RSA_OPEN: AtomicU64 = AtomicU64::new(0);

pub fn operation_counts() -> [(&'static str, u64); 4] {
    [
        ("sign", RSA_SIGN.load(Ordering::Relaxed)),
        ("verify", RSA_VERIFY.load(Ordering::Relaxed)),
        ("seal", RSA_SEAL.load(Ordering::Relaxed)),
        ("open", RSA_OPEN.load(Ordering::Relaxed)),
    ]
}
static RC4_BACKEND: OnceLock<Rc4Backend> = OnceLock::new();

/// Load the legacy provider (once), then prove that every primitive MNET needs works.
pub fn init() -> Result<CryptoStatus, CryptoError> {
    let legacy = LEGACY_PROVIDER
        .get_or_init(|| Provider::try_load(None, "legacy", true).ok())
        .is_some();
    let backend = *RC4_BACKEND.get_or_init(|| {
        if openssl_rc4_works() {
            Rc4Backend::OpenSsl
        } else {
            Rc4Backend::PureRust
        }
    });
    self_test()?;
    Ok(CryptoStatus {
        openssl_version: openssl::version::version().to_string(),
        legacy_provider: legacy,
        rc4: backend,
    })
}

pub fn rc4_backend() -> Rc4Backend {
    *RC4_BACKEND.get_or_init(|| {
        LEGACY_PROVIDER.get_or_init(|| Provider::try_load(None, "legacy", true).ok());
        if openssl_rc4_works() {
            Rc4Backend::OpenSsl
        } else {
            Rc4Backend::PureRust
        }
    })
}

fn openssl_rc4_works() -> bool {
    // RFC 6229-style check: both implementations must agree on a known key.
    let key = b"Key";
    let data = b"Plaintext";
    match rc4_openssl(key, data) {
        Ok(out) => out == rc4_rust(key, data) && out == hex_literal("bbf316e8d940af0ad3"),
        Err(_) => false,
    }
}

fn hex_literal(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_default()
}

fn self_test() -> Result<(), CryptoError> {
    let rsa = Rsa::generate(1024)
        .map_err(|e| CryptoError::SelfTest(SelfTestFailure::KeyGeneration(e)))?;
    let key = PKey::from_rsa(rsa)?;
    let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
    let message = b"<?xml version=\"1.0\"?><signedMessage>self-test</signedMessage>";
    // Through EVP, so that a crypto policy forbidding SHA-1 signatures is heard here, and
    // compared with the direct signature the daemon makes (PKCS#1 v1.5 is deterministic).
    let signature = Signer::new(MessageDigest::sha1(), &key)
        .and_then(|mut signer| {
            signer.update(message)?;
            signer.sign_to_vec()
        })
        .map_err(|e| CryptoError::Sha1Forbidden(e.to_string()))?;
    if sign_sha1(&key, message)? != signature {
        return Err(CryptoError::SelfTest(SelfTestFailure::SignaturesDiffer));
    }
    if !verify_sha1(&public, message, &signature) {
        return Err(CryptoError::Sha1Forbidden(
            "a fresh RSA-SHA1 signature does not verify".into(),
        ));
    }
    let (data, ekey) = seal(&public, message)?;
    let opened = open(&key, &ekey, &data)?;
    if opened != message {
        return Err(CryptoError::SelfTest(SelfTestFailure::RoundTrip));
    }
    Ok(())
}

pub fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    match rc4_backend() {
        Rc4Backend::OpenSsl => rc4_openssl(key, data).unwrap_or_else(|_| rc4_rust(key, data)),
        Rc4Backend::PureRust => rc4_rust(key, data),
    }
}

fn rc4_openssl(key: &[u8], data: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    direct::rc4(key, data)
}

pub fn rc4_rust(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    // RC4 accepts keys of 1..=256 bytes; anything else cannot come out of a valid RSA unwrap.
    if let Ok(mut cipher) = rc4::Rc4::new_from_slice(key) {
        cipher.apply_keystream(&mut out);
    }
    out
}

pub fn sign_sha1(key: &PKey<Private>, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    RSA_SIGN.fetch_add(1, Ordering::Relaxed);
    Ok(direct::sign_sha1(key, data)?)
}

pub fn verify_sha1(key: &PKey<Public>, data: &[u8], signature: &[u8]) -> bool {
    RSA_VERIFY.fetch_add(1, Ordering::Relaxed);
    direct::verify_sha1(key, data, signature)
}

/// `openssl_seal(data, …, 'RC4')`: a fresh 16-byte RC4 key, wrapped for the recipient.
/// Returns (encrypted data, encrypted key).
pub fn seal(recipient: &PKey<Public>, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    RSA_SEAL.fetch_add(1, Ordering::Relaxed);
    let mut session_key = [0u8; 16];
    openssl::rand::rand_bytes(&mut session_key)?;
    let rsa = recipient.rsa()?;
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(&session_key, &mut wrapped, Padding::PKCS1)?;
    wrapped.truncate(n);
    Ok((rc4(&session_key, data), wrapped))
}

/// `openssl_open`: unwrap the session key with our private key, then RC4. Any session-key
/// length the RSA block yields is accepted, as OpenSSL does.
pub fn open(key: &PKey<Private>, wrapped_key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    RSA_OPEN.fetch_add(1, Ordering::Relaxed);
    let rsa = key.rsa()?;
    if wrapped_key.len() != rsa.size() as usize {
        return Err(CryptoError::KeyUnwrap);
    }
    let mut session_key = vec![0u8; rsa.size() as usize];
    let n = rsa
        .private_decrypt(wrapped_key, &mut session_key, Padding::PKCS1)
        .map_err(|_| CryptoError::KeyUnwrap)?;
    session_key.truncate(n);
    if session_key.is_empty() {
        return Err(CryptoError::KeyUnwrap);
    }
    Ok(rc4(&session_key, data))
}

pub fn public_key_of(cert: &X509) -> Result<PKey<Public>, CryptoError> {
    Ok(cert.public_key()?)
}

/// Peers' public keys by certificate, parsed once: parsing a PEM certificate costs about
/// half an RSA private operation, and every call would otherwise pay it two or three times.
#[derive(Default)]
pub struct PublicKeyCache {
    keys: std::sync::Mutex<std::collections::HashMap<[u8; 20], PKey<Public>>>,
}

impl PublicKeyCache {
    const MAX_ENTRIES: usize = 4096;

    pub fn get(&self, pem: &str) -> Result<PKey<Public>, CryptoError> {
        let id = openssl::sha::sha1(pem.as_bytes());
        if let Some(key) = self.keys.lock().ok().and_then(|k| k.get(&id).cloned()) {
            return Ok(key);
        }
        let key = public_key_of(&parse_cert_pem(pem)?)?;
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= Self::MAX_ENTRIES {
                keys.clear();
            }
            keys.insert(id, key.clone());
        }
        Ok(key)
    }
}

/// Subject fields of a certificate built the way Moodle's `mnet_generate_keypair` does.
#[derive(Debug, Clone)]
pub struct CertSubject {
    pub wwwroot: String,
    pub organisation: String,
    pub country: String,
    pub state: String,
    pub locality: String,
    pub email: String,
}

/// An RSA key with its self-signed certificate.
#[derive(Clone)]
pub struct Identity {
    pub key: PKey<Private>,
    pub cert: X509,
    /// Canonical PEM (P12): what keyswap and the 7025 fault carry.
    pub cert_pem: String,
}

impl std::fmt::Debug for Identity {
    // The private key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &fingerprint_sha1(&self.cert))
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn public_key(&self) -> Result<PKey<Public>, CryptoError> {
        public_key_of(&self.cert)
    }

    pub fn info(&self) -> CertInfo {
        cert_info(&self.cert)
    }

    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Identity, CryptoError> {
        let key = PKey::private_key_from_pem(key_pem)?;
        let cert = X509::from_pem(cert_pem)?;
        let cert_pem = canonical_pem_of(&cert)?;
        Ok(Identity {
            key,
            cert,
            cert_pem,
        })
    }

    /// Whether the private key is the certificate's: a pair that does not match signs what
    /// no peer can verify and opens nothing sealed to the certificate.
    pub fn key_matches(&self) -> bool {
        self.public_key()
            .is_ok_and(|public| self.key.public_eq(&public))
    }

    /// The private key's own fingerprint: SHA-256 of its public half (SubjectPublicKeyInfo,
    /// DER), lower-case hex. Unlike the certificate's, it cannot name another key.
    pub fn key_fingerprint(&self) -> String {
        key_fingerprint(&self.key)
    }
}

/// [`Identity::key_fingerprint`] of a key alone.
pub fn key_fingerprint(key: &PKey<Private>) -> String {
    key.public_key_to_der()
        .ok()
        .and_then(|der| openssl::hash::hash(MessageDigest::sha256(), &der).ok())
        .map(|d| hex::encode(&*d))
        .unwrap_or_default()
}

fn cut_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Generate an RSA-2048 key and a certificate as Moodle does (§6.1): serial 0, issuer =
/// subject, CN = the first 64 characters of wwwroot, and the full wwwroot as a
/// `subjectAltName` attribute *of the subject DN*, which is where Moodle looks for it.
pub fn generate_identity(
    subject: &CertSubject,
    lifetime_days: u32,
    now: i64,
) -> Result<Identity, CryptoError> {
    let rsa = Rsa::generate(2048)?;
    let key = PKey::from_rsa(rsa)?;
    let wwwroot = subject
        .wwwroot
        .strip_suffix('/')
        .unwrap_or(&subject.wwwroot);
    let email = if subject.email.is_empty() {
        let host = wwwroot
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', ':']).next())
            .unwrap_or("localhost");
        format!("noreply@{host}")
    } else {
        subject.email.clone()
    };
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, &cut_chars(&subject.country, 2))?;
    name.append_entry_by_nid(Nid::STATEORPROVINCENAME, &cut_chars(&subject.state, 128))?;
    name.append_entry_by_nid(Nid::LOCALITYNAME, &cut_chars(&subject.locality, 128))?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, &cut_chars(&subject.organisation, 64))?;
    name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, "Moodle")?;
    name.append_entry_by_nid(Nid::COMMONNAME, &cut_chars(wwwroot, 64))?;
    name.append_entry_by_nid(Nid::SUBJECT_ALT_NAME, wwwroot)?;
    name.append_entry_by_nid(Nid::PKCS9_EMAILADDRESS, &cut_chars(&email, 128))?;
    let name = name.build();

    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = Asn1Integer::from_bn(&*BigNum::from_u32(0)?)?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let not_before = Asn1Time::from_unix(now)?;
    let not_after = Asn1Time::from_unix(now + i64::from(lifetime_days) * 86_400)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let cert = builder.build();
    let cert_pem = canonical_pem_of(&cert)?;
    Ok(Identity {
        key,
        cert,
        cert_pem,
    })
}

fn canonical_pem_of(cert: &X509) -> Result<String, CryptoError> {
    let pem = String::from_utf8(cert.to_pem()?).map_err(|_| CryptoError::NotACertificate)?;
    canonical_pem(&pem).ok_or(CryptoError::NotACertificate)
}

/// Moodle's `clean_param(…, PARAM_PEM)`: exactly one certificate block, base64 lines of 64
/// characters (the last ≤ 64), re-emitted with LF line ends and a trailing LF. Anything
/// else is rejected, as Moodle would empty it.
pub fn canonical_pem(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let trimmed = pem.trim();
    let body = trimmed.strip_prefix(BEGIN)?.strip_suffix(END)?;
    if body.contains("-----") {
        return None;
    }
    let lines: Vec<&str> = body.split_whitespace().collect();
    if lines.is_empty() {
        return None;
    }
    let base64_char = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    for (i, line) in lines.iter().enumerate() {
        if !line.chars().all(base64_char) {
            return None;
        }
        let last = i + 1 == lines.len();
        if (!last && line.len() != 64) || (last && line.len() > 64) {
            return None;
        }
    }
    Some(format!("{BEGIN}\n{}\n{END}\n", lines.join("\n")))
}

pub fn parse_cert_pem(pem: &str) -> Result<X509, CryptoError> {
    X509::from_pem(pem.trim().as_bytes()).map_err(|_| CryptoError::NotACertificate)
}

/// SHA-1 fingerprint of the DER certificate, lower-case hex as Moodle shows it.
pub fn fingerprint_sha1(cert: &X509) -> String {
    cert.digest(MessageDigest::sha1())
        .map(|d| hex::encode(&*d))
        .unwrap_or_default()
}

/// What operators and `check_credentials` need to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub common_name: Option<String>,
    pub subject_alt_name: Option<String>,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub fingerprint_sha1: String,
    pub key_bits: u32,
}

fn name_entry(name: &X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .map(|s| s.to_string())
}

fn asn1_to_unix(t: &openssl::asn1::Asn1TimeRef) -> i64 {
    let Ok(epoch) = Asn1Time::from_unix(0) else {
        return 0;
    };
    epoch
        .diff(t)
        .map(|d| i64::from(d.days) * 86_400 + i64::from(d.secs))
        .unwrap_or(0)
}

pub fn cert_info(cert: &X509) -> CertInfo {
    let subject_name = cert.subject_name();
    let subject = subject_name
        .entries()
        .map(|e| {
            let field = e.object().nid().short_name().unwrap_or("?").to_string();
            let value = e.data().to_string().unwrap_or_default();
            format!("{field}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    CertInfo {
        common_name: name_entry(subject_name, Nid::COMMONNAME),
        subject_alt_name: name_entry(subject_name, Nid::SUBJECT_ALT_NAME),
        subject,
        not_before: asn1_to_unix(cert.not_before()),
        not_after: asn1_to_unix(cert.not_after()),
        fingerprint_sha1: fingerprint_sha1(cert),
        key_bits: cert.public_key().map(|k| k.bits()).unwrap_or(0),
    }
}

/// Why a certificate cannot stand for a wwwroot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("certificate subjectAltName `{san}` does not match wwwroot `{wwwroot}`")]
    SubjectAltName { san: String, wwwroot: String },
    #[error("certificate CN `{cn}` does not match wwwroot `{wwwroot}`")]
    CommonName { cn: String, wwwroot: String },
    #[error("unsupported RSA key size {0} bits")]
    KeySize(u32),
}

/// Moodle's `check_credentials` (§6.4): a subjectAltName attribute, when present, must equal
/// the wwwroot, and the CN must equal the first 64 characters of the wwwroot. Comparison is
/// on the normalised forms (D13) so that a peer typed with an upper-case host still matches.
pub fn check_credentials(cert: &X509, wwwroot: &str) -> Result<CertInfo, CredentialsError> {
    let info = cert_info(cert);
    let want = crate::wwwroot::Wwwroot::normalized(wwwroot);
    if let Some(san) = &info.subject_alt_name
        && crate::wwwroot::Wwwroot::normalized(san) != want
    {
        return Err(CredentialsError::SubjectAltName {
            san: san.clone(),
            wwwroot: wwwroot.to_string(),
        });
    }
    let cn = info.common_name.clone().unwrap_or_default();
    let want_cn: String = want.chars().take(64).collect();
    if crate::wwwroot::Wwwroot::normalized(&cn) != crate::wwwroot::Wwwroot::normalized(&want_cn) {
        return Err(CredentialsError::CommonName {
            cn,
            wwwroot: wwwroot.to_string(),
        });
    }
    if info.key_bits < 1024 || info.key_bits > 8192 {
        return Err(CredentialsError::KeySize(info.key_bits));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(wwwroot: &str) -> CertSubject {
        CertSubject {
            wwwroot: wwwroot.into(),
            organisation: "usestats test".into(),
            country: "NZ".into(),
            state: "Wellington".into(),
            locality: "Wellington".into(),
            email: String::new(),
        }
    }

    #[test]
    fn rc4_backends_agree_with_the_known_answer() {
        assert_eq!(
            rc4_rust(b"Key", b"Plaintext"),
            hex_literal("bbf316e8d940af0ad3")
        );
        assert_eq!(rc4(b"Wiki", b"pedia"), hex_literal("1021bf0420"));
    }

    #[test]
    fn init_passes_on_this_host() {
        let status = init().expect("crypto self-test");
        assert!(!status.openssl_version.is_empty());
    }

    #[test]
    fn generated_certificate_looks_like_moodles() {
        let long = format!("https://example.org/{}", "x".repeat(80));
        let id = generate_identity(&subject(&long), 28, 1_800_000_000).unwrap();
        let info = id.info();
        assert_eq!(info.common_name.as_deref().map(str::len), Some(64));
        assert_eq!(info.subject_alt_name.as_deref(), Some(long.as_str()));
        assert_eq!(info.not_after - info.not_before, 28 * 86_400);
        assert_eq!(info.key_bits, 2048);
        assert_eq!(id.cert.serial_number().to_bn().unwrap().to_string(), "0");
        assert!(id.cert_pem.ends_with("-----END CERTIFICATE-----\n"));
        assert_eq!(
            canonical_pem(&id.cert_pem).as_deref(),
            Some(id.cert_pem.as_str())
        );
        assert!(check_credentials(&id.cert, &long).is_ok());
        assert!(check_credentials(&id.cert, "https://other.example.org").is_err());
    }

    #[test]
    fn seal_open_and_sign_verify_round_trip() {
        init().unwrap();
        let id = generate_identity(&subject("http://127.0.0.1:1"), 1, 1_800_000_000).unwrap();
        let other = generate_identity(&subject("http://127.0.0.1:2"), 1, 1_800_000_000).unwrap();
        let message = "<?xml version=\"1.0\"?>\n<signedMessage>é</signedMessage>".as_bytes();
        let (data, key) = seal(&id.public_key().unwrap(), message).unwrap();
        assert_eq!(key.len(), 256);
        assert_eq!(open(&id.key, &key, &data).unwrap(), message);
        // The wrong key either fails to unwrap or yields garbage, never the message.
        assert!(
            open(&other.key, &key, &data)
                .map(|m| m != message)
                .unwrap_or(true)
        );
        let sig = sign_sha1(&id.key, message).unwrap();
        assert!(verify_sha1(&id.public_key().unwrap(), message, &sig));
        assert!(!verify_sha1(&other.public_key().unwrap(), message, &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!verify_sha1(&id.public_key().unwrap(), message, &bad));
    }

    #[test]
    fn canonical_pem_rules() {
        let id = generate_identity(&subject("http://127.0.0.1:3"), 1, 1_800_000_000).unwrap();
        let crlf = id.cert_pem.replace('\n', "\r\n");
        assert_eq!(canonical_pem(&crlf).as_deref(), Some(id.cert_pem.as_str()));
        let joined: String = id
            .cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let one_line =
            format!("-----BEGIN CERTIFICATE-----\n{joined}\n-----END CERTIFICATE-----\n");
        assert_eq!(canonical_pem(&one_line), None);
        assert_eq!(canonical_pem("We know nothing about the key"), None);
        let two = format!("{}{}", id.cert_pem, id.cert_pem);
        assert_eq!(canonical_pem(&two), None);
    }
}
