//! Registering a peer, the one way every caller does it: the operator's `peer add`, a host
//! that introduces itself by keyswap (`mnet.auto_register`), and the tests' helpers.
//!
//! The steps are Moodle's: learn the certificate (by keyswap, or from the keyswap the host
//! sent us), check that it names the wwwroot (`check_credentials`), name the peer after its
//! home page's `<title>` unless a name is given, and store it.

use crate::crypto::{self, CertInfo, CredentialsError, CryptoError};
use crate::mnet::client::{ClientError, MnetClient};
use crate::store::state::{self, NewPeer, Peer, SslVerification};
use crate::store::{Db, StoreError};
use crate::wwwroot::Wwwroot;

/// A certificate that was read and found to name the wwwroot it came from.
#[derive(Debug, Clone)]
pub struct Vetted {
    pub wwwroot: String,
    /// Canonical PEM, as stored.
    pub pem: String,
    pub info: CertInfo,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("keyswap with {wwwroot} failed: {source}")]
    Keyswap {
        wwwroot: String,
        source: ClientError,
    },
    #[error("the certificate of {wwwroot} is unreadable: {source}")]
    Unreadable {
        wwwroot: String,
        source: CryptoError,
    },
    #[error("the certificate of {wwwroot} does not stand for it: {source}")]
    Credentials {
        wwwroot: String,
        source: CredentialsError,
    },
    #[error("registering {wwwroot}: {source}")]
    Store { wwwroot: String, source: StoreError },
    #[error("{wwwroot}: {problem}")]
    NotAWwwroot {
        wwwroot: String,
        problem: crate::wwwroot::WwwrootError,
    },
    #[error("that is our own wwwroot")]
    OwnWwwroot,
}

/// The wwwroot an operator typed (`peer add URL`, the console's form) as it is keyswapped
/// with: without trailing slashes, a Moodle wwwroot, and not our own.
pub fn operator_wwwroot(typed: &str, own_wwwroot: &str) -> Result<String, RegistrationError> {
    let wwwroot = typed.trim_end_matches('/').to_string();
    if let Some(problem) = crate::wwwroot::problem(&wwwroot) {
        return Err(RegistrationError::NotAWwwroot { wwwroot, problem });
    }
    if Wwwroot::normalized(&wwwroot) == Wwwroot::normalized(own_wwwroot) {
        return Err(RegistrationError::OwnWwwroot);
    }
    Ok(wwwroot)
}

impl Vetted {
    /// Moodle refuses an expired certificate at registration; so does the operator's
    /// `peer add` unless told otherwise.
    pub fn expired(&self, now: i64) -> bool {
        self.info.not_after < now
    }

    /// SHA-256 of the certificate as stored (hex): what a confirmation compares, so that a
    /// key swapped between showing a certificate and registering it is noticed.
    pub fn digest(&self) -> String {
        openssl::hash::hash(openssl::hash::MessageDigest::sha256(), self.pem.as_bytes())
            .map(|d| hex::encode(&*d))
            .unwrap_or_default()
    }
}

/// Read `pem` and check it names `wwwroot`.
pub fn vet(wwwroot: &str, pem: &str) -> Result<Vetted, RegistrationError> {
    let cert = crypto::parse_cert_pem(pem).map_err(|source| RegistrationError::Unreadable {
        wwwroot: wwwroot.to_string(),
        source,
    })?;
    let info = crypto::check_credentials(&cert, wwwroot).map_err(|source| {
        RegistrationError::Credentials {
            wwwroot: wwwroot.to_string(),
            source,
        }
    })?;
    Ok(Vetted {
        wwwroot: wwwroot.to_string(),
        pem: pem.to_string(),
        info,
    })
}

/// Ask `wwwroot` for its certificate (a keyswap) and vet it.
pub async fn fetch(
    client: &MnetClient,
    wwwroot: &str,
    application: &str,
    ssl_verification: SslVerification,
) -> Result<Vetted, RegistrationError> {
    let pem = client
        .keyswap(wwwroot, application, ssl_verification, None)
        .await
        .map_err(|source| RegistrationError::Keyswap {
            wwwroot: wwwroot.to_string(),
            source,
        })?;
    vet(wwwroot, &pem)
}

/// Who vouches for the peer being registered.
#[derive(Debug, Clone, Copy)]
pub enum Sponsor {
    /// The operator: a known peer (even a deleted one) is revived and refreshed.
    Operator,
    /// The host itself, by keyswap: never changes a known peer, and stops at `max_peers`
    /// self-registered peers.
    SelfIntroduced { max_peers: i64 },
}

/// What to register besides the certificate.
#[derive(Debug, Clone)]
pub struct Registration {
    pub vetted: Vetted,
    pub application: String,
    /// `None`: the `<title>` of the peer's home page, or its wwwroot.
    pub name: Option<String>,
    pub ssl_verification: SslVerification,
    pub sponsor: Sponsor,
}

/// Store the peer. `Ok(None)` only for a self-introduced host that is known already or
/// over the cap.
pub async fn register(
    client: &MnetClient,
    state: &Db,
    registration: Registration,
    now: i64,
) -> Result<Option<Peer>, RegistrationError> {
    let Registration {
        vetted,
        application,
        name,
        ssl_verification,
        sponsor,
    } = registration;
    let name = match name.map(|n| crate::text::from_peer::plain_name(&n)) {
        Some(name) if !name.is_empty() => name,
        _ => client
            .fetch_site_title(&vetted.wwwroot)
            .await
            .unwrap_or_else(|| vetted.wwwroot.clone()),
    };
    let wwwroot = vetted.wwwroot.clone();
    state
        .run(move |c| {
            let new = NewPeer {
                wwwroot: &vetted.wwwroot,
                name: &name,
                application: &application,
                public_key: &vetted.pem,
                public_key_expires: vetted.info.not_after,
                ssl_verification,
            };
            match sponsor {
                Sponsor::Operator => state::upsert_peer(c, &new, now).map(Some),
                Sponsor::SelfIntroduced { max_peers } => {
                    state::register_auto_peer(c, &new, now, max_peers)
                }
            }
        })
        .await
        .map_err(|source| RegistrationError::Store { wwwroot, source })
}
