//! The MNET client (mnet-protocol.md §7.3): sign, encrypt, POST, open the answer, require
//! the signed envelope, check the clock, verify, and follow a peer's key rotation (7025)
//! with exactly one resend. Every way a call can fail is a [`ClientError`] variant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_openssl::client::legacy::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

use crate::app::App;
use crate::config::Config;
use crate::crypto;
use crate::mnet::envelope::{self, DocumentKind};
use crate::mnet::faults;
use crate::peer_text;
use crate::store::state::{self, Peer};
use crate::wwwroot::Wwwroot;
use crate::xmlrpc::{self, Limits, MethodCall, Response, Value};

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

/// Text from the peer, made safe to keep, log and show.
fn peer_says(text: &str) -> String {
    peer_text::one_line(text, peer_text::FAULT_TEXT_MAX_CHARS)
}

fn unauthenticated_note(authenticated: &bool) -> &'static str {
    if *authenticated {
        ""
    } else {
        " (unauthenticated: not signed by the peer)"
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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
    /// it announces proves nothing about who sent it (decisions.md, Authorisation).
    #[error(
        "the peer announced a new certificate in a 7025 that does not verify with the certificate on file; the key was not changed (if the peer really changed its key, register it again with `usestats peer add`)"
    )]
    UnverifiedRotation,
    #[error("keyswap failed: {0}")]
    Keyswap(String),
    #[error("unreadable answer: {0}")]
    Protocol(String),
    #[error("local error: {0}")]
    Local(String),
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

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct MnetClient {
    clients: Mutex<HashMap<(i32, u64), HttpClient>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    drift_threshold: i64,
}

/// TLS verification levels as Moodle's `mnet_host.sslverification`: 0 none, 1 host name
/// only, 2 host name and chain.
fn https_connector(
    level: i32,
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>, ClientError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let mut ssl = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| ClientError::Local(e.to_string()))?;
    match level {
        0 => ssl.set_verify(SslVerifyMode::NONE),
        1 => {
            // Accept any chain problem but not a certificate for another host name or
            // address (X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH).
            const NAME_MISMATCHES: [i32; 3] = [62, 63, 64];
            ssl.set_verify_callback(SslVerifyMode::PEER, |preverified, ctx| {
                preverified || !NAME_MISMATCHES.contains(&ctx.error().as_raw())
            });
        }
        _ => ssl.set_verify(SslVerifyMode::PEER),
    }
    let mut connector =
        HttpsConnector::with_connector(http, ssl).map_err(|e| ClientError::Local(e.to_string()))?;
    if level == 0 {
        connector.set_callback(|config, _| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(connector)
}

/// Whether answers from the peer's URL come from the peer: https with the certificate
/// chain and host name verified.
fn transport_authenticated(peer: &Peer) -> bool {
    peer.wwwroot.starts_with("https://") && peer.ssl_verification >= 2
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

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl MnetClient {
    pub fn new(config: &Config) -> MnetClient {
        MnetClient {
            clients: Mutex::new(HashMap::new()),
            connect_timeout: Duration::from_secs(config.mnet.connect_timeout_secs),
            request_timeout: Duration::from_secs(config.mnet.request_timeout_secs),
            drift_threshold: config.mnet.drift_threshold_secs,
        }
    }

    fn http(&self, level: i32, connect: Duration) -> Result<HttpClient, ClientError> {
        let key = (level, connect.as_millis() as u64);
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| ClientError::Local("client cache poisoned".into()))?;
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https_connector(level, connect)?);
        clients.insert(key, client.clone());
        Ok(client)
    }

    fn timeouts(&self, peer: Option<&Peer>) -> (Duration, Duration) {
        let connect = peer
            .and_then(|p| p.connect_timeout_ms)
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms as u64))
            .unwrap_or(self.connect_timeout);
        let total = peer
            .and_then(|p| p.request_timeout_ms)
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms as u64))
            .unwrap_or(self.request_timeout);
        (connect, total)
    }

    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        ssl_level: i32,
        (connect, total): (Duration, Duration),
        cap: usize,
    ) -> Result<Bytes, ClientError> {
        let client = self.http(ssl_level, connect)?;
        let request = hyper::Request::post(url)
            .header(
                "User-Agent",
                concat!("usestats/", env!("CARGO_PKG_VERSION")),
            )
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("Accept-Charset", "UTF-8")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport {
                url: url.into(),
                message: e.to_string(),
            })?;
        let exchange = async {
            let response = client.request(request).await.map_err(|e| {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(inner) = source {
                    message = format!("{message}: {inner}");
                    source = inner.source();
                }
                ClientError::Transport {
                    url: url.into(),
                    message,
                }
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), cap)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        ClientError::TooLarge {
                            url: url.into(),
                            limit: cap,
                        }
                    } else {
                        ClientError::Transport {
                            url: url.into(),
                            message: format!("reading the answer: {e}"),
                        }
                    }
                })?
                .to_bytes();
            if status != hyper::StatusCode::OK {
                return Err(ClientError::HttpStatus {
                    url: url.into(),
                    status: status.as_u16(),
                });
            }
            Ok(body)
        };
        match tokio::time::timeout(total, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                url: url.into(),
                seconds: total.as_secs().max(1),
            }),
        }
    }

    /// Moodle's `mnet_get_public_key`: a plain keyswap to `wwwroot`, returning the peer's
    /// certificate in canonical PEM. The certificate's host name must occur in the URL we
    /// called (Moodle's own check); callers registering a peer check it fully.
    pub async fn keyswap(
        &self,
        app: &App,
        wwwroot: &str,
        application: &str,
        ssl_level: i32,
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
                Value::from(app.wwwroot()),
                Value::String(app.keyring().current.cert_pem.clone()),
                Value::from(application),
            ],
        };
        let body = xmlrpc::serialize_call(&call);
        let answer = self
            .post(
                &url,
                body,
                ssl_level,
                timeouts.unwrap_or(self.timeouts(None)),
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
    pub async fn fetch_certificate(&self, app: &App, peer: &Peer) -> Result<String, ClientError> {
        self.keyswap(
            app,
            &peer.wwwroot,
            &peer.application,
            peer.ssl_verification,
            Some(self.timeouts(Some(peer))),
        )
        .await
    }

    /// The `<title>` of a site's home page: Moodle names new peers after it.
    pub async fn fetch_site_title(&self, _app: &App, wwwroot: &str) -> Option<String> {
        let client = self.http(0, self.connect_timeout).ok()?;
        let uri: hyper::Uri = format!("{}/", wwwroot.trim_end_matches('/')).parse().ok()?;
        let fetch = async {
            let response = client.get(uri).await.ok()?;
            // A home page's <title> is near its top: the first 64 KiB are read, never more.
            const HEAD_BYTES: usize = 64 * 1024;
            let mut body = response.into_body();
            let mut head = Vec::new();
            while head.len() < HEAD_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            head.extend_from_slice(&data);
                        }
                    }
                    _ => break,
                }
            }
            head.truncate(HEAD_BYTES);
            let text = String::from_utf8_lossy(&head);
            let lower = text.to_ascii_lowercase();
            let start = lower.find("<title")?;
            let open_end = lower[start..].find('>')? + start + 1;
            let end = lower[open_end..].find("</title>")? + open_end;
            // Stored and shown as a name: plain text, one line, bounded.
            let title = peer_text::plain_name(&text[open_end..end]);
            (!title.is_empty()).then_some(title)
        };
        tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .ok()
            .flatten()
    }

    /// Call `method` on `peer`, recording the outcome in the peer's health columns.
    pub async fn call(
        &self,
        app: &Arc<App>,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, ClientError> {
        self.call_detailed(app, peer, method, params)
            .await
            .map(|reply| reply.value)
    }

    /// A call without the health bookkeeping (one state write per call), for load tests.
    pub async fn call_uninstrumented(
        &self,
        app: &Arc<App>,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, ClientError> {
        self.call_with_recovery(app, peer, method, params)
            .await
            .map(|(value, _, _)| value)
    }

    pub async fn call_detailed(
        &self,
        app: &Arc<App>,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Reply, ClientError> {
        let started = Instant::now();
        let result = self.call_with_recovery(app, peer, method, params).await;
        let (error, offset) = match &result {
            Ok((_, offset, _)) => (None, Some(*offset)),
            Err(e) => (
                Some(peer_text::one_line(
                    &e.to_string(),
                    peer_text::LAST_ERROR_MAX_CHARS,
                )),
                None,
            ),
        };
        let (id, now) = (peer.id, app.now());
        let recorded = app
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
        app: &Arc<App>,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, ClientError> {
        self.call_with_recovery_mode(app, peer, method, params, false)
            .await
            .map(|(value, _, _)| value)
    }

    async fn call_with_recovery(
        &self,
        app: &Arc<App>,
        peer: &Peer,
        method: &str,
        params: Vec<Value>,
    ) -> Result<(Value, i64, bool), ClientError> {
        self.call_with_recovery_mode(app, peer, method, params, true)
            .await
    }

    async fn call_with_recovery_mode(
        &self,
        app: &Arc<App>,
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
            peer = self.learn_key(app, &peer).await?;
        }
        let call = MethodCall {
            name: method.into(),
            params,
        };
        match self.attempt(app, &peer, &call).await {
            Attempt::Done(value, offset) => Ok((value, offset, false)),
            Attempt::Failed(e) => Err(e),
            Attempt::Rekeyed(new_peer) => match self.attempt(app, &new_peer, &call).await {
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
                match self.refetch_changed_key(app, &peer).await {
                    Some(new_peer) => match self.attempt(app, &new_peer, &call).await {
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
    async fn learn_key(&self, app: &Arc<App>, peer: &Peer) -> Result<Peer, ClientError> {
        let pem = self.fetch_certificate(app, peer).await?;
        self.store_key(app, peer, &pem).await
    }

    async fn refetch_changed_key(&self, app: &Arc<App>, peer: &Peer) -> Option<Peer> {
        let pem = self.fetch_certificate(app, peer).await.ok()?;
        if pem == peer.public_key {
            return None;
        }
        self.store_key(app, peer, &pem).await.ok()
    }

    async fn store_key(&self, app: &Arc<App>, peer: &Peer, pem: &str) -> Result<Peer, ClientError> {
        let cert = crypto::parse_cert_pem(pem)
            .map_err(|e| ClientError::BadNewCertificate(peer_says(&e.to_string())))?;
        let info = crypto::check_credentials(&cert, &peer.wwwroot)
            .map_err(|e| ClientError::BadNewCertificate(peer_says(&e)))?;
        let (id, pem, now) = (peer.id, pem.to_string(), app.now());
        let stored = app
            .state
            .run(move |c| {
                state::set_peer_key(c, id, &pem, info.not_after, now)?;
                state::peer_by_id(c, id)
            })
            .await
            .map_err(|e| ClientError::Local(e.to_string()))?;
        tracing::info!(peer = %peer.wwwroot, "stored the peer's new certificate");
        stored.ok_or_else(|| ClientError::UnknownPeer(peer.wwwroot.clone()))
    }

    async fn attempt(&self, app: &Arc<App>, peer: &Peer, call: &MethodCall) -> Attempt {
        match self.attempt_inner(app, peer, call).await {
            Ok(outcome) => outcome,
            Err(e) => Attempt::Failed(e),
        }
    }

    async fn attempt_inner(
        &self,
        app: &Arc<App>,
        peer: &Peer,
        call: &MethodCall,
    ) -> Result<Attempt, ClientError> {
        let peer_key = app.peer_keys.get(&peer.public_key).map_err(|_| {
            ClientError::Local(format!(
                "no usable certificate on file for {}",
                peer.wwwroot
            ))
        })?;
        // Signing, sealing and opening are RSA work: on the CPU pool, never on the async
        // workers that serve other calls.
        let body = {
            let (keyring, peer_key) = (app.keyring(), peer_key.clone());
            let (xml, wwwroot, now) = (
                xmlrpc::serialize_call(call),
                app.wwwroot().to_string(),
                app.now(),
            );
            app.cpu
                .run(move || {
                    let signed = envelope::build_signed(&xml, &keyring.current.key, &wwwroot, now)
                        .map_err(|e| ClientError::Local(e.to_string()))?;
                    envelope::build_encrypted(&signed, &peer_key, &wwwroot)
                        .map_err(|e| ClientError::Local(e.to_string()))
                })
                .await?
        };
        let url = format!("{}{}", peer.wwwroot, server_path(&peer.application));

        let sent_ms = unix_now_ms();
        let sent = app.now();
        let answer = self
            .post(
                &url,
                body,
                peer.ssl_verification,
                self.timeouts(Some(peer)),
                answer_cap(&call.name),
            )
            .await?;
        let received_ms = unix_now_ms();

        let (signed, response, verified) = {
            let (keyring, peer_key) = (app.keyring(), peer_key.clone());
            app.cpu
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
            return self.follow_rotation(app, peer, &f.string, &signed).await;
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
        app: &Arc<App>,
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
        let new_peer = self.store_key(app, peer, &pem).await?;
        Ok(Attempt::Rekeyed(new_peer))
    }
}

/// Open a peer's answer with our keys, read it, and check its signature against the peer's
/// certificate on file. A plain answer is always an error: a fault (7020, 7023, 7021…) or
/// an answer we cannot trust.
fn open_answer(
    keyring: &crate::crypto::Keyring,
    peer_key: &openssl::pkey::PKey<openssl::pkey::Public>,
    answer: &[u8],
) -> Result<(envelope::SignedMessage, Response, bool), ClientError> {
    let answer = trim_ascii(answer);
    if envelope::document_kind(answer) != DocumentKind::Encrypted {
        // A plain 7023 is not followed by a keyswap: only a 7025 signed with the key on
        // file may change a peer's key (decisions.md, Authorisation).
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

enum Attempt {
    Done(Value, i64),
    Failed(ClientError),
    /// The peer rotated its key; the new certificate is stored: resend once.
    Rekeyed(Peer),
    /// A Mahara peer could not open our message (non-PEM 7025); maybe we hold a stale
    /// certificate.
    MaybeStaleKey(ClientError),
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
