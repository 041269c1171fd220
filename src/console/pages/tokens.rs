//! Web-service tokens: the list (by prefix, never the token), creation (the token is on the
//! answer to the form, once, and on no page after), and revocation, as `usestats token
//! create|list|revoke` do.

use askama::Template;
use hyper::StatusCode;

use super::confirm::{self, Confirmation};
use super::overview::unavailable;
use super::peers::done_at;
use super::{html, html_with, layout, shown};
use crate::console::notice::Notice;
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
    form: TokenForm,
}

/// The token form as typed, and why it was refused (empty on a fresh page).
#[derive(Default)]
struct TokenForm {
    grant: String,
    label: String,
    expires: String,
    allowed_ips: String,
    error: String,
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
    chosen: bool,
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
    show(request, TokenForm::default(), StatusCode::OK).await
}

/// The tokens page with the form as `form` has it (`status` other than 200 when refused).
async fn show(request: &ConsoleRequest, form: TokenForm, status: StatusCode) -> Reply {
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
    html_with(
        status,
        &TokensPage {
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
                    chosen: form.grant == g.id.to_string(),
                })
                .collect(),
            form,
        },
    )
}

/// The tokens page again, its form as typed, saying why it was refused.
async fn refused(request: &ConsoleRequest, status: StatusCode, error: &str) -> Reply {
    let typed = |name: &str| request.field(name).to_string();
    let form = TokenForm {
        grant: typed("grant"),
        label: typed("label"),
        expires: typed("expires"),
        allowed_ips: typed("allowed_ips"),
        error: error.to_string(),
    };
    show(request, form, status).await
}

/// `POST /console/peers/tokens/create`: the answer is the only page that shows the token.
pub async fn create(request: &ConsoleRequest) -> Reply {
    let bad = StatusCode::BAD_REQUEST;
    let Ok(grant_id) = request.field("grant").parse::<i64>() else {
        return refused(request, bad, "Choose the grant the token stands for.").await;
    };
    let label = request.field("label").trim().to_string();
    let allowed_ips = request.field("allowed_ips").trim().to_string();
    let expires = match request.field("expires").trim() {
        "" => None,
        text => match crate::timefmt::parse_time(text) {
            Ok(at) => Some(at),
            Err(_) => {
                return refused(request, bad, "The expiry is a date, such as 2027-06-30.").await;
            }
        },
    };
    if let Some(at) = expires
        && at <= request.app.now()
    {
        return refused(
            request,
            bad,
            "That expiry is in the past: the token could never be used. Give a later date, or none for a token that does not expire.",
        )
        .await;
    }
    if let Err(e) = crate::ws::tokens::check_label(&label) {
        return refused(request, bad, &format!("Label: {e}.")).await;
    }
    if let Err(e) = crate::ws::tokens::validate_ranges(&allowed_ips) {
        return refused(request, bad, &format!("Allowed addresses: {e}")).await;
    }
    let grant = match request
        .app
        .state
        .run(move |c| state::grant_by_id(c, grant_id))
        .await
    {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return refused(
                request,
                StatusCode::NOT_FOUND,
                "That grant was removed meanwhile: choose another, or add it again under Grants.",
            )
            .await;
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

/// `POST /console/peers/tokens/revoke`, once confirmed.
pub async fn revoke(request: &ConsoleRequest) -> Reply {
    let Ok(id) = request.field("token").parse::<i64>() else {
        return super::peers::bad_request("The form names no token.");
    };
    let loaded = request
        .app
        .state
        .run(|c| Ok::<_, StoreError>((state::list_grants(c)?, state::list_tokens(c)?)))
        .await;
    let (grants, tokens) = match loaded {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let Some(token) = tokens.iter().find(|t| t.id == id && !t.revoked) else {
        return Reply::Error(
            StatusCode::NOT_FOUND,
            "There is no such active token (it may have been revoked meanwhile).".into(),
        );
    };
    let row = token_row(token, grants.iter().find(|g| g.id == token.grant_id));
    let named = if row.label.is_empty() {
        row.prefix.clone()
    } else {
        format!("{} ({})", row.prefix, row.label)
    };
    if !confirm::confirmed(request) {
        return confirm::page(
            request,
            Confirmation {
                title: format!("Revoke the token {named}?"),
                lines: vec![
                    format!(
                        "The token {named}, which calls the web services as {}, stops working at once.",
                        row.grant
                    ),
                    "It cannot be restored: whoever uses it needs a new token.".into(),
                    "The grant itself and its other tokens are not changed.".into(),
                ],
                action: "/console/peers/tokens/revoke",
                fields: vec![("token", id.to_string())],
                button: format!("Revoke {}", row.prefix),
                cancel: "/console/peers/tokens",
            },
        );
    }
    match request
        .app
        .state
        .run(move |c| state::revoke_token_by_id(c, id))
        .await
    {
        Ok(true) => {
            tracing::info!(account = %request.layout.user, token_id = id, "console: token revoked");
            done_at(
                request,
                "/console/peers/tokens",
                Notice::TokenRevoked,
                &named,
            )
        }
        Ok(false) => Reply::Error(
            StatusCode::NOT_FOUND,
            "There is no such active token.".into(),
        ),
        Err(e) => unavailable(e),
    }
}
