//! `usestats console user add|list|remove`: who may log in to the console.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::output::{self, Table};
use crate::cli::{ConsoleAction, ConsoleUserAction};
use crate::console::auth;
use crate::store::state;

/// Shorter passwords are refused: the console shows who may see whose numbers.
const MIN_PASSWORD_CHARS: usize = 10;

pub(super) async fn run(app: &Arc<App>, action: ConsoleAction, json_out: bool) -> CmdResult {
    let ConsoleAction::User { action } = action;
    match action {
        ConsoleUserAction::Add { name } => add(app, &name, json_out).await,
        ConsoleUserAction::List => list(app, json_out).await,
        ConsoleUserAction::Remove { name } => remove(app, &name, json_out).await,
    }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ").context("reading the password")?;
        let again = rpassword::prompt_password("again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

async fn add(app: &Arc<App>, name: &str, json_out: bool) -> CmdResult {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        bail!("an account name is 1 to 100 printable characters");
    }
    let password = read_password()?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("a console password has at least {MIN_PASSWORD_CHARS} characters");
    }
    let hashed = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .context("hashing the password")??;
    let (owned, now) = (name.to_string(), app.now());
    let created = app
        .state
        .run(move |c| state::set_console_user(c, &owned, &hashed, now))
        .await
        .context("writing the account")?;
    if json_out {
        print_json(&json!({"name": name, "created": created}));
    } else if created {
        println!("added console account {name}");
    } else {
        println!("new password for console account {name}; its sessions are ended");
    }
    Ok(())
}

async fn list(app: &Arc<App>, json_out: bool) -> CmdResult {
    let users = app
        .state
        .run(state::console_users)
        .await
        .context("reading the accounts")?;
    if json_out {
        print_json(&json!(users));
        return Ok(());
    }
    let mut table = Table::new(&["name", "created", "last login"]);
    for u in &users {
        table.row(vec![
            u.name.clone(),
            output::time(u.created_at),
            u.last_login_at
                .map(output::time)
                .unwrap_or_else(|| "never".into()),
        ]);
    }
    println!("{}", table.render());
    Ok(())
}

async fn remove(app: &Arc<App>, name: &str, json_out: bool) -> CmdResult {
    let owned = name.to_string();
    let removed = app
        .state
        .run(move |c| state::remove_console_user(c, &owned))
        .await
        .context("removing the account")?;
    if !removed {
        bail!("no console account {name}");
    }
    if json_out {
        print_json(&json!({"removed": name}));
    } else {
        println!("removed console account {name} and ended its sessions");
    }
    Ok(())
}
