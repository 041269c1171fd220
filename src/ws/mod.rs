//! Moodle-style REST web services (`/webservice/rest/server.php`) for the same numbers the
//! MNET methods give, in seconds (docs/engine.md §1.7 with D6–D9, E7, E9, E10, E14, E15).
//!
//! Requests look exactly like a Moodle REST client's: `wstoken`, `wsfunction`,
//! `moodlewsrestformat=json|xml`, form-encoded parameters with PHP array notation
//! (`uids[0]=…`). Errors are Moodle's exception documents.

mod dedication;
mod error;
mod handlers;
mod params;
pub mod tokens;
mod xml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::app::App;
use crate::audit::{Call, Channel};

pub use error::WsError;
pub use handlers::check_parameters;
pub use params::Params;
pub use xml::to_moodle_xml;

pub const GET_USER_STATS: &str = "block_use_stats_get_user_stats";
pub const GET_USERS_STATS: &str = "block_use_stats_get_users_stats";
pub const GET_USERS_COURSE_STATS: &str = "block_use_stats_get_users_course_stats";

/// Form bodies are small; anything larger is not a use_stats request.
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

/// What a REST call answers: always HTTP 200, as Moodle does, errors included.
#[derive(Debug)]
pub struct WsAnswer {
    pub content_type: &'static str,
    pub body: String,
}

/// One REST call: `parts` and `body` as the HTTP layer read them (within
/// [`MAX_FORM_BYTES`] and the body deadline).
pub async fn endpoint(
    app: Arc<App>,
    parts: &http::request::Parts,
    body: bytes::Bytes,
    remote: Option<SocketAddr>,
) -> WsAnswer {
    let started = Instant::now();
    let query = parts.uri.query().unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&body).into_owned();
    let params = Params::parse(&[&query, &body]);
    let format = match params.get("moodlewsrestformat") {
        Some("json") => Format::Json,
        _ => Format::Xml,
    };
    // Client-supplied: bounded before it reaches the log and the audit.
    let function: String = params
        .get("wsfunction")
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    let (result, caller, target) = handlers::call(&app, &params, remote).await;
    let status = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{} {}", e.exception, e.errorcode),
    };
    let answer = match (&result, format) {
        (Ok(value), Format::Json) => value.to_string(),
        (Ok(value), Format::Xml) => to_moodle_xml(value),
        (Err(e), Format::Json) => e.to_json().to_string(),
        (Err(e), Format::Xml) => e.to_xml(),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let served =
        [GET_USER_STATS, GET_USERS_STATS, GET_USERS_COURSE_STATS].contains(&function.as_str());
    app.metrics.record(
        Channel::Ws,
        if served || function.is_empty() {
            &function
        } else {
            crate::metrics::OTHER_METHOD
        },
        if result.is_ok() { "ok" } else { "error" },
        started.elapsed(),
    );
    // Never the token: the audit and the log name the grant instead.
    tracing::info!(function = %crate::text::untrusted::field(&function), caller = %crate::text::untrusted::field(&caller), status = %status, latency_ms, "ws call");
    app.audit.record(Call {
        channel: Channel::Ws,
        peer: "",
        remote_addr: remote,
        method: &function,
        caller: &caller,
        target: &target,
        status: &status,
        latency_ms,
        bytes_in: query.len() + body.len(),
        bytes_out: answer.len(),
        // A caller is named only once its token was accepted.
        verified: !caller.is_empty(),
    });
    let content_type = match format {
        Format::Json => "application/json",
        Format::Xml => "application/xml; charset=utf-8",
    };
    WsAnswer {
        content_type,
        body: answer,
    }
}
