//! The use_stats MNET service: `use_stats_rpc_get_stats` and `use_stats_rpc_get_scores`
//! (use-stats-spec.md §1.3–§1.6), wire-compatible with block_use_stats, not bug-compatible.
//!
//! Every answer is the wrapper `{status, errors, message}`: as a JSON string when
//! `json_response` is true or absent, as a struct when it is false. Application errors are
//! statuses inside the wrapper, never XML-RPC faults, as the PHP plugin does.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::config::normalize_wwwroot;
use crate::echo::echo;
use crate::mnet::services::{CallContext, Method, MethodFuture, Param, Service};
use crate::reports;
use crate::stats::{Report, Window};
use crate::store::source::{CourseField, Source, User};
use crate::store::state;
use crate::xmlrpc::Value;

pub const SERVICE: &str = "use_stats";
pub const GET_STATS: &str = "blocks/use_stats/rpclib.php/use_stats_rpc_get_stats";
pub const GET_SCORES: &str = "blocks/use_stats/rpclib.php/use_stats_rpc_get_scores";

pub const RPC_TEST: i64 = 100;
pub const RPC_SUCCESS: i64 = 200;
pub const RPC_FAILURE: i64 = 500;
pub const RPC_FAILURE_USER: i64 = 501;
pub const RPC_FAILURE_DATA: i64 = 503;
pub const RPC_FAILURE_CAPABILITY: i64 = 510;
pub const RPC_FAILURE_RECORD: i64 = 520;

pub const SITE_SCOPE: i64 = 1;
pub const COURSE_SCOPE: i64 = 2;
pub const MODULE_SCOPE: i64 = 3;

/// Courses under this many minutes are left out of the MNET course list, modules under
/// [`MODULE_MIN_MINUTES`] out of the module list (as the plugin does).
const COURSE_MIN_MINUTES: i64 = 5;
const MODULE_MIN_MINUTES: i64 = 2;

pub fn use_stats_service() -> Service {
    let p = |name, kind, description| Param {
        name,
        kind,
        description,
    };
    Service {
        name: SERVICE,
        apiversion: 1,
        methods: vec![
            Method {
                path: GET_STATS,
                help: "Time a user spent on this site (or on whereroot), in minutes: site total, per course (scope 2), per activity (scope 3).",
                params: vec![
                    p(
                        "callinguser",
                        "array",
                        "username, remoteuserhostroot, remotehostroot of the person asking",
                    ),
                    p(
                        "targetuser",
                        "string",
                        "username of the user whose time is wanted",
                    ),
                    p(
                        "whereroot",
                        "string",
                        "host holding the logs; empty for this host",
                    ),
                    p(
                        "statsscope",
                        "int",
                        "1 site, 2 courses, 3 courses and activities",
                    ),
                    p(
                        "timefrom",
                        "int",
                        "start of the window (unix time); the window ends now",
                    ),
                    p(
                        "json_response",
                        "bool",
                        "true (default): answer as JSON text",
                    ),
                ],
                returns: (
                    "string",
                    "JSON {status, errors, message}; message is the USE_STATS XML",
                ),
                handler: Arc::new(|app, ctx, params| -> MethodFuture {
                    Box::pin(async move { Ok(get_stats(app, ctx, params).await) })
                }),
            },
            Method {
                path: GET_SCORES,
                help: "A user's course total grade in one course.",
                params: vec![
                    p(
                        "callinguser",
                        "array",
                        "username, remoteuserhostroot, remotehostroot of the person asking",
                    ),
                    p(
                        "targetuser",
                        "string",
                        "username of the user whose grade is wanted",
                    ),
                    p(
                        "whereroot",
                        "string",
                        "host holding the grades; empty for this host",
                    ),
                    p("scorescope", "string", "notes/global (course total)"),
                    p("courseidfield", "string", "id, shortname or idnumber"),
                    p("courseidentifier", "string", "value of that field"),
                    p(
                        "json_response",
                        "bool",
                        "true (default): answer as JSON text",
                    ),
                ],
                returns: (
                    "string",
                    "JSON {status, errors, message}; message is the USER_SCORES XML",
                ),
                handler: Arc::new(|app, ctx, params| -> MethodFuture {
                    Box::pin(async move { Ok(get_scores(app, ctx, params).await) })
                }),
            },
        ],
    }
}

/// The answer wrapper of §1.6.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: i64,
    pub errors: Vec<serde_json::Value>,
    pub message: Option<String>,
}

impl Answer {
    pub fn ok(message: String) -> Answer {
        Answer {
            status: RPC_SUCCESS,
            errors: Vec::new(),
            message: Some(message),
        }
    }

    pub fn fail(status: i64, error: impl Into<String>) -> Answer {
        Answer {
            status,
            errors: vec![serde_json::Value::String(error.into())],
            message: None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("status".into(), json!(self.status));
        object.insert(
            "errors".into(),
            serde_json::Value::Array(self.errors.clone()),
        );
        if let Some(message) = &self.message {
            object.insert("message".into(), json!(message));
        }
        serde_json::Value::Object(object)
    }

    fn into_value(self, json_response: bool) -> Value {
        if json_response {
            Value::String(php_json(&self.to_json()))
        } else {
            let mut members = vec![
                ("status".to_string(), Value::Int(self.status)),
                (
                    "errors".to_string(),
                    Value::Array(self.errors.iter().map(Value::from_json).collect()),
                ),
            ];
            if let Some(message) = self.message {
                members.push(("message".into(), Value::String(message)));
            }
            Value::Struct(members)
        }
    }

    /// Read a wrapper back from a peer's answer (JSON text or struct).
    pub fn from_value(value: &Value) -> Option<Answer> {
        let json = match value {
            Value::String(text) => serde_json::from_str(text).ok()?,
            other => other.to_json(),
        };
        let status = json.get("status").and_then(|s| {
            s.as_i64()
                .or_else(|| s.as_str().and_then(|t| t.trim().parse().ok()))
        })?;
        let errors = match json.get("errors") {
            Some(serde_json::Value::Array(items)) => items.clone(),
            Some(other) => vec![other.clone()],
            None => Vec::new(),
        };
        let message = json
            .get("message")
            .or_else(|| json.get("teststatus"))
            .and_then(|m| m.as_str())
            .map(str::to_string);
        Some(Answer {
            status,
            errors,
            message,
        })
    }
}

/// JSON as PHP's `json_encode` writes it by default (`\/`, `\uXXXX` for non-ASCII), which
/// is what Moodle consumers of this plugin have always received.
pub fn php_json(value: &serde_json::Value) -> String {
    let plain = value.to_string();
    let mut out = String::with_capacity(plain.len() + 16);
    for c in plain.chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if (c as u32) < 0x80 => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// E11: values in the XML messages are escaped; consumers compare parsed values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The person asking, after authentication: their local account and what they may see.
struct Caller {
    user: User,
    /// The person's home host as the source database spells it (`mnet_host.wwwroot`): a
    /// PHP data host looks it up by exact string when we forward (§1.4.2).
    home_wwwroot_on_record: String,
    grant: state::Grant,
}

/// §1.3 with the decisions: the struct must be complete, `remotehostroot` must be the peer
/// that signed the request, the person's home host must be known, they must have a local
/// (not deleted, not suspended) account, and a grant that the signing peer may use (their
/// home host, or a relay the grant names).
async fn authenticate(
    app: &Arc<App>,
    ctx: &CallContext,
    callinguser: Option<&Value>,
) -> Result<Caller, Answer> {
    let member = |name: &str| {
        callinguser
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(username), Some(user_home), Some(host_root)) = (
        member("username"),
        member("remoteuserhostroot"),
        member("remotehostroot"),
    ) else {
        return Err(Answer::fail(RPC_FAILURE_USER, "Bad client user format."));
    };
    if username.trim().is_empty() {
        return Err(Answer::fail(RPC_FAILURE_USER, "Empty username."));
    }
    if normalize_wwwroot(&host_root) != ctx.peer.wwwroot {
        return Err(Answer::fail(
            RPC_FAILURE,
            format!(
                "Calling host {} is not the host that signed this request ({}).",
                echo(&host_root),
                ctx.peer.wwwroot
            ),
        ));
    }
    let source = source(app)?;
    let home = normalize_wwwroot(&user_home);
    let found = {
        let (source, home, username) = (source.clone(), home.clone(), username.clone());
        app.source
            .run(move |conn| {
                let host = source
                    .mnet_host_id_by_wwwroot(conn, &home)
                    .map_err(to_store)?;
                match host {
                    None => Ok(None),
                    Some(id) => {
                        let on_record = source
                            .mnet_host(conn, id)
                            .map_err(to_store)?
                            .map(|h| h.wwwroot);
                        let user = source
                            .find_mnet_user(conn, &username, id)
                            .map_err(to_store)?;
                        Ok(Some(user.map(|u| (u, on_record))))
                    }
                }
            })
            .await
    };
    let (user, on_record) = match found {
        Err(e) => return Err(data_unavailable(e)),
        Ok(None) => {
            return Err(Answer::fail(
                RPC_FAILURE_USER,
                format!("Calling user host {} is not registered.", echo(&user_home)),
            ));
        }
        Ok(Some(None)) => {
            return Err(Answer::fail(
                RPC_FAILURE_USER,
                "Calling user has no local account. Register remote user first",
            ));
        }
        Ok(Some(Some((user, on_record)))) => (user, on_record),
    };
    if user.suspended {
        return Err(Answer::fail(
            RPC_FAILURE_USER,
            "Calling user's local account is suspended.",
        ));
    }
    let grant = {
        let (home, username) = (home.clone(), username.clone());
        app.state
            .run(move |conn| state::grant_for(conn, &home, &username))
            .await
    };
    match grant {
        // A grant the signing peer may not use is answered as no grant at all, so that a
        // peer learns nothing about which grants exist.
        // A self-registered peer's name is anyone's first claim: it counts for no grant,
        // neither as the person's home nor as a relay, until the operator adds it.
        Ok(Some(grant)) if !ctx.peer.auto_registered && grant.honoured_from(&ctx.peer.wwwroot) => {
            Ok(Caller {
                user,
                home_wwwroot_on_record: on_record.unwrap_or(home),
                grant,
            })
        }
        Ok(_) => Err(Answer::fail(
            RPC_FAILURE_CAPABILITY,
            "Local user's identity has no capability to run",
        )),
        Err(e) => Err(data_unavailable(e)),
    }
}

fn to_store(e: crate::store::source::SourceError) -> crate::store::StoreError {
    crate::store::StoreError::Invalid(e.to_string())
}

fn data_unavailable(e: impl std::fmt::Display) -> Answer {
    tracing::error!(error = %e, "source database query failed");
    Answer::fail(
        RPC_FAILURE,
        "The statistics database is unavailable; try again later.",
    )
}

fn source(app: &App) -> Result<Source, Answer> {
    Source::new(&app.config.source.prefix).map_err(|e| Answer::fail(RPC_FAILURE, e.to_string()))
}

/// An int, or a string holding one (decisions: statsscope/timefrom). Returns the value and
/// its text as given, which `<FROM>` echoes.
fn int_param(value: Option<&Value>, default: i64, name: &str) -> Result<(i64, String), Answer> {
    match value {
        None => Ok((default, default.to_string())),
        Some(Value::Int(i)) => Ok((*i, i.to_string())),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|i| {
                // `<FROM>` repeats the text as given (as the plugin does), but leading zeros
                // would let a caller make it megabytes long: past any i64's length, the
                // number's own digits are used.
                let text = s.trim();
                let text = if text.len() > 20 {
                    i.to_string()
                } else {
                    text.to_string()
                };
                (i, text)
            })
            .map_err(|_| {
                Answer::fail(
                    RPC_FAILURE_DATA,
                    format!("{name} must be an integer, got \"{}\".", echo(s)),
                )
            }),
        Some(other) => Err(Answer::fail(
            RPC_FAILURE_DATA,
            format!("{name} must be an integer, got {}.", other.type_name()),
        )),
    }
}

fn string_param(value: Option<&Value>, name: &str) -> Result<String, Answer> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        Some(Value::Nil) | None if name == "whereroot" => Ok(String::new()),
        Some(other) => Err(Answer::fail(
            RPC_FAILURE_DATA,
            format!("{name} must be a string, got {}.", other.type_name()),
        )),
        None => Err(Answer::fail(
            RPC_FAILURE_DATA,
            format!("{name} is required."),
        )),
    }
}

fn json_response_param(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool_lenient).unwrap_or(true)
}

/// Is `whereroot` another host? Empty or our own wwwroot (normalised, D13) means here.
fn forward_target(app: &App, whereroot: &str) -> Option<String> {
    let target = normalize_wwwroot(whereroot);
    (!target.is_empty() && target != normalize_wwwroot(app.wwwroot())).then_some(target)
}

pub async fn get_stats(app: Arc<App>, ctx: CallContext, params: Vec<Value>) -> Value {
    let json_response = json_response_param(params.get(5));
    get_stats_answer(&app, &ctx, &params)
        .await
        .into_value(json_response)
}

async fn get_stats_answer(app: &Arc<App>, ctx: &CallContext, params: &[Value]) -> Answer {
    let caller = match authenticate(app, ctx, params.first()).await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let parsed = (|| {
        let target = string_param(params.get(1), "targetuser")?;
        let whereroot = string_param(params.get(2), "whereroot")?;
        let (scope, _) = int_param(params.get(3), SITE_SCOPE, "statsscope")?;
        let (timefrom, timefrom_text) = int_param(params.get(4), 0, "timefrom")?;
        Ok::<_, Answer>((target, whereroot, scope, timefrom, timefrom_text))
    })();
    let (target, whereroot, scope, timefrom, timefrom_text) = match parsed {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    // The plugin compares the scope with >=: below 1 acts as 1, above 3 as 3.
    let scope = scope.clamp(SITE_SCOPE, MODULE_SCOPE);
    let allowed = if scope == SITE_SCOPE {
        caller.grant.site
    } else {
        caller.grant.course
    };
    if !allowed {
        return Answer::fail(
            RPC_FAILURE_CAPABILITY,
            "Local user's identity has no capability to run",
        );
    }
    if let Some(remote) = forward_target(app, &whereroot) {
        let params = vec![
            relay_caller(app, &caller),
            Value::String(target),
            Value::String(String::new()),
            Value::String(scope.to_string()),
            Value::Int(timefrom),
        ];
        return forward(app, &remote, GET_STATS, params, true).await;
    }
    local_stats(app, &target, scope, timefrom, &timefrom_text).await
}

/// The struct a relay sends on: the person as the relay knows them (§1.4.2), with the
/// relay itself as the calling host.
fn relay_caller(app: &App, caller: &Caller) -> Value {
    Value::Struct(vec![
        (
            "username".into(),
            Value::String(caller.user.username.clone()),
        ),
        (
            "remoteuserhostroot".into(),
            Value::String(caller.home_wwwroot_on_record.clone()),
        ),
        ("remotehostroot".into(), Value::from(app.wwwroot())),
    ])
}

/// Forward a call to the host that holds the data (one hop: the forwarded call carries an
/// empty whereroot, D13), and map its answer as §1.4.2 says.
async fn forward(
    app: &Arc<App>,
    remote: &str,
    method: &str,
    params: Vec<Value>,
    test_point: bool,
) -> Answer {
    let wwwroot = remote.to_string();
    let peer = match app
        .state
        .run(move |conn| {
            let peer = state::peer_by_wwwroot(conn, &wwwroot)?;
            match peer {
                Some(p) if !p.deleted => {
                    let subscribed = state::is_subscribed(conn, p.id, SERVICE)?;
                    Ok(Some((p, subscribed)))
                }
                _ => Ok(None),
            }
        })
        .await
    {
        Err(e) => return data_unavailable(e),
        Ok(None) => {
            return Answer::fail(
                RPC_FAILURE,
                format!(
                    "whereroot {} is not a known MNET peer of this host.",
                    echo(remote)
                ),
            );
        }
        Ok(Some((_, false))) => {
            return Answer::fail(
                RPC_FAILURE,
                format!(
                    "This host does not subscribe to use_stats on {}.",
                    echo(remote)
                ),
            );
        }
        Ok(Some((peer, true))) => peer,
    };
    match app.client.call(app, &peer, method, params).await {
        Err(e) => Answer::fail(RPC_FAILURE, format!("REMOTE : {}", e.relayable())),
        Ok(value) => match Answer::from_value(&value) {
            None => Answer::fail(
                RPC_FAILURE,
                format!("REMOTE : {remote} answered something that is not a use_stats answer"),
            ),
            Some(remote_answer) if remote_answer.status == RPC_TEST && test_point => {
                Answer::ok(format!(
                    "Remote Test Point : {}",
                    remote_answer.message.unwrap_or_default()
                ))
            }
            Some(remote_answer) if remote_answer.status == RPC_SUCCESS => {
                Answer::ok(remote_answer.message.unwrap_or_default())
            }
            Some(remote_answer) => Answer {
                status: RPC_FAILURE,
                errors: vec![
                    json!("Remote application error : "),
                    serde_json::Value::Array(relayed_errors(&remote_answer.errors)),
                ],
                message: None,
            },
        },
    }
}

/// Errors relayed from the data host are passed on: the remote host signed them. Bounded all
/// the same, so one peer cannot make our answer huge, and each entry is plain one-line text.
const RELAYED_ERRORS_MAX: usize = 20;

fn relayed_errors(errors: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let max_chars = crate::peer_text::FAULT_TEXT_MAX_CHARS;
    let mut relayed: Vec<serde_json::Value> = errors
        .iter()
        .take(RELAYED_ERRORS_MAX)
        .map(|e| {
            let text = match e {
                serde_json::Value::String(s) => crate::peer_text::one_line(s, max_chars),
                other => crate::peer_text::one_line(&other.to_string(), max_chars),
            };
            json!(text)
        })
        .collect();
    if errors.len() > RELAYED_ERRORS_MAX {
        relayed.push(json!(format!(
            "({} more errors not relayed)",
            errors.len() - RELAYED_ERRORS_MAX
        )));
    }
    relayed
}

/// The local path without any caller: what this host would answer for `target`.
pub async fn local_stats_value(app: &Arc<App>, target: &str, scope: i64, timefrom: i64) -> Value {
    local_stats(app, target, scope, timefrom, &timefrom.to_string())
        .await
        .into_value(true)
}

async fn local_stats(
    app: &Arc<App>,
    target: &str,
    scope: i64,
    timefrom: i64,
    timefrom_text: &str,
) -> Answer {
    let source = match source(app) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let settings = reports::settings(&app.config.engine);
    let now = app.now();
    let target = target.to_string();
    let computed = app
        .source
        .run(move |conn| {
            let Some(user) = source.find_user_for_rpc(conn, &target).map_err(to_store)? else {
                return Ok(None);
            };
            let window = Window {
                from: timefrom,
                to: now,
                now,
            };
            let report = reports::user_report(conn, &source, &settings, user.id, window, false)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
            let course_ids: Vec<i64> = report.courses.iter().map(|c| c.course).collect();
            let courses = source.courses_by_ids(conn, &course_ids).map_err(to_store)?;
            let cmids: Vec<i64> = report
                .courses
                .iter()
                .flat_map(|c| c.modules.iter().map(|m| m.cmid))
                .collect();
            let labels = if scope >= MODULE_SCOPE {
                source.module_labels(conn, &cmids).map_err(to_store)?
            } else {
                Default::default()
            };
            Ok(Some((user, report, courses, labels)))
        })
        .await;
    match computed {
        Err(e) => data_unavailable(e),
        Ok(None) => Answer::fail(RPC_FAILURE_RECORD, "Target user does not exist."),
        Ok(Some((user, report, courses, labels))) => {
            tracing::debug!(
                target_user = %user.username,
                rows = report.rows_extracted,
                total_s = report.total,
                estimator = %report.estimator,
                "use_stats computed"
            );
            if report.rows_extracted == 0 {
                return Answer::ok("<USE_STATS><EMPTYSET /></USE_STATS>".into());
            }
            Answer::ok(stats_message(
                &user,
                &report,
                scope,
                timefrom_text,
                &courses,
                &labels,
            ))
        }
    }
}

/// The `<USE_STATS>` message of §1.4.3, minutes floored, values escaped (E8, E11, E14).
pub fn stats_message(
    user: &User,
    report: &Report,
    scope: i64,
    timefrom_text: &str,
    courses: &std::collections::HashMap<i64, crate::store::source::Course>,
    labels: &std::collections::HashMap<i64, crate::store::source::ModuleLabel>,
) -> String {
    let mut out = String::new();
    out.push_str("<USE_STATS>\n<USER>\n");
    out.push_str(&format!(
        "\t<USERNAME>{}</USERNAME>\n",
        xml_escape(&user.username)
    ));
    out.push_str(&format!(
        "\t<FIRSTNAME>{}</FIRSTNAME>\n",
        xml_escape(&user.firstname)
    ));
    out.push_str(&format!(
        "\t<LASTNAME>{}</LASTNAME>\n",
        xml_escape(&user.lastname)
    ));
    out.push_str(&format!("\t<FROM>{}</FROM>\n", xml_escape(timefrom_text)));
    out.push_str(&format!(
        "\t<ELAPSED>{}</ELAPSED>\n",
        report.total.div_euclid(60)
    ));
    out.push_str("\n</USER>");
    if scope >= COURSE_SCOPE {
        out.push_str("<COURSES>\n");
        for totals in &report.courses {
            let minutes = totals.coursetotal.div_euclid(60);
            if totals.course == 0 || minutes < COURSE_MIN_MINUTES {
                continue;
            }
            let course = courses.get(&totals.course);
            let field = |f: fn(&crate::store::source::Course) -> &str| {
                course.map(|c| xml_escape(f(c))).unwrap_or_default()
            };
            out.push_str("<COURSE>\n");
            out.push_str(&format!("\t<NAME>{}</NAME>\n", field(|c| &c.fullname)));
            out.push_str(&format!(
                "\t<SHORTNAME>{}</SHORTNAME>\n",
                field(|c| &c.shortname)
            ));
            out.push_str(&format!(
                "\t<IDNUMBER>{}</IDNUMBER>\n",
                field(|c| &c.idnumber)
            ));
            out.push_str(&format!("\t<ELAPSED>{minutes}</ELAPSED>\n"));
            if scope >= MODULE_SCOPE {
                out.push_str("<MODULES>\n");
                for module in &totals.modules {
                    let minutes = module.elapsed.div_euclid(60);
                    if minutes < MODULE_MIN_MINUTES {
                        continue;
                    }
                    let (name, kind, idnumber) = match (labels.get(&module.cmid), &module.module) {
                        (Some(label), Some(_)) => (
                            xml_escape(&label.name),
                            xml_escape(&label.modname),
                            xml_escape(&label.idnumber),
                        ),
                        _ => ("N.C.".to_string(), "N.C.".to_string(), String::new()),
                    };
                    out.push_str("<MODULE>\n");
                    out.push_str(&format!("\t<NAME>{name}</NAME>\n"));
                    out.push_str(&format!("\t<TYPE>{kind}</TYPE>\n"));
                    out.push_str(&format!("\t<IDNUMBER>{idnumber}</IDNUMBER>\n"));
                    out.push_str(&format!("\t<ELAPSED>{minutes}</ELAPSED>\n"));
                    out.push_str("\n</MODULE>\n");
                }
                out.push_str("\n</MODULES>\n");
            }
            out.push_str("\n</COURSE>\n");
        }
        out.push_str("\n</COURSES>\n");
    }
    out.push_str("\n</USE_STATS>");
    out
}

pub async fn get_scores(app: Arc<App>, ctx: CallContext, params: Vec<Value>) -> Value {
    let json_response = json_response_param(params.get(6));
    get_scores_answer(&app, &ctx, &params)
        .await
        .into_value(json_response)
}

async fn get_scores_answer(app: &Arc<App>, ctx: &CallContext, params: &[Value]) -> Answer {
    let caller = match authenticate(app, ctx, params.first()).await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let parsed = (|| {
        Ok::<_, Answer>((
            string_param(params.get(1), "targetuser")?,
            string_param(params.get(2), "whereroot")?,
            string_param(params.get(3), "scorescope")?,
            string_param(params.get(4), "courseidfield")?,
            string_param(params.get(5), "courseidentifier")?,
        ))
    })();
    let (target, whereroot, scorescope, field, identifier) = match parsed {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    // Grades are course detail: the course grant is needed.
    if !caller.grant.course {
        return Answer::fail(
            RPC_FAILURE_CAPABILITY,
            "Local user's identity has no capability to run",
        );
    }
    if let Some(remote) = forward_target(app, &whereroot) {
        let params = vec![
            relay_caller(app, &caller),
            Value::String(target),
            Value::String(String::new()),
            Value::String(scorescope),
            Value::String(field),
            Value::String(identifier),
        ];
        return forward(app, &remote, GET_SCORES, params, false).await;
    }
    let course_field = match field.as_str() {
        "id" => CourseField::Id,
        "shortname" => CourseField::ShortName,
        "idnumber" => CourseField::IdNumber,
        _ => return Answer::fail(RPC_FAILURE_RECORD, "Unknown course."),
    };
    let source = match source(app) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let found = app
        .source
        .run(move |conn| {
            let Some(course) = source
                .find_course(conn, course_field, &identifier)
                .map_err(to_store)?
            else {
                return Ok(Err(Answer::fail(RPC_FAILURE_RECORD, "Unknown course.")));
            };
            let Some(user) = source.find_user_for_rpc(conn, &target).map_err(to_store)? else {
                return Ok(Err(Answer::fail(
                    RPC_FAILURE_RECORD,
                    "Target user does not exist.",
                )));
            };
            let grade = source
                .course_grade(conn, user.id, course.id)
                .map_err(to_store)?;
            Ok(Ok((user, grade)))
        })
        .await;
    let (user, grade) = match found {
        Err(e) => return data_unavailable(e),
        Ok(Err(answer)) => return answer,
        Ok(Ok(found)) => found,
    };
    if scorescope != "notes/global" {
        return Answer::ok("<USER_SCORES>\n<ERROR>Not implemented</ERROR>\n</USER_SCORES>".into());
    }
    Answer::ok(format!(
        "<USER_SCORES>\n<USER>\n\t<USERNAME>{}</USERNAME>\n\t<FIRSTNAME>{}</FIRSTNAME>\n\t<LASTNAME>{}</LASTNAME>\n\n</USER><SCORE>{}</SCORE>\n</USER_SCORES>",
        xml_escape(&user.username),
        xml_escape(&user.firstname),
        xml_escape(&user.lastname),
        xml_escape(grade.as_deref().unwrap_or("")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_json_escapes_like_json_encode() {
        let value = json!({"status": 200, "errors": [], "message": "<A>Renée & Groß</A> €😀"});
        assert_eq!(
            php_json(&value),
            r#"{"status":200,"errors":[],"message":"<A>Ren\u00e9e & Gro\u00df<\/A> \u20ac\ud83d\ude00"}"#
        );
    }

    #[test]
    fn answers_read_back_from_json_and_struct() {
        let answer = Answer::fail(RPC_FAILURE_RECORD, "Target user does not exist.");
        for json_response in [true, false] {
            let value = answer.clone().into_value(json_response);
            assert_eq!(Answer::from_value(&value), Some(answer.clone()));
        }
        let ok = Answer::ok("<USE_STATS/>".into());
        assert_eq!(
            php_json(&ok.to_json()),
            r#"{"status":200,"errors":[],"message":"<USE_STATS\/>"}"#
        );
    }
}
