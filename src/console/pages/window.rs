//! The window picker the learner and course pages share: `from` and `to` as the command line
//! reads `--from` and `--to` ([`crate::timefmt::window`]: dates or unix times, UTC; a date as
//! `to` runs through the end of its day; from the beginning of the log to now by default; an
//! explicit end before the start refused, E15), and the preset windows as links.

use hyper::StatusCode;

use crate::console::{ConsoleRequest, Reply};
use crate::stats::Window;
use crate::timefmt::{self, Preset, WindowError};

/// The window a page asked for, and what its picker shows.
pub struct Picked {
    pub window: Window,
    /// The `from` and `to` fields as given (empty when absent), for links that keep the window.
    pub from_text: String,
    pub to_text: String,
    /// The values of the picker's date inputs (`YYYY-MM-DD`, or empty).
    pub from_date: String,
    pub to_date: String,
    /// The window in the words it was asked in: `1 Oct 2026 – 15 Oct 2026 (inclusive, days
    /// in UTC)`.
    pub described: String,
    /// Its first and last seconds: `2026-10-01 00:00:00Z → 2026-10-15 23:59:59Z`.
    pub exact: String,
    /// Links to the same page over each preset window.
    pub presets: Vec<PresetLink>,
}

/// The window a page answered, as it says it: in words, to the second, and in seconds for
/// scripts and tests.
#[derive(Debug, Clone)]
pub struct ShownWindow {
    pub described: String,
    pub exact: String,
    pub from: i64,
    pub to: i64,
}

impl Picked {
    pub fn shown(&self) -> ShownWindow {
        ShownWindow {
            described: self.described.clone(),
            exact: self.exact.clone(),
            from: self.window.from,
            to: self.window.to,
        }
    }
}

/// A preset window as a link: the page's own query with `from` and `to` set to the preset's
/// first and last days.
#[derive(Debug, Clone)]
pub struct PresetLink {
    pub label: String,
    pub href: String,
    pub from: String,
    pub to: String,
    /// The page shows this window now.
    pub current: bool,
}

/// The window of `request`'s `from` and `to`, or the message page that says what is wrong.
pub fn pick(request: &ConsoleRequest) -> Result<Picked, Reply> {
    let now = request.app.now();
    let (from_text, to_text) = (request.query("from"), request.query("to"));
    let span = timefmt::window(from_text, to_text, now).map_err(|e| {
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
    let (from_date, to_date) = (as_date(from_text, span.from), as_date(to_text, span.to));
    Ok(Picked {
        window: Window {
            from: span.from,
            to: span.to,
            now,
        },
        presets: presets(request, now, &from_date, &to_date),
        from_text: from_text.unwrap_or_default().to_string(),
        to_text: to_text.unwrap_or_default().to_string(),
        from_date,
        to_date,
        described: span.described(),
        exact: span.exact(),
    })
}

/// The preset windows (`timefmt::Preset::OFFERED`) as links to the page asked for, keeping
/// every other field of its query but the page number (a new window starts at the first page).
fn presets(request: &ConsoleRequest, now: i64, from: &str, to: &str) -> Vec<PresetLink> {
    let mut kept: Vec<(&str, &str)> = request
        .query
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "from" | "to" | "page"))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    kept.sort_unstable();
    Preset::OFFERED
        .iter()
        .filter_map(|preset| {
            let (first, last) = preset.days(now)?;
            let mut pairs = kept.clone();
            pairs.extend([("from", first.as_str()), ("to", last.as_str())]);
            Some(PresetLink {
                label: preset.label(),
                href: href(&request.path, &pairs),
                current: first == from && last == to,
                from: first,
                to: last,
            })
        })
        .collect()
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

/// The course page of course `id` over the window of `picked`.
pub fn course_href(id: i64, picked: &Picked) -> String {
    href(
        "/console/course",
        &[
            ("course", &format!("id:{id}")),
            ("from", &picked.from_text),
            ("to", &picked.to_text),
        ],
    )
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
