//! Grants: who may see what, and which peers may relay for them. Adding one follows
//! `usestats grant add HOME USER [--site] [--course] [--via PEER]...` exactly: the same
//! store function, so the same checks (a home wwwroot, `--site` and/or `--course`, every
//! relay a registered live peer or `*`) and the same replacement of an existing grant.

use askama::Template;
use hyper::StatusCode;

use super::overview::unavailable;
use super::peers::bad_request;
use super::{html, layout, shown};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::store::StoreError;
use crate::store::state::{self, ANY_PEER, GrantError};

#[derive(Template)]
#[template(path = "console/grants.html")]
struct GrantsPage {
    layout: Layout,
    tab: &'static str,
    grants: Vec<GrantRow>,
    peers: Vec<PeerChoice>,
}

struct GrantRow {
    home_wwwroot: String,
    username: String,
    site: bool,
    course: bool,
    via: String,
    since: String,
}

struct PeerChoice {
    field: String,
    name: String,
    wwwroot: String,
}

/// The relays of a grant as `grant list` prints them.
fn via_text(via: &state::ViaList) -> String {
    if via.is_empty() {
        "home only".into()
    } else {
        via.to_string()
    }
}

/// `GET /console/peers/grants`.
pub async fn page(request: &ConsoleRequest) -> Reply {
    let loaded = request
        .app
        .state
        .run(|c| Ok::<_, StoreError>((state::list_grants(c)?, state::all_peers(c, false)?)))
        .await;
    let (grants, peers) = match loaded {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    html(&GrantsPage {
        layout: layout(request, "peers"),
        tab: "grants",
        grants: grants
            .iter()
            .map(|g| GrantRow {
                home_wwwroot: g.home_wwwroot.clone(),
                username: g.username.clone(),
                site: g.site,
                course: g.course,
                via: via_text(&g.via),
                since: shown::time(g.created_at),
            })
            .collect(),
        peers: peers
            .iter()
            .map(|p| PeerChoice {
                field: format!("via-{}", p.id),
                name: p.name.clone(),
                wwwroot: p.wwwroot.clone(),
            })
            .collect(),
    })
}

/// The relays a grant form ticked: `via-any` (`*`) and `via-ID` (a peer's wwwroot), in
/// the form's order. The store checks each, as it does `--via`.
fn ticked_via(request: &ConsoleRequest) -> Vec<String> {
    let mut via: Vec<(String, String)> = request
        .form
        .iter()
        .filter(|(name, value)| name.starts_with("via-") && !value.is_empty())
        .map(|(name, value)| {
            let value = if name == "via-any" {
                ANY_PEER.to_string()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect();
    via.sort();
    via.into_iter().map(|(_, v)| v).collect()
}

/// Why the grant form was refused, in the form's own terms.
fn form_message(refused: &GrantError) -> String {
    match refused {
        GrantError::Incomplete => {
            "Give the home wwwroot and a username (or * for everybody from that host).".into()
        }
        GrantError::HomeNotAWwwroot { given, problem } => {
            format!("Home wwwroot: `{given}` is not a Moodle wwwroot: it {problem}.")
        }
        GrantError::NoRights => "Tick site totals, course and activity detail, or both.".into(),
        GrantError::RelayNotAWwwroot { given, problem } => {
            format!("Relay `{given}` is not a peer wwwroot: it {problem}.")
        }
        GrantError::RelayRemoved(wwwroot) => {
            format!(
                "Relay {wwwroot} was removed meanwhile: add it again under Peers, or untick it."
            )
        }
        GrantError::RelayUnknown(wwwroot) => format!(
            "Relay {wwwroot} is not a registered peer: add it under Peers first, or tick any peer."
        ),
        GrantError::Store(e) => e.to_string(),
    }
}

/// `POST /console/peers/grants/add`.
pub async fn add(request: &ConsoleRequest) -> Reply {
    let home = request.field("home_wwwroot").trim().to_string();
    let username = request.field("username").trim().to_string();
    let site = request.field("site") == "1";
    let course = request.field("course") == "1";
    let via = ticked_via(request);
    let now = request.app.now();
    let (h, u) = (home.clone(), username.clone());
    let put = request
        .app
        .state
        .run(move |c| state::put_grant_via(c, &h, &u, site, course, &via, now))
        .await;
    match put {
        Ok(grant) => {
            tracing::info!(
                account = %request.layout.user,
                grant = %format!("{}@{}", grant.username, grant.home_wwwroot),
                site = grant.site,
                course = grant.course,
                via = %via_text(&grant.via),
                "console: grant set"
            );
            Reply::Redirect("/console/peers/grants".into())
        }
        Err(GrantError::Store(e)) => unavailable(e),
        Err(refused) => bad_request(&form_message(&refused)),
    }
}

/// `POST /console/peers/grants/remove`: the grant and the tokens bound to it, as
/// `usestats grant remove` does.
pub async fn remove(request: &ConsoleRequest) -> Reply {
    let home = request.field("home_wwwroot").to_string();
    let username = request.field("username").to_string();
    if home.is_empty() || username.is_empty() {
        return bad_request("The form names no grant.");
    }
    let (h, u) = (home.clone(), username.clone());
    match request
        .app
        .state
        .run(move |c| state::remove_grant(c, &h, &u))
        .await
    {
        Ok(true) => {
            tracing::info!(account = %request.layout.user, grant = %format!("{username}@{home}"), "console: grant removed");
            Reply::Redirect("/console/peers/grants".into())
        }
        Ok(false) => Reply::Error(
            StatusCode::NOT_FOUND,
            "There is no such grant (it may have been removed meanwhile).".into(),
        ),
        Err(e) => unavailable(e),
    }
}
