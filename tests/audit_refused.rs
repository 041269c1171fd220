//! Issue 22, N3: what strangers may store. Requests refused before authentication (7021, 7020,
//! a plain keyswap, a made-up web-service token) are counted per (minute, source address,
//! reason) with a few samples, not stored a row each; verified calls keep their rows; the
//! audit keeps to a size budget, oldest first, and `usestats doctor` shows its size.
//! Real daemons on loopback.

mod common;

use common::*;
use usestats::store::state;
use usestats::xmlrpc::{self, MethodCall, Value};

/// Two daemons that know each other, use_stats published by B to A.
async fn pair(tweak: Option<Tweak>) -> (TestApp, TestApp) {
    let a = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        tweak,
        ..Default::default()
    })
    .await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    b.set_service(&a.wwwroot, "use_stats", Some(true), None)
        .await;
    (a, b)
}

async fn refused_counts(app: &TestApp) -> Vec<state::RefusedCount> {
    app.app.background.settled().await;
    app.app
        .state
        .run(|c| state::query_refused(c, None, 100_000))
        .await
        .unwrap()
}

fn plain_call(name: &str) -> Vec<u8> {
    xmlrpc::serialize_call(&MethodCall {
        name: name.into(),
        params: vec![Value::String("x".into())],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_are_counted_not_stored_a_row_each() {
    let (a, b) = pair(None).await;
    let mnet = b.url("/mnet/xmlrpc/server.php");
    // One verified call: it keeps its row.
    let peer_b = a.peer(&b.wwwroot).await;
    a.call_peer(&peer_b, "system/listServices", vec![])
        .await
        .unwrap();
    let rows_before = b.audit().await.len();
    // The registrations' keyswaps, counted already.
    let counted_before: i64 = refused_counts(&b).await.iter().map(|c| c.calls).sum();
    // Strangers: plain calls (7021), a host we do not know (7020), plain keyswaps, tokens
    // made up for the web services.
    for i in 0..150 {
        let (status, _) = post(&mnet, plain_call(&format!("mod/x/y.php/f{i}"))).await;
        assert_eq!(status, 200);
    }
    let unknown = std::fs::read(vectors().join("06-unknown-host-7020/request.body")).unwrap();
    for _ in 0..100 {
        post(&mnet, unknown.clone()).await;
    }
    let keyswap = xmlrpc::serialize_call(&MethodCall {
        name: "system/keyswap".into(),
        params: vec![
            Value::String("http://stranger.example".into()),
            Value::String(String::new()),
            Value::String("moodle".into()),
        ],
    });
    for _ in 0..50 {
        post(&mnet, keyswap.clone()).await;
    }
    for i in 0..100 {
        let (status, body) = get(&b.url(&format!(
            "/webservice/rest/server.php?wstoken=madeup{i}&wsfunction=block_use_stats_get_user_stats&moodlewsrestformat=json"
        )))
        .await;
        assert_eq!(status, 200);
        assert!(body.contains("invalidtoken"), "{body}");
    }

    let rows = b.audit().await;
    assert_eq!(
        rows.len(),
        rows_before,
        "no row for an unauthenticated request: {:?}",
        &rows[..rows.len().min(3)]
    );
    assert!(rows.iter().all(|r| r.verified), "{rows:?}");
    assert!(rows.iter().any(|r| r.method == "system/listServices"));

    let counts = refused_counts(&b).await;
    let total: i64 = counts.iter().map(|c| c.calls).sum();
    assert_eq!(total - counted_before, 400, "{counts:?}");
    // Four reasons, from one address, in one or two minutes.
    assert!(counts.len() <= 8, "{} counts: {counts:?}", counts.len());
    let reasons: std::collections::BTreeSet<&str> =
        counts.iter().map(|c| c.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "moodle_exception invalidtoken",
            "fault 7020",
            "fault 7021",
            "ok"
        ]
        .into_iter()
        .collect(),
        "{counts:?}"
    );
    for c in &counts {
        assert_eq!(c.remote_addr, "127.0.0.1");
        assert!(c.sampled <= 2 * state::REFUSED_SAMPLES, "{c:?}");
        assert_eq!(c.samples.lines().count() as i64, c.sampled, "{c:?}");
        assert!(!c.samples.contains("madeup"), "no token kept: {c:?}");
    }
    let keyswaps = counts.iter().find(|c| c.reason == "ok").unwrap();
    assert!(
        keyswaps.samples.contains("method=system/keyswap"),
        "{keyswaps:?}"
    );

    // The console's chart of calls per hour still counts them, as unverified MNET calls and
    // web services, from the counts.
    let now = b.app.now();
    let hourly = b
        .app
        .state
        .run(move |c| state::audit_calls_per_hour(c, now - 7200, now + 3600, 1000))
        .await
        .unwrap();
    let unverified: i64 = hourly.iter().filter(|h| !h.verified).map(|h| h.calls).sum();
    assert_eq!(unverified, total, "{hourly:?}");
    assert!(hourly.iter().any(|h| h.verified && h.peer == a.wwwroot));
    let account = usestats::console::auth::hash_password("correct horse").unwrap();
    b.app
        .state
        .run(move |c| state::set_console_user(c, "ops", &account, now))
        .await
        .unwrap();
    let overview = console_overview(&b).await;
    assert!(
        overview.contains("MNET, peer not verified"),
        "the chart names the unverified calls"
    );
    assert!(overview.contains("web services"));
}

/// The console's overview page, logged in as `ops` (password "correct horse").
async fn console_overview(app: &TestApp) -> String {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let send = |request: hyper::Request<Full<bytes::Bytes>>| {
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let cookies: Vec<String> = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
                .collect();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (cookies, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (cookies, _) = send(
        hyper::Request::get(app.console_url("/console/login"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    let login = cookies[0].clone();
    let token = login.split_once('=').unwrap().1.to_string();
    let form = format!("csrf={token}&name=ops&password=correct+horse");
    let (cookies, _) = send(
        hyper::Request::post(app.console_url("/console/login"))
            .header("Cookie", &login)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Full::new(form.into()))
            .unwrap(),
    )
    .await;
    let session = cookies
        .iter()
        .find(|c| c.starts_with("usestats_console="))
        .expect("logged in")
        .clone();
    let (_, page) = send(
        hyper::Request::get(app.console_url("/console/"))
            .header("Cookie", session)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_keeps_to_its_size_budget_oldest_first() {
    let (a, b) = pair(Some(Box::new(|c| c.audit.max_rows = 30))).await;
    let peer_b = a.peer(&b.wwwroot).await;
    for _ in 0..45 {
        a.call_peer(&peer_b, "system/listServices", vec![])
            .await
            .unwrap();
    }
    let unknown = std::fs::read(vectors().join("06-unknown-host-7020/request.body")).unwrap();
    post(&b.url("/mnet/xmlrpc/server.php"), unknown).await;
    let before = b.audit().await;
    assert!(before.len() >= 45, "{}", before.len());
    let newest = before[0].id;
    usestats::maintenance::maintenance_once(&b.app).await;
    let after = b.audit().await;
    assert!(after.len() <= 30, "{} rows kept", after.len());
    assert!(after.len() >= 25, "the newest stay: {}", after.len());
    assert_eq!(after[0].id, newest, "the newest row is kept");
    assert!(
        after.iter().all(|r| r.id > newest - 30),
        "only the newest are kept"
    );
    // `usestats doctor` shows the audit's size, its oldest row and the budget.
    let config = b.dir.join("usestats.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nwwwroot = \"{}\"\n[audit]\nmax_rows = 30\n[console]\nlisten = \"127.0.0.1:0\"\n",
            b.wwwroot
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || usestats_cli(&config, &["doctor", "--json"]))
        .await
        .unwrap();
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let audit = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "audit")
        .expect("an audit check");
    let detail = audit["detail"].as_str().unwrap();
    assert_eq!(audit["status"], "OK", "{detail}");
    assert!(
        detail.contains(&format!("{} call rows", after.len())),
        "{detail}"
    );
    let size = b.app.state.run(state::audit_size).await.unwrap();
    assert!(size.refused_calls >= 1);
    assert!(
        detail.contains(&format!(
            "{} counts of {} refused requests",
            size.refused_rows, size.refused_calls
        )),
        "{detail}"
    );
    assert!(detail.contains("oldest "), "{detail}");
    assert!(detail.contains("budget 30 rows"), "{detail}");
}
