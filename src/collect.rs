//! Fan-out: ask every subscribed peer for one user's time, concurrently, and merge the
//! answers into one report per host plus a total. One slow or dead peer never delays the
//! others beyond its own timeout, because each call runs in its own task with its own
//! deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Serialize;

use crate::app::App;
use crate::mnet::client::ClientError;
use crate::services::use_stats::{self, Answer};
use crate::store::StoreError;
use crate::store::state::{self, Peer};
use crate::xmlrpc::Value;

/// Why the peers to ask could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} is not a registered peer")]
    UnknownPeer(String),
}

/// What is wrong with a `<USE_STATS>` message a peer sent. Texts quoted from the message
/// are cut to one short line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UseStatsError {
    #[error("not well-formed XML: {0}")]
    NotWellFormed(String),
    #[error("unexpected element <{name}> in <{parent}>")]
    UnexpectedElement { name: String, parent: String },
    #[error("more than one <USER> element")]
    SecondUser,
    #[error("more than one site total <USER><ELAPSED>")]
    SecondSiteTotal,
    #[error("{what} is not a non-negative whole number: `{shown}`")]
    NotMinutes { what: &'static str, shown: String },
    #[error("{what} is out of range (at most {MAX_REPORTED_MINUTES} minutes): `{shown}`")]
    TooManyMinutes { what: &'static str, shown: String },
    #[error("a course with more than one <ELAPSED>")]
    SecondCourseElapsed,
    #[error("a course without <ELAPSED>")]
    CourseWithoutElapsed,
    #[error("no <USE_STATS> element")]
    NoRoot,
    #[error("no site total <USER><ELAPSED>")]
    NoSiteTotal,
    #[error("<EMPTYSET> together with data")]
    EmptySetWithData,
    #[error("more than one <USE_STATS> element")]
    SecondRoot,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PeerStatus {
    Ok,
    Error,
    Timeout,
}

#[derive(Debug, Clone, Serialize)]
pub struct CourseMinutes {
    pub name: String,
    pub shortname: String,
    pub idnumber: String,
    pub minutes: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerResult {
    pub wwwroot: String,
    pub status: PeerStatus,
    pub latency_ms: u64,
    /// Site total in minutes, when the host answered with data.
    pub minutes: Option<i64>,
    pub courses: Vec<CourseMinutes>,
    /// The host has no logs for the user in the window.
    pub empty: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Collection {
    /// Which rule produced the numbers (docs/engine.md §8): MNET `get_stats` answers use_stats.
    pub estimator: &'static str,
    pub username: String,
    pub caller: String,
    pub scope: i64,
    pub timefrom: i64,
    pub hosts: Vec<PeerResult>,
    pub total_minutes: i64,
    pub elapsed_ms: u64,
}

/// What a collected answer's numbers are: each host's `get_stats`, which is use_stats'
/// (block_use_stats on a Moodle, `use_stats.main v1` on usestats), in whole minutes.
pub const COLLECTED_ESTIMATOR: &str = "use_stats (each host's MNET get_stats: block_use_stats on Moodle, use_stats.main v1 on usestats; whole minutes)";

/// The peers we subscribe to use_stats on, or the named ones (which must exist).
pub async fn target_peers(app: &Arc<App>, selection: &str) -> Result<Vec<Peer>, CollectError> {
    let selection = selection.trim().to_string();
    app.state
        .run(move |conn| {
            let peers = state::all_peers(conn, false)?;
            if selection == "all" {
                let mut chosen = Vec::new();
                for peer in peers {
                    if state::is_subscribed(conn, peer.id, use_stats::SERVICE)? {
                        chosen.push(peer);
                    }
                }
                return Ok(chosen);
            }
            let mut chosen = Vec::new();
            for wanted in selection
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
            {
                let normalised = crate::wwwroot::Wwwroot::normalized(wanted);
                match peers.iter().find(|p| p.wwwroot == normalised) {
                    Some(peer) => chosen.push(peer.clone()),
                    None => return Err(CollectError::UnknownPeer(wanted.to_string())),
                }
            }
            Ok(chosen)
        })
        .await
}

pub fn caller_struct(username: &str, home: &str, calling_host: &str) -> Value {
    Value::Struct(vec![
        ("username".into(), Value::from(username)),
        ("remoteuserhostroot".into(), Value::from(home)),
        ("remotehostroot".into(), Value::from(calling_host)),
    ])
}

/// Ask each peer concurrently.
pub async fn collect(
    app: &Arc<App>,
    peers: Vec<Peer>,
    caller: (&str, &str),
    username: &str,
    scope: i64,
    timefrom: i64,
) -> Collection {
    let started = Instant::now();
    let caller_value = caller_struct(caller.0, caller.1, app.wwwroot());
    let mut tasks = Vec::new();
    for peer in peers {
        let app = app.clone();
        let params = vec![
            caller_value.clone(),
            Value::from(username),
            Value::from(""),
            Value::Int(scope),
            Value::Int(timefrom),
        ];
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            let result = app.client.call(&peer, use_stats::GET_STATS, params).await;
            (peer.wwwroot.clone(), begun.elapsed(), result)
        }));
    }
    let mut hosts = Vec::new();
    for task in tasks {
        let Ok((wwwroot, latency, result)) = task.await else {
            continue;
        };
        hosts.push(peer_result(wwwroot, latency, result));
    }
    hosts.sort_by(|a, b| a.wwwroot.cmp(&b.wwwroot));
    let total_minutes = checked_total(&mut hosts);
    Collection {
        estimator: COLLECTED_ESTIMATOR,
        username: username.to_string(),
        caller: format!("{}@{}", caller.0, caller.1),
        scope,
        timefrom,
        hosts,
        total_minutes,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// The sum of the hosts' totals. Each is bounded, so this cannot overflow for any real number
/// of peers; were it to, the host that overflows is reported as an error and left out.
fn checked_total(hosts: &mut [PeerResult]) -> i64 {
    let mut total: i64 = 0;
    for host in hosts.iter_mut() {
        let Some(minutes) = host.minutes else {
            continue;
        };
        match total.checked_add(minutes) {
            Some(sum) => total = sum,
            None => {
                host.status = PeerStatus::Error;
                host.minutes = None;
                host.error = Some("its total overflows the sum".into());
            }
        }
    }
    total
}

pub fn peer_result(
    wwwroot: String,
    latency: Duration,
    result: Result<Value, ClientError>,
) -> PeerResult {
    let latency_ms = latency.as_millis() as u64;
    let failed = |status, error: String| PeerResult {
        wwwroot: wwwroot.clone(),
        status,
        latency_ms,
        minutes: None,
        courses: Vec::new(),
        empty: false,
        error: Some(error),
    };
    let value = match result {
        Ok(value) => value,
        Err(e) if e.is_timeout() => return failed(PeerStatus::Timeout, e.to_string()),
        Err(e) => return failed(PeerStatus::Error, e.to_string()),
    };
    let Some(answer) = Answer::from_value(&value) else {
        return failed(PeerStatus::Error, "not a use_stats answer".into());
    };
    if answer.status != use_stats::RPC_SUCCESS {
        return failed(
            PeerStatus::Error,
            format!(
                "status {}: {}",
                answer.status,
                flatten_errors(&answer.errors)
            ),
        );
    }
    let message = answer.message.unwrap_or_default();
    match read_use_stats(&message) {
        Ok(parsed) => PeerResult {
            wwwroot,
            status: PeerStatus::Ok,
            latency_ms,
            minutes: Some(parsed.minutes),
            courses: parsed.courses,
            empty: parsed.empty,
            error: None,
        },
        Err(problem) => failed(
            PeerStatus::Error,
            format!("unusable USE_STATS message: {problem}"),
        ),
    }
}

/// A peer's error list as one bounded line of plain text.
fn flatten_errors(errors: &[serde_json::Value]) -> String {
    let joined = errors
        .iter()
        .take(20)
        .map(|e| match e {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    crate::text::from_peer::one_line(&joined, crate::text::from_peer::FAULT_TEXT_MAX_CHARS)
}

#[derive(Default)]
pub struct ParsedStats {
    pub minutes: i64,
    pub courses: Vec<CourseMinutes>,
    pub empty: bool,
}

/// No count of minutes a peer reports can exceed ten years of them: anything larger is a
/// lie or garbage, and bounding it keeps every sum far from overflow.
pub const MAX_REPORTED_MINUTES: i64 = 10 * 366 * 24 * 60;

/// The elements a `<USE_STATS>` message may hold (docs/engine.md §1.4.3), by parent.
fn allowed_child(parent: &str, name: &str) -> bool {
    matches!(
        (parent, name),
        ("", "USE_STATS")
            | ("USE_STATS", "EMPTYSET" | "USER" | "COURSES")
            | (
                "USER",
                "USERNAME" | "FIRSTNAME" | "LASTNAME" | "FROM" | "ELAPSED"
            )
            | ("COURSES", "COURSE")
            | (
                "COURSE",
                "NAME" | "SHORTNAME" | "IDNUMBER" | "ELAPSED" | "MODULES"
            )
            | ("MODULES", "MODULE")
            | ("MODULE", "NAME" | "TYPE" | "IDNUMBER" | "ELAPSED")
    )
}

/// A count of minutes as a peer must send it: digits only, within [`MAX_REPORTED_MINUTES`].
fn minutes_value(text: &str, what: &'static str) -> Result<i64, UseStatsError> {
    let digits = text.trim();
    let shown = crate::text::from_peer::one_line(digits, 24);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UseStatsError::NotMinutes { what, shown });
    }
    digits
        .parse::<i64>()
        .ok()
        .filter(|m| *m <= MAX_REPORTED_MINUTES)
        .ok_or(UseStatsError::TooManyMinutes { what, shown })
}

/// Read a `<USE_STATS>` message (ours or the PHP plugin's).
pub fn parse_use_stats(message: &str) -> Option<ParsedStats> {
    read_use_stats(message).ok()
}

/// Read and check a `<USE_STATS>` message: exactly the elements of the format, one site total,
/// one total per course, every count a bounded non-negative integer. The error names the
/// first problem.
pub fn read_use_stats(message: &str) -> Result<ParsedStats, UseStatsError> {
    let mut reader = Reader::from_str(message);
    let mut reading = Reading::default();
    loop {
        let event = reader.read_event().map_err(|e| {
            UseStatsError::NotWellFormed(crate::text::from_peer::one_line(&e.to_string(), 120))
        })?;
        match event {
            Event::Start(e) => reading.start(&e.local_name().as_ref().to_ascii_uppercase())?,
            Event::Empty(e) => reading.empty(&e.local_name().as_ref().to_ascii_uppercase())?,
            Event::Text(t) => reading.text.push_str(&t),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match &*r {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        _ => String::new(),
                    },
                };
                reading.text.push_str(&resolved);
            }
            Event::End(_) => reading.end()?,
            Event::Eof => break,
            _ => {}
        }
    }
    reading.finish()
}

/// A `<USE_STATS>` message as it is read, element by element.
#[derive(Default)]
struct Reading {
    path: Vec<String>,
    parsed: ParsedStats,
    site_total: Option<i64>,
    roots: usize,
    /// The course being read, and whether its ELAPSED was seen.
    current: Option<(CourseMinutes, bool)>,
    text: String,
}

impl Reading {
    /// An element may open only where the format puts it.
    fn enter(&self, name: &str) -> Result<(), UseStatsError> {
        let parent = self.path.last().map(String::as_str).unwrap_or("");
        if allowed_child(parent, name) {
            Ok(())
        } else {
            Err(UseStatsError::UnexpectedElement {
                name: crate::text::from_peer::one_line(name, 40),
                parent: crate::text::from_peer::one_line(parent, 40),
            })
        }
    }

    fn start(&mut self, name: &str) -> Result<(), UseStatsError> {
        self.enter(name)?;
        match name {
            "USE_STATS" => self.roots += 1,
            "USER" if self.site_total.is_some() => {
                return Err(UseStatsError::SecondUser);
            }
            "COURSE" => {
                self.current = Some((
                    CourseMinutes {
                        name: String::new(),
                        shortname: String::new(),
                        idnumber: String::new(),
                        minutes: 0,
                    },
                    false,
                ))
            }
            _ => {}
        }
        self.path.push(name.to_string());
        self.text.clear();
        Ok(())
    }

    fn empty(&mut self, name: &str) -> Result<(), UseStatsError> {
        self.enter(name)?;
        match name {
            "EMPTYSET" => self.parsed.empty = true,
            "USE_STATS" => self.roots += 1,
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), UseStatsError> {
        let name = self.path.pop().unwrap_or_default();
        let parent = self.path.last().map(String::as_str).unwrap_or("");
        match (parent, name.as_str()) {
            ("USER", "ELAPSED") => {
                if self.site_total.is_some() {
                    return Err(UseStatsError::SecondSiteTotal);
                }
                self.site_total = Some(minutes_value(&self.text, "the site total")?);
            }
            ("MODULE", "ELAPSED") => {
                minutes_value(&self.text, "a module's minutes")?;
            }
            ("COURSE", field) => self.course_field(field)?,
            (_, "COURSE") => match self.current.take() {
                Some((course, true)) => self.parsed.courses.push(course),
                _ => return Err(UseStatsError::CourseWithoutElapsed),
            },
            _ => {}
        }
        self.text.clear();
        Ok(())
    }

    fn course_field(&mut self, field: &str) -> Result<(), UseStatsError> {
        let Some((course, seen_elapsed)) = self.current.as_mut() else {
            return Ok(());
        };
        let text = &self.text;
        let field_text = || crate::text::from_peer::one_line(text, 255);
        match field {
            "NAME" => course.name = field_text(),
            "SHORTNAME" => course.shortname = field_text(),
            "IDNUMBER" => course.idnumber = field_text(),
            "ELAPSED" => {
                if *seen_elapsed {
                    return Err(UseStatsError::SecondCourseElapsed);
                }
                course.minutes = minutes_value(text, "a course's minutes")?;
                *seen_elapsed = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<ParsedStats, UseStatsError> {
        let mut parsed = self.parsed;
        match (self.roots, self.site_total, parsed.empty) {
            (0, _, _) => Err(UseStatsError::NoRoot),
            (1, Some(minutes), false) => {
                parsed.minutes = minutes;
                Ok(parsed)
            }
            (1, None, true) if parsed.courses.is_empty() => Ok(parsed),
            (1, None, false) => Err(UseStatsError::NoSiteTotal),
            (1, _, _) => Err(UseStatsError::EmptySetWithData),
            _ => Err(UseStatsError::SecondRoot),
        }
    }
}

/// This host's own numbers for the same user, in the same shape as a peer's.
pub async fn local_result(app: &Arc<App>, username: &str, scope: i64, timefrom: i64) -> PeerResult {
    let started = Instant::now();
    let value = use_stats::local_stats_value(
        &use_stats::Site {
            node: app.node.clone(),
            source: app.source.clone(),
            reports: app.reports.clone(),
        },
        username,
        use_stats::Scope::from_plugin(scope),
        timefrom,
    )
    .await;
    peer_result(app.wwwroot().to_string(), started.elapsed(), Ok(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_plugin_message() {
        let message = "<USE_STATS>\n<USER>\n\t<USERNAME>admin</USERNAME>\n\t<FIRSTNAME>Admin</FIRSTNAME>\n\t<LASTNAME>User</LASTNAME>\n\t<FROM>0</FROM>\n\t<ELAPSED>142</ELAPSED>\n\n</USER><COURSES>\n<COURSE>\n\t<NAME>Fran&#231;ais &amp; &#220;bung</NAME>\n\t<SHORTNAME>MNET101</SHORTNAME>\n\t<IDNUMBER>C-MNET-101</IDNUMBER>\n\t<ELAPSED>97</ELAPSED>\n\n</COURSE>\n\n</COURSES>\n\n</USE_STATS>";
        let parsed = parse_use_stats(message).unwrap();
        assert_eq!(parsed.minutes, 142);
        assert_eq!(parsed.courses.len(), 1);
        assert_eq!(parsed.courses[0].name, "Français & Übung");
        assert_eq!(parsed.courses[0].minutes, 97);
        let empty = parse_use_stats("<USE_STATS><EMPTYSET /></USE_STATS>").unwrap();
        assert!(empty.empty);
        assert!(parse_use_stats("not xml <").is_none());
    }

    #[test]
    fn refusals_name_the_problem() {
        let said = |message: &str| read_use_stats(message).err().map(|e| e.to_string());
        assert_eq!(
            said("<USE_STATS/>").as_deref(),
            Some("no site total <USER><ELAPSED>")
        );
        assert_eq!(
            said("<USE_STATS><USER><ELAPSED>x1</ELAPSED></USER></USE_STATS>").as_deref(),
            Some("the site total is not a non-negative whole number: `x1`")
        );
        assert_eq!(
            said("<USE_STATS><USER><ELAPSED>99999999</ELAPSED></USER></USE_STATS>").as_deref(),
            Some("the site total is out of range (at most 5270400 minutes): `99999999`")
        );
        assert_eq!(
            said("<USE_STATS><B/></USE_STATS>").as_deref(),
            Some("unexpected element <B> in <USE_STATS>")
        );
        assert_eq!(
            said("<USE_STATS><COURSES><COURSE></COURSE></COURSES><USER><ELAPSED>1</ELAPSED></USER></USE_STATS>")
                .as_deref(),
            Some("a course without <ELAPSED>")
        );
    }
}
