//! `usestats keys generate|show|rotate`: our key pair.

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
    }
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
        app.keystore.dir().display()
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
