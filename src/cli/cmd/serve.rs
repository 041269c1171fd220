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
