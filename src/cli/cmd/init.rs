//! `usestats init`: write a configuration file and make sure our key pair names its wwwroot.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::{init_logging, open_app, print_json, write_config};
use crate::app::App;
use crate::cli::InitArgs;
use crate::cli::output;
use crate::config::Config;
use crate::crypto;
use crate::wwwroot;

pub(super) fn run(path: &Path, args: InitArgs, json_out: bool) -> CmdResult {
    init_logging(None, false);
    if path.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite it)",
            path.display()
        );
    }
    let wwwroot = args.wwwroot.trim_end_matches('/').to_string();
    if let Some(problem) = wwwroot::problem(&wwwroot) {
        bail!("--wwwroot {wwwroot}: {problem}");
    }
    let mut config = Config::for_wwwroot(&wwwroot);
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(listen) = args.console_listen {
        config.console.listen = listen;
    }
    if let Some(name) = args.name {
        // Peers show it as our page title and it goes into our certificate: one line of
        // text, of a length Moodle's own site names keep to.
        if name.chars().any(char::is_control) || name.chars().count() > 255 {
            bail!("--name: one line of at most 255 characters, without control characters");
        }
        config.site.name = name;
    }
    config.path = path.to_path_buf();
    config.base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    config.validate()?;
    write_config(path, &config)?;
    let app = open_app(config, path)?;
    let replaced = replace_foreign_key(&app)?;
    let info = app.keyring().current.info();
    if json_out {
        print_json(
            &json!({"config": path, "wwwroot": wwwroot, "certificate": info, "replaced_certificate_of": replaced}),
        );
    } else {
        println!("wrote {}", path.display());
        if let Some(old) = &replaced {
            println!(
                "keys         the key pair in place named {old}: a new one was generated for {wwwroot} (the old one is archived)"
            );
        }
        println!("wwwroot      {wwwroot}");
        println!("keys         {}", app.key_home.describe());
        println!("fingerprint  {}", info.fingerprint_sha1);
        println!("expires      {}", output::time(info.not_after));
        println!("\nnext: `usestats demo` for demo data, `usestats serve` to run the peer.");
    }
    Ok(())
}

/// `init --force` over an existing key directory: a certificate that names another wwwroot
/// is useless to us (peers check it against the wwwroot they know us by, as Moodle's
/// `check_credentials` does), so it is rotated away. `init` is the command that sets the
/// wwwroot; refusing here would leave the operator a config and keys that disagree, with
/// `keys rotate` as the only way out. Rotation archives the old key, so nothing is lost.
/// Returns the wwwroot the replaced certificate named.
fn replace_foreign_key(app: &App) -> anyhow::Result<Option<String>> {
    let current = app.keyring().current.clone();
    if app.keys_generated_now || crypto::check_credentials(&current.cert, app.wwwroot()).is_ok() {
        return Ok(None);
    }
    let info = current.info();
    let named = info
        .subject_alt_name
        .or(info.common_name)
        .unwrap_or_else(|| "another host".into());
    app.rotate_keys()
        .with_context(|| format!("replacing the key pair that names {named}"))?;
    Ok(Some(named))
}
