//! The window picker the learner and course pages share: `from` and `to` as the command line
//! reads `--from` and `--to` ([`crate::timefmt::window`]: dates or unix times, UTC; from the
//! beginning of the log to now by default; an explicit end before the start refused, E15).

use hyper::StatusCode;

use crate::console::{ConsoleRequest, Reply};
use crate::stats::Window;
use crate::timefmt::{self, WindowError};

/// The window a page asked for, and what its picker shows.
pub struct Picked {
    pub window: Window,
    /// The `from` and `to` fields as given (empty when absent), for links that keep the window.
    pub from_text: String,
    pub to_text: String,
    /// The values of the picker's date inputs (`YYYY-MM-DD`, or empty).
    pub from_date: String,
    pub to_date: String,
    /// The window in words: `2026-10-01 00:00:00Z → 2026-10-15 00:00:00Z`.
    pub described: String,
}

/// The window of `request`'s `from` and `to`, or the message page that says what is wrong.
pub fn pick(request: &ConsoleRequest) -> Result<Picked, Reply> {
    let now = request.app.now();
    let (from_text, to_text) = (request.query("from"), request.query("to"));
    let (from, to) = timefmt::window(from_text, to_text, now).map_err(|e| {
        Reply::Error(
            StatusCode::BAD_REQUEST,
            match e {
                WindowError::Reversed => format!(
                    "The window ends before it starts: to ({}) is earlier than from ({}). Pick an end on or after the start, or leave it empty for now.",
                    to_text.unwrap_or_default(),
                    from_text.unwrap_or_default()
                ),
                WindowError::NotATime(e) => format!("{e}."),
            },
        )
    })?;
    let as_date =
        |given: Option<&str>, t: i64| given.and_then(|_| timefmt::date(t)).unwrap_or_default();
    Ok(Picked {
        window: Window { from, to, now },
        from_text: from_text.unwrap_or_default().to_string(),
        to_text: to_text.unwrap_or_default().to_string(),
        from_date: as_date(from_text, from),
        to_date: as_date(to_text, to),
        described: format!(
            "{} → {}",
            if from == 0 {
                "the beginning of the log".to_string()
            } else {
                timefmt::time(from)
            },
            if to_text.is_none() {
                format!("now ({})", timefmt::time(to))
            } else {
                timefmt::time(to)
            }
        ),
    })
}

/// A console path with its query, each value encoded: `/console/course?course=2&sort=name`.
/// Empty values are left out.
pub fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(name, value);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// What the page says when a report could not be made: the database is away (try again), or a
/// failure that is logged and not shown (it may quote SQL).
pub fn failed(what: &str, unavailable: bool, error: &dyn std::fmt::Display) -> Reply {
    if unavailable {
        tracing::warn!(error = %error, "console: {what}: the source database is unavailable");
        Reply::Error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The source database is unavailable: try again in a moment.".into(),
        )
    } else {
        tracing::error!(error = %error, "console: {what} failed");
        Reply::Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The {what} could not be computed; the server's log says why."),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_their_values() {
        assert_eq!(
            href(
                "/console/course",
                &[("course", "a&b c"), ("from", ""), ("sort", "name")]
            ),
            "/console/course?course=a%26b+c&sort=name"
        );
        assert_eq!(
            href("/console/learner", &[("user", "")]),
            "/console/learner"
        );
    }
}
