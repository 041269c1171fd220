//! Grants are bound to the signing peer (docs/decisions.md, Authorisation; issue 9 item 3): a call
//! is honoured only when the signing peer is the person's home host or a relay the grant
//! names with `--via`. The attacks run against real daemons on loopback.

mod common;

use std::path::Path;

use common::*;
use usestats::collect::{PeerStatus, caller_struct, parse_use_stats};
use usestats::services::use_stats::{self, Answer};
use usestats::store::{self, state};
use usestats::xmlrpc::Value;

/// Host C: the home of some remote users in A's source data, never a peer of anybody.
const HOST_C: &str = "http://127.0.0.1:9/moodle-c";

const NO_GRANT: &str = "Local user's identity has no capability to run";

/// `caller` may call `callee`'s use_stats (registered both ways, published, subscribed).
async fn link(caller: &TestApp, callee: &TestApp) {
    caller.add_peer(callee).await;
    callee.add_peer(caller).await;
    caller
        .set_service(&callee.wwwroot, "use_stats", None, Some(true))
        .await;
    callee
        .set_service(&caller.wwwroot, "use_stats", Some(true), None)
        .await;
}

async fn demo_app(remote_hosts: Vec<String>, seed: u64) -> TestApp {
    spawn_app(AppOptions {
        demo_remote_hosts: Some(remote_hosts),
        demo_seed: seed,
        demo_log_rows: 5_000,
        ..Default::default()
    })
    .await
}

/// `get_stats` signed by `from` and sent to `to`, for `username@home`, at scope 3.
async fn ask(from: &TestApp, to: &TestApp, username: &str, home: &str, target: &str) -> Answer {
    ask_where(from, to, username, home, target, "").await
}

async fn ask_where(
    from: &TestApp,
    to: &TestApp,
    username: &str,
    home: &str,
    target: &str,
    whereroot: &str,
) -> Answer {
    let peer = from.peer(&to.wwwroot).await;
    let params = vec![
        caller_struct(username, home, &from.wwwroot),
        Value::from(target),
        Value::from(whereroot),
        Value::Int(use_stats::MODULE_SCOPE),
        Value::Int(0),
    ];
    let value = from
        .call_peer(&peer, use_stats::GET_STATS, params)
        .await
        .expect("MNET call");
    Answer::from_value(&value).expect("a use_stats answer")
}

/// A remote user of `app` whose home is `home`, other than admin.
async fn remote_learner(app: &TestApp, home: &str) -> String {
    let home = home.to_string();
    app.app
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

fn refused_as_without_grant(answer: &Answer) {
    assert_eq!(
        answer.status,
        use_stats::RPC_FAILURE_CAPABILITY,
        "{answer:?}"
    );
    assert_eq!(answer.errors, vec![serde_json::json!(NO_GRANT)]);
    assert_eq!(answer.message, None, "no data leaks: {answer:?}");
}

fn scope_3_data(answer: &Answer) {
    assert_eq!(answer.status, use_stats::RPC_SUCCESS, "{answer:?}");
    let message = answer.message.as_deref().unwrap();
    assert!(message.contains("<MODULES>"), "scope 3 detail: {message}");
}

#[tokio::test]
async fn a_peer_cannot_borrow_the_grants_of_another_hosts_people() {
    let b = spawn_app(AppOptions::default()).await;
    let d = spawn_app(AppOptions::default()).await;
    let a = demo_app(vec![b.wwwroot.clone(), HOST_C.to_string()], 41).await;
    link(&b, &a).await;
    link(&d, &a).await;
    let (_, target) = busiest_learner(&a).await;
    let c_learner = remote_learner(&a, HOST_C).await;
    let c_admin = "admin";

    // C's admin and everybody from C hold home-only grants at A (as before this rule).
    a.grant(HOST_C, c_admin, true, true).await;
    a.grant(HOST_C, "*", true, true).await;

    // The attack: B signs calls claiming people whose home is C. Before the rule: status 200
    // and C-admin's scope-3 data. Now refused exactly as a missing grant is.
    refused_as_without_grant(&ask(&b, &a, c_admin, HOST_C, &target).await);
    refused_as_without_grant(&ask(&b, &a, &c_learner, HOST_C, &target).await);
    // Indistinguishable from a person with no grant at all (a host with no '*' grant).
    a.grant(&b.wwwroot, "admin", true, true).await;
    let b_learner = remote_learner(&a, &b.wwwroot).await;
    refused_as_without_grant(&ask(&b, &a, &b_learner, &b.wwwroot, &target).await);

    // B's own people: B is their home host, the grant holds.
    scope_3_data(&ask(&b, &a, "admin", &b.wwwroot, &target).await);

    // C's admin's grant names B as a relay: B may now ask for C's admin, and only B.
    a.grant_via(HOST_C, c_admin, true, true, &[&b.wwwroot])
        .await;
    scope_3_data(&ask(&b, &a, c_admin, HOST_C, &target).await);
    refused_as_without_grant(&ask(&d, &a, c_admin, HOST_C, &target).await);
    // The person's own grant wins over the '*' one and does not lend its relays to it.
    refused_as_without_grant(&ask(&b, &a, &c_learner, HOST_C, &target).await);

    // `--via '*'`: any registered peer may relay for everybody from C.
    a.grant_via(HOST_C, "*", true, true, &["*"]).await;
    scope_3_data(&ask(&d, &a, &c_learner, HOST_C, &target).await);
    scope_3_data(&ask(&b, &a, &c_learner, HOST_C, &target).await);

    // Re-adding a grant replaces its via list: home-only again.
    a.grant(HOST_C, c_admin, true, true).await;
    refused_as_without_grant(&ask(&b, &a, c_admin, HOST_C, &target).await);
}

#[tokio::test]
async fn a_relay_needs_via_on_the_data_hosts_grant() {
    // M's admin asks relay A for the stats held by B (whereroot = B).
    let m = spawn_app(AppOptions::default()).await;
    let a = demo_app(vec![m.wwwroot.clone()], 51).await;
    let b = demo_app(vec![m.wwwroot.clone()], 52).await;
    link(&m, &a).await;
    link(&a, &b).await;
    a.grant(&m.wwwroot, "admin", true, true).await;
    b.grant(&m.wwwroot, "admin", true, true).await;
    let (id, target) = busiest_learner(&b).await;
    let minutes_on_b = engine_report(&b, id).await.total / 60;

    // B's grant is home-only: A signs the forwarded call, so B refuses it, and A relays the
    // refusal as the remote application error.
    let refused = ask_where(&m, &a, "admin", &m.wwwroot, &target, &b.wwwroot).await;
    assert_eq!(refused.status, use_stats::RPC_FAILURE, "{refused:?}");
    assert_eq!(
        refused.errors,
        vec![
            serde_json::json!("Remote application error : "),
            serde_json::json!([NO_GRANT]),
        ]
    );
    assert_eq!(refused.message, None);

    // `grant add M admin --via A` on B: the relay works, with B's numbers.
    b.grant_via(&m.wwwroot, "admin", true, true, &[&a.wwwroot])
        .await;
    let relayed = ask_where(&m, &a, "admin", &m.wwwroot, &target, &b.wwwroot).await;
    scope_3_data(&relayed);
    let parsed = parse_use_stats(relayed.message.as_deref().unwrap()).unwrap();
    assert_eq!(parsed.minutes, minutes_on_b, "B's numbers");
}

#[tokio::test]
async fn collect_as_a_person_of_another_host_needs_via_the_collector() {
    let hub = spawn_app(AppOptions::default()).await;
    let p = demo_app(vec![hub.wwwroot.clone(), HOST_C.to_string()], 61).await;
    link(&hub, &p).await;
    p.grant(&hub.wwwroot, "admin", true, true).await;
    p.grant(HOST_C, "admin", true, true).await;
    let peers = vec![hub.peer(&p.wwwroot).await];
    let run = |home: String| {
        let (app, peers) = (hub.app.clone(), peers.clone());
        async move { usestats::collect::collect(&app, peers, ("admin", &home), "admin", 2, 0).await }
    };
    // As the hub's own admin (the default of `usestats collect`): home host, no --via needed.
    let own = run(hub.wwwroot.clone()).await;
    assert_eq!(own.hosts[0].status, PeerStatus::Ok, "{:?}", own.hosts);
    // `collect --as admin@C`: the peer's grant for C must name the hub.
    let as_c = run(HOST_C.to_string()).await;
    assert_eq!(as_c.hosts[0].status, PeerStatus::Error);
    let error = as_c.hosts[0].error.clone().unwrap_or_default();
    assert_eq!(error, format!("status 510: {NO_GRANT}"));
    p.grant_via(HOST_C, "admin", true, true, &[&hub.wwwroot])
        .await;
    let as_c = run(HOST_C.to_string()).await;
    assert_eq!(as_c.hosts[0].status, PeerStatus::Ok, "{:?}", as_c.hosts);
}

#[test]
fn the_via_list_is_checked_normalised_and_replaced_whole() {
    for db in all_dbs() {
        let mut conn = store::establish(&db.url()).unwrap();
        store::migrate_state(&mut conn).unwrap();
        let conn = &mut conn;
        for (wwwroot, name) in [("http://relay.test", "R"), ("http://gone.test", "G")] {
            let new = state::NewPeer {
                wwwroot,
                name,
                application: "moodle",
                public_key: "PEM",
                public_key_expires: 10,
                ssl_verification: state::SslVerification::Full,
            };
            state::upsert_peer(conn, &new, 1).unwrap();
        }
        let gone = state::peer_by_wwwroot(conn, "http://gone.test")
            .unwrap()
            .unwrap();
        state::delete_peer(conn, gone.id).unwrap();
        let via = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let put = |conn: &mut store::DbConnection, home: &str, list: &[&str]| {
            state::put_grant_via(conn, home, "alice", true, true, &via(list), 1)
                .map_err(|e| e.to_string())
        };

        let err = put(conn, "not a url", &[]).unwrap_err();
        assert!(
            err.contains("`not a url`") && err.contains("http://"),
            "{err}"
        );
        let err = put(conn, "ftp://h.test", &[]).unwrap_err();
        assert!(err.contains("scheme"), "{err}");
        let err = put(conn, "http://h.test", &["http://stranger.test"]).unwrap_err();
        assert!(err.contains("not a registered peer"), "{err}");
        let err = put(conn, "http://h.test", &["http://gone.test"]).unwrap_err();
        assert!(err.contains("removed"), "{err}");
        let err = put(conn, "http://h.test", &["relay"]).unwrap_err();
        assert!(err.contains("not a peer wwwroot"), "{err}");
        let err =
            state::put_grant_via(conn, "http://h.test", "bob", false, false, &[], 1).unwrap_err();
        assert!(matches!(err, state::GrantError::NoRights), "{err}");
        assert!(
            state::list_grants(conn).unwrap().is_empty(),
            "nothing written"
        );

        let g = put(
            conn,
            "HTTP://H.test/",
            &["HTTP://Relay.TEST/", "http://relay.test"],
        )
        .unwrap();
        assert_eq!(g.home_wwwroot, "http://h.test");
        assert_eq!(g.via.as_slice(), ["http://relay.test"]);
        assert!(g.honoured_from("http://h.test") && g.honoured_from("http://RELAY.test/"));
        assert!(!g.honoured_from("http://other.test"));
        let star = put(conn, "http://h.test", &["http://relay.test", "*"]).unwrap();
        assert_eq!(star.id, g.id);
        assert_eq!(star.via.as_slice(), ["*"]);
        assert!(star.honoured_from("http://other.test"));
        let home_only = put(conn, "http://h.test", &[]).unwrap();
        assert!(home_only.via.is_empty() && !home_only.honoured_from("http://relay.test"));
        assert_eq!(
            state::grant_for(conn, "http://h.test", "alice").unwrap(),
            Some(home_only)
        );
        let json = serde_json::to_value(put(conn, "http://h.test", &["*"]).unwrap()).unwrap();
        assert_eq!(json["via"], serde_json::json!(["*"]));
    }
}

#[test]
fn grants_made_before_the_via_column_migrate_as_home_only() {
    use diesel::RunQueryDsl;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
    const SQLITE: EmbeddedMigrations = embed_migrations!("schema/state/sqlite");
    const POSTGRES: EmbeddedMigrations = embed_migrations!("schema/state/postgres");
    for db in all_dbs() {
        let mut conn = store::establish(&db.url()).unwrap();
        // The schema as it was: only the first migration, and a grant with a token made there.
        let first = match &mut conn {
            store::DbConnection::Sqlite(c) => c.run_next_migration(SQLITE),
            store::DbConnection::Postgres(c) => c.run_next_migration(POSTGRES),
            store::DbConnection::Mysql(_) => unreachable!("not a state backend"),
        }
        .unwrap();
        assert!(first.to_string().starts_with("20261125"), "{first}");
        diesel::sql_query(
            "INSERT INTO grants (home_wwwroot, username, site, course, created_at) \
             VALUES ('http://old.test', 'admin', TRUE, TRUE, 7)",
        )
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query(
            "INSERT INTO ws_tokens (token_hash, token_prefix, grant_id, label, created_at, allowed_ips, revoked) \
             SELECT 'hash', 'ha', id, 'erp', 7, '', FALSE FROM grants",
        )
        .execute(&mut conn)
        .unwrap();

        assert!(!store::migrate_state(&mut conn).unwrap().is_empty());
        let grants = state::list_grants(&mut conn).unwrap();
        assert_eq!(grants.len(), 1);
        let old = &grants[0];
        assert!(old.via.is_empty(), "home-only: {old:?}");
        assert!(old.site && old.course && old.created_at == 7);
        assert!(old.honoured_from("http://old.test"));
        assert!(!old.honoured_from("http://relay.test"));
        let token = state::token_by_hash(&mut conn, "hash").unwrap().unwrap();
        assert_eq!(token.grant_id, old.id, "tokens stay bound to their grant");
    }
}

fn refused(config: &Path, args: &[&str]) -> String {
    let out = usestats_cli(config, args);
    assert_eq!(out.status.code(), Some(1), "{args:?} should be refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(config: &Path, args: &[&str]) -> String {
    let out = usestats_cli(config, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn grant_add_checks_home_and_via_and_grant_list_shows_via() {
    let peer = spawn_app(AppOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usestats.toml");
    let peer_url = peer.wwwroot.clone();
    tokio::task::spawn_blocking(move || {
        let config = config.as_path();
        ok(config, &["init", "--wwwroot", "http://127.0.0.1:9"]);
        ok(
            config,
            &["peer", "add", &peer_url, "--yes", "--ssl-verification", "0"],
        );

        let err = refused(config, &["grant", "add", "not a url", "someone", "--site"]);
        assert!(
            err.contains("`not a url`") && err.contains("http://"),
            "{err}"
        );
        let err = refused(config, &["grant", "add", "https://m.test", "bob"]);
        assert!(err.contains("--site, --course"), "{err}");
        let err = refused(
            config,
            &[
                "grant",
                "add",
                "https://m.test",
                "bob",
                "--site",
                "--via",
                "https://nobody.test",
            ],
        );
        assert!(err.contains("not a registered peer"), "{err}");
        let listed: serde_json::Value =
            serde_json::from_str(&ok(config, &["--json", "grant", "list"])).unwrap();
        assert_eq!(
            listed,
            serde_json::json!([]),
            "nothing written by a refusal"
        );

        let added: serde_json::Value = serde_json::from_str(&ok(
            config,
            &[
                "--json",
                "grant",
                "add",
                "https://M.test/",
                "bob",
                "--course",
                "--via",
                &format!("{peer_url}/"),
            ],
        ))
        .unwrap();
        assert_eq!(added["home_wwwroot"], "https://m.test");
        assert_eq!(added["via"], serde_json::json!([peer_url.to_lowercase()]));
        ok(
            config,
            &[
                "grant",
                "add",
                "https://m.test",
                "*",
                "--site",
                "--via",
                "*",
            ],
        );
        ok(
            config,
            &["grant", "add", "https://home.test", "ann", "--site"],
        );

        let listed: serde_json::Value =
            serde_json::from_str(&ok(config, &["--json", "grant", "list"])).unwrap();
        let via: Vec<&serde_json::Value> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|g| &g["via"])
            .collect();
        assert_eq!(
            via,
            [
                &serde_json::json!([]),
                &serde_json::json!(["*"]),
                &serde_json::json!([peer_url.to_lowercase()])
            ]
        );
        let table = ok(config, &["grant", "list"]);
        assert!(table.contains("via"), "{table}");
        assert!(table.contains("home only"), "{table}");
        assert!(table.contains(&peer_url.to_lowercase()), "{table}");
    })
    .await
    .unwrap();
}

/// Review finding: with `auto_register` on, a stranger could register itself under the name
/// of a grant's home host (anyone's first claim) and then sign for that host's people. A
/// self-registered peer counts for no grant until the operator adds it.
#[tokio::test]
async fn a_self_registered_peer_counts_for_no_grant() {
    let m = spawn_app(AppOptions::default()).await;
    let b = spawn_app(AppOptions {
        demo_remote_hosts: Some(vec![m.wwwroot.clone()]),
        demo_log_rows: 5_000,
        auto_register: true,
        ..Default::default()
    })
    .await;
    b.grant(&m.wwwroot, "*", true, true).await;
    b.set_service("", "use_stats", Some(true), None).await;
    // M introduces itself by keyswap and B registers it on its own word.
    m.add_peer(&b).await;
    assert!(b.peer(&m.wwwroot).await.auto_registered);
    let target = remote_learner(&b, &m.wwwroot).await;
    refused_as_without_grant(&ask(&m, &b, "admin", &m.wwwroot, &target).await);
    // Once the operator adds it (`peer add`), it is a peer like any other.
    b.add_peer(&m).await;
    assert!(!b.peer(&m.wwwroot).await.auto_registered);
    scope_3_data(&ask(&m, &b, "admin", &m.wwwroot, &target).await);
}
