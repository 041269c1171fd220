//! The `usestats` binary as operators use it: init, keys, peers, grants, tokens, stats,
//! call, collect, audit, doctor, and configuration errors.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn dir_path(config: &Path) -> &Path {
    config.parent().unwrap()
}

fn ok(config: &Path, args: &[&str]) -> String {
    let out = usestats_cli(config, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(config: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(config, &all)).unwrap()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn an_operator_session() {
    // The peer registers callers that keyswap with it, so our `peer add` introduces us.
    let peer = spawn_app(AppOptions {
        auto_register: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let peer_url = peer.wwwroot.clone();
    let (c, p) = (config.clone(), peer_url.clone());
    blocking(move || {
        let config = c.as_path();
        let out = ok(
            config,
            &[
                "init",
                "--wwwroot",
                "http://127.0.0.1:9",
                "--name",
                "Stats & Co",
            ],
        );
        assert!(out.contains("fingerprint"));
        assert!(
            usestats_cli(config, &["init", "--wwwroot", "http://127.0.0.1:9"])
                .status
                .code()
                == Some(1),
            "no overwrite without --force"
        );

        // Keys: show, a refused generate, rotate.
        let keys = json(config, &["keys", "show"]);
        let first = keys["current"]["fingerprint_sha1"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(keys["current"]["common_name"], "http://127.0.0.1:9");
        assert_eq!(keys["current"]["subject_alt_name"], "http://127.0.0.1:9");
        let refused = usestats_cli(config, &["keys", "generate"]);
        assert_eq!(refused.status.code(), Some(1));
        let rotated = json(config, &["keys", "rotate"]);
        assert_ne!(rotated["current"]["fingerprint_sha1"], first.as_str());
        assert_eq!(rotated["archived"][0]["fingerprint_sha1"], first.as_str());
        assert!(ok(config, &["keys", "show", "--pem"]).contains("-----BEGIN CERTIFICATE-----"));

        // Peers: add (refused without confirmation), add --yes, publish, subscribe, list, show.
        let mut declined = Command::new(env!("CARGO_BIN_EXE_usestats"))
            .arg("--config")
            .arg(config)
            .args(["peer", "add", &p, "--ssl-verification", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        declined.stdin.take().unwrap().write_all(b"n\n").unwrap();
        let declined = declined.wait_with_output().unwrap();
        assert_eq!(declined.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&declined.stdout).contains("fingerprint"));
        assert!(
            json(config, &["peer", "list"])
                .as_array()
                .unwrap()
                .is_empty()
        );
        let added = json(
            config,
            &["peer", "add", &p, "--yes", "--ssl-verification", "0"],
        );
        assert_eq!(added["wwwroot"], p.as_str());
        assert_eq!(added["name"], "usestats", "named after the peer's <title>");
        ok(config, &["peer", "publish", &p, "use_stats"]);
        ok(config, &["peer", "subscribe", "--all-hosts", "use_stats"]);
        let unknown_service = usestats_cli(config, &["peer", "publish", &p, "nothing"]);
        assert_eq!(unknown_service.status.code(), Some(1));
        let list = json(config, &["peer", "list"]);
        let services = &list[0]["services"][0];
        assert_eq!(services["service"], "use_stats");
        assert_eq!(services["publish"], true);
        assert_eq!(services["subscribe"], true, "from the All Hosts row");
        let table = ok(config, &["peer", "list"]);
        assert!(
            table.lines().next().unwrap().starts_with("wwwroot"),
            "{table}"
        );
        let shown = json(config, &["peer", "show", &p]);
        assert!(
            shown["certificate"]["fingerprint_sha1"]
                .as_str()
                .unwrap()
                .len()
                == 40
        );
        ok(
            config,
            &[
                "peer",
                "set",
                &p,
                "--connect-timeout-ms",
                "1500",
                "--timeout-ms",
                "4000",
            ],
        );
        assert_eq!(
            json(config, &["peer", "show", &p])["peer"]["request_timeout_ms"],
            4000
        );

        // A call to the peer, printed as JSON.
        let services = json(config, &["call", &p, "system/listServices"]);
        assert!(services.is_array());
        let bad = usestats_cli(config, &["call", &p, "system/listServices", "{not json"]);
        assert_eq!(bad.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("not valid JSON"));

        // Grants and tokens.
        let grant = json(
            config,
            &[
                "grant",
                "add",
                "HTTPS://Moodle.Example.org/",
                "alice",
                "--course",
            ],
        );
        assert_eq!(grant["home_wwwroot"], "https://moodle.example.org");
        assert_eq!(
            usestats_cli(config, &["grant", "add", "https://m.example", "bob"])
                .status
                .code(),
            Some(1)
        );
        let token = json(
            config,
            &[
                "token",
                "create",
                "https://moodle.example.org",
                "alice",
                "--label",
                "erp",
                "--allowed-ips",
                "127.0.0.0/8",
            ],
        );
        let prefix = token["prefix"].as_str().unwrap().to_string();
        assert_eq!(token["token"].as_str().unwrap().len(), 32);
        assert!(
            !ok(config, &["token", "list"]).contains(token["token"].as_str().unwrap()),
            "shown once only"
        );
        assert_eq!(
            usestats_cli(
                config,
                &[
                    "token",
                    "create",
                    "https://moodle.example.org",
                    "alice",
                    "--allowed-ips",
                    "nonsense"
                ]
            )
            .status
            .code(),
            Some(1)
        );
        ok(config, &["token", "revoke", &prefix]);
        assert_eq!(
            json(config, &["token", "list"])[0]["token"]["revoked"],
            true
        );
        ok(
            config,
            &["grant", "remove", "https://moodle.example.org", "alice"],
        );
        assert!(
            json(config, &["grant", "list"])
                .as_array()
                .unwrap()
                .is_empty()
        );

        // The audit shows nothing secret; doctor checks everything and the peer.
        let doctor = json(config, &["doctor"]);
        let names: Vec<&str> = doctor
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for expected in [
            "config",
            "openssl",
            "rc4",
            "keys",
            "state database",
            "source database",
            "clock",
        ] {
            assert!(names.contains(&expected), "{names:?}");
        }
        assert!(names.iter().any(|n| n.starts_with("peer ")), "{names:?}");

        ok(config, &["peer", "remove", &p]);
        assert!(
            json(config, &["peer", "list"])
                .as_array()
                .unwrap()
                .is_empty()
        );
    })
    .await;
    // The peer saw our calls in its audit log, without secrets.
    let audit = peer.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e.method == "system/listServices" && e.status == "ok"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn stats_in_every_format_from_the_demo_site() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    blocking(move || {
        let config = config.as_path();
        let demo = json(config, &["demo", "--log-rows", "5000", "--seed", "3"]);
        let user = demo["sample_usernames"][0].as_str().unwrap().to_string();
        // Same seed, same users.
        let again = json(config, &["demo", "--log-rows", "5000", "--seed", "3"]);
        assert_eq!(demo["sample_usernames"], again["sample_usernames"]);

        let report = json(config, &["stats", &user]);
        let total = report["total"].as_i64().unwrap();
        assert!(total > 0);
        let courses = report["courses"].as_array().unwrap();
        let sum: i64 = courses
            .iter()
            .map(|c| c["coursetotal"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, total, "courses add up to the total");
        for c in courses {
            assert_eq!(
                c["coursetotal"].as_i64().unwrap(),
                c["coursetime"].as_i64().unwrap()
                    + c["activitytime"].as_i64().unwrap()
                    + c["othertime"].as_i64().unwrap()
            );
        }
        assert!(
            report["estimator"]
                .as_str()
                .unwrap()
                .starts_with("use_stats.main v1")
        );

        let xml = ok(config, &["stats", &user, "--format", "xml"]);
        assert!(xml.starts_with("<USE_STATS>\n<USER>\n"), "{xml}");
        assert!(xml.contains(&format!("<ELAPSED>{}</ELAPSED>", total / 60)));
        let table = ok(config, &["stats", &user]);
        assert!(table.contains("estimator  use_stats.main v1"), "{table}");

        let some_course = courses
            .iter()
            .find(|c| c["id"].as_i64().unwrap() > 1)
            .unwrap();
        let id = some_course["id"].as_i64().unwrap().to_string();
        let one = json(config, &["stats", &user, "--course", &id]);
        assert_eq!(one["courses"].as_array().unwrap().len(), 1);
        assert_eq!(one["courses"][0], *some_course);
        // Scoped as the web services scope it (D6): only the sessions that touched the course.
        let (in_course, all) = (&one["sessions"], &report["sessions"]);
        assert!(in_course["count"].as_u64().unwrap() >= 1);
        assert!(in_course["count"].as_u64().unwrap() <= all["count"].as_u64().unwrap());
        assert!(in_course["first"].as_i64().unwrap() >= all["first"].as_i64().unwrap());
        assert!(in_course["max"].as_i64().unwrap() <= all["max"].as_i64().unwrap());
        // A shortname that is another course's id: no guessing, but either can be named.
        {
            use diesel::{Connection, RunQueryDsl};
            let db = config.parent().unwrap().join("usestats.sqlite3");
            let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
            diesel::sql_query(format!(
                "UPDATE mdl_course SET shortname = '{id}' WHERE id = 1"
            ))
            .execute(&mut conn)
            .unwrap();
        }
        let ambiguous = usestats_cli(config, &["--json", "stats", &user, "--course", &id]);
        assert_eq!(ambiguous.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&ambiguous.stderr).contains(&format!("`id:{id}`")),
            "{}",
            String::from_utf8_lossy(&ambiguous.stderr)
        );
        let by_id = json(config, &["stats", &user, "--course", &format!("id:{id}")]);
        assert_eq!(by_id["courses"][0]["id"].as_i64().unwrap().to_string(), id);
        let by_name = json(
            config,
            &["stats", &user, "--course", &format!("shortname:{id}")],
        );
        assert_eq!(by_name["courses"][0]["id"], 1);
        // A course asked for with no time in the window still gets its (zero) row.
        let quiet = json(
            config,
            &[
                "stats",
                &user,
                "--course",
                &format!("id:{id}"),
                "--from",
                "2001-01-01",
                "--to",
                "2001-01-02",
            ],
        );
        assert_eq!(quiet["courses"].as_array().unwrap().len(), 1);
        assert_eq!(quiet["courses"][0]["id"].as_i64().unwrap().to_string(), id);
        assert_eq!(quiet["courses"][0]["coursetotal"], 0);
        assert_eq!(quiet["courses"][0]["shortname"], some_course["shortname"]);
        assert_eq!(quiet["sessions"]["count"], 0);
        let windowed = json(
            config,
            &["stats", &user, "--from", "2026-10-01", "--to", "2026-10-15"],
        );
        assert!(windowed["total"].as_i64().unwrap() < total);
        // E15: a window wholly in the future (no --to: it ends now) is empty, not an error;
        // only an explicit --to before --from is refused.
        let future = json(config, &["stats", &user, "--from", "2100-01-01"]);
        assert_eq!(future["rows"], 0, "{future}");
        assert_eq!(future["total"], 0);
        assert_eq!(future["courses"], serde_json::json!([]));
        assert_eq!(future["sessions"]["count"], 0);
        let xml = ok(
            config,
            &["stats", &user, "--from", "2100-01-01", "--format", "xml"],
        );
        assert_eq!(xml.trim(), "<USE_STATS><EMPTYSET /></USE_STATS>");
        let table = ok(config, &["stats", &user, "--from", "2100-01-01"]);
        assert!(table.contains("log rows   0"), "{table}");
        let reversed = usestats_cli(
            config,
            &["stats", &user, "--from", "2026-10-15", "--to", "2026-10-01"],
        );
        assert_eq!(reversed.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&reversed.stderr).contains("--to is before --from"));
        let missing = usestats_cli(config, &["stats", "nobody.at.all"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("no user nobody.at.all"));
        let bad_date = usestats_cli(config, &["stats", &user, "--from", "last tuesday"]);
        assert!(String::from_utf8_lossy(&bad_date.stderr).contains("not a unix time or a date"));
    })
    .await;
}

#[test]
fn configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    std::fs::write(&config, "[site]\nwwwroot = \"http://x.example/\"\n").unwrap();
    let out = usestats_cli(&config, &["keys", "show"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("site.wwwroot") && err.contains("slash"),
        "{err}"
    );
    std::fs::write(
        &config,
        "[site]\nwwwroot = \"http://x.example\"\n[engine]\nthreshold_minutes = \"sixty\"\n",
    )
    .unwrap();
    let err =
        String::from_utf8_lossy(&usestats_cli(&config, &["keys", "show"]).stderr).into_owned();
    assert!(err.contains("threshold_minutes"), "{err}");
    let missing = usestats_cli(&dir.path().join("nope.toml"), &["peer", "list"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("usestats init --wwwroot"));
}

#[tokio::test]
async fn collect_merges_peers_and_reports_each_outcome() {
    let b = spawn_app(AppOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let b_url = b.wwwroot.clone();
    let (c, u) = (config.clone(), b_url.clone());
    // Our host (the CLI) calls B; B knows our admin through its demo data.
    let our_wwwroot = "http://127.0.0.1:9";
    blocking(move || {
        ok(&c, &["init", "--wwwroot", our_wwwroot]);
        ok(&c, &["peer", "add", &u, "--yes", "--ssl-verification", "0"]);
        ok(&c, &["peer", "subscribe", &u, "use_stats"]);
    })
    .await;
    // B registers us and builds demo data with us as a remote host.
    let our_pem = usestats::crypto::KeyStore::new(dir.path().join("keys"), 6)
        .current_cert_pem()
        .expect("our certificate");
    b.register_cert(our_wwwroot, &our_pem).await;
    b.set_service(our_wwwroot, "use_stats", Some(true), None)
        .await;
    b.grant(our_wwwroot, "admin", true, true).await;
    let prefix = b.app.config.source.prefix.clone();
    let options = usestats::demo::DemoOptions {
        log_rows: 3000,
        users: 10,
        courses: 3,
        local_wwwroot: b.wwwroot.clone(),
        remote_hosts: vec![our_wwwroot.to_string()],
        progress: false,
        ..Default::default()
    };
    b.app
        .source
        .run(move |c| usestats::demo::build_demo(c, &prefix, &options).map_err(anyhow::Error::from))
        .await
        .unwrap();
    let c = config.clone();
    let result =
        blocking(move || json(&c, &["collect", "admin", "--scope", "2", "--include-local"])).await;
    let hosts = result["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{result}");
    let remote = hosts
        .iter()
        .find(|h| h["wwwroot"] == b_url.as_str())
        .unwrap();
    assert_eq!(remote["status"], "ok", "{result}");
    assert!(remote["minutes"].as_i64().unwrap() > 0);
    let local = hosts.iter().find(|h| h["wwwroot"] == our_wwwroot).unwrap();
    assert_eq!(
        local["status"], "error",
        "our CLI host has no source data: {local}"
    );
    assert_eq!(result["total_minutes"], remote["minutes"]);

    // A failure under --json is JSON on standard output too.
    let c = config.clone();
    let refused = blocking(move || {
        usestats_cli(
            &c,
            &[
                "--json",
                "collect",
                "admin",
                "--peers",
                "http://nope.example",
            ],
        )
    })
    .await;
    assert_eq!(refused.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("nope.example"),
        "{error}"
    );

    // Every host failing is a failure: the answer is printed, and the exit code says so.
    drop(b);
    let c = config.clone();
    let failed = blocking(move || usestats_cli(&c, &["--json", "collect", "admin"])).await;
    assert_eq!(failed.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(answer["hosts"][0]["status"], "error", "{answer}");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no host answered"));
    let c = config.clone();
    let table = blocking(move || usestats_cli(&c, &["collect", "admin"])).await;
    assert_eq!(table.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&table.stdout).contains("total 0s over 0 hosts"));
}

#[test]
fn demo_refuses_to_write_into_a_separate_source_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    std::fs::write(
        &config,
        "[site]\nwwwroot = \"http://x.example\"\n[source]\nurl = \"postgres://moodle:secret@127.0.0.1:1/moodle\"\n",
    )
    .unwrap();
    let out = usestats_cli(&config, &["demo"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("never writes into a Moodle database"), "{err}");
    assert!(!err.contains("secret"), "no password in messages: {err}");
}

/// A `stats` report without its window, whose end is the wall clock's now.
fn stats(config: &Path, user: &str) -> serde_json::Value {
    let mut report = json(config, &["stats", user]);
    report.as_object_mut().unwrap().remove("window");
    report
}

/// `compile` builds the store, `--verify` checks it against full scans, `stats` answers the
/// same from it, and a second pass reads only what is new.
#[tokio::test]
async fn compile_then_stats_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    blocking(move || {
        let config = config.as_path();
        let demo = json(config, &["demo", "--log-rows", "6000", "--seed", "5"]);
        let user = demo["sample_usernames"][0].as_str().unwrap().to_string();
        let scanned = stats(config, &user);

        let first = json(config, &["compile", "--verify", "4"]);
        assert_eq!(first["from_scratch"], true, "{first}");
        assert!(first["rows_read"].as_u64().unwrap() >= 6000, "{first}");
        assert!(first["segments"].as_u64().unwrap() > 0, "{first}");
        assert_eq!(first["verified"], 4, "{first}");
        assert_eq!(first["differences"], serde_json::json!([]), "{first}");
        assert_eq!(stats(config, &user), scanned);

        // A row edited in place under the compiled mark (Moodle never does; data fixes do):
        // `--verify` names the user and marks them stale, and the next pass compiles them again.
        {
            use diesel::connection::SimpleConnection;
            let db = dir_path(config).join("usestats.sqlite3");
            let mut conn = usestats::store::establish(&db.to_string_lossy()).unwrap();
            conn.batch_execute(&format!(
                "UPDATE mdl_logstore_standard_log SET courseid = courseid + 1000 \
                 WHERE id = (SELECT l.id FROM mdl_logstore_standard_log l \
                 JOIN mdl_user u ON u.id = l.userid WHERE u.username = '{user}' \
                 AND l.courseid > 1 AND l.contextlevel = 50 ORDER BY l.id LIMIT 1 OFFSET 3)"
            ))
            .unwrap();
        }
        let all = "1000";
        let found = usestats_cli(config, &["--json", "compile", "--verify", all]);
        assert!(!found.status.success(), "a difference fails the command");
        let found: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
        let differences = found["differences"].as_array().unwrap();
        assert!(
            differences
                .iter()
                .any(|d| d["username"] == user.as_str() && d["marked_stale"] == true),
            "{found}"
        );
        let fixed = json(config, &["compile"]);
        assert!(fixed["recompiled"].as_u64().unwrap() >= 1, "{fixed}");
        let clean = json(config, &["compile", "--verify", all]);
        assert_eq!(clean["differences"], serde_json::json!([]), "{clean}");
        let scanned = stats(config, &user);

        let again = json(config, &["compile"]);
        assert_eq!(again["from_scratch"], false, "{again}");
        assert_eq!(again["rows_read"], 0, "{again}");
        let one = json(config, &["compile", "--user", &user]);
        assert_eq!(one["recompiled"], 1, "{one}");
        assert_eq!(stats(config, &user), scanned);

        let text = ok(config, &["compile", "--full"]);
        assert!(text.contains("from scratch"), "{text}");

        let missing = usestats_cli(config, &["compile", "--user", "nobody-here"]);
        assert!(!missing.status.success());
        assert!(
            String::from_utf8_lossy(&missing.stderr).contains("no user nobody-here"),
            "{}",
            String::from_utf8_lossy(&missing.stderr)
        );

        // Turned off, there is nothing to compile and `stats` scans the log.
        let text = std::fs::read_to_string(config).unwrap();
        assert!(
            text.contains("compiled = true"),
            "init writes every default"
        );
        let off_text = text.replace("compiled = true", "compiled = false");
        std::fs::write(config, off_text).unwrap();
        let off = usestats_cli(config, &["compile"]);
        assert!(!off.status.success());
        assert!(String::from_utf8_lossy(&off.stderr).contains("compiled = false"));
        assert_eq!(stats(config, &user), scanned);
    })
    .await;
}

/// `report --course` lists every enrolled learner with the time `stats --course` gives each,
/// and its CSV carries the same rows.
#[tokio::test]
async fn course_report_equals_stats_for_each_learner() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    blocking(move || {
        let config = config.as_path();
        let demo = json(config, &["demo", "--log-rows", "5000", "--seed", "4"]);
        let user = demo["sample_usernames"][0].as_str().unwrap().to_string();
        let to = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let theirs = json(config, &["stats", &user, "--to", &to]);
        let course = theirs["courses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"].as_i64().unwrap() > 0)
            .max_by_key(|c| c["coursetotal"].as_i64().unwrap())
            .expect("the sample user has time in a course");
        let (id, shortname) = (
            course["id"].as_i64().unwrap(),
            course["shortname"].as_str().unwrap().to_string(),
        );

        let report = json(config, &["report", "--course", &shortname, "--to", &to]);
        assert_eq!(report["course"]["id"], id);
        let learners = report["learners"].as_array().unwrap();
        assert!(learners.len() >= 2, "{report}");
        assert!(
            learners.iter().any(|l| l["username"] == user.as_str()),
            "the sample user is enrolled"
        );
        let mut previous = i64::MAX;
        let mut sum = 0;
        for l in learners {
            let seconds = l["coursetotal"].as_i64().unwrap();
            assert!(seconds <= previous, "most time first");
            previous = seconds;
            sum += seconds;
            let name = l["username"].as_str().unwrap();
            let single = json(
                config,
                &["stats", name, "--course", &format!("id:{id}"), "--to", &to],
            );
            let row = &single["courses"][0];
            assert_eq!(row["id"], id);
            for field in [
                "coursetime",
                "activitytime",
                "othertime",
                "coursetotal",
                "events",
            ] {
                assert_eq!(l[field], row[field], "{name} {field}");
            }
            assert_eq!(
                l["sessions"], single["sessions"]["count"],
                "{name} sessions"
            );
        }
        assert_eq!(report["total"].as_i64().unwrap(), sum);
        assert!(sum > 0);

        let csv = ok(
            config,
            &[
                "report",
                "--course",
                &format!("id:{id}"),
                "--to",
                &to,
                "--format",
                "csv",
            ],
        );
        let lines: Vec<&str> = csv.trim_end_matches("\r\n").split("\r\n").collect();
        assert_eq!(lines[0], usestats::reports::course::CSV_HEADER.join(","));
        assert_eq!(lines.len(), learners.len() + 1);
        for (line, l) in lines[1..].iter().zip(learners) {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields[0], l["userid"].to_string());
            assert_eq!(fields[7], l["coursetotal"].to_string());
        }

        let table = ok(config, &["report", "--course", &shortname, "--to", &to]);
        assert!(table.contains(&user), "{table}");
        let missing = usestats_cli(config, &["report", "--course", "no-such-course"]);
        assert!(!missing.status.success());
        assert!(String::from_utf8_lossy(&missing.stderr).contains("no course no-such-course"));
    })
    .await;
}

#[tokio::test]
async fn healthcheck_answers_for_a_running_server_and_fails_otherwise() {
    let app = spawn_app(AppOptions::default()).await;
    let healthz = app.url("/healthz");
    let missing = app.url("/no-such-page");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    // Found from the config: its listen address, written as the server's.
    std::fs::write(
        &config,
        format!(
            "[site]\nwwwroot = \"https://stats.example.org\"\n[server]\nlisten = \"{}\"\n",
            app.addr
        ),
    )
    .unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/healthz", listener.local_addr().unwrap())
    };
    blocking(move || {
        let out = usestats_cli(&config, &["healthcheck"]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
        let out = usestats_cli(&config, &["healthcheck", "--url", &healthz]);
        assert!(out.status.success(), "{out:?}");

        let out = usestats_cli(&config, &["healthcheck", "--url", &missing]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("answered 404"), "{err}");

        let out = usestats_cli(&config, &["healthcheck", "--url", &closed]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("asking {closed}")), "{err}");

        // The environment's listen address wins over the file's, as for `serve`.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
            .args(["--config", config.to_str().unwrap(), "healthcheck"])
            .env(
                "USESTATS_LISTEN",
                closed
                    .trim_start_matches("http://")
                    .trim_end_matches("/healthz"),
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
    })
    .await;
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usestats"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let expected = format!("usestats {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&expected), "{line}");
    let commit = line
        .trim_end()
        .trim_start_matches(&expected)
        .trim_end_matches(')');
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{line}"
    );
}

/// A reader that closes the pipe early (`usestats report | head -n 1`) ends the command
/// quietly: exit 0, nothing on standard error, for every command that prints a listing.
#[tokio::test]
async fn a_closed_stdout_is_a_quiet_exit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    blocking(move || {
        let config = config.as_path();
        let demo = json(config, &["demo", "--log-rows", "3000", "--seed", "5"]);
        let user = demo["sample_usernames"][0].as_str().unwrap().to_string();
        for args in [
            vec!["report", "--course", "2"],
            vec!["stats", user.as_str()],
            vec!["users", "--search", "a"],
            vec!["courses"],
            vec!["--json", "stats", user.as_str()],
        ] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_usestats"))
                .arg("--config")
                .arg(config)
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The reader goes away before the first line is written.
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.stderr.is_empty(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })
    .await;
}
