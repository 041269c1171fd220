//! The three use_stats functions: authenticating a call by its token, parsing its
//! parameters into a [`WsRequest`] once, running it on the source database and shaping the
//! answer as Moodle's block_use_stats does.

use std::collections::HashMap;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::dedication::{Shown, dedication_answer};
use super::{GET_USER_STATS, GET_USERS_COURSE_STATS, GET_USERS_STATS, Params, WsError, tokens};
use crate::app::App;
use crate::estimators::EstimatorName;
use crate::reports::{Estimate, UsersAnswer, UsersAsk, UsersError};
use crate::stats::dedication::Variant;
use crate::stats::{Report, SessionStats};
use crate::store::source::{CourseField, User, UserField};
use crate::text::echo::echo;

/// Authenticate and run one function. Returns the result, the caller (for the audit) and
/// the target users.
pub(super) async fn call(
    app: &Arc<App>,
    params: &Params,
    remote: Option<SocketAddr>,
) -> (Result<Json, WsError>, String, String) {
    let token = params.get("wstoken").unwrap_or("");
    let (token_row, grant) = match tokens::check(app, token, remote.map(|r| r.ip())).await {
        Err(tokens::TokenProblem::Unavailable(e)) => {
            tracing::error!(error = %e, "state database unavailable");
            return (Err(WsError::unavailable()), String::new(), String::new());
        }
        Err(tokens::TokenProblem::Unknown) => {
            return (Err(WsError::invalid_token()), String::new(), String::new());
        }
        Err(tokens::TokenProblem::Expired) => {
            return (Err(WsError::expired_token()), String::new(), String::new());
        }
        Err(tokens::TokenProblem::IpNotAllowed(ip)) => {
            return (
                Err(WsError::ip_not_allowed(ip)),
                String::new(),
                String::new(),
            );
        }
        Ok(found) => found,
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
    /// The `estimator` parameter; `None` when not given (use_stats, today's answer).
    estimator: Option<EstimatorName>,
    /// Dedication settings asked for instead of the site's (`sessionlimit`,
    /// `ignoresessionslimit`, seconds).
    session_limit: Option<i64>,
    ignore_sessions_limit: Option<i64>,
    /// `sessionlist`: every dedication session of each course row, kept and dropped.
    session_list: bool,
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
    let (uidsource, uidsource_text, uids) = users_asked(function, params, max_users)?;
    let course = course_asked(function, params)?;
    let from = int(params, "from", 0)?;
    let to = int(params, "to", 0)?;
    if from < 0 || to < 0 {
        return Err(WsError::invalid_parameter("from/to: must not be negative"));
    }
    // E15: only a `to` actually given can be reversed. 0 means now, and a `from` later than
    // now is a window in which nothing has happened yet: E9's empty answer, not an error.
    if to != 0 && to < from {
        return Err(WsError::invalid_parameter("to: before from"));
    }
    let score = if function == GET_USER_STATS {
        int(params, "score", 1)? != 0
    } else {
        boolean(params, "score", true)?
    };
    let EstimatorAsked {
        estimator,
        session_limit,
        ignore_sessions_limit,
        session_list,
    } = estimator_asked(params)?;
    Ok(WsRequest {
        uidsource,
        uidsource_text,
        uids,
        course,
        from,
        to,
        score,
        estimator,
        session_limit,
        ignore_sessions_limit,
        session_list,
    })
}

/// The users a call names: by which field (and its text), and the values.
fn users_asked(
    function: &str,
    params: &Params,
    max_users: usize,
) -> Result<(UserField, String, Vec<String>), WsError> {
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
    Ok((uidsource, uidsource_text, uids))
}

/// The course a call names, by which field (and its text), and the value; `None`: every
/// course.
fn course_asked(
    function: &str,
    params: &Params,
) -> Result<Option<(CourseField, String, String)>, WsError> {
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
    Ok(course)
}

/// The estimator a call asks for, and the dedication settings it gives instead of the site's.
struct EstimatorAsked {
    estimator: Option<EstimatorName>,
    session_limit: Option<i64>,
    ignore_sessions_limit: Option<i64>,
    session_list: bool,
}

fn estimator_asked(params: &Params) -> Result<EstimatorAsked, WsError> {
    let estimator = match params.get("estimator") {
        None => None,
        Some(name) => Some(name.trim().parse::<EstimatorName>().map_err(|_| {
            WsError::invalid_parameter(format!(
                "estimator: one of use_stats, dedication, dedication.legacy, got \"{}\"",
                echo(name)
            ))
        })?),
    };
    let optional = |name: &str, min: i64| -> Result<Option<i64>, WsError> {
        match params.get(name) {
            None | Some("") => Ok(None),
            Some(_) => match int(params, name, 0)? {
                n if n >= min => Ok(Some(n)),
                _ => Err(WsError::invalid_parameter(format!(
                    "{name}: seconds, at least {min}"
                ))),
            },
        }
    };
    let session_limit = optional("sessionlimit", 1)?;
    let ignore_sessions_limit = optional("ignoresessionslimit", 0)?;
    let session_list = boolean(params, "sessionlist", false)?;
    let dedication = matches!(estimator, Some(EstimatorName::Dedication(_)));
    if !dedication && (session_limit.is_some() || ignore_sessions_limit.is_some() || session_list) {
        return Err(WsError::invalid_parameter(
            "sessionlimit/ignoresessionslimit/sessionlist: only with estimator dedication or dedication.legacy",
        ));
    }
    if estimator == Some(EstimatorName::Dedication(Variant::Legacy))
        && ignore_sessions_limit.is_some()
    {
        return Err(WsError::invalid_parameter(
            "ignoresessionslimit: dedication.legacy counts every session",
        ));
    }
    Ok(EstimatorAsked {
        estimator,
        session_limit,
        ignore_sessions_limit,
        session_list,
    })
}

/// What the source database gave for a call.
type Computed = UsersAnswer;

impl WsRequest {
    /// The question this call asks of the reports.
    fn ask(&self, now: i64) -> UsersAsk {
        UsersAsk {
            field: self.uidsource,
            uids: self.uids.clone(),
            course: self
                .course
                .as_ref()
                .map(|(field, _, cid)| (*field, cid.clone())),
            estimate: match self.estimator {
                Some(EstimatorName::Dedication(variant)) => Estimate::Dedication {
                    variant,
                    session_limit: self.session_limit,
                    ignore_sessions_limit: self.ignore_sessions_limit,
                    sessions: self.session_list,
                },
                None | Some(EstimatorName::UseStats) => Estimate::UseStats,
            },
            grades: self.score,
            from: self.from,
            to: self.to,
            now,
        }
    }

    /// A failure of the question, as the caller sees it.
    fn failure(&self, e: UsersError) -> WsError {
        match e {
            UsersError::Prefix(e) => WsError::invalid_parameter(e.to_string()),
            UsersError::NoUser(at) => WsError::invalid_parameter(format!(
                "Invalid user by {} {}",
                self.uidsource_text,
                echo(self.uids.get(at).map_or("", String::as_str))
            )),
            UsersError::NoCourse => {
                let (field_text, cid) = self
                    .course
                    .as_ref()
                    .map_or(("", ""), |(_, text, cid)| (text.as_str(), cid.as_str()));
                WsError::invalid_parameter(format!("Invalid course by {field_text} {}", echo(cid)))
            }
            UsersError::Report(e) => {
                tracing::error!(error = %e, "source database query failed");
                WsError::unavailable()
            }
        }
    }
}

async fn run(app: &Arc<App>, function: &str, request: WsRequest) -> Result<Json, WsError> {
    let computed = app
        .reports
        .users(request.ask(app.now()))
        .await
        .map_err(|e| request.failure(e))?;
    let items: Vec<Json> = match &computed.dedication {
        Some((estimator, answers)) => computed
            .users
            .iter()
            .map(|user| {
                dedication_answer(
                    function,
                    user,
                    &computed,
                    Shown {
                        from: request.from,
                        score: request.score,
                        session_list: request.session_list,
                    },
                    estimator,
                    answers.get(&user.id),
                )
            })
            .collect(),
        None => {
            let estimator = computed
                .reports
                .values()
                .next()
                .map(|r| r.estimator.to_string())
                .unwrap_or_else(|| app.reports.estimator().to_string());
            computed
                .users
                .iter()
                .map(|user| user_answer(function, user, &computed, &request, &estimator))
                .collect()
        }
    };
    if function == GET_USER_STATS {
        Ok(items.into_iter().next().unwrap_or(Json::Null))
    } else {
        Ok(Json::Array(items))
    }
}

/// A learner's grade in a course as the answer shows it: `-` when there is none.
pub(super) fn grade(computed: &UsersAnswer, user: i64, course: i64) -> String {
    computed
        .grades
        .get(&(user, course))
        .cloned()
        .unwrap_or_else(|| "-".into())
}

pub(super) fn session_json(stats: &SessionStats, had_logs: bool) -> Json {
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
        row.insert("score".into(), json!(grade(computed, user.id, course_id)));
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
            data.insert("score".into(), json!(grade(computed, user.id, course_id)));
        }
        // Only when the estimator was asked for: without it the answer stays as it was.
        if request.estimator.is_some() {
            return json!({
                "user": user_json,
                "query": {"from": request.from, "to": computed.window.to, "estimator": estimator},
                "coursedata": Json::Object(data),
            });
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

    #[test]
    fn only_a_given_to_can_be_before_from() {
        let p = Params::parse(&["uidsource=id&uid=1&from=2000&to=1999"]);
        let e = parse_request(GET_USER_STATS, &p, 5).unwrap_err();
        assert!(e.debuginfo.unwrap().starts_with("to: "));
        for to in ["to=0", "to=", "to=2000"] {
            let p = Params::parse(&["uidsource=id&uid=1&from=2000", to]);
            let r = parse_request(GET_USER_STATS, &p, 5).unwrap();
            assert_eq!(r.from, 2000, "{to}");
        }
    }
}
