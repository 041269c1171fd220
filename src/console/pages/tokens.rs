//! Web-service tokens: the list (by prefix, never the token), creation (the token is on the
//! answer to the form, once, and on no page after), and revocation, as `usestats token
//! create|list|revoke` do.

use askama::Template;
use hyper::StatusCode;

use super::overview::unavailable;
use super::peers::bad_request;
use super::{html, layout, shown};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::store::StoreError;
use crate::store::state::{self, Grant, WsToken};
use crate::ws::tokens::TokenError;

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct TokensPage {
    layout: Layout,
    tab: &'static str,
    tokens: Vec<TokenRow>,
    grants: Vec<GrantChoice>,
}

#[derive(Template)]
#[template(path = "console/token_created.html")]
struct CreatedPage {
    layout: Layout,
    tab: &'static str,
    token: String,
    prefix: String,
    grant: String,
    label: String,
    expires: String,
}

struct TokenRow {
    id: i64,
    prefix: String,
    label: String,
    grant: String,
    created: String,
    expires: String,
    allowed_ips: String,
    last_used: String,
    revoked: bool,
}

struct GrantChoice {
    id: i64,
    text: String,
}

fn grant_text(grant: &Grant) -> String {
    format!("{}@{}", grant.username, grant.home_wwwroot)
}

fn token_row(token: &WsToken, grant: Option<&Grant>) -> TokenRow {
    TokenRow {
        id: token.id,
        prefix: format!("{}…", token.token_prefix),
        label: token.label.clone(),
        grant: grant.map(grant_text).unwrap_or_else(|| "-".into()),
        created: shown::time(token.created_at),
        expires: shown::maybe_time(token.expires_at, "never"),
        allowed_ips: if token.allowed_ips.is_empty() {
            "any".into()
        } else {
            token.allowed_ips.clone()
        },
        last_used: shown::maybe_time(token.last_used_at, "never"),
        revoked: token.revoked,
    }
}

/// `GET /console/peers/tokens`.
pub async fn page(request: &ConsoleRequest) -> Reply {
    let loaded = request
        .app
        .state
        .run(|c| {
            let grants = state::list_grants(c)?;
            let tokens = state::list_tokens(c)?;
            Ok::<_, StoreError>((grants, tokens))
        })
        .await;
    let (grants, tokens) = match loaded {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    html(&TokensPage {
        layout: layout(request, "peers"),
        tab: "tokens",
        tokens: tokens
            .iter()
            .map(|t| token_row(t, grants.iter().find(|g| g.id == t.grant_id)))
            .collect(),
        grants: grants
            .iter()
            .map(|g| GrantChoice {
                id: g.id,
                text: grant_text(g),
            })
            .collect(),
    })
}

/// `POST /console/peers/tokens/create`: the answer is the only page that shows the token.
pub async fn create(request: &ConsoleRequest) -> Reply {
    let Ok(grant_id) = request.field("grant").parse::<i64>() else {
        return bad_request("Choose the grant the token stands for.");
    };
    let label = request.field("label").trim().to_string();
    let allowed_ips = request.field("allowed_ips").trim().to_string();
    let expires = match request.field("expires").trim() {
        "" => None,
        text => match crate::timefmt::parse_time(text) {
            Ok(at) => Some(at),
            Err(_) => return bad_request("The expiry is a date: YYYY-MM-DD."),
        },
    };
    if let Some(at) = expires
        && at <= request.app.now()
    {
        return bad_request(
            "That expiry is in the past: the token could never be used (give a later date, or none for a token that does not expire).",
        );
    }
    if let Err(e) = crate::ws::tokens::check_label(&label) {
        return bad_request(&format!("Label: {e}."));
    }
    if let Err(e) = crate::ws::tokens::validate_ranges(&allowed_ips) {
        return bad_request(&format!("Allowed addresses: {e}"));
    }
    let grant = match request
        .app
        .state
        .run(move |c| state::grant_by_id(c, grant_id))
        .await
    {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return Reply::Error(
                StatusCode::NOT_FOUND,
                "There is no such grant (it may have been removed meanwhile).".into(),
            );
        }
        Err(e) => return unavailable(e),
    };
    let created = crate::ws::tokens::create(
        &request.app,
        &grant.home_wwwroot,
        &grant.username,
        &label,
        expires,
        &allowed_ips,
    )
    .await;
    match created {
        Ok((token, row)) => {
            tracing::info!(
                account = %request.layout.user,
                grant = %grant_text(&grant),
                prefix = %row.token_prefix,
                "console: token created"
            );
            html(&CreatedPage {
                layout: layout(request, "peers"),
                tab: "tokens",
                token,
                prefix: format!("{}…", row.token_prefix),
                grant: grant_text(&grant),
                label: row.label,
                expires: shown::maybe_time(row.expires_at, "never"),
            })
        }
        Err(TokenError::Store(e)) => unavailable(e),
        Err(TokenError::NoGrant { user, home }) => Reply::Error(
            StatusCode::NOT_FOUND,
            format!(
                "There is no grant for {user}@{home} any more: add it again under Grants, then create the token."
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "console: token not created");
            Reply::Error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The token could not be created.".into(),
            )
        }
    }
}

/// `POST /console/peers/tokens/revoke`.
pub async fn revoke(request: &ConsoleRequest) -> Reply {
    let Ok(id) = request.field("token").parse::<i64>() else {
        return bad_request("The form names no token.");
    };
    match request
        .app
        .state
        .run(move |c| state::revoke_token_by_id(c, id))
        .await
    {
        Ok(true) => {
            tracing::info!(account = %request.layout.user, token_id = id, "console: token revoked");
            Reply::Redirect("/console/peers/tokens".into())
        }
        Ok(false) => Reply::Error(
            StatusCode::NOT_FOUND,
            "There is no such active token.".into(),
        ),
        Err(e) => unavailable(e),
    }
}
