//! `--estimator` on `stats` and `report`, and `--from`/`--to` as dates, RFC 3339 instants or
//! unix seconds (docs/engine.md §8), as operators use the binary.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value as Json;

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

fn json(config: &Path, args: &[&str]) -> Json {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(config, &all)).unwrap()
}

fn refused(config: &Path, args: &[&str], message: &str) {
    let out = usestats_cli(config, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(message), "{args:?}: {stderr}");
}

/// The dedication estimator's answer for `user`, computed by the library on the same database.
fn reference(config: &Path, user: i64, course: Option<i64>, limit: Option<i64>) -> (i64, Json) {
    let cfg = usestats::config::Config::load(config).unwrap();
    let mut conn = usestats::store::establish(&cfg.source_url()).unwrap();
    let source = usestats::store::source::Source::new("mdl_").unwrap();
    let variant = usestats::stats::dedication::Variant::Live;
    let mut settings =
        usestats::estimators::dedication_settings(&mut conn, &source, variant, None).unwrap();
    if let Some(limit) = limit {
        settings.session_limit = limit;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let answers = usestats::estimators::dedication_users(
        &mut conn,
        &source,
        &usestats::estimators::DedicationQuery {
            variant,
            settings,
            userids: &[user],
            course,
            from: 0,
            to: 0,
            now,
            sessions: true,
        },
    )
    .unwrap();
    let d = &answers[&user];
    let totals = d
        .courses
        .iter()
        .map(|c| (c.course.to_string(), Json::from(c.total)))
        .collect::<serde_json::Map<_, _>>();
    (d.total(), Json::Object(totals))
}

#[test]
fn stats_with_each_estimator() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let config = config.as_path();
    let demo = json(config, &["demo", "--log-rows", "5000", "--seed", "3"]);
    let user = demo["sample_usernames"][0].as_str().unwrap().to_string();

    // The default is use_stats, output unchanged, and naming it changes nothing (an explicit
    // end, so that the clock does not tick between two runs).
    let to = ["--to", "2026-11-02"];
    let plain = ok(config, &["--json", "stats", &user, to[0], to[1]]);
    assert_eq!(
        ok(
            config,
            &[
                "--json",
                "stats",
                &user,
                to[0],
                to[1],
                "--estimator",
                "use_stats"
            ]
        ),
        plain
    );
    assert_eq!(
        ok(
            config,
            &["stats", &user, to[0], to[1], "--estimator", "use_stats"]
        ),
        ok(config, &["stats", &user, to[0], to[1]])
    );
    let use_stats = json(config, &["stats", &user]);
    let userid = use_stats["user"]["id"].as_i64().unwrap();

    // dedication: the library's numbers, course by course, every session listed.
    let d = json(config, &["stats", &user, "--estimator", "dedication"]);
    let blocks = d["estimators"].as_array().unwrap();
    assert_eq!(blocks.len(), 1);
    let block = &blocks[0];
    assert_eq!(block["name"], "dedication");
    assert_eq!(
        block["estimator"],
        "dedication v1 (session limit 3600 s, sessions of 0 s or less ignored)"
    );
    let (total, per_course) = reference(config, userid, None, None);
    assert!(total > 0);
    assert_eq!(block["total"], total);
    for c in block["courses"].as_array().unwrap() {
        assert_eq!(per_course[c["id"].to_string()], c["total"], "{c}");
        let kept: i64 = c["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kept"] == true)
            .map(|s| s["duration"].as_i64().unwrap())
            .sum();
        assert_eq!(c["total"], kept);
        for s in c["sessions"].as_array().unwrap() {
            assert_eq!(s["dropped"].is_null(), s["kept"] == true, "{s}");
        }
    }
    assert!(
        block.get("why").is_none(),
        "no comparison without use_stats"
    );

    // all: the three side by side, use_stats' numbers as by default, and why they differ.
    let all = json(config, &["stats", &user, "--estimator", "all"]);
    let blocks = all["estimators"].as_array().unwrap();
    let names: Vec<&str> = blocks.iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["use_stats", "dedication", "dedication.legacy"]);
    assert_eq!(blocks[0]["total"], use_stats["total"]);
    assert_eq!(blocks[0]["courses"], use_stats["courses"]);
    assert_eq!(blocks[1]["total"], total);
    assert!(
        blocks[1]["why"]
            .as_str()
            .unwrap()
            .starts_with("dedication gives no credit after the last click"),
        "{}",
        blocks[1]["why"]
    );
    assert!(
        blocks[2]["estimator"]
            .as_str()
            .unwrap()
            .contains("every session counted")
    );
    assert!(
        blocks[2]["courses"][0]["legacy"]["days_in_period"]
            .as_u64()
            .unwrap()
            > 0
    );
    let table = ok(config, &["stats", &user, "--estimator", "all"]);
    for text in [
        "use_stats.main v1",
        "dedication v1",
        "dedication.legacy v1",
        "side by side",
        "outcome",
    ] {
        assert!(table.contains(text), "{text}: {table}");
    }

    // Settings per run, and one course only.
    let (total, _) = reference(config, userid, None, Some(600));
    let short = json(
        config,
        &[
            "stats",
            &user,
            "--estimator",
            "dedication",
            "--session-limit",
            "600",
        ],
    );
    assert_eq!(short["estimators"][0]["total"], total);
    assert!(
        short["estimators"][0]["estimator"]
            .as_str()
            .unwrap()
            .contains("session limit 600 s")
    );
    let course = per_course
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let one = json(
        config,
        &[
            "stats",
            &user,
            "--estimator",
            "dedication",
            "--course",
            &format!("id:{course}"),
        ],
    );
    let courses = one["estimators"][0]["courses"].as_array().unwrap();
    assert_eq!(courses.len(), 1);
    assert_eq!(courses[0]["total"], per_course[&course]);

    // What cannot be asked.
    refused(
        config,
        &[
            "stats",
            &user,
            "--estimator",
            "dedication",
            "--format",
            "xml",
        ],
        "--format xml is use_stats'",
    );
    refused(
        config,
        &["stats", &user, "--ignore-sessions-limit", "60"],
        "apply to --estimator dedication",
    );
    refused(
        config,
        &[
            "stats",
            &user,
            "--estimator",
            "dedication.legacy",
            "--ignore-sessions-limit",
            "60",
        ],
        "counts every session",
    );
    refused(
        config,
        &["stats", &user, "--estimator", "dedication2"],
        "invalid value 'dedication2'",
    );
    refused(
        config,
        &[
            "stats",
            &user,
            "--estimator",
            "dedication",
            "--session-limit",
            "0",
        ],
        "--session-limit",
    );
}

/// doctor says which settings dedication runs with, and warns when it cannot read them.
#[test]
fn doctor_reads_the_dedication_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let config = config.as_path();
    let demo = json(config, &["demo", "--log-rows", "2000", "--seed", "3"]);
    let user = demo["sample_usernames"][0].as_str().unwrap().to_string();
    let find = |checks: &Json| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "dedication settings")
            .cloned()
            .expect("a dedication check")
    };
    let check = find(&json(config, &["doctor"]));
    assert_eq!(check["status"], "OK", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("never configured"),
        "{check}"
    );
    let cfg = usestats::config::Config::load(config).unwrap();
    let mut conn = usestats::store::establish(&cfg.source_url()).unwrap();
    use diesel::connection::SimpleConnection;
    conn.batch_execute(
        "INSERT INTO mdl_config_plugins (plugin, name, value) VALUES ('block_dedication', 'session_limit', '900')",
    )
    .unwrap();
    let check = find(&json(config, &["doctor"]));
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .starts_with("session limit 900 s"),
        "{check}"
    );
    // A database without the table (a demo made before it, a role without SELECT on it).
    conn.batch_execute("DROP TABLE mdl_config_plugins").unwrap();
    let out = usestats_cli(config, &["--json", "doctor"]);
    let check = find(&serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(check["status"], "WARN", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("mdl_config_plugins"),
        "{check}"
    );
    refused(
        config,
        &["stats", &user, "--estimator", "dedication"],
        "config_plugins",
    );
    // The legacy rule does not read it.
    ok(
        config,
        &["stats", &user, "--estimator", "dedication.legacy"],
    );
    // collect asks peers over MNET: use_stats only, and it says so.
    refused(
        config,
        &["collect", &user, "--estimator", "dedication"],
        "MNET, whose get_stats answers use_stats only",
    );
    let collected = json(
        config,
        &[
            "collect",
            &user,
            "--include-local",
            "--estimator",
            "use_stats",
        ],
    );
    assert!(
        collected["estimator"]
            .as_str()
            .unwrap()
            .starts_with("use_stats (each host's MNET get_stats"),
        "{collected}"
    );
}

#[test]
fn windows_as_dates_instants_or_unix_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let config = config.as_path();
    let demo = json(config, &["demo", "--log-rows", "5000", "--seed", "3"]);
    let user = demo["sample_usernames"][0].as_str().unwrap().to_string();
    let by_date = json(
        config,
        &["stats", &user, "--from", "2026-10-01", "--to", "2026-10-20"],
    );
    assert_eq!(by_date["window"]["from"], 1_790_812_800);
    // A date as --to runs through the last second of its day; an instant is exact.
    assert_eq!(by_date["window"]["to"], 1_792_540_799);
    for (from, to) in [
        ("2026-10-01T00:00:00Z", "2026-10-20T23:59:59Z"),
        ("1790812800", "1792540799"),
        ("2026-10-01T02:00:00+02:00", "2026-10-20T19:59:59-04:00"),
        ("2026-10-01T00:00:00.250Z", "2026-10-20"),
    ] {
        let other = json(config, &["stats", &user, "--from", from, "--to", to]);
        assert_eq!(other, by_date, "{from} {to}");
    }
    let instant = json(config, &["stats", &user, "--from", "2026-10-01T08:15:00Z"]);
    assert_eq!(instant["window"]["from"], 1_790_842_500);
    // An instant cuts a dedication session at its rows inside the window.
    let d = json(
        config,
        &[
            "stats",
            &user,
            "--estimator",
            "dedication",
            "--from",
            "2026-10-01T08:15:00Z",
            "--to",
            "2026-10-20T00:00:00Z",
        ],
    );
    for c in d["estimators"][0]["courses"].as_array().unwrap() {
        assert_eq!(c["window"]["from"], 1_790_842_500);
        for s in c["sessions"].as_array().unwrap() {
            let start = s["start"].as_i64().unwrap();
            assert!((1_790_842_500..=1_792_454_400).contains(&start), "{s}");
        }
    }
    refused(
        config,
        &["stats", &user, "--from", "2026-10-01T08:15:00+2"],
        "not a unix time or a date",
    );
}

#[test]
fn course_report_with_every_estimator() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let config = config.as_path();
    let demo = json(config, &["demo", "--log-rows", "5000", "--seed", "4"]);
    let user = demo["sample_usernames"][0].as_str().unwrap().to_string();
    let theirs = json(config, &["stats", &user]);
    let course = theirs["courses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_i64().unwrap() > 1)
        .max_by_key(|c| c["coursetotal"].as_i64().unwrap())
        .expect("a course with time")["id"]
        .as_i64()
        .unwrap();
    let id = format!("id:{course}");
    let plain = ok(
        config,
        &["--json", "report", "--course", &id, "--to", "2026-11-02"],
    );
    assert_eq!(
        ok(
            config,
            &[
                "--json",
                "report",
                "--course",
                &id,
                "--to",
                "2026-11-02",
                "--estimator",
                "use_stats"
            ]
        ),
        plain
    );
    let plain: Json = serde_json::from_str(&plain).unwrap();

    let all = json(config, &["report", "--course", &id, "--estimator", "all"]);
    let names: Vec<&str> = all["estimators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["use_stats", "dedication", "dedication.legacy"]);
    assert_eq!(all["estimators"][0]["total"], plain["total"]);
    let learners = all["learners"].as_array().unwrap();
    assert_eq!(learners.len(), plain["learners"].as_array().unwrap().len());
    let mut sum = 0;
    for l in learners {
        let (_, per_course) = reference(config, l["userid"].as_i64().unwrap(), Some(course), None);
        let expected = per_course
            .get(course.to_string())
            .cloned()
            .unwrap_or(Json::from(0));
        assert_eq!(l["dedication"]["total"], expected, "{l}");
        sum += l["dedication"]["total"].as_i64().unwrap();
        assert!(l["dedication.legacy"]["total"].as_i64().unwrap() >= 0);
        assert!(l.get("coursetotal").is_some(), "use_stats' fields are kept");
    }
    assert_eq!(all["estimators"][1]["total"], sum);
    assert!(sum > 0);

    let csv = ok(
        config,
        &[
            "report",
            "--course",
            &id,
            "--estimator",
            "dedication",
            "--format",
            "csv",
        ],
    );
    let lines: Vec<&str> = csv.trim_end_matches("\r\n").split("\r\n").collect();
    assert_eq!(
        lines[0],
        "userid,username,firstname,lastname,dedication,dedication_kept,dedication_dropped,dedication_hms"
    );
    assert_eq!(lines.len(), learners.len() + 1);
    let table = ok(config, &["report", "--course", &id, "--estimator", "all"]);
    assert!(
        table.contains("dedication (kept/dropped)") && table.contains(&user),
        "{table}"
    );
}
