//! What several commands share: loading the configuration, opening the app, logging,
//! JSON output and finding a registered peer.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::CmdResult;
use crate::app::App;
use crate::config::{Config, LogFormat};
use crate::store::state::{self, Peer};
use crate::wwwroot::Wwwroot;

pub(super) fn init_logging(config: Option<&Config>, serving: bool) {
    let level = config
        .map(|c| c.log.level.clone())
        .unwrap_or_else(|| "warn".into());
    // Commands print their own results; only the daemon logs at the configured level.
    let level = if serving { level } else { "warn".into() };
    let filter = tracing_subscriber::EnvFilter::try_from_env("USESTATS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = config.is_some_and(|c| c.log.format == LogFormat::Json);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub(super) fn load_config(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() {
        bail!(
            "no configuration file at {} (create one with `usestats init --wwwroot URL`, or pass --config FILE)",
            path.display()
        );
    }
    // The error names the file and the key.
    Ok(Config::load(path)?)
}

pub(super) fn open(path: &Path) -> anyhow::Result<Arc<App>> {
    let config = load_config(path)?;
    init_logging(Some(&config), false);
    open_app(config, path)
}

/// The app of a loaded configuration: its databases and key pair.
pub(super) fn open_app(config: Config, path: &Path) -> anyhow::Result<Arc<App>> {
    App::open(config).with_context(|| {
        format!(
            "opening the databases and keys that {} configures",
            path.display()
        )
    })
}

pub(super) fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
            println!("{text}")
        }
        Err(e) => eprintln!("error: {e}"),
    }
}

/// Set once a command has printed its JSON answer: a failure after it (`compile --verify`
/// finding differences) must not add a second document to standard output.
pub(super) static JSON_PRINTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub(super) fn write_config(path: &Path, config: &Config) -> CmdResult {
    let header = "# usestats configuration. Every setting not written here takes its documented\n# default: see examples/usestats.toml for the full list with comments.\n\n";
    // Owner-only whatever the umask: a config may hold database passwords.
    crate::files::write_private(path, format!("{header}{}", config.to_toml()).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub(super) async fn find_peer(app: &Arc<App>, text: &str) -> anyhow::Result<Peer> {
    let wanted = Wwwroot::normalized(text);
    let lookup = wanted.clone();
    app.state
        .run(move |c| state::peer_by_wwwroot(c, &lookup))
        .await
        .with_context(|| format!("looking up peer {wanted}"))?
        .filter(|p| !p.is_all_hosts())
        .with_context(|| format!("no peer {wanted} (see `usestats peer list`)"))
}
