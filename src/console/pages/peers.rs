//! Peers: the list with each peer's services (publish and subscribe toggles), the form that
//! starts adding one (see `peer_add`), and removal.

use askama::Template;
use hyper::StatusCode;

use super::confirm::{self, Confirmation};
use super::overview::unavailable;
use super::{html_with, layout};
use crate::console::notice::{self, Notice};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::store::StoreError;
use crate::store::state::{self, Peer, PeerService};

#[derive(Template)]
#[template(path = "console/peers.html")]
struct PeersPage {
    layout: Layout,
    tab: &'static str,
    message: String,
    /// The demo database's hint after a registration, or empty.
    hint: String,
    all_hosts: PeerEntry,
    peers: Vec<PeerEntry>,
    form: AddForm,
}

/// The add-peer form as typed, and why it was refused (empty on a fresh page).
#[derive(Default)]
pub struct AddForm {
    pub wwwroot: String,
    pub name: String,
    pub application: String,
    pub ssl_verification: String,
    pub error: String,
}

/// A peer (or All Hosts) with the toggles of each service we offer.
struct PeerEntry {
    /// The id the forms send back; `all` for All Hosts.
    id: String,
    name: String,
    wwwroot: String,
    application: String,
    fingerprint: String,
    key_expires: String,
    services: Vec<ServiceToggles>,
}

struct ServiceToggles {
    service: &'static str,
    publish: bool,
    subscribe: bool,
    /// Set on the All Hosts row, so in force for this peer whatever its own row says.
    publish_all: bool,
    subscribe_all: bool,
}

fn toggles(
    offered: &[&'static str],
    own: &[PeerService],
    all_hosts: &[PeerService],
) -> Vec<ServiceToggles> {
    let find = |rows: &[PeerService], service: &str| {
        rows.iter()
            .find(|s| s.service == service)
            .map(|s| (s.publish, s.subscribe))
            .unwrap_or((false, false))
    };
    offered
        .iter()
        .map(|&service| {
            let (publish, subscribe) = find(own, service);
            let (publish_all, subscribe_all) = find(all_hosts, service);
            ServiceToggles {
                service,
                publish,
                subscribe,
                publish_all,
                subscribe_all,
            }
        })
        .collect()
}

fn entry(peer: &Peer, services: Vec<ServiceToggles>) -> PeerEntry {
    let info = crate::crypto::parse_cert_pem(&peer.public_key)
        .ok()
        .map(|c| crate::crypto::cert_info(&c));
    PeerEntry {
        id: peer.id.to_string(),
        name: peer.name.clone(),
        wwwroot: peer.wwwroot.clone(),
        application: peer.application.to_string(),
        fingerprint: info
            .map(|i| i.fingerprint_sha1)
            .unwrap_or_else(|| "-".into()),
        key_expires: super::shown::time(peer.public_key_expires),
        services,
    }
}

/// `GET /console/peers` (`?added=ID` after a registration).
pub async fn page(request: &ConsoleRequest) -> Reply {
    show(request, AddForm::default(), StatusCode::OK).await
}

/// The peers page, with the add form as `form` has it (`status` other than 200 when it was
/// refused).
pub async fn show(request: &ConsoleRequest, form: AddForm, status: StatusCode) -> Reply {
    let offered: Vec<&'static str> = request.app.services.list.iter().map(|s| s.name).collect();
    let added: Option<i64> = request.query("added").and_then(|v| v.parse().ok());
    let loaded = request
        .app
        .state
        .run(move |c| {
            let all = state::all_hosts(c)?;
            let all_services = state::own_services(c, all.id)?;
            let mut peers = Vec::new();
            for peer in state::all_peers(c, false)? {
                let own = state::own_services(c, peer.id)?;
                peers.push((peer, own));
            }
            let added = match added {
                Some(id) => state::peer_by_id(c, id)?,
                None => None,
            };
            Ok::<_, StoreError>((all_services, peers, added))
        })
        .await;
    let (all_services, peers, added) = match loaded {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let all_hosts = PeerEntry {
        id: "all".into(),
        name: "All hosts".into(),
        wwwroot: String::new(),
        application: String::new(),
        fingerprint: String::new(),
        key_expires: String::new(),
        services: toggles(&offered, &all_services, &[]),
    };
    let peers = peers
        .iter()
        .map(|(p, own)| entry(p, toggles(&offered, own, &all_services)))
        .collect();
    let hint = match &added {
        Some(p)
            if request.app.config.source.url.trim().is_empty()
                && !request.app.reports.knows_host(&p.wwwroot).await =>
        {
            format!(
                "The demo database has no people from {0} yet: nobody from there can call use_stats here until they have accounts. On the server, usestats demo --remote-host {0} adds some (an admin and a few learners).",
                p.wwwroot
            )
        }
        _ => String::new(),
    };
    html_with(
        status,
        &PeersPage {
            layout: layout(request, "peers"),
            tab: "peers",
            message: added
                .map(|p| {
                    format!(
                        "Registered {} ({}). Publish use_stats to it below so that it may call us.",
                        p.name, p.wwwroot
                    )
                })
                .unwrap_or_default(),
            hint,
            all_hosts,
            peers,
            form,
        },
    )
}

/// The live peer a form names by id, or All Hosts for `all`.
pub async fn form_peer(request: &ConsoleRequest, field: &str) -> Result<Peer, Reply> {
    let text = request.field(field).to_string();
    let id: Option<i64> = text.parse().ok();
    if text != "all" && id.is_none() {
        return Err(bad_request("The form names no peer."));
    }
    let found = request
        .app
        .state
        .run(move |c| match id {
            Some(id) => state::peer_by_id(c, id),
            None => state::all_hosts(c).map(Some),
        })
        .await;
    match found {
        Ok(Some(peer)) if !peer.deleted => Ok(peer),
        Ok(_) => Err(Reply::Error(
            StatusCode::NOT_FOUND,
            "There is no such peer (it may have been removed meanwhile).".into(),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

pub fn bad_request(message: &str) -> Reply {
    Reply::Error(StatusCode::BAD_REQUEST, message.into())
}

/// `POST /console/peers/service`: publish or subscribe one service for a peer (or All
/// Hosts), on or off, as `usestats peer publish|subscribe` does.
pub async fn set_service(request: &ConsoleRequest) -> Reply {
    let Some(service) = request
        .app
        .services
        .list
        .iter()
        .map(|s| s.name)
        .find(|name| *name == request.field("service"))
    else {
        return bad_request("We offer no such service.");
    };
    let publish = match request.field("side") {
        "publish" => true,
        "subscribe" => false,
        _ => return bad_request("Publish or subscribe?"),
    };
    let on = match request.field("on") {
        "1" => true,
        "0" => false,
        _ => return bad_request("On or off?"),
    };
    let peer = match form_peer(request, "peer").await {
        Ok(peer) => peer,
        Err(reply) => return reply,
    };
    let id = peer.id;
    let written = request
        .app
        .state
        .run(move |c| {
            if publish {
                state::set_service(c, id, service, Some(on), None)
            } else {
                state::set_service(c, id, service, None, Some(on))
            }
        })
        .await;
    match written {
        Ok(row) => {
            let who = if peer.is_all_hosts() {
                "all hosts"
            } else {
                peer.wwwroot.as_str()
            };
            let (done, about) = match (publish, on) {
                (true, true) => (Notice::Published, format!("{service} to {}", peer.name)),
                (true, false) => (Notice::Unpublished, format!("{service} to {}", peer.name)),
                (false, true) => (Notice::Subscribed, format!("{service} on {}", peer.name)),
                (false, false) => (Notice::Unsubscribed, format!("{service} on {}", peer.name)),
            };
            tracing::info!(
                account = %request.layout.user,
                peer = %who,
                service,
                publish = row.publish,
                subscribe = row.subscribe,
                "console: services changed"
            );
            done_at(request, "/console/peers", done, &about)
        }
        Err(e) => unavailable(e),
    }
}

/// A redirect to `path` whose page says what was `done` to `about`.
pub fn done_at(request: &ConsoleRequest, path: &str, done: Notice, about: &str) -> Reply {
    Reply::Redirect(notice::location(path, done, about, &request.layout.csrf))
}

/// `POST /console/peers/remove`: delete a peer, as `usestats peer remove` does (the row
/// stays for history; it can no longer call us or be called). Asks first.
pub async fn remove(request: &ConsoleRequest) -> Reply {
    let peer = match form_peer(request, "peer").await {
        Ok(peer) if !peer.is_all_hosts() => peer,
        Ok(_) => return bad_request("All Hosts cannot be removed."),
        Err(reply) => return reply,
    };
    if !confirm::confirmed(request) {
        return confirm::page(
            request,
            Confirmation {
                title: format!("Remove the peer {}?", peer.name),
                lines: vec![
                    format!(
                        "{} ({}) will no longer be able to call us, and we will no longer call it.",
                        peer.name, peer.wwwroot
                    ),
                    "Its services and its key are kept on record, but unused. To work with it again, add it again under Peers.".into(),
                    "Grants and tokens for its people are not changed.".into(),
                ],
                action: "/console/peers/remove",
                fields: vec![("peer", peer.id.to_string())],
                button: format!("Remove {}", peer.name),
                cancel: "/console/peers",
            },
        );
    }
    let id = peer.id;
    match request
        .app
        .state
        .run(move |c| state::delete_peer(c, id))
        .await
    {
        Ok(()) => {
            tracing::info!(account = %request.layout.user, peer = %peer.wwwroot, "console: peer removed");
            done_at(
                request,
                "/console/peers",
                Notice::PeerRemoved,
                &format!("{} ({})", peer.name, peer.wwwroot),
            )
        }
        Err(e) => unavailable(e),
    }
}
