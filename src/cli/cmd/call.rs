//! `usestats call`: one method on a peer, the decoded result printed as JSON.

use std::sync::Arc;

use anyhow::{Context, bail};

use super::CmdResult;
use super::common::{find_peer, print_json};
use crate::app::App;
use crate::xmlrpc::Value;

pub(super) async fn run(
    app: &Arc<App>,
    peer: &str,
    method: &str,
    params: Option<&str>,
) -> CmdResult {
    let peer = find_peer(app, peer).await?;
    let params: Vec<Value> = match params {
        None => Vec::new(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(items)) => items.iter().map(Value::from_json).collect(),
            Ok(_) => bail!("parameters must be a JSON array, e.g. '[\"a\", 2]'"),
            Err(e) => return Err(e).context("parameters are not valid JSON"),
        },
    };
    let value = app
        .client
        .call(&peer, method, params)
        .await
        .with_context(|| format!("calling {method} on {}", peer.wwwroot))?;
    print_json(&value.to_json());
    Ok(())
}
