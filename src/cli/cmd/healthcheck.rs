//! `usestats healthcheck`: ask a running `serve` for `/healthz`; exit 0 on 200 only. The
//! container image probes itself with it (its runtime base has no curl).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_openssl::client::legacy::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

use super::CmdResult;
use super::common::load_config;
use crate::config::Config;

/// The most of an answer read: `/healthz` says one line.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub(super) async fn run(path: &Path, url: Option<String>, timeout_secs: u64) -> CmdResult {
    let url = match url {
        Some(url) => url,
        None => own_url(&load_config(path)?)?,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| anyhow!("--url {}: {e}", crate::text::echo::echo(&url)))?;
    let probe = probe(uri);
    let (status, body) = tokio::time::timeout(Duration::from_secs(timeout_secs), probe)
        .await
        .map_err(|_| anyhow!("{url}: no answer within {timeout_secs} s"))?
        .with_context(|| format!("asking {url}"))?;
    let line = body.lines().next().unwrap_or("").trim();
    // The answer is our own server's, but it crosses a socket: shown escaped, and short.
    let line = crate::text::terminal(&line.chars().take(200).collect::<String>());
    if status != http::StatusCode::OK {
        bail!("{url} answered {status}: {line}");
    }
    println!("{line}");
    Ok(())
}

/// `/healthz` on the address `serve` listens on: a wildcard address is reached on loopback.
fn own_url(config: &Config) -> anyhow::Result<String> {
    let listen: SocketAddr = config
        .server
        .listen
        .parse()
        .with_context(|| format!("server.listen `{}`", config.server.listen))?;
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if config.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(format!(
        "{scheme}://{}/healthz",
        SocketAddr::new(ip, listen.port())
    ))
}

async fn probe(uri: http::Uri) -> anyhow::Result<(http::StatusCode, String)> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let mut ssl = SslConnector::builder(SslMethod::tls_client())?;
    // Our own listener, reached by address: its certificate names the wwwroot, not this
    // address. Nothing secret is sent and the answer only decides an exit code.
    ssl.set_verify(SslVerifyMode::NONE);
    let mut https = HttpsConnector::with_connector(http, ssl)?;
    https.set_callback(|config, _| {
        config.set_verify_hostname(false);
        Ok(())
    });
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let request = http::Request::get(uri)
        .header(http::header::USER_AGENT, "usestats-healthcheck")
        .body(Empty::new())?;
    let response = client.request(request).await?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_probed_on_loopback() {
        let mut config = Config::for_wwwroot("https://stats.example.org");
        config.server.listen = "0.0.0.0:8080".into();
        assert_eq!(own_url(&config).unwrap(), "http://127.0.0.1:8080/healthz");
        config.server.listen = "[::]:9000".into();
        assert_eq!(own_url(&config).unwrap(), "http://[::1]:9000/healthz");
        config.server.listen = "127.0.0.2:81".into();
        config.server.tls_cert = Some("c.pem".into());
        config.server.tls_key = Some("k.pem".into());
        assert_eq!(own_url(&config).unwrap(), "https://127.0.0.2:81/healthz");
    }
}
