//! The REST web services over real HTTP, against a daemon serving the demo site: every
//! function in JSON and in Moodle XML, GET and POST, PHP array parameters, numbers equal to
//! the engine's on the same database, and every error a Moodle client must tell apart.
//! Runs on SQLite, and again with PostgreSQL as the database when a server is configured.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use common::*;
use diesel::RunQueryDsl;
use serde_json::{Map, Value as Json, json};
use usestats::stats::{Report, SessionStats, Window};
use usestats::store::source::{Course, Source, User, UserField};
use usestats::store::state;
use usestats::ws::{GET_USER_STATS, GET_USERS_COURSE_STATS, GET_USERS_STATS};

/// "Now" for every daemon here: a day after the demo log ends (`DemoOptions::anchor`), so
/// that the numbers and `query.to` do not depend on the wall clock.
const NOW: i64 = 1_793_491_200 + 86_400;
const HOME: &str = "https://erp.example.org";
const CALLER: &str = "reports";

// ---------------------------------------------------------------------------------------------
// Log capture: the token must never reach the logs, so every test runs with a subscriber
// that keeps what the daemon logs, down to DEBUG.

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .try_init();
    });
}

fn logged() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The daemon and HTTP

struct Ws {
    t: TestApp,
    token: String,
    _pg: Option<TestDb>,
}

async fn setup(pg: Option<TestDb>) -> Ws {
    capture_logs();
    let url = pg.as_ref().map(|db| db.url());
    let t = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![]),
        tweak: Some(Box::new(move |c| {
            if let Some(url) = url {
                c.state.url = url;
            }
        })),
        ..Default::default()
    })
    .await;
    t.app.clock.pin(NOW);
    // Answers come from the compiled store; `engine` below is the full-scan reference.
    let compiled = compile(&t.app).await;
    assert!(
        compiled.rows_read > 0 && compiled.segments > 0,
        "{compiled:?}"
    );
    t.grant(HOME, CALLER, false, true).await;
    let token = new_token(&t, CALLER, None, "").await;
    Ws { t, token, _pg: pg }
}

async fn new_token(t: &TestApp, username: &str, expires: Option<i64>, ips: &str) -> String {
    usestats::ws::tokens::create(&t.app, HOME, username, "test", expires, ips)
        .await
        .expect("token")
        .0
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Get,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

async fn http(via: Via, url: &str, body: String) -> Reply {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let builder = match via {
        Via::Get => hyper::Request::get(url),
        Via::Post => {
            hyper::Request::post(url).header("Content-Type", "application/x-www-form-urlencoded")
        }
    };
    let response = client
        .request(builder.body(Full::new(bytes::Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).expect("UTF-8 answer"),
    }
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Ws {
    /// Send exactly `params` (token and function included) the way a Moodle REST client does.
    async fn raw(&self, via: Via, params: &[(String, String)]) -> Reply {
        let endpoint = self.t.url("/webservice/rest/server.php");
        match via {
            Via::Get => http(via, &format!("{endpoint}?{}", form(params)), String::new()).await,
            Via::Post => http(via, &endpoint, form(params)).await,
        }
    }

    /// One call with our token; the answer parsed to JSON whatever the format (XML values
    /// come back as strings: compare with [`stringify`]).
    async fn call_with(
        &self,
        token: &str,
        via: Via,
        format: Format,
        function: &str,
        params: &[(String, String)],
    ) -> Json {
        let mut all = vec![
            ("wstoken".to_string(), token.to_string()),
            ("wsfunction".to_string(), function.to_string()),
        ];
        if format == Format::Json {
            all.push(("moodlewsrestformat".into(), "json".into()));
        }
        all.extend_from_slice(params);
        let reply = self.raw(via, &all).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        match format {
            Format::Json => {
                assert_eq!(reply.content_type, "application/json");
                serde_json::from_str(&reply.body).expect("JSON answer")
            }
            Format::Xml => {
                assert_eq!(reply.content_type, "application/xml; charset=utf-8");
                parse_moodle_xml(&reply.body)
            }
        }
    }

    async fn call(
        &self,
        via: Via,
        format: Format,
        function: &str,
        params: &[(&str, &str)],
    ) -> Json {
        self.call_with(&self.token, via, format, function, &owned(params))
            .await
    }

    async fn json(&self, function: &str, params: &[(&str, &str)]) -> Json {
        self.call(Via::Post, Format::Json, function, params).await
    }
}

// ---------------------------------------------------------------------------------------------
// Moodle's REST XML, parsed strictly into JSON (every scalar a string)

#[derive(Debug)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn xml_tree(text: &str) -> Node {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Node> = vec![Node {
        name: String::new(),
        attrs: vec![],
        children: vec![],
        text: String::new(),
    }];
    let open = |e: &quick_xml::events::BytesStart| Node {
        name: AsRef::<str>::as_ref(&e.name()).to_string(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                (
                    AsRef::<str>::as_ref(&a.key).to_string(),
                    a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("attribute value")
                        .into_owned(),
                )
            })
            .collect(),
        children: vec![],
        text: String::new(),
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(open(&e)),
            Event::Empty(e) => {
                let node = open(&e);
                stack.last_mut().unwrap().children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().expect("balanced").children.push(node);
            }
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().expect("character reference") {
                    Some(c) => c,
                    None => match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity &{other};"),
                    },
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::Eof => break,
            Event::Decl(_) => {}
            other => panic!("unexpected XML event {other:?}"),
        }
    }
    assert_eq!(stack.len(), 1, "unclosed element");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element");
    assert!(doc.text.trim().is_empty(), "text outside the root");
    doc.children.pop().unwrap()
}

fn moodle_value(node: &Node) -> Json {
    match node.name.as_str() {
        "SINGLE" => {
            assert!(node.text.trim().is_empty(), "text in SINGLE");
            let mut object = Map::new();
            for key in &node.children {
                assert_eq!(key.name, "KEY", "only KEYs in SINGLE");
                assert_eq!(key.children.len(), 1, "one value per KEY");
                let name = key.attr("name").expect("KEY name").to_string();
                assert!(
                    object
                        .insert(name.clone(), moodle_value(&key.children[0]))
                        .is_none(),
                    "duplicate KEY {name}"
                );
            }
            Json::Object(object)
        }
        "MULTIPLE" => {
            assert!(node.text.trim().is_empty(), "text in MULTIPLE");
            Json::Array(node.children.iter().map(moodle_value).collect())
        }
        "VALUE" => {
            assert!(node.children.is_empty());
            if node.attr("null") == Some("null") {
                Json::Null
            } else {
                Json::String(node.text.clone())
            }
        }
        other => panic!("unexpected element {other}"),
    }
}

/// A RESPONSE document as JSON, or an EXCEPTION document as Moodle's exception JSON.
fn parse_moodle_xml(text: &str) -> Json {
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n"),
        "{text}"
    );
    let root = xml_tree(text);
    match root.name.as_str() {
        "RESPONSE" => {
            assert_eq!(root.children.len(), 1, "one value in RESPONSE");
            moodle_value(&root.children[0])
        }
        "EXCEPTION" => {
            let mut object = Map::new();
            object.insert(
                "exception".into(),
                json!(root.attr("class").expect("exception class")),
            );
            for child in &root.children {
                let key = match child.name.as_str() {
                    "ERRORCODE" => "errorcode",
                    "MESSAGE" => "message",
                    "DEBUGINFO" => "debuginfo",
                    other => panic!("unexpected element {other} in EXCEPTION"),
                };
                object.insert(key.into(), json!(child.text));
            }
            Json::Object(object)
        }
        other => panic!("unexpected root {other}"),
    }
}

/// What the XML form of a JSON answer must parse to.
fn stringify(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            Json::Object(map.iter().map(|(k, v)| (k.clone(), stringify(v))).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(stringify).collect()),
        Json::Number(n) => Json::String(n.to_string()),
        Json::Bool(b) => Json::String(if *b { "1" } else { "0" }.into()),
        other => other.clone(),
    }
}

fn keys(value: &Json) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the engine says, on the daemon's own database

struct Site {
    /// Non-deleted users, by id.
    users: Vec<User>,
    deleted_user: i64,
    courses: HashMap<i64, Course>,
    site_course: i64,
    /// (user, course) → grade.
    grades: HashMap<(i64, i64), String>,
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

#[derive(diesel::QueryableByName)]
struct Grade {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    u: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    k: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    g: Option<f64>,
}

fn ids(c: &mut usestats::store::DbConnection, sql: &str) -> Vec<i64> {
    diesel::sql_query(sql)
        .load::<Id>(c)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn site(ws: &Ws) -> Site {
    ws.t.app
        .source
        .run::<_, usestats::store::StoreError, _>(|c| {
            let source = Source::new("mdl_").unwrap();
            let users: Vec<User> = ids(c, "SELECT id FROM mdl_user WHERE deleted = 0 ORDER BY id")
                .into_iter()
                .map(|id| {
                    source
                        .find_user(c, UserField::Id, &id.to_string())
                        .unwrap()
                        .unwrap()
                })
                .collect();
            let deleted_user = ids(c, "SELECT id FROM mdl_user WHERE deleted = 1")[0];
            let course_ids = ids(c, "SELECT id FROM mdl_course ORDER BY id");
            let courses = source.courses_by_ids(c, &course_ids).unwrap();
            // D9/E10 read straight from the tables: the course item (lowest id) of each
            // course, finalgrade else rawgrade, printed as number(10,5).
            let double = match c {
                usestats::store::DbConnection::Mysql(_) => "DOUBLE",
                _ => "DOUBLE PRECISION",
            };
            let grades = diesel::sql_query(format!(
                "SELECT gg.userid AS u, gi.courseid AS k, \
                 CAST(COALESCE(gg.finalgrade, gg.rawgrade) AS {double}) AS g \
                 FROM mdl_grade_grades gg JOIN mdl_grade_items gi ON gi.id = gg.itemid \
                 WHERE gi.id IN (SELECT MIN(id) FROM mdl_grade_items WHERE itemtype = 'course' \
                 GROUP BY courseid)"
            ))
            .load::<Grade>(c)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.g.map(|g| ((r.u, r.k), format!("{g:.5}"))))
            .collect();
            let site_course = source.site_course_id(c).unwrap();
            Ok(Site {
                users,
                deleted_user,
                courses,
                site_course,
                grades,
            })
        })
        .await
        .unwrap()
}

impl Site {
    fn user(&self, id: i64) -> &User {
        self.users.iter().find(|u| u.id == id).expect("user")
    }
}

/// The user's report as the engine computes it alone, user by user.
async fn engine(ws: &Ws, userid: i64, from: i64, to: i64) -> Report {
    let settings = usestats::reports::settings(&ws.t.app.config.engine);
    ws.t.app
        .source
        .run::<_, usestats::store::StoreError, _>(move |c| {
            let source = Source::new("mdl_").unwrap();
            Ok(usestats::reports::user_report(
                c,
                &source,
                &settings,
                userid,
                Window { from, to, now: NOW },
                false,
            )
            .unwrap())
        })
        .await
        .unwrap()
}

/// Local learners with logs, busiest first.
async fn learners(ws: &Ws) -> Vec<i64> {
    ws.t.app
        .source
        .run::<_, usestats::store::StoreError, _>(|c| {
            Ok(ids(
                c,
                "SELECT u.id AS id FROM mdl_user u JOIN mdl_logstore_standard_log l ON l.userid = u.id \
                 WHERE u.deleted = 0 AND u.username NOT IN ('admin', 'guest') \
                 AND COALESCE(u.idnumber, '') LIKE 'S%' \
                 GROUP BY u.id ORDER BY COUNT(*) DESC, u.id",
            ))
        })
        .await
        .unwrap()
}

fn sessions_json(stats: &SessionStats) -> Json {
    let mut object = Map::new();
    object.insert("sessions".into(), json!(stats.count));
    if let (Some(first), Some(last)) = (stats.first_start, stats.last_start) {
        object.insert("firstsession".into(), json!(first));
        object.insert("lastsession".into(), json!(last));
    }
    object.insert("sessionmin".into(), json!(stats.min));
    object.insert("sessionmax".into(), json!(stats.max));
    object.insert("meansession".into(), json!(stats.mean()));
    Json::Object(object)
}

fn user_json(user: &User) -> Json {
    json!({"id": user.id, "idnumber": user.idnumber, "username": user.username})
}

/// Spec §1.7.1 row with D7 and E10, from the engine's totals.
fn course_row(site: &Site, user: &User, report: &Report, course: i64, score: bool) -> Json {
    let totals = report.course(course);
    let record = &site.courses[&course];
    let mut row = json!({
        "id": course,
        "idnumber": record.idnumber,
        "shortname": record.shortname,
        "fullname": record.fullname,
        "activitytime": totals.map_or(0, |t| t.activitytime),
        "coursetime": totals.map_or(0, |t| t.coursetime),
        "coursetotal": totals.map_or(0, |t| t.coursetotal),
        "othertime": totals.map_or(0, |t| t.othertime),
        "sitecoursetime": report.course(site.site_course).map_or(0, |t| t.coursetime),
    });
    if score {
        row["score"] = json!(
            site.grades
                .get(&(user.id, course))
                .cloned()
                .unwrap_or_else(|| "-".into())
        );
    }
    row
}

/// The whole get_user_stats answer the spec asks for.
fn expected_stats(
    site: &Site,
    user: &User,
    report: &Report,
    course: Option<i64>,
    score: bool,
    from: i64,
) -> Json {
    let had_logs = report.rows_extracted > 0;
    let sessions = match (had_logs, course) {
        (false, _) => json!({}),
        (true, None) => sessions_json(&report.sessions),
        (true, Some(c)) => sessions_json(
            &report
                .course(c)
                .map(|t| t.sessions.clone())
                .unwrap_or_default(),
        ),
    };
    let courses: Vec<Json> = match course {
        Some(c) => vec![course_row(site, user, report, c, score)],
        None => report
            .courses
            .iter()
            .filter(|c| c.course != 0 && c.course != site.site_course)
            .map(|c| course_row(site, user, report, c.course, score))
            .collect(),
    };
    json!({
        "user": user_json(user),
        "query": {"from": from, "to": report.window.to, "estimator": report.estimator.to_string()},
        "sessions": sessions,
        "courses": courses,
    })
}

const COURSE_KEYS: [&str; 10] = [
    "id",
    "idnumber",
    "shortname",
    "fullname",
    "activitytime",
    "coursetime",
    "coursetotal",
    "othertime",
    "sitecoursetime",
    "score",
];

/// Member order as Moodle's return description lists it (XML consumers may rely on it).
fn assert_stats_shape(answer: &Json) {
    assert_eq!(keys(answer), ["user", "query", "sessions", "courses"]);
    assert_eq!(keys(&answer["user"]), ["id", "idnumber", "username"]);
    assert_eq!(keys(&answer["query"]), ["from", "to", "estimator"]);
    let order = [
        "sessions",
        "firstsession",
        "lastsession",
        "sessionmin",
        "sessionmax",
        "meansession",
    ];
    let got = keys(&answer["sessions"]);
    let want: Vec<&str> = order.iter().copied().filter(|k| got.contains(k)).collect();
    assert_eq!(got, want);
    for row in answer["courses"].as_array().unwrap() {
        let got = keys(row);
        assert_eq!(got, COURSE_KEYS[..got.len()]);
        // D7: the course total is the sum of its parts on every row.
        assert_eq!(
            row["coursetotal"].as_i64().unwrap(),
            row["coursetime"].as_i64().unwrap()
                + row["activitytime"].as_i64().unwrap()
                + row["othertime"].as_i64().unwrap(),
            "{row}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The bodies, run on each backend

/// get_user_stats: every uidsource, both formats, GET and POST, numbers equal to the engine.
async fn user_stats(ws: &Ws, site: &Site) {
    let user = site.user(learners(ws).await[0]).clone();
    let report = engine(ws, user.id, 0, NOW).await;
    let expected = expected_stats(site, &user, &report, None, true, 0);
    // E7: a row for every course with counted rows, except course 0 and the front page.
    let with_rows: BTreeSet<i64> = report
        .courses
        .iter()
        .filter(|c| c.events > 0 && c.course != 0 && c.course != site.site_course)
        .map(|c| c.course)
        .collect();
    let listed: BTreeSet<i64> = expected["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, with_rows);
    assert!(with_rows.len() >= 2, "a learner in several courses");
    assert!(report.sessions.count > 1);

    let id = user.id.to_string();
    for (source, uid) in [
        ("id", id.as_str()),
        ("idnumber", user.idnumber.as_str()),
        ("username", user.username.as_str()),
        ("email", user.email.as_str()),
    ] {
        let answer = ws
            .json(GET_USER_STATS, &[("uidsource", source), ("uid", uid)])
            .await;
        assert_eq!(answer, expected, "uidsource={source}");
        assert_stats_shape(&answer);
    }
    let answer = ws
        .json(
            GET_USER_STATS,
            &[("uidsource", "username"), ("uid", &user.username)],
        )
        .await;
    assert!(
        answer["query"]["estimator"]
            .as_str()
            .unwrap()
            .starts_with("use_stats.main v1 (threshold 3600 s"),
        "{answer}"
    );
    assert!(answer["sessions"]["firstsession"].as_i64().unwrap() > 0);
    for via in [Via::Get, Via::Post] {
        for format in [Format::Json, Format::Xml] {
            let got = ws
                .call(
                    via,
                    format,
                    GET_USER_STATS,
                    &[("uidsource", "username"), ("uid", &user.username)],
                )
                .await;
            let want = match format {
                Format::Json => expected.clone(),
                Format::Xml => stringify(&expected),
            };
            assert_eq!(got, want, "{via:?} {format:?}");
        }
    }
    // Moodle clients often put the token and function in the URL and the rest in the body.
    let url = ws.t.url(&format!(
        "/webservice/rest/server.php?wstoken={}&wsfunction={GET_USER_STATS}&moodlewsrestformat=json",
        ws.token
    ));
    let reply = http(
        Via::Post,
        &url,
        form(&owned(&[("uidsource", "id"), ("uid", &id)])),
    )
    .await;
    assert_eq!(serde_json::from_str::<Json>(&reply.body).unwrap(), expected);
}

/// cidsource, cid 0, D6 and E9 for a requested course.
async fn course_selection(ws: &Ws, site: &Site) {
    let user = site.user(learners(ws).await[0]).clone();
    let report = engine(ws, user.id, 0, NOW).await;
    let all = ws
        .json(
            GET_USER_STATS,
            &[("uidsource", "username"), ("uid", &user.username)],
        )
        .await;
    // cid 0 (or empty) is every course, whatever cidsource says (W2).
    for params in [
        vec![("cid", "0")],
        vec![("cidsource", "idnumber"), ("cid", "0")],
        vec![("cidsource", "shortname"), ("cid", "0")],
        vec![("cidsource", "id"), ("cid", "0")],
        vec![("cidsource", "id"), ("cid", "")],
        vec![("cidsource", ""), ("cid", "3")],
    ] {
        let mut p = vec![("uidsource", "username"), ("uid", user.username.as_str())];
        p.extend(params.iter().copied());
        assert_eq!(ws.json(GET_USER_STATS, &p).await, all, "{params:?}");
    }
    // D6: one course asked for, that course's row only and the sessions that touched it.
    let mut restricted = false;
    for totals in report
        .courses
        .iter()
        .filter(|c| c.course != 0 && c.course != site.site_course)
    {
        let course = &site.courses[&totals.course];
        let expected = expected_stats(site, &user, &report, Some(course.id), true, 0);
        assert_eq!(
            expected["sessions"]["sessions"].as_u64().unwrap(),
            totals.sessions.count
        );
        assert!(totals.sessions.count <= report.sessions.count);
        restricted |= totals.sessions.count < report.sessions.count;
        let id = course.id.to_string();
        let mut sources = vec![
            ("id", id.as_str()),
            ("shortname", course.shortname.as_str()),
        ];
        if !course.idnumber.is_empty() {
            sources.push(("idnumber", course.idnumber.as_str()));
        }
        for (cidsource, cid) in sources {
            let answer = ws
                .json(
                    GET_USER_STATS,
                    &[
                        ("uidsource", "id"),
                        ("uid", &user.id.to_string()),
                        ("cidsource", cidsource),
                        ("cid", cid),
                    ],
                )
                .await;
            assert_eq!(answer, expected, "cidsource={cidsource}");
            assert_stats_shape(&answer);
            assert_eq!(answer["courses"].as_array().unwrap().len(), 1);
        }
    }
    assert!(
        restricted,
        "some course's sessions are fewer than all sessions"
    );
    // A course without time for a user who has logs: a zero row, zero sessions, no first/last.
    let mut zero_row = None;
    for id in learners(ws).await {
        let report = engine(ws, id, 0, NOW).await;
        let mut courses: Vec<i64> = site.courses.keys().copied().collect();
        courses.sort_unstable();
        if let Some(course) = courses
            .into_iter()
            .find(|c| *c != site.site_course && report.course(*c).is_none())
        {
            zero_row = Some((id, course, report));
            break;
        }
    }
    let (id, course, report) = zero_row.expect("a learner without time in some course");
    let user = site.user(id);
    let answer = ws
        .json(
            GET_USER_STATS,
            &[
                ("uidsource", "id"),
                ("uid", &id.to_string()),
                ("cidsource", "shortname"),
                ("cid", &site.courses[&course].shortname),
            ],
        )
        .await;
    assert_eq!(
        answer["sessions"],
        json!({"sessions": 0, "sessionmin": 0, "sessionmax": 0, "meansession": 0})
    );
    let row = &answer["courses"][0];
    assert_eq!(row["id"], json!(course));
    for field in ["activitytime", "coursetime", "coursetotal", "othertime"] {
        assert_eq!(row[field], json!(0), "{field}");
    }
    assert_eq!(
        answer,
        expected_stats(site, user, &report, Some(course), true, 0)
    );
}

/// from/to, E9 without logs, score on and off.
async fn windows_and_scores(ws: &Ws, site: &Site) {
    let user = site.user(learners(ws).await[0]).clone();
    let full = engine(ws, user.id, 0, NOW).await;
    let first = full.courses.iter().map(|c| c.first_time).min().unwrap();
    let last = full.courses.iter().map(|c| c.last_time).max().unwrap();
    let (from, to) = (first + (last - first) / 3, first + 2 * (last - first) / 3);
    let report = engine(ws, user.id, from, to).await;
    assert!(report.total > 0 && report.total < full.total);
    let (f, t) = (from.to_string(), to.to_string());
    let params = [
        ("uidsource", "username"),
        ("uid", user.username.as_str()),
        ("from", f.as_str()),
        ("to", t.as_str()),
    ];
    let answer = ws.json(GET_USER_STATS, &params).await;
    assert_eq!(answer["query"]["from"], json!(from));
    assert_eq!(answer["query"]["to"], json!(to));
    assert_eq!(
        answer,
        expected_stats(site, &user, &report, None, true, from)
    );
    assert_eq!(
        ws.call(Via::Get, Format::Xml, GET_USER_STATS, &params)
            .await,
        stringify(&answer)
    );

    // E9: no logs in the window: sessions is an empty object, courses empty except the
    // requested course's zero row.
    let quiet = [
        ("uidsource", "username"),
        ("uid", user.username.as_str()),
        ("from", "1"),
        ("to", "1000"),
    ];
    let answer = ws.json(GET_USER_STATS, &quiet).await;
    assert_eq!(answer["sessions"], json!({}));
    assert_eq!(answer["courses"], json!([]));
    assert_eq!(answer["query"]["to"], json!(1000));
    let xml = ws
        .call(Via::Post, Format::Xml, GET_USER_STATS, &quiet)
        .await;
    assert_eq!(xml, stringify(&answer));
    let course = full
        .courses
        .iter()
        .find(|c| c.course != 0 && c.course != site.site_course)
        .unwrap()
        .course;
    let mut with_course = quiet.to_vec();
    let cid = course.to_string();
    with_course.extend([("cidsource", "id"), ("cid", cid.as_str())]);
    let answer = ws.json(GET_USER_STATS, &with_course).await;
    assert_eq!(answer["sessions"], json!({}));
    let empty = engine(ws, user.id, 1, 1000).await;
    assert_eq!(
        answer,
        expected_stats(site, &user, &empty, Some(course), true, 1)
    );
    assert_eq!(answer["courses"][0]["coursetotal"], json!(0));
    // The guest account never logged anything.
    let guest = ws
        .json(
            GET_USER_STATS,
            &[("uidsource", "username"), ("uid", "guest")],
        )
        .await;
    assert_eq!(guest["sessions"], json!({}));
    assert_eq!(guest["courses"], json!([]));
    assert_eq!(guest["user"]["username"], json!("guest"));

    // score is PARAM_INT here: 0 leaves the member out.
    let answer = ws
        .json(
            GET_USER_STATS,
            &[
                ("uidsource", "username"),
                ("uid", &user.username),
                ("score", "0"),
            ],
        )
        .await;
    assert_eq!(answer, expected_stats(site, &user, &full, None, false, 0));
    assert!(answer["courses"][0].get("score").is_none());
}

fn uid_params(uids: &[String]) -> Vec<(String, String)> {
    // Out of order on purpose: the answer follows the indexes, not the wire order.
    let mut params: Vec<(String, String)> = uids
        .iter()
        .enumerate()
        .map(|(i, uid)| (format!("uids[{i}]"), uid.clone()))
        .collect();
    params.reverse();
    params.insert(0, ("uidsource".into(), "id".into()));
    params
}

/// get_users_stats for every user: the one-scan path equals the engine run user by user.
async fn users_stats(ws: &Ws, site: &Site) {
    let uids: Vec<String> = site.users.iter().map(|u| u.id.to_string()).collect();
    let mut expected = Vec::new();
    for user in &site.users {
        let report = engine(ws, user.id, 0, NOW).await;
        expected.push(expected_stats(site, user, &report, None, true, 0));
    }
    let expected = Json::Array(expected);
    let params = uid_params(&uids);
    let answer = ws
        .call_with(&ws.token, Via::Post, Format::Json, GET_USERS_STATS, &params)
        .await;
    assert_eq!(answer, expected);
    for item in answer.as_array().unwrap() {
        assert_stats_shape(item);
    }
    let xml = ws
        .call_with(&ws.token, Via::Get, Format::Xml, GET_USERS_STATS, &params)
        .await;
    assert_eq!(xml, stringify(&expected));
    // E10: grades print as number(10,5); '-' when there is none (missing row or NULL values).
    let scores: Vec<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["courses"].as_array().unwrap())
        .map(|c| c["score"].as_str().unwrap())
        .collect();
    let decimal = |s: &str| {
        s.split_once('.').is_some_and(|(i, f)| {
            !i.is_empty()
                && i.bytes().all(|b| b.is_ascii_digit())
                && f.len() == 5
                && f.bytes().all(|b| b.is_ascii_digit())
        })
    };
    assert!(scores.iter().any(|s| decimal(s)), "{scores:?}");
    assert!(scores.contains(&"-"), "{scores:?}");
    assert!(scores.iter().all(|s| *s == "-" || decimal(s)), "{scores:?}");

    // `uids[]=` appends; a user asked twice is answered twice; score is PARAM_BOOL here.
    let (a, b) = (&site.users[5], &site.users[2]);
    let answer = ws
        .json(
            GET_USERS_STATS,
            &[
                ("uidsource", "username"),
                ("uids[]", &a.username),
                ("uids[]", &b.username),
                ("uids[]", &a.username),
                ("score", "false"),
            ],
        )
        .await;
    let ra = engine(ws, a.id, 0, NOW).await;
    let rb = engine(ws, b.id, 0, NOW).await;
    let ea = expected_stats(site, a, &ra, None, false, 0);
    let eb = expected_stats(site, b, &rb, None, false, 0);
    assert_eq!(answer, json!([ea, eb, ea]));

    // With a course: each user gets that course's row only (D6).
    let course = &site.courses[&2];
    let mut params = uid_params(&uids);
    params.push(("cidsource".into(), "shortname".into()));
    params.push(("cid".into(), course.shortname.clone()));
    let answer = ws
        .call_with(&ws.token, Via::Post, Format::Json, GET_USERS_STATS, &params)
        .await;
    let mut expected = Vec::new();
    for user in &site.users {
        let report = engine(ws, user.id, 0, NOW).await;
        expected.push(expected_stats(
            site,
            user,
            &report,
            Some(course.id),
            true,
            0,
        ));
    }
    assert_eq!(answer, Json::Array(expected));
}

/// get_users_course_stats: one course per user, first/last session of that course.
async fn users_course_stats(ws: &Ws, site: &Site) {
    let course = &site.courses[&3];
    let uids: Vec<String> = site.users.iter().map(|u| u.id.to_string()).collect();
    let mut params = uid_params(&uids);
    params.push(("cidsource".into(), "idnumber".into()));
    params.push(("cid".into(), course.idnumber.clone()));
    let answer = ws
        .call_with(
            &ws.token,
            Via::Post,
            Format::Json,
            GET_USERS_COURSE_STATS,
            &params,
        )
        .await;
    let mut expected = Vec::new();
    let mut with_sessions = 0;
    for user in &site.users {
        let report = engine(ws, user.id, 0, NOW).await;
        let mut data = course_row(site, user, &report, course.id, false);
        if let Some(s) = report
            .course(course.id)
            .map(|t| &t.sessions)
            .filter(|s| s.count > 0)
        {
            data["firstsession"] = json!(s.first_start);
            data["lastsession"] = json!(s.last_start);
            with_sessions += 1;
        }
        data["score"] = course_row(site, user, &report, course.id, true)["score"].clone();
        expected.push(json!({"user": user_json(user), "coursedata": data}));
    }
    assert!(with_sessions > 0 && with_sessions < site.users.len());
    let expected = Json::Array(expected);
    assert_eq!(answer, expected);
    for item in answer.as_array().unwrap() {
        assert_eq!(keys(item), ["user", "coursedata"]);
        let got = keys(&item["coursedata"]);
        let order = [
            &COURSE_KEYS[..9],
            &["firstsession", "lastsession", "score"][..],
        ]
        .concat();
        let want: Vec<&str> = order.iter().copied().filter(|k| got.contains(k)).collect();
        assert_eq!(got, want);
    }
    let xml = ws
        .call_with(
            &ws.token,
            Via::Get,
            Format::Xml,
            GET_USERS_COURSE_STATS,
            &params,
        )
        .await;
    assert_eq!(xml, stringify(&expected));
}

/// What a bad request could change: tokens (use time, revocation) and grants.
async fn state_snapshot(ws: &Ws) -> Json {
    ws.t.app
        .state
        .run::<_, usestats::store::StoreError, _>(|c| {
            let tokens = state::list_tokens(c)?;
            let grants = state::list_grants(c)?;
            Ok(json!({"tokens": tokens, "grants": grants}))
        })
        .await
        .unwrap()
}

async fn audit(ws: &Ws) -> Vec<state::AuditEntry> {
    ws.t.audit().await
}

/// Requests refused before authentication, counted by reason (web services only).
async fn refused(ws: &Ws) -> HashMap<String, i64> {
    ws.t.app.background.settled().await;
    let counts =
        ws.t.app
            .state
            .run(|c| state::query_refused(c, None, 100_000))
            .await
            .unwrap();
    let mut by_reason = HashMap::new();
    for c in counts.iter().filter(|c| c.channel == "ws") {
        *by_reason.entry(c.reason.clone()).or_insert(0) += c.calls;
    }
    by_reason
}

/// Every error, in both formats; a bad request changes nothing and leaks no token.
async fn errors(ws: &Ws, site: &Site) {
    let t = &ws.t;
    // A token used only here: its last-use time shows whether a failed call touched it.
    let fresh = new_token(t, CALLER, None, "").await;
    let expired = new_token(t, CALLER, Some(NOW - 1), "").await;
    let elsewhere = new_token(t, CALLER, None, "10.0.0.0/8, ::2").await;
    let here = new_token(t, CALLER, None, "10.0.0.0/8, 127.0.0.0/8").await;
    let revoked = new_token(t, CALLER, None, "").await;
    let prefix = revoked[..8].to_string();
    let n = t
        .app
        .state
        .run(move |c| state::revoke_token(c, &prefix))
        .await
        .unwrap();
    assert_eq!(n, 1);
    t.grant(HOME, "siteonly", true, false).await;
    let site_only = new_token(t, "siteonly", None, "").await;
    let before = state_snapshot(ws).await;
    let audit_before = audit(ws).await.len();
    let refused_before = refused(ws).await;

    let learner = site.user(learners(ws).await[0]).clone();
    let max = t.app.config.ws.max_users_per_call;
    let too_many: Vec<(String, String)> = std::iter::once(("uidsource".into(), "id".into()))
        .chain((0..=max).map(|i| (format!("uids[{i}]"), (i + 1).to_string())))
        .collect();
    let deleted = site.deleted_user.to_string();
    let user = |extra: &[(&str, &str)]| {
        let mut p = vec![
            ("uidsource", "username"),
            ("uid", learner.username.as_str()),
        ];
        p.extend_from_slice(extra);
        owned(&p)
    };
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Vec<(String, String)>,
        &'a str,
        &'a str,
        &'a str,
    );
    const TOKEN: &str = "moodle_exception";
    const RECORD: &str = "dml_missing_record_exception";
    const PARAM: &str = "invalid_parameter_exception";
    let wrong = "0123456789abcdef0123456789abcdef";
    let (no_uid, no_cid) = (
        owned(&[("uidsource", "id")]),
        owned(&[("uidsource", "id"), ("uids[0]", "2"), ("cid", "0")]),
    );
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("no token", "", GET_USER_STATS, user(&[]), TOKEN, "invalidtoken", ""),
        ("wrong token", wrong, GET_USER_STATS, user(&[]), TOKEN, "invalidtoken", ""),
        ("expired token", expired.as_str(), GET_USER_STATS, user(&[]), TOKEN, "invalidtimedtoken", ""),
        ("IP not allowed", elsewhere.as_str(), GET_USER_STATS, user(&[]), TOKEN, "invalidiptoken", ""),
        ("revoked token", revoked.as_str(), GET_USER_STATS, user(&[]), TOKEN, "invalidtoken", ""),
        ("unknown function", fresh.as_str(), "core_user_get_users", user(&[]), RECORD, "invalidrecord", ""),
        ("no function", fresh.as_str(), "", user(&[]), RECORD, "invalidrecord", ""),
        ("grant without --course", site_only.as_str(), GET_USER_STATS, user(&[]), "required_capability_exception", "nopermissions", ""),
        ("bad uidsource", fresh.as_str(), GET_USER_STATS, owned(&[("uidsource", "nickname"), ("uid", "x")]), PARAM, "invalidparameter", "uidsource: one of"),
        ("uidsource not PARAM_ALPHA", fresh.as_str(), GET_USER_STATS, owned(&[("uidsource", "id2"), ("uid", "2")]), PARAM, "invalidparameter", "uidsource: letters only"),
        ("missing uidsource", fresh.as_str(), GET_USER_STATS, owned(&[("uid", "2")]), PARAM, "invalidparameter", "structure: uidsource"),
        ("missing uid", fresh.as_str(), GET_USER_STATS, no_uid.clone(), PARAM, "invalidparameter", "structure: uid"),
        ("missing uids", fresh.as_str(), GET_USERS_STATS, no_uid, PARAM, "invalidparameter", "structure: uids"),
        ("from not an integer", fresh.as_str(), GET_USER_STATS, user(&[("from", "yesterday")]), PARAM, "invalidparameter", "from: integer"),
        ("to not an integer", fresh.as_str(), GET_USER_STATS, user(&[("to", "12abc")]), PARAM, "invalidparameter", "to: integer"),
        ("negative from", fresh.as_str(), GET_USER_STATS, user(&[("from", "-5")]), PARAM, "invalidparameter", "from/to"),
        ("to before from", fresh.as_str(), GET_USER_STATS, user(&[("from", "2000"), ("to", "1000")]), PARAM, "invalidparameter", "to: before from"),
        ("score not a boolean", fresh.as_str(), GET_USERS_STATS, owned(&[("uidsource", "id"), ("uids[0]", "2"), ("score", "maybe")]), PARAM, "invalidparameter", "score: boolean"),
        ("bad cidsource", fresh.as_str(), GET_USER_STATS, user(&[("cidsource", "fullname"), ("cid", "x")]), PARAM, "invalidparameter", "cidsource: one of"),
        ("bad cidsource with cid 0", fresh.as_str(), GET_USER_STATS, user(&[("cidsource", "category"), ("cid", "0")]), PARAM, "invalidparameter", "cidsource: one of"),
        ("too many users", fresh.as_str(), GET_USERS_STATS, too_many, PARAM, "invalidparameter", "(ws.max_users_per_call)"),
        ("course stats without a course", fresh.as_str(), GET_USERS_COURSE_STATS, no_cid, PARAM, "invalidparameter", "cid: a course is required"),
        ("unknown user", fresh.as_str(), GET_USER_STATS, owned(&[("uidsource", "username"), ("uid", "nobody")]), PARAM, "invalidparameter", "Invalid user by username nobody"),
        ("unknown e-mail", fresh.as_str(), GET_USER_STATS, owned(&[("uidsource", "email"), ("uid", "nobody@example.org")]), PARAM, "invalidparameter", "Invalid user by email nobody@example.org"),
        ("id not a number", fresh.as_str(), GET_USER_STATS, owned(&[("uidsource", "id"), ("uid", "2x")]), PARAM, "invalidparameter", "Invalid user by id 2x"),
        ("deleted user", fresh.as_str(), GET_USER_STATS, owned(&[("uidsource", "id"), ("uid", &deleted)]), PARAM, "invalidparameter", "Invalid user by id"),
        ("one unknown user in a batch", fresh.as_str(), GET_USERS_STATS, owned(&[("uidsource", "username"), ("uids[0]", &learner.username), ("uids[1]", "nobody")]), PARAM, "invalidparameter", "Invalid user by username nobody"),
        ("unknown course", fresh.as_str(), GET_USER_STATS, user(&[("cidsource", "shortname"), ("cid", "NOPE")]), PARAM, "invalidparameter", "Invalid course by shortname NOPE"),
        ("unknown course id", fresh.as_str(), GET_USERS_COURSE_STATS, owned(&[("uidsource", "id"), ("uids[0]", "2"), ("cidsource", "id"), ("cid", "999")]), PARAM, "invalidparameter", "Invalid course by id 999"),
    ];
    let mut calls = 0;
    for (label, token, function, params, exception, errorcode, detail) in &cases {
        let mut all = owned(&[("wstoken", token), ("wsfunction", function)]);
        all.extend(params.iter().cloned());
        let mut json_params = all.clone();
        json_params.push(("moodlewsrestformat".into(), "json".into()));
        let reply = ws.raw(Via::Post, &json_params).await;
        assert_eq!(reply.status, 200, "{label}");
        assert_eq!(reply.content_type, "application/json", "{label}");
        let error: Json = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(error["exception"], json!(exception), "{label}: {error}");
        assert_eq!(error["errorcode"], json!(errorcode), "{label}: {error}");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{label}");
        if detail.is_empty() {
            assert_eq!(keys(&error)[..3], ["exception", "errorcode", "message"]);
        } else {
            assert_eq!(
                keys(&error),
                ["exception", "errorcode", "message", "debuginfo"]
            );
            assert_eq!(error["message"], json!("Invalid parameter value detected"));
            let debug = error["debuginfo"].as_str().unwrap();
            assert!(debug.contains(detail), "{label}: {debug}");
        }
        if *errorcode == "invalidiptoken" {
            assert!(
                error["message"].as_str().unwrap().contains("127.0.0.1"),
                "{error}"
            );
        }
        // The same error as Moodle's XML exception document (no format given = xml).
        let via = if label == &"too many users" {
            Via::Post
        } else {
            Via::Get
        };
        let reply = ws.raw(via, &all).await;
        assert_eq!(
            reply.content_type, "application/xml; charset=utf-8",
            "{label}"
        );
        assert!(
            reply.body.contains("\n<EXCEPTION class=\""),
            "{}",
            reply.body
        );
        assert_eq!(parse_moodle_xml(&reply.body), error, "{label}");
        calls += 2;
    }

    // Nothing changed: no token marked used, revoked or created, no grant touched.
    assert_eq!(state_snapshot(ws).await, before);
    // The ranges allow 127.0.0.1 for this one, so the call goes through.
    let ok = ws
        .call_with(&here, Via::Post, Format::Json, GET_USER_STATS, &user(&[]))
        .await;
    assert_eq!(ok["user"]["id"], json!(learner.id));
    // A good call is recorded against its token, which the snapshot would have noticed.
    let ok = ws
        .call_with(&fresh, Via::Get, Format::Json, GET_USER_STATS, &user(&[]))
        .await;
    assert_eq!(ok["user"]["id"], json!(learner.id));
    calls += 2;
    let after = state_snapshot(ws).await;
    let used: Vec<&Json> = after["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["last_used_at"] == json!(NOW))
        .collect();
    let prefixes: Vec<&str> = used
        .iter()
        .map(|t| t["token_prefix"].as_str().unwrap())
        .collect();
    assert!(
        prefixes.contains(&&fresh[..8]) && prefixes.contains(&&here[..8]),
        "{after}"
    );
    assert!(!prefixes.contains(&&expired[..8]) && !prefixes.contains(&&site_only[..8]));

    // The audit has one row per call that got past the token, with the outcome and the grant,
    // never a token; calls refused at the token are counted per minute, address and reason
    // (audit_refused), not stored one by one.
    let rows = audit(ws).await;
    let at_the_token = 2 * cases.iter().filter(|c| c.4 == TOKEN).count();
    assert_eq!(rows.len(), audit_before + calls - at_the_token);
    let ours = &rows[..calls - at_the_token];
    let status = |s: &str| ours.iter().filter(|r| r.status == s).count();
    let counted = refused(ws).await;
    for (_, _, _, _, exception, errorcode, _) in &cases {
        let sent = cases.iter().filter(|c| c.5 == *errorcode).count();
        let reason = format!("{exception} {errorcode}");
        if *exception == TOKEN {
            let of = |counts: &HashMap<String, i64>| counts.get(&reason).copied().unwrap_or(0);
            assert_eq!(
                of(&counted) - of(&refused_before),
                2 * sent as i64,
                "{errorcode}"
            );
            assert_eq!(status(&reason), 0, "{errorcode} has no audit row");
        } else {
            assert_eq!(status(&reason), 2 * sent, "{errorcode}");
        }
    }
    assert_eq!(status("ok"), 2);
    let success = ours.iter().find(|r| r.status == "ok").unwrap();
    assert_eq!(success.channel, "ws");
    assert_eq!(success.method, GET_USER_STATS);
    assert_eq!(success.caller, format!("{CALLER}@{HOME}"));
    assert_eq!(success.target, learner.username);
    assert_eq!(success.remote_addr, "127.0.0.1");
    assert!(success.bytes_in > 0 && success.bytes_out > success.bytes_in);
    let secrets: Vec<String> = [
        &ws.token, &fresh, &expired, &elsewhere, &here, &revoked, &site_only,
    ]
    .iter()
    .flat_map(|t| [t.to_string(), usestats::ws::tokens::hash(t)])
    .collect();
    for row in &rows {
        let text = serde_json::to_string(row).unwrap();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "audit row holds a token: {text}"
            );
        }
    }
    let logs = logged();
    assert!(logs.contains("ws call"), "the log capture works");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a token reached the logs");
    }
}

/// E15: a reversed window. `to` given and earlier than `from` is `invalidparameter` naming
/// `to`; `to` 0 (now) with `from` later than now is E9's empty answer, even when the log holds
/// rows after `from` ("now" is pinned inside the learner's history, so those rows are later
/// than now and outside the window).
async fn reversed_windows(ws: &Ws, site: &Site) {
    let user = site.user(learners(ws).await[0]).clone();
    let full = engine(ws, user.id, 0, NOW).await;
    let first = full.courses.iter().map(|c| c.first_time).min().unwrap();
    let last = full.courses.iter().map(|c| c.last_time).max().unwrap();
    let now = first + (last - first) / 2;
    assert!(engine(ws, user.id, now + 1, NOW).await.rows_extracted > 0);
    let course = full
        .courses
        .iter()
        .find(|c| c.course != 0 && c.course != site.site_course)
        .unwrap()
        .course;
    let cid = course.to_string();
    let from = (now + 1).to_string();
    let empty = engine(ws, user.id, now + 1, now).await;
    assert_eq!(empty.rows_extracted, 0);
    ws.t.app.clock.pin(now);

    // `to` = 0 and `to` left out both mean now.
    for to in [Some("0"), None] {
        let mut params = vec![
            ("uidsource", "username"),
            ("uid", user.username.as_str()),
            ("from", from.as_str()),
        ];
        params.extend(to.map(|t| ("to", t)));
        let answer = ws.json(GET_USER_STATS, &params).await;
        assert_stats_shape(&answer);
        assert_eq!(answer["sessions"], json!({}), "{to:?}");
        assert_eq!(answer["courses"], json!([]), "{to:?}");
        assert_eq!(answer["query"]["from"], json!(now + 1));
        assert_eq!(answer["query"]["to"], json!(now));
        assert_eq!(
            answer,
            expected_stats(site, &user, &empty, None, true, now + 1)
        );
        for via in [Via::Get, Via::Post] {
            let xml = ws.call(via, Format::Xml, GET_USER_STATS, &params).await;
            assert_eq!(xml, stringify(&answer), "{to:?}");
        }
        // With a course: its zero row only.
        params.extend([("cidsource", "id"), ("cid", cid.as_str())]);
        let answer = ws.json(GET_USER_STATS, &params).await;
        assert_eq!(answer["sessions"], json!({}));
        assert_eq!(
            answer,
            expected_stats(site, &user, &empty, Some(course), true, now + 1)
        );
        assert_eq!(answer["courses"][0]["coursetotal"], json!(0));
        let xml = ws
            .call(Via::Get, Format::Xml, GET_USER_STATS, &params)
            .await;
        assert_eq!(xml, stringify(&answer));
    }
    // The two list functions answer the same way for every user.
    let uids: Vec<String> = site.users.iter().map(|u| u.id.to_string()).collect();
    let mut params = uid_params(&uids);
    params.push(("from".into(), from.clone()));
    params.push(("to".into(), "0".into()));
    let answer = ws
        .call_with(&ws.token, Via::Post, Format::Json, GET_USERS_STATS, &params)
        .await;
    let items = answer.as_array().unwrap();
    assert_eq!(items.len(), site.users.len());
    for item in items {
        assert_eq!(item["sessions"], json!({}), "{item}");
        assert_eq!(item["courses"], json!([]), "{item}");
        assert_eq!(item["query"]["to"], json!(now));
    }
    let xml = ws
        .call_with(&ws.token, Via::Get, Format::Xml, GET_USERS_STATS, &params)
        .await;
    assert_eq!(xml, stringify(&answer));
    params.push(("cidsource".into(), "id".into()));
    params.push(("cid".into(), cid.clone()));
    let answer = ws
        .call_with(
            &ws.token,
            Via::Post,
            Format::Json,
            GET_USERS_COURSE_STATS,
            &params,
        )
        .await;
    for (item, user) in answer.as_array().unwrap().iter().zip(&site.users) {
        let mut data = course_row(site, user, &empty, course, true);
        data["score"] = json!(
            site.grades
                .get(&(user.id, course))
                .cloned()
                .unwrap_or_else(|| "-".into())
        );
        assert_eq!(item["coursedata"], data, "{item}");
    }
    let xml = ws
        .call_with(
            &ws.token,
            Via::Get,
            Format::Xml,
            GET_USERS_COURSE_STATS,
            &params,
        )
        .await;
    assert_eq!(xml, stringify(&answer));

    // A window wholly in the future, not reversed: empty as well.
    let later = (now + 100).to_string();
    let answer = ws
        .json(
            GET_USER_STATS,
            &[
                ("uidsource", "username"),
                ("uid", user.username.as_str()),
                ("from", from.as_str()),
                ("to", later.as_str()),
            ],
        )
        .await;
    assert_eq!(answer["sessions"], json!({}));
    assert_eq!(answer["query"]["to"], json!(now + 100));
    // `to` equal to `from` is a window of one second, not a reversed one.
    let answer = ws
        .json(
            GET_USER_STATS,
            &[
                ("uidsource", "username"),
                ("uid", user.username.as_str()),
                ("from", from.as_str()),
                ("to", from.as_str()),
            ],
        )
        .await;
    assert_eq!(answer["query"]["to"], json!(now + 1));

    // `to` given and earlier than `from`, in the past or in the future: `to` is named, in
    // both formats and for the three functions.
    for (f, t) in [(now - 10, now - 11), (now + 20, now + 10), (2, 1)] {
        let (f, t) = (f.to_string(), t.to_string());
        for (function, mut params) in [
            (
                GET_USER_STATS,
                owned(&[("uidsource", "id"), ("uid", &user.id.to_string())]),
            ),
            (
                GET_USERS_STATS,
                owned(&[("uidsource", "id"), ("uids[0]", &user.id.to_string())]),
            ),
            (
                GET_USERS_COURSE_STATS,
                owned(&[
                    ("uidsource", "id"),
                    ("uids[0]", &user.id.to_string()),
                    ("cidsource", "id"),
                    ("cid", &cid),
                ]),
            ),
        ] {
            params.extend(owned(&[
                ("wstoken", &ws.token),
                ("wsfunction", function),
                ("from", &f),
                ("to", &t),
            ]));
            let mut json_params = params.clone();
            json_params.push(("moodlewsrestformat".into(), "json".into()));
            let reply = ws.raw(Via::Post, &json_params).await;
            assert_eq!(reply.status, 200);
            let error: Json = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(
                error["exception"],
                json!("invalid_parameter_exception"),
                "{function} {f} {t}: {error}"
            );
            assert_eq!(error["errorcode"], json!("invalidparameter"));
            let debug = error["debuginfo"].as_str().unwrap();
            assert!(debug.starts_with("to: "), "{debug}");
            let reply = ws.raw(Via::Get, &params).await;
            assert_eq!(parse_moodle_xml(&reply.body), error, "{function}");
        }
    }
    ws.t.app.clock.pin(NOW);
}

async fn everything(ws: &Ws) {
    let site = site(ws).await;
    user_stats(ws, &site).await;
    course_selection(ws, &site).await;
    windows_and_scores(ws, &site).await;
    users_stats(ws, &site).await;
    users_course_stats(ws, &site).await;
    errors(ws, &site).await;
    reversed_windows(ws, &site).await;
}

#[tokio::test]
async fn get_user_stats_every_source_and_format_matches_the_engine() {
    let ws = setup(None).await;
    user_stats(&ws, &site(&ws).await).await;
}

#[tokio::test]
async fn a_requested_course_limits_rows_and_sessions() {
    let ws = setup(None).await;
    course_selection(&ws, &site(&ws).await).await;
}

#[tokio::test]
async fn windows_empty_logs_and_scores() {
    let ws = setup(None).await;
    windows_and_scores(&ws, &site(&ws).await).await;
}

#[tokio::test]
async fn get_users_stats_for_every_user_in_one_call() {
    let ws = setup(None).await;
    users_stats(&ws, &site(&ws).await).await;
    // Those answers came from the compiled store, and /metrics says so.
    let (status, text) = get(&ws.t.url("/metrics")).await;
    assert_eq!(status, 200);
    let compiled: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("usestats_compiled_answers_total{source=\"compiled\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no compiled answers counter: {text}"));
    assert!(compiled > 0, "{text}");
}

#[tokio::test]
async fn get_users_course_stats_per_user() {
    let ws = setup(None).await;
    users_course_stats(&ws, &site(&ws).await).await;
}

#[tokio::test]
async fn a_reversed_or_future_window() {
    let ws = setup(None).await;
    reversed_windows(&ws, &site(&ws).await).await;
}

#[tokio::test]
async fn errors_are_moodle_exceptions_and_change_nothing() {
    let ws = setup(None).await;
    errors(&ws, &site(&ws).await).await;
}

#[tokio::test]
async fn the_same_calls_with_postgresql_as_the_database() {
    let Some(pg) = postgres_db() else { return };
    everything(&setup(Some(pg)).await).await;
}

/// The demo site spawn_app builds, built instead into `db` and served from there as a separate,
/// read-only Moodle database, under a fixed wwwroot so that two backends hold the same rows.
async fn setup_on_source(db: TestDb) -> Ws {
    capture_logs();
    const WWWROOT: &str = "http://lms.example.org";
    build_demo_at(&db.url(), AppOptions::default().demo_site(WWWROOT, vec![])).await;
    let url = db.url();
    let t = spawn_app(AppOptions {
        wwwroot: Some(WWWROOT.into()),
        tweak: Some(Box::new(move |c| c.source.url = url)),
        ..Default::default()
    })
    .await;
    t.app.clock.pin(NOW);
    // The compiled store in our state database, compiled from the separate Moodle database.
    let compiled = compile(&t.app).await;
    assert!(
        compiled.rows_read > 0 && compiled.segments > 0,
        "{compiled:?}"
    );
    t.grant(HOME, CALLER, false, true).await;
    let token = new_token(&t, CALLER, None, "").await;
    Ws {
        t,
        token,
        _pg: Some(db),
    }
}

#[tokio::test]
async fn the_same_calls_with_a_moodle_database_on_mysql() {
    let Some(mysql) = TestDb::mysql() else { return };
    let on_mysql = setup_on_source(mysql).await;
    everything(&on_mysql).await;
    // Row for row the same site as on SQLite, so every number must be the same.
    let on_sqlite = setup_on_source(TestDb::sqlite()).await;
    let site = site(&on_mysql).await;
    let uids: Vec<String> = site.users.iter().map(|u| u.id.to_string()).collect();
    let mut params = uid_params(&uids);
    params.push(("score".into(), "1".into()));
    let mut answers = Vec::new();
    for ws in [&on_mysql, &on_sqlite] {
        answers.push(
            ws.call_with(&ws.token, Via::Post, Format::Json, GET_USERS_STATS, &params)
                .await,
        );
    }
    let (mysql_answer, sqlite_answer) = (&answers[0], &answers[1]);
    assert!(
        mysql_answer
            .as_array()
            .is_some_and(|a| a.len() == uids.len())
    );
    assert_eq!(mysql_answer, sqlite_answer);
}

#[tokio::test]
async fn the_configured_limits_hold() {
    capture_logs();
    let t = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| c.ws.max_users_per_call = 3)),
        ..Default::default()
    })
    .await;
    t.grant(HOME, CALLER, false, true).await;
    let token = new_token(&t, CALLER, None, "").await;
    let ws = Ws {
        t,
        token,
        _pg: None,
    };
    let uids: Vec<String> = (1..=4).map(|i| i.to_string()).collect();
    let error = ws
        .call_with(
            &ws.token,
            Via::Post,
            Format::Json,
            GET_USERS_STATS,
            &uid_params(&uids),
        )
        .await;
    assert_eq!(error["errorcode"], json!("invalidparameter"));
    assert!(
        error["debuginfo"]
            .as_str()
            .unwrap()
            .contains("4 users asked, at most 3"),
        "{error}"
    );
    // Within the limit the call goes on to the source database, which this daemon has none
    // of: Moodle's read error, nothing internal.
    let error = ws
        .call_with(
            &ws.token,
            Via::Post,
            Format::Json,
            GET_USERS_STATS,
            &uid_params(&uids[..3]),
        )
        .await;
    assert_eq!(
        error,
        json!({"exception": "dml_read_exception", "errorcode": "dmlreadexception",
               "message": "Error reading from database"})
    );

    let off = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| c.ws.enabled = false)),
        ..Default::default()
    })
    .await;
    let (status, _) = get(&off.url(&format!(
        "/webservice/rest/server.php?wsfunction={GET_USER_STATS}"
    )))
    .await;
    assert_eq!(status, 404, "[ws] enabled = false turns the endpoint off");
}
