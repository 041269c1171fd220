//! HTTP(S) to peers: one pooled hyper client per TLS level and connect timeout, bounded
//! answers, and the home-page title Moodle names new peers after.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_openssl::client::legacy::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

use super::ClientError;
use crate::store::state::{Peer, SslVerification};
use crate::text::from_peer;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub(super) struct Transport {
    clients: Mutex<HashMap<(SslVerification, u64), HttpClient>>,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
}

fn https_connector(
    level: SslVerification,
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>, ClientError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let mut ssl = SslConnector::builder(SslMethod::tls_client()).map_err(ClientError::TlsSetup)?;
    match level {
        SslVerification::None => ssl.set_verify(SslVerifyMode::NONE),
        SslVerification::HostName => {
            // Accept any chain problem but not a certificate for another host name or
            // address (X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH).
            const NAME_MISMATCHES: [i32; 3] = [62, 63, 64];
            ssl.set_verify_callback(SslVerifyMode::PEER, |preverified, ctx| {
                preverified || !NAME_MISMATCHES.contains(&ctx.error().as_raw())
            });
        }
        SslVerification::Full => ssl.set_verify(SslVerifyMode::PEER),
    }
    let mut connector = HttpsConnector::with_connector(http, ssl).map_err(ClientError::TlsSetup)?;
    if level == SslVerification::None {
        connector.set_callback(|config, _| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(connector)
}

impl Transport {
    pub(super) fn new(connect_timeout: Duration, request_timeout: Duration) -> Transport {
        Transport {
            clients: Mutex::new(HashMap::new()),
            connect_timeout,
            request_timeout,
        }
    }

    pub(super) fn http(
        &self,
        level: SslVerification,
        connect: Duration,
    ) -> Result<HttpClient, ClientError> {
        let key = (level, connect.as_millis() as u64);
        // The map only ever gains whole entries: one left by a panicking thread is sound.
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https_connector(level, connect)?);
        clients.insert(key, client.clone());
        Ok(client)
    }

    pub(super) fn timeouts(&self, peer: Option<&Peer>) -> (Duration, Duration) {
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

    pub(super) async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        ssl_level: SslVerification,
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

    /// The `<title>` of a site's home page: Moodle names new peers after it.
    pub(super) async fn fetch_site_title(&self, wwwroot: &str) -> Option<String> {
        let client = self
            .http(SslVerification::None, self.connect_timeout)
            .ok()?;
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
            let title = from_peer::plain_name(&text[open_end..end]);
            (!title.is_empty()).then_some(title)
        };
        tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .ok()
            .flatten()
    }
}

pub(super) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
