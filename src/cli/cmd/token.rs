//! `usestats token create|list|revoke`: web-service tokens.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::TokenAction;
use crate::cli::output::{self, Table};
use crate::store::state;
use crate::ws::tokens::TokenError;

pub(super) async fn run(app: &Arc<App>, action: TokenAction, json_out: bool) -> CmdResult {
    match action {
        TokenAction::Create {
            wwwroot,
            username,
            label,
            expires,
            allowed_ips,
        } => {
            create(
                app,
                wwwroot,
                username,
                label,
                expires,
                allowed_ips,
                json_out,
            )
            .await
        }
        TokenAction::List => list(app, json_out).await,
        TokenAction::Revoke { token } => revoke(app, token).await,
    }
}

async fn create(
    app: &Arc<App>,
    wwwroot: String,
    username: String,
    label: String,
    expires: Option<String>,
    allowed_ips: String,
    json_out: bool,
) -> CmdResult {
    let expires = expires.as_deref().map(output::parse_time).transpose()?;
    if let Some(at) = expires
        && at <= app.now()
    {
        bail!(
            "--expires {} is in the past: the token could never be used (give a later date, or no --expires for a token that does not expire)",
            output::time(at)
        );
    }
    crate::ws::tokens::validate_ranges(&allowed_ips).context("--allowed-ips")?;
    crate::ws::tokens::check_label(&label).map_err(|e| anyhow::anyhow!("--label: {e}"))?;
    let (plain, created) =
        crate::ws::tokens::create(app, &wwwroot, &username, &label, expires, &allowed_ips)
            .await
            .map_err(|e| match e {
                TokenError::NoGrant { user, home } => anyhow::anyhow!(
                    "no grant for {user}@{home}: add one first (`usestats grant add {home} {user} --course`)"
                ),
                e => e.into(),
            })
            .with_context(|| format!("creating a token for {username}@{wwwroot}"))?;
    if json_out {
        print_json(&json!({"token": plain, "id": created.id, "prefix": created.token_prefix}));
    } else {
        println!("token {plain}");
        println!(
            "(shown once: store it now; `usestats token list` shows it as {}…)",
            created.token_prefix
        );
    }
    Ok(())
}

async fn list(app: &Arc<App>, json_out: bool) -> CmdResult {
    let rows = app
        .state
        .run::<_, crate::store::StoreError, _>(|c| {
            let tokens = state::list_tokens(c)?;
            let mut out = Vec::new();
            for t in tokens {
                let grant = state::grant_by_id(c, t.grant_id)?;
                out.push((t, grant));
            }
            Ok(out)
        })
        .await
        .context("listing tokens")?;
    if json_out {
        print_json(
            &rows
                .iter()
                .map(|(t, g)| json!({"token": t, "grant": g}))
                .collect::<Vec<_>>(),
        );
        return Ok(());
    }
    let mut table = Table::new(&[
        "id",
        "prefix",
        "grant",
        "label",
        "created",
        "expires",
        "allowed ips",
        "last used",
        "state",
    ]);
    for (t, g) in rows {
        table.row(vec![
            t.id.to_string(),
            format!("{}…", t.token_prefix),
            g.map(|g| format!("{}@{}", g.username, g.home_wwwroot))
                .unwrap_or_else(|| "-".into()),
            t.label,
            output::time(t.created_at),
            t.expires_at
                .map(output::time)
                .unwrap_or_else(|| "never".into()),
            if t.allowed_ips.is_empty() {
                "any".into()
            } else {
                t.allowed_ips
            },
            t.last_used_at
                .map(output::time)
                .unwrap_or_else(|| "-".into()),
            if t.revoked {
                "revoked".into()
            } else {
                "active".into()
            },
        ]);
    }
    if table.is_empty() {
        println!("no tokens yet: `usestats token create WWWROOT USERNAME`");
    } else {
        print!("{}", table.render());
    }
    Ok(())
}

async fn revoke(app: &Arc<App>, token: String) -> CmdResult {
    let t = token.trim_end_matches('…').to_string();
    let n = app
        .state
        .run(move |c| state::revoke_token(c, &t))
        .await
        .with_context(|| format!("revoking token {token}"))?;
    if n == 0 {
        bail!("no active token {token}");
    }
    println!("revoked {n} token(s)");
    Ok(())
}
