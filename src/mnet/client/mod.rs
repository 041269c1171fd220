//! The MNET client (docs/protocol.md §7.3): sign, encrypt, POST, open the answer, require
//! the signed envelope, check the clock, verify, and follow a peer's key rotation (7025)
//! with exactly one resend. Every way a call can fail is a [`ClientError`] variant.

mod answer;
mod error;
mod transport;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::blocking::CpuPool;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{self, KeyringCell, PublicKeyCache};
use crate::mnet::envelope;
use crate::mnet::faults;
use crate::store::Db;
use crate::store::state::{self, Peer, SslVerification};
use crate::text::from_peer;
use crate::wwwroot::Wwwroot;
use crate::xmlrpc::{self, Limits, MethodCall, Response, Value};

use answer::open_answer;
pub use error::ClientError;
use error::peer_says;
use transport::{Transport, unix_now_ms};

/// Caps on answers, by what was asked: a keyswap answer is one certificate, system
/// methods answer short lists, a use_stats answer is a few KB. Anything bigger is an attack
/// on our memory (three 30 MB answers took `collect` to 580 MB).
const KEYSWAP_ANSWER_MAX_BYTES: usize = 64 * 1024;
const SYSTEM_ANSWER_MAX_BYTES: usize = 1024 * 1024;
const ANSWER_MAX_BYTES: usize = 2 * 1024 * 1024;

fn answer_cap(method: &str) -> usize {
    if method.starts_with("system/") || method.starts_with("system.") {
        SYSTEM_ANSWER_MAX_BYTES
    } else {
        ANSWER_MAX_BYTES
    }
}

/// A successful call with what was learnt about the peer on the way.
#[derive(Debug, Clone)]
pub struct Reply {
    pub value: Value,
    /// Peer clock minus ours, seconds (positive: the peer runs ahead).
    pub clock_offset: i64,
    pub latency: Duration,
    /// The call had to be resent after the peer's key rotation (7025) or a stale key.
    pub rekeyed: bool,
}

/// What the client works with besides the network: our identity and keys to sign and
/// open, the state database where peers' keys and health are kept, the clock, and the CPU
/// pool for RSA work.
pub struct ClientHandles {
    pub wwwroot: String,
    pub keys: Arc<KeyringCell>,
    pub state: Db,
    pub clock: Arc<Clock>,
    pub peer_keys: Arc<PublicKeyCache>,
    pub cpu: CpuPool,
}

pub struct MnetClient {
    transport: Transport,
    drift_threshold: i64,
    own: ClientHandles,
}

/// Whether answers from the peer's URL come from the peer: https with the certificate
/// chain and host name verified.
fn transport_authenticated(peer: &Peer) -> bool {
    peer.wwwroot.starts_with("https://") && peer.ssl() == SslVerification::Full
}

fn is_mahara(peer: &Peer) -> bool {
    peer.application.eq_ignore_ascii_case("mahara")
}

pub fn server_path(application: &str) -> &'static str {
    if application.eq_ignore_ascii_case("mahara") {
        "/api/xmlrpc/server.php"
    } else {
        "/mnet/xmlrpc/server.php"
    }
}

impl MnetClient {
    pub fn new(config: &Config, own: ClientHandles) -> MnetClient {
        MnetClient {
            transport: Transport::new(
                Duration::from_secs(config.mnet.connect_timeout_secs),
                Duration::from_secs(config.mnet.request_timeout_secs),
            ),
            drift_threshold: config.mnet.drift_threshold_secs,
            own,
        }
    }

    /// The `<title>` of a site's home page: Moodle names new peers after it.
    pub async fn fetch_site_title(&self, wwwroot: &str) -> Option<String> {
        self.transport.fetch_site_title(wwwroot).await
    }

    /// Moodle's `mnet_get_public_key`: a plain keyswap to `wwwroot`, returning the peer's
    /// certificate in canonical PEM. The certificate's host name must occur in the URL we
    /// called (Moodle's own check); callers registering a peer check it fully.
    pub async fn keyswap(
        &self,
        wwwroot: &str,
        application: &str,
        ssl_level: SslVerification,
        timeouts: Option<(Duration, Duration)>,
    ) -> Result<String, ClientError> {
        let url = format!(
            "{}{}",
            wwwroot.trim_end_matches('/'),
            server_path(application)
        );
        let call = MethodCall {
            name: "system/keyswap".into(),
            params: vec![
                Value::from(self.own.wwwroot.as_str()),
                Value::String(self.own.keys.current().current.cert_pem.clone()),
                Value::from(application),
            ],
        };
        let body = xmlrpc::serialize_call(&call);
        let answer = self
            .transport
            .post(
                &url,
                body,
                ssl_level,
                timeouts.unwrap_or(self.transport.timeouts(None)),
                KEYSWAP_ANSWER_MAX_BYTES,
            )
            .await?;
        let pem = match xmlrpc::parse_response(&answer, &Limits::default()) {
            Ok(Response::Success(Value::String(pem))) => pem,
            Ok(Response::Success(other)) => {
                return Err(ClientError::Keyswap(format!(
                    "expected a certificate string, got {}",
                    other.type_name()
                )));
            }
            Ok(Response::Fault(f)) => return Err(ClientError::fault(f.code, &f.string, false)),
            Err(e) => return Err(ClientError::Keyswap(peer_says(&e.to_string()))),
        };
        let canonical = crypto::canonical_pem(&pem)
            .ok_or_else(|| ClientError::Keyswap("the answer is not a PEM certificate".into()))?;
        let cert = crypto::parse_cert_pem(&canonical)
            .map_err(|e| ClientError::Keyswap(peer_says(&e.to_string())))?;
        let info = crypto::cert_info(&cert);
        let host = peer_says(
            &info
                .subject_alt_name
                .or(info.common_name)
                .unwrap_or_default(),
        );
        if host.is_empty()
            || !Wwwroot::normalized(&url).contains(Wwwroot::normalized(&host).as_str())
        {
            return Err(ClientError::Keyswap(format!(
                "the certificate names `{host}`, which is not part of {url}"
            )));
        }
        Ok(canonical)
    }

    /// The peer's current certificate as it serves it now (not stored).
    pub async fn fetch_certificate(&self, peer: &Peer) -> Result<String, ClientError> {
        self.keyswap(
            &peer.wwwroot,
            &peer.application,
            peer.ssl(),
            Some(self.transport.timeouts(Some(peer))),
        )
        .await
    }

    /// Call `method` on `peer`, recording the outcome in the peer's health columns.
    pub async fn call(
        &self,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, ClientError> {
        self.call_detailed(peer, method, params)
            .await
            .map(|reply| reply.value)
    }

    /// A call without the health bookkeeping (one state write per call), for load tests.
    pub async fn call_uninstrumented(
        &self,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, ClientError> {
        self.call_with_recovery(peer, method, params)
            .await
            .map(|(value, _, _)| value)
    }

    pub async fn call_detailed(
        &self,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Reply, ClientError> {
        let started = Instant::now();
        let result = self.call_with_recovery(peer, method, params).await;
        let (error, offset) = match &result {
            Ok((_, offset, _)) => (None, Some(*offset)),
            Err(e) => (
                Some(from_peer::one_line(
                    &e.to_string(),
                    from_peer::LAST_ERROR_MAX_CHARS,
                )),
                None,
            ),
        };
        let (id, now) = (peer.id, self.own.clock.now());
        let recorded = self
            .own
            .state
            .run(move |c| state::record_peer_outcome(c, id, now, error.as_deref(), offset))
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not record the peer's health");
        }
        result.map(|(value, clock_offset, rekeyed)| Reply {
            value,
            clock_offset,
            latency: started.elapsed(),
            rekeyed,
        })
    }

    /// A call that can learn a new key of the peer only through a verified 7025, never
    /// from an unauthenticated keyswap. The server's key-refresh path (§4.3 step 6) uses it:
    /// otherwise whoever answers for the peer's URL could plant a key and then pass as the
    /// peer.
    pub async fn call_rekey_by_7025_only(
        &self,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, ClientError> {
        self.call_with_recovery_mode(peer, method, params, false)
            .await
            .map(|(value, _, _)| value)
    }

    async fn call_with_recovery(
        &self,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<(Value, i64, bool), ClientError> {
        self.call_with_recovery_mode(peer, method, params, true)
            .await
    }

    async fn call_with_recovery_mode(
        &self,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
        allow_refetch: bool,
    ) -> Result<(Value, i64, bool), ClientError> {
        if peer.deleted {
            return Err(ClientError::DeletedPeer(peer.wwwroot.clone()));
        }
        let mut peer = peer.clone();
        if peer.public_key.is_empty() {
            peer = self.learn_key(&peer).await?;
        }
        let call = MethodCall {
            name: method.into(),
            params,
        };
        match self.attempt(&peer, &call).await {
            Attempt::Done(value, offset) => Ok((value, offset, false)),
            Attempt::Failed(e) => Err(e),
            Attempt::Rekeyed(new_peer) => match self.attempt(&new_peer, &call).await {
                Attempt::Done(value, offset) => Ok((value, offset, true)),
                Attempt::Failed(e) => Err(e),
                Attempt::Rekeyed(_) => Err(ClientError::fault(
                    faults::STALE_KEY,
                    "the peer asked for a second re-key in one call",
                    true,
                )),
                Attempt::MaybeStaleKey(fault) => Err(fault),
            },
            Attempt::MaybeStaleKey(fault) if !(allow_refetch && transport_authenticated(&peer)) => {
                Err(fault)
            }
            Attempt::MaybeStaleKey(fault) => {
                // Mahara's non-PEM 7025: it could not open our message, most likely because
                // it has a new key we never learnt. Fetch it; if it changed, use it once.
                // Only over verified https: a keyswap answer is otherwise anyone's word.
                match self.refetch_changed_key(&peer).await {
                    Some(new_peer) => match self.attempt(&new_peer, &call).await {
                        Attempt::Done(value, offset) => Ok((value, offset, true)),
                        Attempt::Failed(e) => Err(e),
                        Attempt::Rekeyed(_) | Attempt::MaybeStaleKey(_) => Err(fault),
                    },
                    None => Err(fault),
                }
            }
        }
    }

    /// Keyswap a peer we hold no certificate for, and store the certificate.
    async fn learn_key(&self, peer: &Peer) -> Result<Peer, ClientError> {
        let pem = self.fetch_certificate(peer).await?;
        self.store_key(peer, &pem).await
    }

    async fn refetch_changed_key(&self, peer: &Peer) -> Option<Peer> {
        let pem = self.fetch_certificate(peer).await.ok()?;
        if pem == peer.public_key {
            return None;
        }
        self.store_key(peer, &pem).await.ok()
    }

    async fn store_key(&self, peer: &Peer, pem: &str) -> Result<Peer, ClientError> {
        let cert = crypto::parse_cert_pem(pem)
            .map_err(|e| ClientError::BadNewCertificate(peer_says(&e.to_string())))?;
        let info = crypto::check_credentials(&cert, &peer.wwwroot)
            .map_err(|e| ClientError::BadNewCertificate(peer_says(&e.to_string())))?;
        let (id, pem, now) = (peer.id, pem.to_string(), self.own.clock.now());
        let stored = self
            .own
            .state
            .run(move |c| {
                state::set_peer_key(c, id, &pem, info.not_after, now)?;
                state::peer_by_id(c, id)
            })
            .await
            .map_err(ClientError::State)?;
        tracing::info!(peer = %peer.wwwroot, "stored the peer's new certificate");
        stored.ok_or_else(|| ClientError::UnknownPeer(peer.wwwroot.clone()))
    }

    async fn attempt(&self, peer: &Peer, call: &MethodCall) -> Attempt {
        match self.attempt_inner(peer, call).await {
            Ok(outcome) => outcome,
            Err(e) => Attempt::Failed(e),
        }
    }

    async fn attempt_inner(&self, peer: &Peer, call: &MethodCall) -> Result<Attempt, ClientError> {
        let peer_key = self
            .own
            .peer_keys
            .get(&peer.public_key)
            .map_err(|_| ClientError::NoCertificate(peer.wwwroot.clone()))?;
        // Signing, sealing and opening are RSA work: on the CPU pool, never on the async
        // workers that serve other calls.
        let body = {
            let (keyring, peer_key) = (self.own.keys.current(), peer_key.clone());
            let (xml, wwwroot, now) = (
                xmlrpc::serialize_call(call),
                self.own.wwwroot.as_str().to_string(),
                self.own.clock.now(),
            );
            self.own
                .cpu
                .run(move || {
                    let signed = envelope::build_signed(&xml, &keyring.current.key, &wwwroot, now)
                        .map_err(ClientError::Sealing)?;
                    envelope::build_encrypted(&signed, &peer_key, &wwwroot)
                        .map_err(ClientError::Sealing)
                })
                .await?
        };
        let url = format!("{}{}", peer.wwwroot, server_path(&peer.application));

        let sent_ms = unix_now_ms();
        let sent = self.own.clock.now();
        let answer = self
            .transport
            .post(
                &url,
                body,
                peer.ssl(),
                self.transport.timeouts(Some(peer)),
                answer_cap(&call.name),
            )
            .await?;
        let received_ms = unix_now_ms();

        let (signed, response, verified) = {
            let (keyring, peer_key) = (self.own.keys.current(), peer_key.clone());
            self.own
                .cpu
                .run(move || open_answer(&keyring, &peer_key, &answer))
                .await?
        };

        // Moodle's formula: the peer's time at the midpoint of the exchange, minus ours.
        let round_trip = (received_ms - sent_ms).max(0) / 1000;
        // The timestamp is the peer's word (not signed): saturating, so no value overflows.
        let offset = signed
            .timestamp
            .saturating_sub(round_trip / 2)
            .saturating_sub(sent);
        if offset > self.drift_threshold {
            return Err(ClientError::ClockDrift {
                offset,
                limit: self.drift_threshold,
            });
        }

        if let Response::Fault(f) = &response
            && f.code == faults::STALE_KEY
        {
            return self.follow_rotation(peer, &f.string, &signed).await;
        }
        if !verified {
            return Err(ClientError::InvalidSignature);
        }
        match response {
            Response::Success(value) => Ok(Attempt::Done(value, offset)),
            Response::Fault(f) => Err(ClientError::fault(f.code, &f.string, true)),
        }
    }

    /// A 7025 carries the peer's new certificate. It is stored only when the fault is signed
    /// with the key we already hold (Moodle signs it with the old key, vector 05a). Mahara
    /// signs with its new key, which anyone could claim; such a 7025 is refused and the
    /// operator re-adds the peer.
    async fn follow_rotation(
        &self,
        peer: &Peer,
        fault_string: &str,
        signed: &envelope::SignedMessage,
    ) -> Result<Attempt, ClientError> {
        let Some(pem) = crypto::canonical_pem(fault_string) else {
            // Mahara says "We know nothing about the key…" when it cannot open us at all:
            // the one case where re-fetching its key by keyswap is allowed, and only for a
            // peer the operator registered as Mahara.
            let fault = ClientError::fault(faults::STALE_KEY, fault_string, false);
            return Ok(if is_mahara(peer) {
                Attempt::MaybeStaleKey(fault)
            } else {
                Attempt::Failed(fault)
            });
        };
        let new_cert = crypto::parse_cert_pem(&pem)
            .map_err(|e| ClientError::BadNewCertificate(peer_says(&e.to_string())))?;
        let by_old = crypto::parse_cert_pem(&peer.public_key)
            .ok()
            .and_then(|c| c.public_key().ok())
            .is_some_and(|k| crypto::verify_sha1(&k, &signed.object, &signed.signature));
        if !by_old {
            tracing::warn!(
                peer = %peer.wwwroot,
                fingerprint = %crypto::fingerprint_sha1(&new_cert),
                "refused a 7025 not signed with the certificate on file"
            );
            return Err(ClientError::UnverifiedRotation);
        }
        let new_peer = self.store_key(peer, &pem).await?;
        Ok(Attempt::Rekeyed(new_peer))
    }
}

enum Attempt {
    Done(Value, i64),
    Failed(ClientError),
    /// The peer rotated its key; the new certificate is stored: resend once.
    Rekeyed(Peer),
    /// A Mahara peer could not open our message (non-PEM 7025); maybe we hold a stale
    /// certificate.
    MaybeStaleKey(ClientError),
}
