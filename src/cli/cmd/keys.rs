//! `usestats keys generate|show|rotate|rewrap|kek-generate`: our key pair and, with a shared
//! state, the key-encryption key that seals it.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::KeysAction;
use crate::cli::output::{self, Table};

pub(super) async fn run(app: &Arc<App>, action: KeysAction, json_out: bool) -> CmdResult {
    match action {
        KeysAction::Generate { force } => generate(app, force, json_out).await,
        KeysAction::Show { pem } => show(app, pem, json_out).await,
        KeysAction::Rotate => rotate(app, json_out).await,
        KeysAction::Rewrap => rewrap(app, json_out).await,
        KeysAction::KekGenerate { path } => kek_generate(&path, json_out),
    }
}

async fn rewrap(app: &Arc<App>, json_out: bool) -> CmdResult {
    let rewrapping = app.clone();
    let resealed = tokio::task::spawn_blocking(move || rewrapping.key_home.rewrap())
        .await
        .context("rewrapping our keys")?
        .context("rewrapping our keys")?;
    if json_out {
        print_json(&json!({"resealed": resealed, "keys": app.key_home.describe()}));
    } else {
        println!(
            "resealed {resealed} key pair(s); every key pair is now sealed under {}",
            app.key_home.describe()
        );
    }
    Ok(())
}

pub(super) fn kek_generate(path: &std::path::Path, json_out: bool) -> CmdResult {
    if path.exists() {
        bail!(
            "{} exists already: a key-encryption key is never overwritten",
            path.display()
        );
    }
    let kek = crate::keys::write_new_kek(path).context("writing the key-encryption key")?;
    if json_out {
        print_json(&json!({"path": path.display().to_string(), "id": kek.id()}));
    } else {
        println!(
            "wrote key-encryption key {} to {} (mode 0600)",
            kek.id(),
            path.display()
        );
    }
    Ok(())
}

async fn generate(app: &Arc<App>, force: bool, json_out: bool) -> CmdResult {
    // Opening the app generates the first key pair when there is none.
    if !app.keys_generated_now {
        if !force {
            bail!("a key pair exists already (use --force to replace it; the old one is archived)");
        }
        app.rotate_keys().context("replacing our key pair")?;
    }
    show(app, false, json_out).await
}

async fn rotate(app: &Arc<App>, json_out: bool) -> CmdResult {
    app.rotate_keys().context("rotating our key pair")?;
    if !json_out {
        println!("rotated: peers that still hold the old certificate get 7025 and follow.");
    }
    show(app, false, json_out).await
}

async fn show(app: &Arc<App>, pem: bool, json_out: bool) -> CmdResult {
    let ring = app.keyring();
    let current = ring.current.info();
    let archived: Vec<_> = ring.archived.iter().map(|id| id.info()).collect();
    if json_out {
        print_json(
            &json!({"current": current, "archived": archived, "pem": ring.current.cert_pem}),
        );
        return Ok(());
    }
    println!("subject      {}", current.subject);
    println!("fingerprint  {}", current.fingerprint_sha1);
    println!(
        "valid        {} → {}",
        output::time(current.not_before),
        output::time(current.not_after)
    );
    println!(
        "key          RSA {} bits, {}",
        current.key_bits,
        app.key_home.describe()
    );
    let mut table = Table::new(&["archived fingerprint", "valid from", "valid to"]);
    for info in &archived {
        table.row(vec![
            info.fingerprint_sha1.clone(),
            output::time(info.not_before),
            output::time(info.not_after),
        ]);
    }
    if !table.is_empty() {
        println!("\n{}", table.render());
    }
    if pem {
        print!("\n{}", ring.current.cert_pem);
    }
    Ok(())
}
