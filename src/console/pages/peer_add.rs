//! Adding a peer, as `usestats peer add` does: a keyswap fetches the certificate, a page
//! shows its fingerprint and subject, and a second form confirms. The wwwroot travels in
//! that form; on confirmation the certificate is fetched again and must be the one shown,
//! so a key swapped between the two steps is refused, not registered.

use askama::Template;
use hyper::StatusCode;

use super::peers::{self, AddForm, bad_request};
use super::{html, layout, shown, wording};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::mnet::registration::{self, Registration, RegistrationError, Sponsor, Vetted};
use crate::store::state::{Application, SslVerification};

#[derive(Template)]
#[template(path = "console/peer_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    tab: &'static str,
    wwwroot: String,
    name: String,
    application: &'static str,
    ssl_verification: i32,
    subject: String,
    fingerprint: String,
    digest: String,
    not_before: String,
    not_after: String,
    expired: bool,
    key_bits: u32,
}

/// What both steps read from their form.
struct Asked {
    wwwroot: String,
    name: String,
    application: Application,
    ssl: SslVerification,
}

/// What the form asks for, or why it cannot be done (the status and the words).
fn asked(request: &ConsoleRequest) -> Result<Asked, (StatusCode, String)> {
    let wwwroot =
        registration::operator_wwwroot(request.field("wwwroot").trim(), request.app.wwwroot())
            .map_err(|e| wording::registration(&e))?;
    let bad = |text: &str| (StatusCode::BAD_REQUEST, text.to_string());
    let application = match request.field("application") {
        "" => Application::Moodle,
        named => Application::parse(named)
            .map_err(|_| bad("Choose Moodle or Mahara as the application."))?,
    };
    let ssl = match request.field("ssl_verification") {
        "" => SslVerification::Full,
        level => SslVerification::parse(level)
            .map_err(|_| bad("Choose one of the TLS verification levels offered."))?,
    };
    let name = request.field("name").trim().to_string();
    if name.chars().count() > 255 {
        return Err(bad("A name has at most 255 characters: shorten it."));
    }
    Ok(Asked {
        wwwroot,
        name,
        application,
        ssl,
    })
}

async fn fetch(request: &ConsoleRequest, asked: &Asked) -> Result<Vetted, RegistrationError> {
    registration::fetch(
        &request.app.client,
        &asked.wwwroot,
        &asked.application,
        asked.ssl,
    )
    .await
    .inspect_err(|e| {
        tracing::info!(wwwroot = %asked.wwwroot, error = %e, "console: keyswap failed");
    })
}

/// The peers page again, its add form as typed, saying why it was refused.
async fn refused(request: &ConsoleRequest, status: StatusCode, error: String) -> Reply {
    let typed = |name: &str| request.field(name).to_string();
    let form = AddForm {
        wwwroot: typed("wwwroot"),
        name: typed("name"),
        application: typed("application"),
        ssl_verification: typed("ssl_verification"),
        error,
    };
    peers::show(request, form, status).await
}

/// `POST /console/peers/add`: keyswap, then the page that asks for confirmation; when
/// either fails, the form again with what was typed and why.
pub async fn start(request: &ConsoleRequest) -> Reply {
    let asked = match asked(request) {
        Ok(asked) => asked,
        Err(e) => {
            let (status, text) = e;
            return refused(request, status, text).await;
        }
    };
    let vetted = match fetch(request, &asked).await {
        Ok(vetted) => vetted,
        Err(e) => {
            let (status, text) = wording::registration(&e);
            return refused(request, status, text).await;
        }
    };
    let info = &vetted.info;
    html(&ConfirmPage {
        layout: layout(request, "peers"),
        tab: "peers",
        wwwroot: asked.wwwroot.clone(),
        name: asked.name.clone(),
        application: asked.application.name(),
        ssl_verification: asked.ssl.level(),
        subject: info.subject.clone(),
        fingerprint: info.fingerprint_sha1.clone(),
        digest: vetted.digest(),
        not_before: shown::time(info.not_before),
        not_after: shown::time(info.not_after),
        expired: vetted.expired(request.app.now()),
        key_bits: info.key_bits,
    })
}

/// `POST /console/peers/confirm`: fetch the certificate again; register the peer only if
/// it is the one that was shown.
pub async fn confirm(request: &ConsoleRequest) -> Reply {
    let asked = match asked(request) {
        Ok(asked) => asked,
        Err((status, text)) => return Reply::Error(status, text),
    };
    let shown_digest = request.field("certificate").to_string();
    if shown_digest.is_empty() {
        return bad_request("The form names no certificate to confirm.");
    }
    let vetted = match fetch(request, &asked).await {
        Ok(vetted) => vetted,
        Err(e) => {
            let (status, text) = wording::registration(&e);
            return Reply::Error(status, text);
        }
    };
    if !crate::console::auth::same_token(&vetted.digest(), &shown_digest) {
        tracing::warn!(
            account = %request.layout.user,
            wwwroot = %asked.wwwroot,
            now_serving = %vetted.info.fingerprint_sha1,
            "console: peer not registered: its certificate changed between display and confirmation"
        );
        return Reply::Error(
            StatusCode::CONFLICT,
            format!(
                "Not registered: {} now serves another certificate (SHA-1 fingerprint {}) than the one you confirmed. Start again and compare the new fingerprint with the one its administrator sees.",
                asked.wwwroot, vetted.info.fingerprint_sha1
            ),
        );
    }
    if vetted.expired(request.app.now()) && request.field("allow_expired") != "1" {
        return bad_request(
            "The certificate has expired: ask the peer's administrator to renew the site's key (Moodle renews it on cron), or go back and tick \"register it anyway\".",
        );
    }
    let registered = registration::register(
        &request.app.client,
        &request.app.state,
        Registration {
            vetted,
            application: asked.application.to_string(),
            name: (!asked.name.is_empty()).then(|| asked.name.clone()),
            ssl_verification: asked.ssl,
            sponsor: Sponsor::Operator,
        },
        request.app.now(),
    )
    .await;
    match registered {
        Ok(Some(peer)) => {
            tracing::info!(account = %request.layout.user, peer = %peer.wwwroot, "console: peer registered");
            Reply::Redirect(format!("/console/peers?added={}", peer.id))
        }
        Ok(None) => Reply::Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The peer was not stored.".into(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "console: peer not stored");
            let (status, text) = wording::registration(&e);
            Reply::Error(status, text)
        }
    }
}
