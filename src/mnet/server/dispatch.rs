//! Running a verified call: the publish/subscribe checks (7012, 707), the `system/*` methods,
//! and the registered services' methods.

use std::sync::Arc;

use crate::mnet::faults;
use crate::mnet::known_peers::KnownPeer;
use crate::mnet::node::Node;
use crate::mnet::services::CallContext;
use crate::store::state::{self};
use crate::xmlrpc::{Fault, MethodCall, Value};

pub(super) async fn dispatch(
    node: &Arc<Node>,
    context: CallContext,
    call: MethodCall,
    known: Option<Arc<KnownPeer>>,
) -> Result<Value, Fault> {
    let rows = visible_services(node, context.peer.id, known).await?;
    if let Some(system) = call.name.strip_prefix("system/") {
        return system_method(node, &rows, system, &call.params);
    }
    let Some((service, method)) = node.services.find(&call.name) else {
        return Err(Fault::new(
            faults::NO_SUCH_METHOD,
            format!("No such method: {}", crate::text::echo::echo(&call.name)),
        ));
    };
    // As Moodle: no service row for the caller (or All Hosts) is 7012, a row that does not
    // publish is 707.
    match rows.iter().find(|r| r.service == service.name) {
        None => {
            return Err(Fault::new(
                faults::NO_SUCH_METHOD,
                format!(
                    "No service {} is set up for {}",
                    service.name, context.peer.wwwroot
                ),
            ));
        }
        Some(row) if !row.publish => {
            return Err(Fault::new(
                faults::NOT_PUBLISHED,
                format!(
                    "The service {} is not published to {}",
                    service.name, context.peer.wwwroot
                ),
            ));
        }
        Some(_) => {}
    }
    (method.handler)(node.clone(), context, call.params).await
}

/// Services offered to this peer: each published or subscribed row, ours or All Hosts'. As
/// loaded with the peer when it is known in memory, else from the state database.
async fn visible_services(
    node: &Arc<Node>,
    peer_id: i64,
    known: Option<Arc<KnownPeer>>,
) -> Result<KnownServices, Fault> {
    // Only while the entry is still current: a request can wait (a slow replay check) long
    // enough for a change to the peer's services to commit meanwhile.
    if let Some(fresh) = known
        .filter(|k| k.peer.id == peer_id)
        .and_then(|k| node.known_peers.cached(&k.peer.wwwroot))
        .filter(|k| k.peer.id == peer_id)
    {
        return Ok(KnownServices::Cached(fresh));
    }
    node.state
        .run(move |c| state::effective_services(c, peer_id))
        .await
        .map(KnownServices::Read)
        .map_err(|_| faults::internal("state database unavailable"))
}

/// The service rows, borrowed from the known peer's entry or read for this call.
enum KnownServices {
    Cached(Arc<KnownPeer>),
    Read(Vec<state::PeerService>),
}

impl std::ops::Deref for KnownServices {
    type Target = [state::PeerService];
    fn deref(&self) -> &[state::PeerService] {
        match self {
            KnownServices::Cached(known) => &known.services,
            KnownServices::Read(rows) => rows,
        }
    }
}

fn system_method(
    node: &Arc<Node>,
    rows: &[state::PeerService],
    name: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    let published: Vec<&str> = rows
        .iter()
        .filter(|r| r.publish)
        .map(|r| r.service.as_str())
        .collect();
    let published_method = |path: &str| {
        node.services
            .find(path)
            .filter(|(s, _)| published.contains(&s.name))
            .map(|(_, m)| m)
    };
    match name {
        "listServices" => {
            // Strings, as Moodle's database layer returns them (vector 04a).
            let flag = |b: bool| Value::String(if b { "1" } else { "0" }.into());
            let list = rows
                .iter()
                .filter(|r| r.publish || r.subscribe)
                .map(|r| {
                    let apiversion = node
                        .services
                        .service(&r.service)
                        .map(|s| s.apiversion)
                        .unwrap_or(1);
                    Value::Struct(vec![
                        ("name".into(), Value::String(r.service.clone())),
                        ("apiversion".into(), Value::String(apiversion.to_string())),
                        ("publish".into(), flag(r.publish)),
                        ("subscribe".into(), flag(r.subscribe)),
                    ])
                })
                .collect();
            Ok(Value::Array(list))
        }
        "listMethods" => {
            let only = params.first().and_then(Value::as_str);
            // Declaration order, which is the order Moodle answers with (vector 04b).
            let paths: Vec<Value> = node
                .services
                .list
                .iter()
                .filter(|s| published.contains(&s.name))
                .filter(|s| only.is_none_or(|o| o == s.name))
                .flat_map(|s| s.methods.iter().map(|m| Value::from(m.path)))
                .collect();
            Ok(Value::Array(paths))
        }
        "methodSignature" => Ok(params
            .first()
            .and_then(Value::as_str)
            .and_then(published_method)
            .map(|m| m.signature())
            .unwrap_or(Value::Bool(false))),
        "methodHelp" => Ok(params
            .first()
            .and_then(Value::as_str)
            .and_then(published_method)
            .map(|m| Value::from(m.help))
            .unwrap_or(Value::Bool(false))),
        "listFiles" | "retrieveFile" => Err(Fault::new(
            faults::UNIMPLEMENTED_SYSTEM_METHOD,
            format!(
                "system/{} is not implemented",
                crate::text::echo::echo(name)
            ),
        )),
        _ => Err(Fault::new(
            faults::UNKNOWN_SYSTEM_METHOD,
            format!(
                "Unknown system method: system/{}",
                crate::text::echo::echo(name)
            ),
        )),
    }
}
