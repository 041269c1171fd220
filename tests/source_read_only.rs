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
