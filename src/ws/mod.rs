//! Moodle-style REST web services (`/webservice/rest/server.php`) for the same numbers the
//! MNET methods give, in seconds (use-stats-spec §1.7 with D6–D9, E7, E9, E10, E14).
//!
//! Requests look exactly like a Moodle REST client's: `wstoken`, `wsfunction`,
//! `moodlewsrestformat=json|xml`, form-encoded parameters with PHP array notation
//! (`uids[0]=…`). Errors are Moodle's exception documents.

pub mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::StatusCode;
use serde_json::{Map, Value as Json, json};

use crate::app::App;
use crate::echo::echo;
use crate::http::{HttpResponse, respond};
use crate::stats::{Report, SessionStats, Window};
use crate::store::source::{Course, CourseField, Source, User, UserField};

pub const GET_USER_STATS: &str = "block_use_stats_get_user_stats";
pub const GET_USERS_STATS: &str = "block_use_stats_get_users_stats";
pub const GET_USERS_COURSE_STATS: &str = "block_use_stats_get_users_course_stats";

/// Form bodies are small; anything larger is not a use_stats request.
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// A Moodle exception as the REST server prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    pub exception: &'static str,
    pub errorcode: &'static str,
    pub message: String,
    pub debuginfo: Option<String>,
}

impl WsError {
    fn invalid_parameter(detail: impl Into<String>) -> WsError {
        WsError {
            exception: "invalid_parameter_exception",
            errorcode: "invalidparameter",
            message: "Invalid parameter value detected".into(),
            debuginfo: Some(detail.into()),
        }
    }

    fn invalid_token() -> WsError {
        WsError {
            exception: "moodle_exception",
            errorcode: "invalidtoken",
            message: "Invalid token - token not found".into(),
            debuginfo: None,
        }
    }

    fn expired_token() -> WsError {
        WsError {
            exception: "moodle_exception",
            errorcode: "invalidtimedtoken",
            message: "Invalid token - token expired".into(),
            debuginfo: None,
        }
    }

    fn ip_not_allowed(ip: std::net::IpAddr) -> WsError {
        WsError {
            exception: "moodle_exception",
            errorcode: "invalidiptoken",
            message: format!("Invalid token - IP:{ip} not supported"),
            debuginfo: None,
        }
    }

    fn unknown_function() -> WsError {
        WsError {
            exception: "dml_missing_record_exception",
            errorcode: "invalidrecord",
            message: "Can't find data record in database table external_functions.".into(),
            debuginfo: None,
        }
    }

    fn no_permission() -> WsError {
        WsError {
            exception: "required_capability_exception",
            errorcode: "nopermissions",
            message:
                "Sorry, but you do not currently have permissions to do that (Export use stats)."
                    .into(),
            debuginfo: Some(
                "the token's grant does not include course detail (grant add … --course)".into(),
            ),
        }
    }

    /// Moodle's exception for a failed read; its message matches, and the details stay in
    /// our log (D12: no internal dumps in errors).
    fn unavailable() -> WsError {
        WsError {
            exception: "dml_read_exception",
            errorcode: "dmlreadexception",
            message: "Error reading from database".into(),
            debuginfo: None,
        }
    }

    fn to_json(&self) -> Json {
        let mut object = Map::new();
        object.insert("exception".into(), json!(self.exception));
        object.insert("errorcode".into(), json!(self.errorcode));
        object.insert("message".into(), json!(self.message));
        if let Some(debug) = &self.debuginfo {
            object.insert("debuginfo".into(), json!(debug));
        }
        Json::Object(object)
    }

    fn to_xml(&self) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<EXCEPTION class=\"{}\">\n<ERRORCODE>{}</ERRORCODE>\n<MESSAGE>{}</MESSAGE>\n",
            self.exception,
            xml_escape(self.errorcode),
            xml_escape(&self.message)
        );
        if let Some(debug) = &self.debuginfo {
            out.push_str(&format!("<DEBUGINFO>{}</DEBUGINFO>\n", xml_escape(debug)));
        }
        out.push_str("</EXCEPTION>\n");
        out
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#039;")
}

/// Moodle's REST XML: SINGLE for objects, MULTIPLE for lists, VALUE for scalars.
pub fn to_moodle_xml(value: &Json) -> String {
    fn render(value: &Json, out: &mut String) {
        match value {
            Json::Object(map) => {
                out.push_str("<SINGLE>\n");
                for (key, item) in map {
                    out.push_str(&format!("<KEY name=\"{}\">", xml_escape(key)));
                    render(item, out);
                    out.push_str("</KEY>\n");
                }
                out.push_str("</SINGLE>\n");
            }
            Json::Array(items) => {
                out.push_str("<MULTIPLE>\n");
                for item in items {
                    render(item, out);
                }
                out.push_str("</MULTIPLE>\n");
            }
            Json::Null => out.push_str("<VALUE null=\"null\"/>\n"),
            Json::String(s) => out.push_str(&format!("<VALUE>{}</VALUE>\n", xml_escape(s))),
            Json::Bool(b) => out.push_str(&format!("<VALUE>{}</VALUE>\n", u8::from(*b))),
            Json::Number(n) => out.push_str(&format!("<VALUE>{n}</VALUE>\n")),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n");
    render(value, &mut out);
    out.push_str("</RESPONSE>\n");
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            // PHP's urldecode takes exactly two hex digits; `from_str_radix` alone would also
            // take a sign, decoding `%+1` to a control byte (found by fuzz/ws_params).
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Form parameters with PHP's array notation kept apart: `uids[0]=a&uids[1]=b` gives the
/// list `uids = [a, b]` (ordered by index), `uids[]=a` appends.
#[derive(Debug, Default)]
pub struct Params {
    scalars: HashMap<String, String>,
    lists: HashMap<String, Vec<(Option<u64>, String)>>,
}

impl Params {
    pub fn parse(parts: &[&str]) -> Params {
        let mut params = Params::default();
        for part in parts {
            for pair in part.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let key = percent_decode(key);
                let value = percent_decode(value);
                match key.split_once('[') {
                    Some((name, rest)) if rest.ends_with(']') => {
                        let index = rest[..rest.len() - 1].parse::<u64>().ok();
                        params
                            .lists
                            .entry(name.to_string())
                            .or_default()
                            .push((index, value));
                    }
                    _ => {
                        params.scalars.insert(key, value);
                    }
                }
            }
        }
        params
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.scalars.get(name).map(String::as_str)
    }

    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let mut items = self.lists.get(name)?.clone();
        items.sort_by_key(|(index, _)| index.unwrap_or(u64::MAX));
        Some(items.into_iter().map(|(_, v)| v).collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

/// One REST call: `parts` and `body` as the HTTP layer read them (within
/// [`MAX_FORM_BYTES`] and the body deadline).
pub async fn endpoint(
    app: Arc<App>,
    parts: &http::request::Parts,
    body: bytes::Bytes,
    remote: Option<SocketAddr>,
) -> HttpResponse {
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
    let (result, caller, target) = call(&app, &params, remote).await;
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
    app.metrics.record(
        "ws",
        &function,
        if result.is_ok() { "ok" } else { "error" },
        started.elapsed(),
    );
    // Never the token: the audit and the log name the grant instead.
    tracing::info!(function = %crate::untrusted::field(&function), caller = %crate::untrusted::field(&caller), status = %status, latency_ms, "ws call");
    crate::audit::record(
        &app,
        "ws",
        "",
        remote,
        &function,
        &caller,
        &target,
        &status,
        latency_ms,
        query.len() + body.len(),
        answer.len(),
        // A caller is named only once its token was accepted.
        !caller.is_empty(),
    );
    let content_type = match format {
        Format::Json => "application/json",
        Format::Xml => "application/xml; charset=utf-8",
    };
    respond(StatusCode::OK, content_type, answer)
}

/// Authenticate and run one function. Returns the result, the caller (for the audit) and
/// the target users.
async fn call(
    app: &Arc<App>,
    params: &Params,
    remote: Option<SocketAddr>,
) -> (Result<Json, WsError>, String, String) {
    let token = params.get("wstoken").unwrap_or("");
    let (token_row, grant) = match tokens::check(app, token, remote.map(|r| r.ip())).await {
        Err(e) => {
            tracing::error!(error = %e, "state database unavailable");
            return (Err(WsError::unavailable()), String::new(), String::new());
        }
        Ok(Err(tokens::TokenProblem::Unknown)) => {
            return (Err(WsError::invalid_token()), String::new(), String::new());
        }
        Ok(Err(tokens::TokenProblem::Expired)) => {
            return (Err(WsError::expired_token()), String::new(), String::new());
        }
        Ok(Err(tokens::TokenProblem::IpNotAllowed(ip))) => {
            return (
                Err(WsError::ip_not_allowed(ip)),
                String::new(),
                String::new(),
            );
        }
        Ok(Ok(found)) => found,
    };
    let caller = format!("{}@{}", grant.username, grant.home_wwwroot);
    let function = params.get("wsfunction").unwrap_or("");
    let known = [GET_USER_STATS, GET_USERS_STATS, GET_USERS_COURSE_STATS];
    if !known.contains(&function) {
        return (Err(WsError::unknown_function()), caller, String::new());
    }
    if !grant.course {
        return (Err(WsError::no_permission()), caller, String::new());
    }
    let request = match parse_request(function, params, app.config.ws.max_users_per_call) {
        Ok(r) => r,
        Err(e) => return (Err(e), caller, String::new()),
    };
    let target = request.uids.join(",").chars().take(200).collect();
    let result = run(app, function, request).await;
    if result.is_ok() {
        tokens::mark_used(app, token_row.id).await;
    }
    (result, caller, target)
}

#[derive(Debug, Clone)]
struct WsRequest {
    uidsource: UserField,
    uidsource_text: String,
    uids: Vec<String>,
    /// None: every course.
    course: Option<(CourseField, String, String)>,
    from: i64,
    to: i64,
    score: bool,
}

fn alpha(params: &Params, name: &str, default: Option<&str>) -> Result<String, WsError> {
    let value = match params.get(name) {
        Some(v) => v.to_string(),
        None => default.map(str::to_string).ok_or_else(|| {
            WsError::invalid_parameter(format!("Missing required key in single structure: {name}"))
        })?,
    };
    if !value.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(WsError::invalid_parameter(format!(
            "{name}: letters only (PARAM_ALPHA), got \"{}\"",
            echo(&value)
        )));
    }
    Ok(value)
}

fn int(params: &Params, name: &str, default: i64) -> Result<i64, WsError> {
    match params.get(name) {
        None | Some("") => Ok(default),
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            WsError::invalid_parameter(format!("{name}: integer expected, got \"{}\"", echo(v)))
        }),
    }
}

fn boolean(params: &Params, name: &str, default: bool) -> Result<bool, WsError> {
    match params.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => v.parse::<i64>().map(|n| n != 0).map_err(|_| {
                WsError::invalid_parameter(format!(
                    "{name}: boolean expected, got \"{}\"",
                    echo(&v)
                ))
            }),
        },
    }
}

/// The parameter checks of one call without running it, so that the fuzz targets and
/// `tests/fuzz_corpus.rs` drive the same validation the endpoint does.
#[doc(hidden)]
pub fn check_parameters(function: &str, params: &Params, max_users: usize) -> Result<(), WsError> {
    parse_request(function, params, max_users).map(|_| ())
}

fn parse_request(function: &str, params: &Params, max_users: usize) -> Result<WsRequest, WsError> {
    let uidsource_text = alpha(params, "uidsource", None)?;
    let uidsource = match uidsource_text.as_str() {
        "id" => UserField::Id,
        "idnumber" => UserField::IdNumber,
        "username" => UserField::Username,
        "email" => UserField::Email,
        other => {
            return Err(WsError::invalid_parameter(format!(
                "uidsource: one of id, idnumber, username, email, got \"{}\"",
                echo(other)
            )));
        }
    };
    let uids = if function == GET_USER_STATS {
        vec![
            params
                .get("uid")
                .ok_or_else(|| {
                    WsError::invalid_parameter("Missing required key in single structure: uid")
                })?
                .to_string(),
        ]
    } else {
        let list = params.list("uids").ok_or_else(|| {
            WsError::invalid_parameter("Missing required key in single structure: uids")
        })?;
        if list.is_empty() {
            return Err(WsError::invalid_parameter("uids: at least one user"));
        }
        list
    };
    if uids.len() > max_users {
        return Err(WsError::invalid_parameter(format!(
            "uids: {} users asked, at most {max_users} per call (ws.max_users_per_call)",
            uids.len()
        )));
    }
    let cidsource_text = alpha(params, "cidsource", Some("idnumber"))?;
    // '' is the spec's "no course"; anything else must name a field even when cid is 0, so
    // a typo is reported instead of silently meaning "all courses".
    let field = match cidsource_text.as_str() {
        "" => None,
        "id" => Some(CourseField::Id),
        "idnumber" => Some(CourseField::IdNumber),
        "shortname" => Some(CourseField::ShortName),
        other => {
            return Err(WsError::invalid_parameter(format!(
                "cidsource: one of id, idnumber, shortname, got \"{}\"",
                echo(other)
            )));
        }
    };
    let cid = params.get("cid").unwrap_or("0").trim().to_string();
    // W2: cid 0 or empty means every course whatever cidsource says.
    let course = match field {
        Some(field) if !cid.is_empty() && cid != "0" => Some((field, cidsource_text.clone(), cid)),
        _ => None,
    };
    if function == GET_USERS_COURSE_STATS && course.is_none() {
        return Err(WsError::invalid_parameter(
            "cid: a course is required for get_users_course_stats",
        ));
    }
    let from = int(params, "from", 0)?;
    let to = int(params, "to", 0)?;
    if from < 0 || to < 0 {
        return Err(WsError::invalid_parameter("from/to: must not be negative"));
    }
    let score = if function == GET_USER_STATS {
        int(params, "score", 1)? != 0
    } else {
        boolean(params, "score", true)?
    };
    Ok(WsRequest {
        uidsource,
        uidsource_text,
        uids,
        course,
        from,
        to,
        score,
    })
}

struct Computed {
    users: Vec<User>,
    course: Option<Course>,
    reports: HashMap<i64, Report>,
    courses: HashMap<i64, Course>,
    site_course: i64,
    grades: HashMap<(i64, i64), String>,
    window: Window,
}

async fn run(app: &Arc<App>, function: &str, request: WsRequest) -> Result<Json, WsError> {
    let source = Source::new(&app.config.source.prefix)
        .map_err(|e| WsError::invalid_parameter(e.to_string()))?;
    let settings = crate::reports::settings(&app.config.engine);
    let now = app.now();
    let window = Window {
        from: request.from,
        to: if request.to == 0 { now } else { request.to },
        now,
    };
    if window.to < window.from {
        return Err(WsError::invalid_parameter("to: before from"));
    }
    let req = request.clone();
    let computed = app
        .source
        .run(move |conn| {
            let invalid = |e: crate::store::source::SourceError| {
                crate::store::StoreError::Invalid(e.to_string())
            };
            let mut users = Vec::with_capacity(req.uids.len());
            for uid in &req.uids {
                match source
                    .find_user(conn, req.uidsource, uid)
                    .map_err(invalid)?
                {
                    Some(user) => users.push(user),
                    None => {
                        return Ok(Err(WsError::invalid_parameter(format!(
                            "Invalid user by {} {}",
                            req.uidsource_text,
                            echo(uid)
                        ))));
                    }
                }
            }
            let course = match &req.course {
                None => None,
                Some((field, field_text, cid)) => {
                    match source.find_course(conn, *field, cid).map_err(invalid)? {
                        Some(course) => Some(course),
                        None => {
                            return Ok(Err(WsError::invalid_parameter(format!(
                                "Invalid course by {field_text} {}",
                                echo(cid)
                            ))));
                        }
                    }
                }
            };
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            let reports = crate::reports::users_reports(conn, &source, &settings, &ids, window)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
            let mut course_ids: Vec<i64> = reports
                .values()
                .flat_map(|r| r.courses.iter().map(|c| c.course))
                .collect();
            course_ids.sort_unstable();
            course_ids.dedup();
            let courses = source.courses_by_ids(conn, &course_ids).map_err(invalid)?;
            let site_course = source.site_course_id(conn).map_err(invalid)?;
            let mut grades = HashMap::new();
            if req.score {
                match &course {
                    Some(course) => {
                        for (user, grade) in source
                            .users_course_grades(conn, &ids, course.id)
                            .map_err(invalid)?
                        {
                            grades.insert((user, course.id), grade);
                        }
                    }
                    None => {
                        grades = source.grades_for_users(conn, &ids).map_err(invalid)?;
                    }
                }
            }
            Ok(Ok(Computed {
                users,
                course,
                reports,
                courses,
                site_course,
                grades,
                window,
            }))
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "source database query failed");
            WsError::unavailable()
        })??;
    let estimator = computed
        .reports
        .values()
        .next()
        .map(|r| r.estimator.to_string())
        .unwrap_or_else(|| {
            crate::stats::Estimator::for_settings(&crate::reports::settings(&app.config.engine))
                .to_string()
        });
    let items: Vec<Json> = computed
        .users
        .iter()
        .map(|user| user_answer(function, user, &computed, &request, &estimator))
        .collect();
    if function == GET_USER_STATS {
        Ok(items.into_iter().next().unwrap_or(Json::Null))
    } else {
        Ok(Json::Array(items))
    }
}

fn session_json(stats: &SessionStats, had_logs: bool) -> Json {
    let mut object = Map::new();
    if !had_logs {
        return Json::Object(object);
    }
    object.insert("sessions".into(), json!(stats.count));
    if stats.count > 0 {
        object.insert("firstsession".into(), json!(stats.first_start));
        object.insert("lastsession".into(), json!(stats.last_start));
    }
    object.insert("sessionmin".into(), json!(stats.min));
    object.insert("sessionmax".into(), json!(stats.max));
    object.insert("meansession".into(), json!(stats.mean()));
    Json::Object(object)
}

fn course_json(
    course_id: i64,
    user: &User,
    computed: &Computed,
    report: &Report,
    score: bool,
) -> Map<String, Json> {
    let totals = report.course(course_id);
    let record = computed
        .courses
        .get(&course_id)
        .or(computed.course.as_ref().filter(|c| c.id == course_id));
    let sitecoursetime = report
        .course(computed.site_course)
        .map(|c| c.coursetime)
        .unwrap_or(0);
    let mut row = Map::new();
    row.insert("id".into(), json!(course_id));
    row.insert(
        "idnumber".into(),
        json!(record.map(|c| c.idnumber.clone()).unwrap_or_default()),
    );
    row.insert(
        "shortname".into(),
        json!(record.map(|c| c.shortname.clone()).unwrap_or_default()),
    );
    row.insert(
        "fullname".into(),
        json!(record.map(|c| c.fullname.clone()).unwrap_or_default()),
    );
    row.insert(
        "activitytime".into(),
        json!(totals.map(|t| t.activitytime).unwrap_or(0)),
    );
    row.insert(
        "coursetime".into(),
        json!(totals.map(|t| t.coursetime).unwrap_or(0)),
    );
    row.insert(
        "coursetotal".into(),
        json!(totals.map(|t| t.coursetotal).unwrap_or(0)),
    );
    row.insert(
        "othertime".into(),
        json!(totals.map(|t| t.othertime).unwrap_or(0)),
    );
    row.insert("sitecoursetime".into(), json!(sitecoursetime));
    if score {
        let grade = computed
            .grades
            .get(&(user.id, course_id))
            .cloned()
            .unwrap_or_else(|| "-".into());
        row.insert("score".into(), json!(grade));
    }
    row
}

fn user_answer(
    function: &str,
    user: &User,
    computed: &Computed,
    request: &WsRequest,
    estimator: &str,
) -> Json {
    let empty;
    let report = match computed.reports.get(&user.id) {
        Some(r) => r,
        None => {
            empty = crate::stats::Engine::new(&Default::default(), computed.window, HashMap::new())
                .finish();
            &empty
        }
    };
    let had_logs = report.rows_extracted > 0;
    let user_json = json!({"id": user.id, "idnumber": user.idnumber, "username": user.username});
    if function == GET_USERS_COURSE_STATS {
        let course_id = computed.course.as_ref().map(|c| c.id).unwrap_or(0);
        let mut data = course_json(course_id, user, computed, report, false);
        if let Some(stats) = report
            .course(course_id)
            .map(|c| &c.sessions)
            .filter(|s| s.count > 0)
        {
            data.insert("firstsession".into(), json!(stats.first_start));
            data.insert("lastsession".into(), json!(stats.last_start));
        }
        if request.score {
            let grade = computed
                .grades
                .get(&(user.id, course_id))
                .cloned()
                .unwrap_or_else(|| "-".into());
            data.insert("score".into(), json!(grade));
        }
        return json!({"user": user_json, "coursedata": Json::Object(data)});
    }
    let sessions = match &computed.course {
        Some(course) => {
            let stats = report
                .course(course.id)
                .map(|c| c.sessions.clone())
                .unwrap_or_default();
            session_json(&stats, had_logs)
        }
        None => session_json(&report.sessions, had_logs),
    };
    let courses: Vec<Json> = match &computed.course {
        Some(course) => vec![Json::Object(course_json(
            course.id,
            user,
            computed,
            report,
            request.score,
        ))],
        None => report
            .courses
            .iter()
            .filter(|c| c.course != 0 && c.course != computed.site_course)
            .map(|c| Json::Object(course_json(c.course, user, computed, report, request.score)))
            .collect(),
    };
    json!({
        "user": user_json,
        "query": {"from": request.from, "to": computed.window.to, "estimator": estimator},
        "sessions": sessions,
        "courses": courses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_array_notation() {
        let p = Params::parse(&[
            "wstoken=abc&uids%5B1%5D=b+c",
            "uids[0]=a&uidsource=username&x=%C3%A9",
        ]);
        assert_eq!(p.get("wstoken"), Some("abc"));
        assert_eq!(
            p.list("uids"),
            Some(vec!["a".to_string(), "b c".to_string()])
        );
        assert_eq!(p.get("x"), Some("é"));
        assert_eq!(p.get("missing"), None);
        let bad = Params::parse(&["a=%zz&b=%4"]);
        assert_eq!(bad.get("a"), Some("%zz"));
        assert_eq!(bad.get("b"), Some("%4"));
    }

    #[test]
    fn moodle_xml_shapes() {
        let xml = to_moodle_xml(&json!({"a": [1, "x<"], "b": null}));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n<SINGLE>\n<KEY name=\"a\"><MULTIPLE>\n<VALUE>1</VALUE>\n<VALUE>x&lt;</VALUE>\n</MULTIPLE>\n</KEY>\n<KEY name=\"b\"><VALUE null=\"null\"/>\n</KEY>\n</SINGLE>\n</RESPONSE>\n"
        );
    }

    #[test]
    fn request_validation_names_the_parameter() {
        let p = Params::parse(&["uidsource=nickname&uid=1"]);
        let e = parse_request(GET_USER_STATS, &p, 10).unwrap_err();
        assert!(e.debuginfo.unwrap().contains("uidsource"));
        let p = Params::parse(&["uidsource=id&uid=1&from=yesterday"]);
        let e = parse_request(GET_USER_STATS, &p, 10).unwrap_err();
        assert!(e.debuginfo.unwrap().contains("from"));
        let p = Params::parse(&["uidsource=id&uids[0]=1&uids[1]=2"]);
        assert!(
            parse_request(GET_USERS_STATS, &p, 1)
                .unwrap_err()
                .debuginfo
                .unwrap()
                .contains("at most 1")
        );
        let p = Params::parse(&["uidsource=id&uids[0]=1&cid=0"]);
        assert!(parse_request(GET_USERS_COURSE_STATS, &p, 5).is_err());
        let p = Params::parse(&["uidsource=id&uid=7&cidsource=idnumber&cid=0"]);
        let r = parse_request(GET_USER_STATS, &p, 5).unwrap();
        assert!(r.course.is_none() && r.score);
    }
}
