//! The overview: our key, every peer with its health and services, calls per hour from the
//! audit log, and the doctor's checks.

use askama::Template;
use hyper::StatusCode;

use super::calls_chart::{self, CallsChart};
use super::{html, layout, shown};
use crate::console::{ConsoleRequest, Layout, Reply};
use crate::health::Check;
use crate::store::StoreError;
use crate::store::state::{self, Peer, PeerService};

/// The chart's window: the last three days.
const CHART_HOURS: i64 = 72;
/// Groups (hour × peer × status) the chart reads at most.
const CHART_GROUPS: i64 = 20_000;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    layout: Layout,
    fingerprint: String,
    subject: String,
    expires: String,
    days_left: i64,
    archived: usize,
    peers: Vec<PeerRow>,
    calls: CallsChart,
    checks: Vec<Check>,
    peers_checked: bool,
}

/// A peer as the overview shows it.
pub struct PeerRow {
    pub name: String,
    pub wwwroot: String,
    pub application: String,
    /// `ok`, `deleted`, `key expired`, `error`, `never contacted`.
    pub status: &'static str,
    /// The CSS class for the status: good, warn or bad.
    pub status_class: &'static str,
    pub last_contact: String,
    pub clock_offset: String,
    pub key_expires: String,
    pub last_error: String,
    pub published: String,
    pub subscribed: String,
}

fn peer_row(peer: &Peer, services: &[PeerService], now: i64) -> PeerRow {
    let key_expired = peer.public_key_expires != 0 && peer.public_key_expires < now;
    let failing =
        peer.last_error.is_some() && peer.last_error_time.unwrap_or(0) >= peer.last_connect_time;
    let (status, status_class) = if peer.deleted {
        ("deleted", "muted")
    } else if key_expired {
        ("key expired", "bad")
    } else if failing {
        ("error", "bad")
    } else if peer.last_connect_time == 0 {
        ("never contacted", "warn")
    } else {
        ("ok", "good")
    };
    let names = |wanted: fn(&PeerService) -> bool| {
        let list: Vec<&str> = services
            .iter()
            .filter(|s| wanted(s))
            .map(|s| s.service.as_str())
            .collect();
        if list.is_empty() {
            "-".to_string()
        } else {
            list.join(", ")
        }
    };
    PeerRow {
        name: peer.name.clone(),
        wwwroot: peer.wwwroot.clone(),
        application: peer.application.to_string(),
        status,
        status_class,
        last_contact: shown::time(peer.last_connect_time),
        clock_offset: shown::offset(peer.clock_offset),
        key_expires: shown::time(peer.public_key_expires),
        last_error: match (&peer.last_error, peer.last_error_time) {
            (Some(e), Some(at)) => format!("{} ({e})", shown::time(at)),
            (Some(e), None) => e.clone(),
            _ => "-".into(),
        },
        published: names(|s| s.publish),
        subscribed: names(|s| s.subscribe),
    }
}

/// Every peer, deleted ones too, with its services (its own rows merged with All Hosts').
async fn peer_rows(request: &ConsoleRequest) -> Result<Vec<PeerRow>, StoreError> {
    let now = request.app.now();
    let peers = request
        .app
        .state
        .run(|c| {
            let peers = state::all_peers(c, true)?;
            let mut out = Vec::new();
            for peer in peers {
                let services = state::effective_services(c, peer.id)?;
                out.push((peer, services));
            }
            Ok::<_, StoreError>(out)
        })
        .await?;
    Ok(peers.iter().map(|(p, s)| peer_row(p, s, now)).collect())
}

/// `GET /console/`; `POST /console/checks` shows the same page with the peers checked too
/// (a keyswap and a call each: not something a page view should set off).
pub async fn page(request: &ConsoleRequest, check_peers: bool) -> Reply {
    let app = &request.app;
    let now = app.now();
    let info = app.keyring().current.info();
    let archived = app.keyring().archived.len();
    let peers = match peer_rows(request).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    let end = (now.div_euclid(3600) + 1) * 3600;
    let since = end - CHART_HOURS * 3600;
    let hourly = app
        .state
        .run(move |c| state::audit_calls_per_hour(c, since, end, CHART_GROUPS))
        .await;
    let hourly = match hourly {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    let truncated = hourly.len() as i64 >= CHART_GROUPS;
    let checks = crate::health::running_checks(app, check_peers).await;
    html(&Overview {
        layout: layout(request, "overview"),
        fingerprint: info.fingerprint_sha1,
        subject: info.subject,
        expires: shown::time(info.not_after),
        days_left: shown::days_until(info.not_after, now),
        archived,
        peers,
        calls: calls_chart::build(&hourly, now, CHART_HOURS, truncated),
        checks,
        peers_checked: check_peers,
    })
}

pub fn unavailable(e: StoreError) -> Reply {
    tracing::warn!(error = %e, "console: the state database did not answer");
    Reply::Error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The state database is unavailable.".into(),
    )
}
