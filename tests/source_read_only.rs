//! A separate source database (a real Moodle's, on SQLite, PostgreSQL or MySQL/MariaDB) is read
//! through connections that refuse to write, and the methods still answer from it.

mod common;

use common::*;
use diesel::RunQueryDsl;
use usestats::store::{self, Db};

/// A small demo site of a Moodle at http://moodle.example.
fn small_site(log_rows: u64, users: u32) -> usestats::demo::DemoOptions {
    usestats::demo::DemoOptions {
        log_rows,
        users,
        courses: 2,
        local_wwwroot: "http://moodle.example".into(),
        remote_hosts: vec![],
        progress: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_source_is_read_only_and_still_serves() {
    for db in source_dbs() {
        let url = db.url();
        build_demo_at(&url, small_site(2_000, 8)).await;
        let pool = Db::open_read_only(&url, 2).unwrap();
        let mut conn = pool.get().unwrap();
        assert!(
            diesel::sql_query("SELECT COUNT(*) FROM mdl_user")
                .execute(&mut *conn)
                .is_ok()
        );
        let write = diesel::sql_query("UPDATE mdl_user SET firstname = 'x'").execute(&mut *conn);
        assert!(write.is_err(), "{:?} accepted a write", pool.kind());
        drop(conn);

        let source_url = url.clone();
        let mut app = spawn_app(AppOptions {
            tweak: Some(Box::new(move |c| c.source.url = source_url)),
            ..Default::default()
        })
        .await;
        let (status, _) = get(&app.url("/healthz")).await;
        assert_eq!(status, 200);
        let (id, _) = busiest_learner(&app).await;
        assert!(
            engine_report(&app, id).await.total > 0,
            "reports come from the source"
        );
        // Close every connection before the test database is dropped.
        app.stop().await;
        drop(app);
        drop(pool);
    }
}

#[test]
fn an_unreadable_module_table_costs_only_its_names() {
    for db in source_dbs() {
        let mut conn = store::establish(&db.url()).unwrap();
        usestats::demo::build_demo(&mut conn, "mdl_", &small_site(1_000, 5)).unwrap();
        diesel::sql_query("DROP TABLE mdl_forum")
            .execute(&mut conn)
            .unwrap();
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        let cmids: Vec<i64> = diesel::sql_query("SELECT id FROM mdl_course_modules")
            .load::<Id>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let source = usestats::store::source::Source::new("mdl_").unwrap();
        let labels = source
            .module_labels(&mut conn, &cmids)
            .expect("no error for one bad table");
        let forums: Vec<_> = labels.values().filter(|l| l.modname == "forum").collect();
        assert!(!forums.is_empty());
        assert!(forums.iter().all(|l| l.name.is_empty()));
        assert!(
            labels
                .values()
                .any(|l| l.modname == "page" && !l.name.is_empty())
        );
    }
}

/// A separate source that goes away (its database dropped, every connection ended): the web
/// services answer Moodle's database exception and `/healthz` says the source is down, while
/// the daemon keeps running.
#[tokio::test]
async fn healthz_reports_a_source_database_that_went_away() {
    let Some(db) = TestDb::postgres() else { return };
    let url = db.url();
    build_demo_at(&url, small_site(500, 4)).await;
    let source_url = url.clone();
    let mut app = spawn_app(AppOptions {
        tweak: Some(Box::new(move |c| c.source.url = source_url)),
        ..Default::default()
    })
    .await;
    assert_eq!(get(&app.url("/healthz")).await, (200, "ok\n".to_string()));
    drop(db);
    let (status, body) = get(&app.url("/healthz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("source database unavailable"), "{body}");
    let (status, _) = get(&app.url("/metrics")).await;
    assert_eq!(status, 200, "the daemon is still serving");
    app.stop().await;
}

/// The bytes of `path` and whether SQLite side files sit beside it.
fn file_state(path: &std::path::Path) -> (Vec<u8>, bool) {
    let side = ["-wal", "-shm", "-journal"].iter().any(|s| {
        let mut p = path.as_os_str().to_owned();
        p.push(s);
        std::path::Path::new(&p).exists()
    });
    (std::fs::read(path).unwrap(), side)
}

/// Issue 22, K3: a SQLite source that is missing or empty was created (mode 0644) by serve,
/// stats and doctor, looked healthy, and once back needed a restart. Now it is opened
/// read-only and never created or changed; while it is missing or empty `/healthz` is 503,
/// MNET answers "unavailable" and the web services Moodle's database exception; once the file
/// is back, the same daemon answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_empty_sqlite_source_is_unavailable_never_created_and_comes_back() {
    let a = spawn_app(AppOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("moodle.sqlite3");
    let source_url = source.to_string_lossy().into_owned();
    let mut site = small_site(2_000, 8);
    site.remote_hosts = vec![a.wwwroot.clone()];
    site.local_wwwroot = "http://127.0.0.1:9".into();
    build_demo_at(&source_url, site).await;
    {
        // A Moodle's SQLite file in the default (rollback journal) mode: a source opened
        // writable would turn it to WAL.
        use diesel::Connection;
        let mut conn = diesel::SqliteConnection::establish(&source_url).unwrap();
        diesel::sql_query("PRAGMA journal_mode = DELETE")
            .execute(&mut conn)
            .unwrap();
    }
    let pristine = file_state(&source);
    assert!(!pristine.1, "no side files to begin with");
    let away = dir.path().join("moodle.sqlite3.away");
    std::fs::rename(&source, &away).unwrap();

    let tweak_url = source_url.clone();
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(move |c| c.source.url = tweak_url)),
        ..Default::default()
    })
    .await;
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    b.set_service(&a.wwwroot, "use_stats", Some(true), None)
        .await;
    b.grant(&a.wwwroot, "admin", true, true).await;
    b.grant("http://erp.example.org", "reports", false, true)
        .await;
    let token =
        usestats::ws::tokens::create(&b.app, "http://erp.example.org", "reports", "t", None, "")
            .await
            .unwrap()
            .0;
    let get_stats = || async {
        let peer = a.peer(&b.wwwroot).await;
        let value = a
            .call_peer(
                &peer,
                usestats::services::use_stats::GET_STATS,
                vec![
                    usestats::collect::caller_struct("admin", &a.wwwroot, &a.wwwroot),
                    usestats::xmlrpc::Value::from("admin"),
                    usestats::xmlrpc::Value::from(""),
                    usestats::xmlrpc::Value::Int(1),
                    usestats::xmlrpc::Value::Int(0),
                ],
            )
            .await
            .expect("an answer");
        usestats::services::use_stats::Answer::from_value(&value).expect("a use_stats answer")
    };
    let ws = format!(
        "/webservice/rest/server.php?wstoken={token}&wsfunction=block_use_stats_get_user_stats&moodlewsrestformat=json&uidsource=username&uid=admin"
    );

    for (what, make) in [
        ("missing", None),
        ("empty", Some(Vec::new())),
        ("not a Moodle database", Some(b"SQLite format 3\0".to_vec())),
    ] {
        if let Some(bytes) = &make {
            std::fs::write(&source, bytes).unwrap();
        }
        let (status, body) = get(&b.url("/healthz")).await;
        assert_eq!(status, 503, "{what}: {body}");
        assert!(
            body.starts_with("source database unavailable"),
            "{what}: {body}"
        );
        let answer = get_stats().await;
        assert_eq!(answer.status, 500, "{what}: {answer:?}");
        assert!(
            answer
                .errors
                .iter()
                .any(|e| e.to_string().contains("unavailable")),
            "{what}: {answer:?}"
        );
        let (_, body) = get(&b.url(&ws)).await;
        assert!(body.contains("dml_read_exception"), "{what}: {body}");
        // The command line neither: `stats` fails saying why, `doctor` says the source is
        // unavailable; none of them makes the file.
        let config = b.dir.join("usestats.toml");
        std::fs::write(&config, b.app.config.to_toml()).unwrap();
        let out = usestats_cli(&config, &["stats", "admin"]);
        assert!(!out.status.success(), "{what}");
        let out = usestats_cli(&config, &["--json", "doctor"]);
        let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let check = checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "source database")
            .unwrap();
        assert_ne!(check["status"], "OK", "{what}: {check}");
        match &make {
            None => assert!(!source.exists(), "{what}: the source was created"),
            Some(bytes) => {
                assert_eq!(&std::fs::read(&source).unwrap(), bytes, "{what}: changed");
                std::fs::remove_file(&source).unwrap();
            }
        }
    }

    // Back: the same daemon answers again, without a restart.
    std::fs::rename(&away, &source).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = get(&b.url("/healthz")).await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still unavailable 30 s after the file came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(get_stats().await.status, 200);
    let (_, body) = get(&b.url(&ws)).await;
    assert!(!body.contains("exception"), "{body}");
    // Read, never written: the same bytes, still in its own journal mode, no side files.
    assert_eq!(file_state(&source), pristine);
}
