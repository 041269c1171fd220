//! The use_stats methods through the real MNET server: every scope, every error status,
//! numbers equal to the engine's on the server's own data. Runs with the server's source on
//! SQLite, and again on PostgreSQL and on MySQL/MariaDB when servers are configured.

mod common;

use common::*;
use usestats::collect::{caller_struct, parse_use_stats};
use usestats::services::use_stats::{self, Answer};
use usestats::store::source::{CourseField, Source};
use usestats::xmlrpc::Value;

struct Setup {
    a: TestApp,
    b: TestApp,
    _pg: Option<TestDb>,
}

async fn setup(pg: Option<TestDb>) -> Setup {
    let a = spawn_app(AppOptions::default()).await;
    let url = pg.as_ref().map(|db| db.url());
    let b = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![a.wwwroot.clone()]),
        tweak: Some(Box::new(move |c| {
            if let Some(url) = url {
                c.state.url = url;
            }
        })),
        ..Default::default()
    })
    .await;
    // B answers from its compiled store; the tests compare with full scans.
    let compiled = compile(&b.app).await;
    assert!(
        compiled.rows_read > 0 && compiled.segments > 0,
        "{compiled:?}"
    );
    link(a, b, pg).await
}

/// A calls B's use_stats, and B grants A's admin site and course detail.
async fn link(a: TestApp, b: TestApp, db: Option<TestDb>) -> Setup {
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    a.set_service(&b.wwwroot, "use_stats", None, Some(true))
        .await;
    b.set_service(&a.wwwroot, "use_stats", Some(true), None)
        .await;
    b.grant(&a.wwwroot, "admin", true, true).await;
    Setup { a, b, _pg: db }
}

/// A remote user of B whose home is A, other than admin (no grant unless a test adds one).
async fn remote_learner(s: &Setup) -> String {
    let home = s.a.wwwroot.clone();
    s.b.app
        .source
        .run::<_, usestats::store::StoreError, _>(move |c| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                username: String,
            }
            let rows: Vec<Row> = diesel::sql_query(format!(
                "SELECT u.username FROM mdl_user u JOIN mdl_mnet_host h ON h.id = u.mnethostid \
                 WHERE h.wwwroot = '{home}' AND u.username <> 'admin' AND u.deleted = 0 ORDER BY u.id LIMIT 1"
            ))
            .load(c)?;
            Ok(rows.into_iter().next().expect("a remote learner").username)
        })
        .await
        .unwrap()
}

async fn call(s: &Setup, method: &str, params: Vec<Value>) -> Answer {
    let peer = s.a.peer(&s.b.wwwroot).await;
    let value =
        s.a.app
            .client
            .call(&peer, method, params)
            .await
            .expect("MNET call");
    Answer::from_value(&value).expect("a use_stats answer")
}

fn admin(s: &Setup) -> Value {
    caller_struct("admin", &s.a.wwwroot, &s.a.wwwroot)
}

fn stats_params(caller: Value, target: &str, scope: Value, timefrom: Value) -> Vec<Value> {
    vec![
        caller,
        Value::from(target),
        Value::from(""),
        scope,
        timefrom,
    ]
}

/// The busiest local learner of B, their report as B's engine computes it, and their courses.
async fn learner(
    s: &Setup,
) -> (
    String,
    usestats::stats::Report,
    std::collections::HashMap<i64, usestats::store::source::Course>,
) {
    let (id, username) = busiest_learner(&s.b).await;
    let report = engine_report(&s.b, id).await;
    let ids: Vec<i64> = report.courses.iter().map(|c| c.course).collect();
    let courses =
        s.b.app
            .source
            .run::<_, usestats::store::StoreError, _>(move |c| {
                Ok(Source::new("mdl_")
                    .unwrap()
                    .courses_by_ids(c, &ids)
                    .unwrap())
            })
            .await
            .unwrap();
    (username, report, courses)
}

async fn scopes_and_numbers(s: &Setup) {
    let (username, report, courses) = learner(s).await;
    // Scope 1: only <USER>.
    let one = call(
        s,
        use_stats::GET_STATS,
        stats_params(admin(s), &username, Value::Int(1), Value::Int(0)),
    )
    .await;
    assert_eq!(one.status, 200, "{one:?}");
    assert!(one.errors.is_empty());
    let message = one.message.unwrap();
    let one_message = Some(message.clone());
    assert!(
        message.starts_with(&format!(
            "<USE_STATS>\n<USER>\n\t<USERNAME>{username}</USERNAME>\n"
        )),
        "{message}"
    );
    assert!(message.ends_with("\n</USER>\n</USE_STATS>"), "{message}");
    assert!(message.contains("\t<FROM>0</FROM>\n"));
    let parsed = parse_use_stats(&message).unwrap();
    // The server's clock moves on between our report and its answer; minutes of a
    // finished log do not.
    assert_eq!(parsed.minutes, report.total / 60);

    // Scope 2: courses, ≥ 5 minutes, course 0 left out, in order of first activity.
    let two = call(
        s,
        use_stats::GET_STATS,
        stats_params(admin(s), &username, Value::from("2"), Value::from("0")),
    )
    .await;
    let message = two.message.unwrap();
    assert!(!message.contains("<MODULES>"));
    let parsed = parse_use_stats(&message).unwrap();
    let expected: Vec<(String, i64)> = report
        .courses
        .iter()
        .filter(|c| c.course != 0 && c.coursetotal / 60 >= 5)
        .map(|c| (courses[&c.course].shortname.clone(), c.coursetotal / 60))
        .collect();
    let got: Vec<(String, i64)> = parsed
        .courses
        .iter()
        .map(|c| (c.shortname.clone(), c.minutes))
        .collect();
    assert_eq!(got, expected);
    assert!(!got.is_empty());

    // Scope 3: modules nested in each course, ≥ 2 minutes.
    let three = call(
        s,
        use_stats::GET_STATS,
        stats_params(admin(s), &username, Value::Int(3), Value::Int(0)),
    )
    .await;
    let message = three.message.unwrap();
    let modules_in_first_course = report
        .courses
        .iter()
        .find(|c| c.course != 0 && c.coursetotal / 60 >= 5)
        .map(|c| c.modules.iter().filter(|m| m.elapsed / 60 >= 2).count())
        .unwrap();
    let first_course =
        &message[message.find("<COURSE>").unwrap()..message.find("</COURSE>").unwrap()];
    assert_eq!(
        first_course.matches("<MODULE>").count(),
        modules_in_first_course
    );
    assert!(
        first_course.contains("\t<ELAPSED>")
            && first_course.contains("<MODULES>\n<MODULE>\n\t<NAME>"),
        "{first_course}"
    );

    // The plugin compares the scope with >=: 4 answers as 3, 0 as 1.
    let four = call(
        s,
        use_stats::GET_STATS,
        stats_params(admin(s), &username, Value::Int(4), Value::Int(0)),
    )
    .await;
    assert_eq!(four.message.as_deref(), Some(message.as_str()));
    let zero = call(
        s,
        use_stats::GET_STATS,
        stats_params(admin(s), &username, Value::Int(0), Value::Int(0)),
    )
    .await;
    assert_eq!(zero.message, one_message);

    // json_response = false: the same wrapper as a struct.
    let peer = s.a.peer(&s.b.wwwroot).await;
    let mut params = stats_params(admin(s), &username, Value::Int(1), Value::Int(0));
    params.push(Value::Bool(false));
    let value =
        s.a.app
            .client
            .call(&peer, use_stats::GET_STATS, params)
            .await
            .unwrap();
    assert_eq!(value.type_name(), "struct");
    assert_eq!(value.get("status"), Some(&Value::Int(200)));

    // A window with no logs.
    let future = s.b.app.now() + 100_000;
    let empty = call(
        s,
        use_stats::GET_STATS,
        stats_params(admin(s), &username, Value::Int(2), Value::Int(future)),
    )
    .await;
    assert_eq!(
        empty.message.as_deref(),
        Some("<USE_STATS><EMPTYSET /></USE_STATS>")
    );
}

async fn error_statuses(s: &Setup) {
    let (username, _, _) = learner(s).await;
    let cases: Vec<(&str, Vec<Value>, i64, &str)> = vec![
        (
            "member missing",
            stats_params(
                Value::Struct(vec![("username".into(), Value::from("admin"))]),
                &username,
                Value::Int(1),
                Value::Int(0),
            ),
            501,
            "Bad client user format.",
        ),
        (
            "not a struct",
            stats_params(
                Value::from("admin"),
                &username,
                Value::Int(1),
                Value::Int(0),
            ),
            501,
            "Bad client user format.",
        ),
        (
            "empty username",
            stats_params(
                caller_struct("", &s.a.wwwroot, &s.a.wwwroot),
                &username,
                Value::Int(1),
                Value::Int(0),
            ),
            501,
            "Empty username.",
        ),
        (
            "host that did not sign",
            stats_params(
                caller_struct("admin", &s.a.wwwroot, "http://elsewhere.example"),
                &username,
                Value::Int(1),
                Value::Int(0),
            ),
            500,
            "is not the host that signed",
        ),
        (
            "unknown home host",
            stats_params(
                caller_struct("admin", "http://unknown.example", &s.a.wwwroot),
                &username,
                Value::Int(1),
                Value::Int(0),
            ),
            501,
            "is not registered",
        ),
        (
            "no local account",
            stats_params(
                caller_struct("ghost", &s.a.wwwroot, &s.a.wwwroot),
                &username,
                Value::Int(1),
                Value::Int(0),
            ),
            501,
            "no local account",
        ),
        (
            "bad scope",
            stats_params(admin(s), &username, Value::from("abc"), Value::Int(0)),
            503,
            "statsscope",
        ),
        (
            "bad timefrom",
            stats_params(admin(s), &username, Value::Int(1), Value::Bool(true)),
            503,
            "timefrom",
        ),
        (
            "unknown target",
            stats_params(admin(s), "nobody-here", Value::Int(1), Value::Int(0)),
            520,
            "Target user does not exist.",
        ),
        (
            "forward to an unknown host",
            vec![
                admin(s),
                Value::from(username.as_str()),
                Value::from("http://not-a-peer.example"),
                Value::Int(1),
                Value::Int(0),
            ],
            500,
            "not a known MNET peer",
        ),
    ];
    for (label, params, status, text) in cases {
        let answer = call(s, use_stats::GET_STATS, params).await;
        assert_eq!(answer.status, status, "{label}: {answer:?}");
        assert!(answer.message.is_none(), "{label}");
        let errors = serde_json::to_string(&answer.errors).unwrap();
        assert!(errors.contains(text), "{label}: {errors}");
    }
    // Grants: a remote user without one, then with a site-only one asking for courses.
    let remote = remote_learner(s).await;
    let person = || caller_struct(&remote, &s.a.wwwroot, &s.a.wwwroot);
    let no_grant = call(
        s,
        use_stats::GET_STATS,
        stats_params(person(), &username, Value::Int(1), Value::Int(0)),
    )
    .await;
    assert_eq!(no_grant.status, 510, "{no_grant:?}");
    s.b.grant(&s.a.wwwroot, &remote, true, false).await;
    let site = call(
        s,
        use_stats::GET_STATS,
        stats_params(person(), &username, Value::Int(1), Value::Int(0)),
    )
    .await;
    assert_eq!(site.status, 200, "{site:?}");
    let courses = call(
        s,
        use_stats::GET_STATS,
        stats_params(person(), &username, Value::Int(2), Value::Int(0)),
    )
    .await;
    assert_eq!(courses.status, 510, "{courses:?}");
    let scores = call(
        s,
        use_stats::GET_SCORES,
        vec![
            person(),
            Value::from(username.as_str()),
            Value::from(""),
            Value::from("notes/global"),
            Value::from("id"),
            Value::from("1"),
        ],
    )
    .await;
    assert_eq!(scores.status, 510, "{scores:?}");
    // A wildcard grant for the host covers everybody from it who has no grant of their own.
    s.b.grant(&s.a.wwwroot, "*", false, true).await;
    let (home, user) = (s.a.wwwroot.clone(), remote.clone());
    s.b.app
        .state
        .run(move |c| usestats::store::state::remove_grant(c, &home, &user))
        .await
        .unwrap();
    let wildcard = call(
        s,
        use_stats::GET_STATS,
        stats_params(person(), &username, Value::Int(2), Value::Int(0)),
    )
    .await;
    assert_eq!(wildcard.status, 200, "{wildcard:?}");
    let wildcard_site = call(
        s,
        use_stats::GET_STATS,
        stats_params(person(), &username, Value::Int(1), Value::Int(0)),
    )
    .await;
    assert_eq!(
        wildcard_site.status, 510,
        "the wildcard grant has no --site: {wildcard_site:?}"
    );
    // whereroot naming ourselves (any spelling) is the local path.
    let ours = s.b.wwwroot.to_uppercase().replace("HTTP://", "http://") + "/";
    let local = call(
        s,
        use_stats::GET_STATS,
        vec![
            admin(s),
            Value::from(username.as_str()),
            Value::from(ours.as_str()),
            Value::Int(1),
            Value::Int(0),
        ],
    )
    .await;
    assert_eq!(local.status, 200, "{local:?}");
}

async fn scores(s: &Setup) {
    let (username, _, _) = learner(s).await;
    let app = s.b.app.clone();
    let u = username.clone();
    let (course, grade) = app
        .source
        .run::<_, usestats::store::StoreError, _>(move |c| {
            let source = Source::new("mdl_").unwrap();
            let user = source.find_user_for_rpc(c, &u).unwrap().unwrap();
            let grades = source.user_course_grades(c, user.id).unwrap();
            let (course_id, grade) = grades
                .into_iter()
                .min()
                .expect("the learner has a course grade");
            let course = source
                .find_course(c, CourseField::Id, &course_id.to_string())
                .unwrap()
                .unwrap();
            Ok((course, grade))
        })
        .await
        .unwrap();
    for (field, value) in [
        ("id", course.id.to_string()),
        ("shortname", course.shortname.clone()),
        ("idnumber", course.idnumber.clone()),
    ] {
        let answer = call(
            s,
            use_stats::GET_SCORES,
            vec![
                admin(s),
                Value::from(username.as_str()),
                Value::from(""),
                Value::from("notes/global"),
                Value::from(field),
                Value::from(value.as_str()),
            ],
        )
        .await;
        assert_eq!(answer.status, 200, "{field}: {answer:?}");
        let message = answer.message.unwrap();
        assert!(
            message.starts_with(&format!(
                "<USER_SCORES>\n<USER>\n\t<USERNAME>{username}</USERNAME>\n"
            )),
            "{message}"
        );
        assert!(
            message.ends_with(&format!(
                "\n\n</USER><SCORE>{grade}</SCORE>\n</USER_SCORES>"
            )),
            "{message}"
        );
    }
    let other_scope = call(
        s,
        use_stats::GET_SCORES,
        vec![
            admin(s),
            Value::from(username.as_str()),
            Value::from(""),
            Value::from("notes/other"),
            Value::from("id"),
            Value::from(course.id.to_string().as_str()),
        ],
    )
    .await;
    assert_eq!(
        other_scope.message.as_deref(),
        Some("<USER_SCORES>\n<ERROR>Not implemented</ERROR>\n</USER_SCORES>")
    );
    for (field, value) in [("fullname", "x"), ("id", "999999")] {
        let answer = call(
            s,
            use_stats::GET_SCORES,
            vec![
                admin(s),
                Value::from(username.as_str()),
                Value::from(""),
                Value::from("notes/global"),
                Value::from(field),
                Value::from(value),
            ],
        )
        .await;
        assert_eq!(answer.status, 520, "{field}");
        assert_eq!(answer.errors, vec![serde_json::json!("Unknown course.")]);
    }
}

/// E15 and E13 on the MNET method: the window is `[timefrom, now]`, so a `timefrom` later
/// than now is the empty set even when the log holds rows after it (B's "now" is pinned
/// inside the learner's history), and `timefrom` one second before now still computes.
async fn future_timefrom(s: &Setup) {
    let (id, username) = busiest_learner(&s.b).await;
    let full = engine_report(&s.b, id).await;
    let last = full.courses.iter().map(|c| c.last_time).max().unwrap();
    let mut starts: Vec<i64> = full.courses.iter().map(|c| c.first_time).collect();
    starts.sort_unstable();
    // A counted row's time, with counted rows after it.
    let now = starts[starts.len() / 2];
    assert!(now < last, "{starts:?} {last}");
    let report_from = |from: i64| {
        let settings = usestats::reports::settings(&s.b.app.config.engine);
        async move {
            s.b.app
                .source
                .run(move |c| {
                    usestats::reports::user_report(
                        c,
                        &Source::new("mdl_").unwrap(),
                        &settings,
                        id,
                        usestats::stats::Window { from, to: now, now },
                        false,
                    )
                    .map_err(anyhow::Error::from)
                })
                .await
                .unwrap()
        }
    };
    s.b.app.clock.pin(now);
    const EMPTY: &str = "<USE_STATS><EMPTYSET /></USE_STATS>";
    for timefrom in [
        Value::Int(now + 1),
        Value::from((now + 1).to_string()),
        Value::Int(last + 1),
        Value::Int(i64::MAX),
    ] {
        for scope in 1..=3 {
            let answer = call(
                s,
                use_stats::GET_STATS,
                stats_params(admin(s), &username, Value::Int(scope), timefrom.clone()),
            )
            .await;
            assert_eq!(answer.status, 200, "{timefrom:?} {answer:?}");
            assert!(answer.errors.is_empty(), "{answer:?}");
            assert_eq!(
                answer.message.as_deref(),
                Some(EMPTY),
                "{timefrom:?} scope {scope}"
            );
        }
    }
    // The same as an XML-RPC struct (json_response false).
    let peer = s.a.peer(&s.b.wwwroot).await;
    let mut params = stats_params(admin(s), &username, Value::Int(2), Value::Int(now + 1));
    params.push(Value::Bool(false));
    let value =
        s.a.app
            .client
            .call(&peer, use_stats::GET_STATS, params)
            .await
            .unwrap();
    assert_eq!(value.get("status"), Some(&Value::Int(200)));
    assert_eq!(value.get("message"), Some(&Value::from(EMPTY)));

    // The boundary: `timefrom` now - 1 and now itself are windows that hold a row.
    for timefrom in [now - 1, now] {
        let expected = report_from(timefrom).await;
        assert!(expected.rows_extracted > 0);
        let answer = call(
            s,
            use_stats::GET_STATS,
            stats_params(admin(s), &username, Value::Int(1), Value::Int(timefrom)),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let message = answer.message.unwrap();
        assert!(message.starts_with("<USE_STATS>\n<USER>\n"), "{message}");
        assert!(
            message.contains(&format!("\t<FROM>{timefrom}</FROM>\n")),
            "{message}"
        );
        assert_eq!(
            parse_use_stats(&message).unwrap().minutes,
            expected.total / 60
        );
    }
    // The operator's view of this host (`collect --include-local`) agrees.
    let local = usestats::collect::local_result(&s.b.app, &username, 2, now + 1).await;
    assert!(local.empty && local.error.is_none(), "{local:?}");
    assert_eq!(local.minutes, Some(0));
    let local = usestats::collect::local_result(&s.b.app, &username, 2, now - 1).await;
    assert!(!local.empty && local.error.is_none(), "{local:?}");
    s.b.app.clock.pin(0);
}

#[tokio::test]
async fn get_stats_every_scope_matches_the_engine() {
    scopes_and_numbers(&setup(None).await).await;
}

/// B's clock is pinned in the past, so B stops checking A's timestamps against it.
#[tokio::test]
async fn get_stats_with_a_future_timefrom_is_the_empty_set() {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![a.wwwroot.clone()]),
        tweak: Some(Box::new(|c| c.limits.timestamp_window_secs = 0)),
        ..Default::default()
    })
    .await;
    future_timefrom(&link(a, b, None).await).await;
}

#[tokio::test]
async fn get_stats_error_statuses() {
    error_statuses(&setup(None).await).await;
}

#[tokio::test]
async fn get_scores_reads_this_users_course_grade() {
    scores(&setup(None).await).await;
}

/// B reads a separate Moodle database on MySQL/MariaDB (read-only), filled with B's demo site
/// once both daemons' addresses are known.
#[tokio::test]
async fn the_same_calls_with_a_moodle_database_on_mysql() {
    let Some(mysql) = TestDb::mysql() else { return };
    let a = spawn_app(AppOptions::default()).await;
    let url = mysql.url();
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(move |c| c.source.url = url)),
        ..Default::default()
    })
    .await;
    let demo = AppOptions::default().demo_site(&b.wwwroot, vec![a.wwwroot.clone()]);
    build_demo_at(&mysql.url(), demo).await;
    let s = link(a, b, Some(mysql)).await;
    scopes_and_numbers(&s).await;
    error_statuses(&s).await;
    scores(&s).await;
}

#[tokio::test]
async fn the_same_calls_with_postgresql_as_the_database() {
    let Some(pg) = postgres_db() else { return };
    let s = setup(Some(pg)).await;
    scopes_and_numbers(&s).await;
    error_statuses(&s).await;
    scores(&s).await;
}
