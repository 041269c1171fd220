//! TLS for sites whose wwwroot is https and that are not behind a proxy.

use std::sync::Arc;
use std::time::Duration;

/// TLS for sites whose wwwroot is https and that are not behind a proxy: OpenSSL with
/// Mozilla's intermediate profile, certificate chain and key from PEM files.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<Arc<openssl::ssl::SslAcceptor>> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let io_error = |what: &str, e: openssl::error::ErrorStack| {
        std::io::Error::other(format!("TLS {what}: {e}"))
    };
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| io_error("setup", e))?;
    builder
        .set_certificate_chain_file(cert)
        .map_err(|e| io_error(&format!("certificate {}", cert.display()), e))?;
    builder
        .set_private_key_file(key, SslFiletype::PEM)
        .map_err(|e| io_error(&format!("key {}", key.display()), e))?;
    builder
        .check_private_key()
        .map_err(|e| io_error("key does not match the certificate", e))?;
    Ok(Arc::new(builder.build()))
}

/// A client that does not finish its handshake in 10 s is dropped.
pub(super) async fn tls_handshake<S>(
    acceptor: &openssl::ssl::SslAcceptor,
    stream: S,
) -> Option<tokio_openssl::SslStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).ok()?;
    let mut stream = tokio_openssl::SslStream::new(ssl, stream).ok()?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        std::pin::Pin::new(&mut stream).accept(),
    )
    .await
    {
        Ok(Ok(())) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}
