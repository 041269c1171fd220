//! `usestats serve`: run the MNET peer and the web services until stopped.

use std::path::Path;

use anyhow::Context;

use super::CmdResult;
use super::common::{init_logging, load_config, open_app};

pub(super) async fn run(
    path: &Path,
    listen: Option<String>,
    console_listen: Option<String>,
) -> CmdResult {
    let mut config = load_config(path)?;
    config.database.role = crate::config::PoolRole::Serve;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    if let Some(listen) = console_listen {
        config.console.listen = listen;
    }
    config.validate()?;
    init_logging(Some(&config), true);
    // Before anything is opened: a second daemon on one SQLite file stops here. Held until
    // this function returns, that is for the life of the daemon.
    let _single = crate::instances::ServeLock::acquire(&config.state_url())?;
    let address = config.server.listen.clone();
    if let Some(warning) = port_mismatch(&config.site.wwwroot, &address) {
        tracing::warn!("{warning}");
    }
    let app = open_app(config, path)?;
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let console = app.config.console.listen.trim().to_string();
    let console_listener = if app.config.console.enabled {
        let bound = tokio::net::TcpListener::bind(&console).await.with_context(|| {
            format!(
                "cannot listen on {console} for the console ([console] listen): give it another address, or set [console] enabled = false"
            )
        })?;
        let bound_to = bound.local_addr().map(|a| a.to_string()).unwrap_or(console);
        tracing::info!(listen = %bound_to, "console on its own listener");
        Some(bound)
    } else {
        None
    };
    let status = &app.crypto;
    tracing::info!(
        version = crate::VERSION,
        wwwroot = %app.wwwroot(),
        listen = %address,
        openssl = %status.openssl_version,
        rc4 = ?status.rc4,
        "usestats serving"
    );
    crate::http::serve_forever(app, listener, console_listener)
        .await
        .with_context(|| format!("serving on {address}"))
}

/// Peers call our wwwroot, not the address we listen on. A wwwroot that names a loopback or
/// literal address on another port than ours is seldom behind a proxy: say so, since the
/// first sign would otherwise be a peer's timeout. A wwwroot by name is left alone: a proxy in
/// front is the usual setup.
fn port_mismatch(wwwroot: &str, listen: &str) -> Option<String> {
    let (scheme, rest) = wwwroot.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()?),
        _ => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let literal = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
    let ours = listen.parse::<std::net::SocketAddr>().ok()?.port();
    (literal && ours != 0 && ours != port).then(|| {
        format!(
            "listening on port {ours}, but the wwwroot {wwwroot} names port {port}: peers call the wwwroot, so they reach us only if something forwards port {port} here ([server] listen or --listen)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::port_mismatch;

    #[test]
    fn a_literal_wwwroot_on_another_port_is_warned_about() {
        let warned = port_mismatch("http://127.0.0.1:8080", "127.0.0.1:9090").unwrap();
        assert!(
            warned.contains("port 9090") && warned.contains("port 8080"),
            "{warned}"
        );
        assert!(port_mismatch("http://127.0.0.1:8080", "0.0.0.0:8080").is_none());
        assert!(port_mismatch("http://localhost", "127.0.0.1:8080").is_some());
        assert!(port_mismatch("https://[::1]", "[::1]:443").is_none());
        assert!(port_mismatch("https://[::1]:8443", "[::1]:443").is_some());
        // By name, a proxy is the usual setup; port 0 is a test's.
        assert!(port_mismatch("https://moodle.example.org", "127.0.0.1:8080").is_none());
        assert!(port_mismatch("http://127.0.0.1:8080", "127.0.0.1:0").is_none());
    }
}
