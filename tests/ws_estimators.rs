//! The `estimator` parameter of the three web services, over real HTTP against a daemon
//! serving the demo site (docs/engine.md §8): absent or `use_stats`, today's answer; `dedication`
//! and `dedication.legacy`, the rule's numbers on the same database, named with their settings
//! in `query.estimator`; anything else, a clear `invalidparameter`.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::Value as Json;
use usestats::estimators::{DedicationQuery, dedication_settings, dedication_users};
use usestats::stats::dedication::{Dedication, DedicationSettings, Variant};
use usestats::store::source::Source;
use usestats::ws::{GET_USER_STATS, GET_USERS_COURSE_STATS, GET_USERS_STATS};

/// A day after the demo log ends, as in tests/ws_rest.rs.
const NOW: i64 = 1_793_491_200 + 86_400;
const HOME: &str = "https://erp.example.org";

struct Ws {
    t: TestApp,
    token: String,
}

async fn setup() -> Ws {
    let t = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![]),
        ..Default::default()
    })
    .await;
    t.app.clock.pin(NOW);
    compile(&t.app).await;
    t.grant(HOME, "reports", false, true).await;
    let token = usestats::ws::tokens::create(&t.app, HOME, "reports", "test", None, "")
        .await
        .expect("token")
        .0;
    Ws { t, token }
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

impl Ws {
    /// The body of one JSON call, as sent.
    async fn body(&self, function: &str, params: &[(&str, &str)]) -> String {
        let mut query = format!(
            "wstoken={}&wsfunction={function}&moodlewsrestformat=json",
            self.token
        );
        for (k, v) in params {
            query.push_str(&format!("&{}={}", enc(k), enc(v)));
        }
        let (status, body) =
            get(&self.t.url(&format!("/webservice/rest/server.php?{query}"))).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn call(&self, function: &str, params: &[(&str, &str)]) -> Json {
        serde_json::from_str(&self.body(function, params).await).expect("JSON answer")
    }

    /// The rule computed straight on the daemon's database, user by user.
    async fn reference(
        &self,
        variant: Variant,
        settings: Option<DedicationSettings>,
        users: &[i64],
        course: Option<i64>,
        from: i64,
        to: i64,
    ) -> (DedicationSettings, HashMap<i64, Dedication>) {
        let users = users.to_vec();
        self.t
            .app
            .source
            .run::<_, usestats::store::StoreError, _>(move |c| {
                let source = Source::new("mdl_").unwrap();
                let s = settings
                    .unwrap_or_else(|| dedication_settings(c, &source, variant, None).unwrap());
                let mut out = HashMap::new();
                for user in users {
                    let one = dedication_users(
                        c,
                        &source,
                        &DedicationQuery {
                            variant,
                            settings: s,
                            userids: &[user],
                            course,
                            from,
                            to,
                            now: NOW,
                            sessions: true,
                        },
                    )
                    .unwrap();
                    out.extend(one);
                }
                Ok((s, out))
            })
            .await
            .unwrap()
    }

    async fn site_course(&self) -> i64 {
        self.t
            .app
            .source
            .run::<_, usestats::store::StoreError, _>(|c| {
                Ok(Source::new("mdl_").unwrap().site_course_id(c).unwrap())
            })
            .await
            .unwrap()
    }

    /// Writes into the demo's source database through a connection of our own (the daemon's
    /// is read-only).
    fn write_source(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        let mut conn = usestats::store::establish(&self.t.app.config.source_url()).unwrap();
        conn.batch_execute(sql).unwrap();
    }
}

/// Checks one user's answer against the rule's, course by course.
fn check_user(answer: &Json, expected: &Dedication, site_course: i64, estimator: &str) {
    assert_eq!(answer["query"]["estimator"], estimator, "{answer}");
    let courses: Vec<i64> = answer["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let want: Vec<i64> = expected
        .courses
        .iter()
        .map(|c| c.course)
        .filter(|&c| c != site_course)
        .collect();
    assert_eq!(courses, want, "{answer}");
    for row in answer["courses"].as_array().unwrap() {
        let c = expected.course(row["id"].as_i64().unwrap()).unwrap();
        assert_eq!(row["coursetotal"], c.total, "{row}");
        assert_eq!(row["coursetime"], c.total, "{row}");
        assert_eq!(row["activitytime"], 0);
        assert_eq!(row["othertime"], 0);
        assert_eq!(row["keptsessions"], c.kept);
        assert_eq!(row["droppedsessions"], c.dropped);
        assert_eq!(
            row["sitecoursetime"],
            expected.course(site_course).map(|c| c.total).unwrap_or(0)
        );
        match c.legacy {
            Some(legacy) => {
                assert_eq!(row["userreporttotal"], legacy.user_report_total);
                assert_eq!(row["dayswithrows"], legacy.days_with_rows);
                assert_eq!(row["daysinperiod"], legacy.days_in_period);
            }
            None => assert!(row.get("userreporttotal").is_none()),
        }
    }
    let kept: u64 = expected.courses.iter().map(|c| c.kept).sum();
    let dropped: u64 = expected.courses.iter().map(|c| c.dropped).sum();
    if expected.courses.is_empty() {
        assert_eq!(answer["sessions"], serde_json::json!({}));
    } else {
        assert_eq!(answer["sessions"]["sessions"], kept, "{answer}");
        assert_eq!(answer["sessions"]["droppedsessions"], dropped, "{answer}");
    }
}

#[tokio::test]
async fn no_estimator_or_use_stats_is_todays_answer() {
    let ws = setup().await;
    let (user, _) = busiest_learner(&ws.t).await;
    let uid = user.to_string();
    for (function, params) in [
        (
            GET_USER_STATS,
            vec![("uidsource", "id"), ("uid", uid.as_str())],
        ),
        (
            GET_USERS_STATS,
            vec![
                ("uidsource", "id"),
                ("uids[0]", uid.as_str()),
                ("uids[1]", "2"),
            ],
        ),
    ] {
        let plain = ws.body(function, &params).await;
        let mut named = params.clone();
        named.push(("estimator", "use_stats"));
        assert_eq!(ws.body(function, &named).await, plain, "{function}");
        assert!(
            plain.contains("\"estimator\":\"use_stats.main v1 ("),
            "{plain}"
        );
    }
    // get_users_course_stats has no `query` today: it gains one only when asked.
    let answer = ws
        .call(GET_USER_STATS, &[("uidsource", "id"), ("uid", &uid)])
        .await;
    let course = answer["courses"][0]["id"].as_i64().unwrap().to_string();
    let params = [
        ("uidsource", "id"),
        ("uids[0]", uid.as_str()),
        ("cidsource", "id"),
        ("cid", course.as_str()),
    ];
    let plain = ws.call(GET_USERS_COURSE_STATS, &params).await;
    assert!(plain[0].get("query").is_none(), "{plain}");
    let mut named = params.to_vec();
    named.push(("estimator", "use_stats"));
    let named = ws.call(GET_USERS_COURSE_STATS, &named).await;
    assert_eq!(named[0]["coursedata"], plain[0]["coursedata"]);
    assert!(
        named[0]["query"]["estimator"]
            .as_str()
            .unwrap()
            .starts_with("use_stats.main v1 (")
    );
}

#[tokio::test]
async fn dedication_answers_are_the_rule_on_the_same_log() {
    let ws = setup().await;
    let site_course = ws.site_course().await;
    let (busiest, _) = busiest_learner(&ws.t).await;
    let users: Vec<i64> = vec![busiest, 2, 3, 4, 5, 6];
    let uids: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    for (variant, name) in [
        (Variant::Live, "dedication"),
        (Variant::Legacy, "dedication.legacy"),
    ] {
        for (from, to) in [(0, 0), (NOW - 30 * 86_400, NOW - 86_400)] {
            let (settings, expected) = ws.reference(variant, None, &users, None, from, to).await;
            let label = usestats::stats::dedication::DedicationEstimator::new(variant, settings)
                .to_string();
            let (f, t) = (from.to_string(), to.to_string());
            let mut params = vec![
                ("uidsource", "id"),
                ("estimator", name),
                ("from", f.as_str()),
                ("to", t.as_str()),
            ];
            let keys: Vec<String> = (0..uids.len()).map(|i| format!("uids[{i}]")).collect();
            for (k, v) in keys.iter().zip(&uids) {
                params.push((k.as_str(), v.as_str()));
            }
            let answer = ws.call(GET_USERS_STATS, &params).await;
            let items = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
            assert_eq!(items.len(), users.len());
            for (item, user) in items.iter().zip(&users) {
                check_user(item, &expected[user], site_course, &label);
                let to_shown = if to == 0 { NOW } else { to };
                assert_eq!(item["query"]["to"], to_shown);
                assert_eq!(item["query"]["from"], from);
            }
            // The busiest learner has time under both rules.
            assert!(expected[&busiest].total() > 0, "{name}");
        }
    }
    // The demo never saved block_dedication's settings: the documented defaults.
    let one = ws
        .call(
            GET_USER_STATS,
            &[
                ("uidsource", "id"),
                ("uid", &busiest.to_string()),
                ("estimator", "dedication"),
            ],
        )
        .await;
    assert_eq!(
        one["query"]["estimator"],
        "dedication v1 (session limit 3600 s, sessions of 0 s or less ignored)"
    );
    // A course asked for: that course's row and sessions only, and the same in
    // get_users_course_stats.
    let (_, expected) = ws
        .reference(Variant::Live, None, &[busiest], None, 0, 0)
        .await;
    let course = expected[&busiest]
        .courses
        .iter()
        .find(|c| c.course != site_course && c.kept > 0)
        .expect("a course with kept sessions")
        .clone();
    let (uid, cid) = (busiest.to_string(), course.course.to_string());
    let answer = ws
        .call(
            GET_USER_STATS,
            &[
                ("uidsource", "id"),
                ("uid", &uid),
                ("cidsource", "id"),
                ("cid", &cid),
                ("estimator", "dedication"),
            ],
        )
        .await;
    assert_eq!(answer["courses"].as_array().unwrap().len(), 1);
    assert_eq!(answer["courses"][0]["coursetotal"], course.total);
    assert_eq!(answer["sessions"]["sessions"], course.kept);
    let answer = ws
        .call(
            GET_USERS_COURSE_STATS,
            &[
                ("uidsource", "id"),
                ("uids[0]", &uid),
                ("cidsource", "id"),
                ("cid", &cid),
                ("estimator", "dedication"),
            ],
        )
        .await;
    let data = &answer[0]["coursedata"];
    assert_eq!(data["coursetotal"], course.total, "{answer}");
    let kept: Vec<i64> = course
        .sessions
        .iter()
        .filter(|s| s.dropped.is_none())
        .map(|s| s.start)
        .collect();
    assert_eq!(data["firstsession"], kept[0]);
    assert_eq!(data["lastsession"], *kept.last().unwrap());
    assert!(
        answer[0]["query"]["estimator"]
            .as_str()
            .unwrap()
            .starts_with("dedication v1 ")
    );
}

#[tokio::test]
async fn settings_from_config_plugins_and_per_request() {
    let ws = setup().await;
    let (busiest, _) = busiest_learner(&ws.t).await;
    let uid = busiest.to_string();
    ws.write_source(
        "INSERT INTO mdl_config_plugins (plugin, name, value) VALUES \
         ('block_dedication', 'session_limit', '1800'), \
         ('block_dedication', 'ignore_sessions_limit', '300')",
    );
    let answer = ws
        .call(
            GET_USER_STATS,
            &[
                ("uidsource", "id"),
                ("uid", &uid),
                ("estimator", "dedication"),
            ],
        )
        .await;
    assert_eq!(
        answer["query"]["estimator"],
        "dedication v1 (session limit 1800 s, sessions of 300 s or less ignored)"
    );
    let site_course = ws.site_course().await;
    let saved = DedicationSettings {
        session_limit: 1800,
        ignore_sessions_limit: 300,
    };
    let (_, expected) = ws
        .reference(Variant::Live, Some(saved), &[busiest], None, 0, 0)
        .await;
    check_user(
        &answer,
        &expected[&busiest],
        site_course,
        answer["query"]["estimator"].as_str().unwrap(),
    );

    // Per request: both limits for the live rule, the session limit for the legacy one (whose
    // limit never comes from config_plugins).
    let answer = ws
        .call(
            GET_USER_STATS,
            &[
                ("uidsource", "id"),
                ("uid", &uid),
                ("estimator", "dedication"),
                ("sessionlimit", "600"),
                ("ignoresessionslimit", "0"),
            ],
        )
        .await;
    assert_eq!(
        answer["query"]["estimator"],
        "dedication v1 (session limit 600 s, sessions of 0 s or less ignored)"
    );
    let asked = DedicationSettings {
        session_limit: 600,
        ignore_sessions_limit: 0,
    };
    let (_, expected) = ws
        .reference(Variant::Live, Some(asked), &[busiest], None, 0, 0)
        .await;
    check_user(
        &answer,
        &expected[&busiest],
        site_course,
        answer["query"]["estimator"].as_str().unwrap(),
    );
    let answer = ws
        .call(
            GET_USER_STATS,
            &[
                ("uidsource", "id"),
                ("uid", &uid),
                ("estimator", "dedication.legacy"),
            ],
        )
        .await;
    assert_eq!(
        answer["query"]["estimator"],
        "dedication.legacy v1 (session limit 3600 s, every session counted)"
    );
}

#[tokio::test]
async fn an_unknown_estimator_or_misplaced_setting_is_a_clear_error() {
    let ws = setup().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("estimator", "dedication2")],
            "estimator: one of use_stats, dedication, dedication.legacy, got \"dedication2\"",
        ),
        (&[("estimator", "")], "estimator: one of"),
        (&[("sessionlimit", "600")], "only with estimator dedication"),
        (&[("sessionlist", "1")], "only with estimator dedication"),
        (
            &[("estimator", "dedication"), ("sessionlist", "maybe")],
            "sessionlist: boolean expected",
        ),
        (
            &[("estimator", "use_stats"), ("ignoresessionslimit", "60")],
            "only with estimator dedication",
        ),
        (
            &[("estimator", "dedication"), ("sessionlimit", "0")],
            "sessionlimit: seconds, at least 1",
        ),
        (
            &[("estimator", "dedication"), ("ignoresessionslimit", "-1")],
            "ignoresessionslimit: seconds, at least 0",
        ),
        (
            &[("estimator", "dedication"), ("sessionlimit", "1h")],
            "sessionlimit: integer expected",
        ),
        (
            &[
                ("estimator", "dedication.legacy"),
                ("ignoresessionslimit", "60"),
            ],
            "dedication.legacy counts every session",
        ),
    ];
    for (extra, message) in cases {
        let mut params = vec![("uidsource", "id"), ("uid", "2")];
        params.extend_from_slice(extra);
        let answer = ws.call(GET_USER_STATS, &params).await;
        assert_eq!(
            answer["exception"], "invalid_parameter_exception",
            "{answer}"
        );
        assert_eq!(answer["errorcode"], "invalidparameter", "{answer}");
        assert!(
            answer["debuginfo"].as_str().unwrap_or("").contains(message),
            "{extra:?}: {answer}"
        );
    }
}

/// `sessionlist=1` lists each course row's sessions, kept and dropped, which add up to the row;
/// without it the row is as before.
#[tokio::test]
async fn a_session_list_on_request() {
    let ws = setup().await;
    let (busiest, _) = busiest_learner(&ws.t).await;
    let uid = busiest.to_string();
    let ask = |list: Option<&'static str>| {
        let mut params = vec![
            ("uidsource", "id"),
            ("uid", uid.as_str()),
            ("estimator", "dedication"),
            ("ignoresessionslimit", "300"),
        ];
        if let Some(list) = list {
            params.push(("sessionlist", list));
        }
        params
    };
    let listed = ws.call(GET_USER_STATS, &ask(Some("1"))).await;
    let plain = ws.call(GET_USER_STATS, &ask(None)).await;
    let courses = listed["courses"].as_array().unwrap();
    assert!(!courses.is_empty(), "{listed}");
    let (mut kept_seen, mut dropped_seen) = (0, 0);
    for (row, bare) in courses.iter().zip(plain["courses"].as_array().unwrap()) {
        let list = row["sessionlist"].as_array().unwrap();
        let kept: Vec<&Json> = list.iter().filter(|s| s["kept"] == true).collect();
        assert_eq!(
            kept.len() as u64,
            row["keptsessions"].as_u64().unwrap(),
            "{row}"
        );
        assert_eq!(
            (list.len() - kept.len()) as u64,
            row["droppedsessions"].as_u64().unwrap(),
            "{row}"
        );
        let sum: i64 = kept.iter().map(|s| s["duration"].as_i64().unwrap()).sum();
        assert_eq!(sum, row["coursetime"].as_i64().unwrap(), "{row}");
        for s in list {
            let (start, end) = (s["start"].as_i64().unwrap(), s["end"].as_i64().unwrap());
            assert_eq!(s["duration"].as_i64().unwrap(), end - start, "{s}");
            if s["kept"] == true {
                assert!(s["dropped"].is_null() && end - start > 300, "{s}");
            } else {
                assert!(s["dropped"].is_string() && end - start <= 300, "{s}");
            }
        }
        kept_seen += kept.len();
        dropped_seen += list.len() - kept.len();
        let mut without = row.clone();
        without.as_object_mut().unwrap().remove("sessionlist");
        assert_eq!(&without, bare, "the rest of the row is unchanged");
    }
    assert!(
        kept_seen > 0 && dropped_seen > 0,
        "{kept_seen} {dropped_seen}"
    );
    assert!(plain["courses"][0].get("sessionlist").is_none());
}
