//! Grants: who may see what, and which peers may relay for them. Adding one follows
//! `usestats grant add HOME USER [--site] [--course] [--via PEER]...` exactly: the same
//! store function, so the same checks (a home wwwroot, `--site` and/or `--course`, every
//! relay a registered live peer or `*`) and the same replacement of an existing grant.

use askama::Template;
use hyper::StatusCode;

use super::confirm::{self, Confirmation};
use super::overview::unavailable;
use super::peers::{bad_request, done_at};
use super::{html_with, layout, shown};
use crate::console::notice::Notice;
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
    form: GrantForm,
}

/// The grant form as typed, and why it was refused (empty on a fresh page).
#[derive(Default)]
struct GrantForm {
    home_wwwroot: String,
    username: String,
    site: bool,
    course: bool,
    any_peer: bool,
    error: String,
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
    ticked: bool,
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
    show(request, GrantForm::default(), StatusCode::OK).await
}

/// The grants page with the form as `form` has it (`status` other than 200 when refused).
async fn show(request: &ConsoleRequest, form: GrantForm, status: StatusCode) -> Reply {
    let loaded = request
        .app
        .state
        .run(|c| Ok::<_, StoreError>((state::list_grants(c)?, state::all_peers(c, false)?)))
        .await;
    let (grants, peers) = match loaded {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    html_with(
        status,
        &GrantsPage {
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
                .map(|p| {
                    let field = format!("via-{}", p.id);
                    PeerChoice {
                        ticked: !form.error.is_empty() && !request.field(&field).is_empty(),
                        field,
                        name: p.name.clone(),
                        wwwroot: p.wwwroot.clone(),
                    }
                })
                .collect(),
            form,
        },
    )
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
        GrantError::HomeNotAWwwroot { given, problem } => format!(
            "Home wwwroot: “{given}” is not the address of a Moodle site: it {problem}. Type the address of the person's Moodle, such as https://moodle.example.org."
        ),
        GrantError::NoRights => "Tick site totals, course and activity detail, or both.".into(),
        GrantError::RelayNotAWwwroot { given, problem } => format!(
            "The relay “{given}” is not the address of a peer: it {problem}. Untick it."
        ),
        GrantError::RelayRemoved(wwwroot) => {
            format!(
                "Relay {wwwroot} was removed meanwhile: add it again under Peers, or untick it."
            )
        }
        GrantError::RelayUnknown(wwwroot) => format!(
            "The relay {wwwroot} is not one of our peers: add it under Peers, or tick “any peer” instead."
        ),
        GrantError::Store(_) => {
            "The console cannot reach its own database just now: nothing was changed. Try again in a moment.".into()
        }
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
            done_at(
                request,
                "/console/peers/grants",
                Notice::GrantSaved,
                &format!("{}@{}", grant.username, grant.home_wwwroot),
            )
        }
        Err(GrantError::Store(e)) => unavailable(e),
        Err(refused) => {
            let form = GrantForm {
                home_wwwroot: home,
                username,
                site,
                course,
                any_peer: !request.field("via-any").is_empty(),
                error: form_message(&refused),
            };
            show(request, form, StatusCode::BAD_REQUEST).await
        }
    }
}

/// `POST /console/peers/grants/remove`: the grant and the tokens bound to it, as
/// `usestats grant remove` does, once confirmed.
pub async fn remove(request: &ConsoleRequest) -> Reply {
    let home = request.field("home_wwwroot").to_string();
    let username = request.field("username").to_string();
    if home.is_empty() || username.is_empty() {
        return bad_request("The form names no grant.");
    }
    if !confirm::confirmed(request) {
        return ask_removal(request, home, username).await;
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
            done_at(
                request,
                "/console/peers/grants",
                Notice::GrantRemoved,
                &format!("{username}@{home}"),
            )
        }
        Ok(false) => Reply::Error(
            StatusCode::NOT_FOUND,
            "There is no such grant (it may have been removed meanwhile).".into(),
        ),
        Err(e) => unavailable(e),
    }
}

/// The confirmation of a grant's removal: who loses what, and how many tokens go with it.
async fn ask_removal(request: &ConsoleRequest, home: String, username: String) -> Reply {
    let wanted = crate::wwwroot::Wwwroot::normalized(&home);
    let loaded = request
        .app
        .state
        .run(|c| Ok::<_, StoreError>((state::list_grants(c)?, state::list_tokens(c)?)))
        .await;
    let (grants, tokens) = match loaded {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let Some(grant) = grants.iter().find(|g| {
        g.username == username && crate::wwwroot::Wwwroot::normalized(&g.home_wwwroot) == wanted
    }) else {
        return Reply::Error(
            StatusCode::NOT_FOUND,
            "There is no such grant (it may have been removed meanwhile).".into(),
        );
    };
    let active = tokens
        .iter()
        .filter(|t| t.grant_id == grant.id && !t.revoked)
        .count();
    let all = tokens.iter().filter(|t| t.grant_id == grant.id).count();
    let who = format!("{}@{}", grant.username, grant.home_wwwroot);
    let tokens_line = match (all, active) {
        (0, _) => "It has no web-service tokens.".to_string(),
        (1, 1) => "Its 1 web-service token is deleted with it and stops working.".to_string(),
        (n, a) => format!(
            "Its {n} web-service token{} {} deleted with it ({a} of them active, which stop working).",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" }
        ),
    };
    let rights = match (grant.site, grant.course) {
        (true, true) => "site totals and course detail",
        (true, false) => "site totals",
        _ => "course detail",
    };
    confirm::page(
        request,
        Confirmation {
            title: format!("Remove the grant for {who}?"),
            lines: vec![
                format!("{who} will no longer see {rights} through this site."),
                tokens_line,
            ],
            action: "/console/peers/grants/remove",
            fields: vec![
                ("home_wwwroot", grant.home_wwwroot.clone()),
                ("username", grant.username.clone()),
            ],
            button: format!("Remove the grant for {who}"),
            cancel: "/console/peers/grants",
        },
    )
}
