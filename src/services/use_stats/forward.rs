//! Forwarding a call whose `whereroot` names another peer (one hop), and what of the remote
//! answer may be relayed.

use serde_json::json;

use super::Site;
use super::*;
use crate::store::state;
use crate::text::echo::echo;
use crate::wwwroot::Wwwroot;
use crate::xmlrpc::Value;

/// Is `whereroot` another host? Empty or our own wwwroot (normalised, D13) means here.
pub(super) fn forward_target(site: &Site, whereroot: &str) -> Option<String> {
    let target = Wwwroot::normalized(whereroot);
    (!target.is_empty() && target != Wwwroot::normalized(site.wwwroot()))
        .then_some(target.into_string())
}

/// The struct a relay sends on: the person as the relay knows them (§1.4.2), with the
/// relay itself as the calling host.
pub(super) fn relay_caller(site: &Site, caller: &Caller) -> Value {
    Value::Struct(vec![
        (
            "username".into(),
            Value::String(caller.user.username.clone()),
        ),
        (
            "remoteuserhostroot".into(),
            Value::String(caller.home_wwwroot_on_record.clone()),
        ),
        ("remotehostroot".into(), Value::from(site.wwwroot())),
    ])
}

/// Forward a call to the host that holds the data (one hop: the forwarded call carries an
/// empty whereroot, D13), and map its answer as §1.4.2 says.
pub(super) async fn forward(
    site: &Site,
    remote: &str,
    method: &str,
    params: Vec<Value>,
    test_point: bool,
) -> Answer {
    let wwwroot = remote.to_string();
    let peer = match site
        .state
        .run::<_, crate::store::StoreError, _>(move |conn| {
            let peer = state::peer_by_wwwroot(conn, &wwwroot)?;
            match peer {
                Some(p) if !p.deleted => {
                    let subscribed = state::is_subscribed(conn, p.id, SERVICE)?;
                    Ok(Some((p, subscribed)))
                }
                _ => Ok(None),
            }
        })
        .await
    {
        Err(e) => return data_unavailable(e),
        Ok(None) => {
            return Answer::fail(
                RPC_FAILURE,
                format!(
                    "whereroot {} is not a known MNET peer of this host.",
                    echo(remote)
                ),
            );
        }
        Ok(Some((_, false))) => {
            return Answer::fail(
                RPC_FAILURE,
                format!(
                    "This host does not subscribe to use_stats on {}.",
                    echo(remote)
                ),
            );
        }
        Ok(Some((peer, true))) => peer,
    };
    match site.client.call(&peer, method, params).await {
        Err(e) => Answer::fail(RPC_FAILURE, format!("REMOTE : {}", e.relayable())),
        Ok(value) => match Answer::from_value(&value) {
            None => Answer::fail(
                RPC_FAILURE,
                format!("REMOTE : {remote} answered something that is not a use_stats answer"),
            ),
            Some(remote_answer) if remote_answer.status == RPC_TEST && test_point => {
                Answer::ok(format!(
                    "Remote Test Point : {}",
                    remote_answer.message.unwrap_or_default()
                ))
            }
            Some(remote_answer) if remote_answer.status == RPC_SUCCESS => {
                Answer::ok(remote_answer.message.unwrap_or_default())
            }
            Some(remote_answer) => Answer {
                status: RPC_FAILURE,
                errors: vec![
                    json!("Remote application error : "),
                    serde_json::Value::Array(relayed_errors(&remote_answer.errors)),
                ],
                message: None,
            },
        },
    }
}

/// Errors relayed from the data host are passed on: the remote host signed them. Bounded all
/// the same, so one peer cannot make our answer huge, and each entry is plain one-line text.
pub(super) const RELAYED_ERRORS_MAX: usize = 20;

pub(super) fn relayed_errors(errors: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let max_chars = crate::text::from_peer::FAULT_TEXT_MAX_CHARS;
    let mut relayed: Vec<serde_json::Value> = errors
        .iter()
        .take(RELAYED_ERRORS_MAX)
        .map(|e| {
            let text = match e {
                serde_json::Value::String(s) => crate::text::from_peer::one_line(s, max_chars),
                other => crate::text::from_peer::one_line(&other.to_string(), max_chars),
            };
            json!(text)
        })
        .collect();
    if errors.len() > RELAYED_ERRORS_MAX {
        relayed.push(json!(format!(
            "({} more errors not relayed)",
            errors.len() - RELAYED_ERRORS_MAX
        )));
    }
    relayed
}
