//! The state database on SQLite and PostgreSQL: peers, services, grants, tokens, audit.

mod common;

use usestats::store::{self, state};

fn with_each_backend(test: impl Fn(&mut store::DbConnection)) {
    for db in common::all_dbs() {
        let mut conn = store::establish(&db.url()).unwrap();
        let applied = store::migrate_state(&mut conn).unwrap();
        assert!(!applied.is_empty());
        assert!(
            store::migrate_state(&mut conn).unwrap().is_empty(),
            "migrations are idempotent"
        );
        test(&mut conn);
    }
}

#[test]
fn peers_register_normalised_and_keep_certificate_history() {
    with_each_backend(|conn| {
        let new = state::NewPeer {
            wwwroot: "HTTP://Moodle.Example.org/",
            name: "Moodle",
            application: "moodle",
            public_key: "PEM-1",
            public_key_expires: 10,
            ssl_verification: state::SslVerification::Full,
        };
        let peer = state::upsert_peer(conn, &new, 100).unwrap();
        assert_eq!(peer.wwwroot, "http://moodle.example.org");
        assert!(
            state::peer_by_wwwroot(conn, "http://MOODLE.example.org")
                .unwrap()
                .is_some()
        );
        state::set_peer_key(conn, peer.id, "PEM-2", 20, 200).unwrap();
        let again = state::peer_by_id(conn, peer.id).unwrap().unwrap();
        assert_eq!(again.public_key, "PEM-2");
        let history = state::peer_certificate_history(conn, peer.id).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].public_key, "PEM-1");
        state::delete_peer(conn, peer.id).unwrap();
        assert!(state::all_peers(conn, false).unwrap().is_empty());
        assert_eq!(state::all_peers(conn, true).unwrap().len(), 1);
        let revived = state::upsert_peer(
            conn,
            &state::NewPeer {
                public_key: "PEM-3",
                ..new
            },
            300,
        )
        .unwrap();
        assert_eq!(revived.id, peer.id);
        assert!(!revived.deleted);
        assert_eq!(
            state::peer_certificate_history(conn, peer.id)
                .unwrap()
                .len(),
            2
        );
    });
}

#[test]
fn services_merge_peer_rows_with_all_hosts() {
    with_each_backend(|conn| {
        let peer = state::upsert_peer(
            conn,
            &state::NewPeer {
                wwwroot: "http://a.example",
                name: "a",
                application: "moodle",
                public_key: "",
                public_key_expires: 0,
                ssl_verification: state::SslVerification::Full,
            },
            1,
        )
        .unwrap();
        assert!(!state::is_published(conn, peer.id, "use_stats").unwrap());
        let all = state::all_hosts(conn).unwrap();
        state::set_service(conn, all.id, "use_stats", Some(true), None).unwrap();
        assert!(state::is_published(conn, peer.id, "use_stats").unwrap());
        assert!(!state::is_subscribed(conn, peer.id, "use_stats").unwrap());
        state::set_service(conn, peer.id, "use_stats", None, Some(true)).unwrap();
        let merged = state::effective_services(conn, peer.id).unwrap();
        assert_eq!(merged.len(), 1);
        assert!(merged[0].publish && merged[0].subscribe);
        state::set_service(conn, all.id, "use_stats", Some(false), None).unwrap();
        assert!(!state::is_published(conn, peer.id, "use_stats").unwrap());
    });
}

#[test]
fn grants_prefer_the_user_over_the_wildcard_and_tokens_follow_them() {
    with_each_backend(|conn| {
        assert!(state::put_grant(conn, "http://h", "bob", false, false, 1).is_err());
        let star = state::put_grant(conn, "http://H/", "*", true, false, 1).unwrap();
        let alice = state::put_grant(conn, "http://h", "alice", false, true, 1).unwrap();
        assert_eq!(
            state::grant_for(conn, "http://h", "alice").unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            state::grant_for(conn, "http://h", "bob").unwrap(),
            Some(star)
        );
        assert_eq!(state::grant_for(conn, "http://other", "bob").unwrap(), None);
        let again = state::put_grant(conn, "http://h", "alice", true, true, 2).unwrap();
        assert_eq!(again.id, alice.id);
        assert!(again.site && again.course);
        let token = state::insert_token(
            conn,
            &state::NewToken {
                token_hash: "abc",
                token_prefix: "ab",
                grant_id: alice.id,
                label: "erp",
                expires_at: None,
                allowed_ips: "",
            },
            5,
        )
        .unwrap();
        assert!(!token.revoked);
        assert!(state::remove_grant(conn, "http://h", "alice").unwrap());
        assert!(!state::remove_grant(conn, "http://h", "alice").unwrap());
        assert!(state::token_by_hash(conn, "abc").unwrap().is_none());
    });
}

#[test]
fn a_token_is_revoked_by_its_prefix_even_when_the_prefix_is_all_digits() {
    with_each_backend(|conn| {
        let grant = state::put_grant(conn, "http://h", "alice", true, true, 1).unwrap();
        let insert = |conn: &mut store::DbConnection, hash: &str, prefix: &str| {
            state::insert_token(
                conn,
                &state::NewToken {
                    token_hash: hash,
                    token_prefix: prefix,
                    grant_id: grant.id,
                    label: "",
                    expires_at: None,
                    allowed_ips: "",
                },
                5,
            )
            .unwrap()
        };
        let first = insert(conn, "h1", "0badcafe");
        let digits = insert(conn, "h2", "82813551");
        let third = insert(conn, "h3", "feedf00d");
        let revoked_of = |conn: &mut _| -> Vec<(i64, bool)> {
            state::list_tokens(conn)
                .unwrap()
                .into_iter()
                .map(|t| (t.id, t.revoked))
                .collect()
        };
        // The regression: an 8-digit prefix used to be read as a row id and matched nothing.
        assert_eq!(state::revoke_token(conn, "82813551").unwrap(), 1);
        assert!(revoked_of(conn).contains(&(digits.id, true)));
        assert!(revoked_of(conn).contains(&(first.id, false)));
        // A number that is nobody's prefix is still a row id.
        assert_eq!(state::revoke_token(conn, &third.id.to_string()).unwrap(), 1);
        assert!(revoked_of(conn).contains(&(third.id, true)));
        assert!(revoked_of(conn).contains(&(first.id, false)));
        // Nothing left to match: an already revoked token (not then read as a row id, though
        // a token with that id exists), or an unknown prefix.
        let numbered = insert(conn, "h4", &format!("{:08}", first.id));
        assert_eq!(
            state::revoke_token(conn, &numbered.token_prefix).unwrap(),
            1
        );
        assert_eq!(
            state::revoke_token(conn, &numbered.token_prefix).unwrap(),
            0
        );
        assert!(revoked_of(conn).contains(&(first.id, false)));
        assert_eq!(state::revoke_token(conn, "82813551").unwrap(), 0);
        assert_eq!(state::revoke_token(conn, "ffffffff").unwrap(), 0);
        assert_eq!(state::revoke_token(conn, "0badcafe").unwrap(), 1);
    });
}

#[test]
fn audit_entries_filter_and_prune() {
    with_each_backend(|conn| {
        for (t, peer) in [(10, "http://a"), (20, "http://b"), (30, "http://a")] {
            state::insert_audit(
                conn,
                &state::AuditEntry {
                    time: t,
                    channel: "mnet".into(),
                    peer: peer.into(),
                    status: "ok".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        assert_eq!(
            state::query_audit(conn, Some("http://a"), None, 100)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            state::query_audit(conn, None, Some(20), 100).unwrap().len(),
            2
        );
        assert_eq!(state::prune_audit(conn, 25).unwrap(), 2);
        assert_eq!(state::query_audit(conn, None, None, 100).unwrap().len(), 1);
    });
}

/// Writers that read first, on many connections at once: none may fail. SQLite's deferred
/// transactions failed with "database is locked", without waiting, when another writer came
/// in between; on PostgreSQL two first inserts of one row met a unique-key error.
#[test]
fn concurrent_read_then_write_transactions_all_succeed() {
    for db in common::all_dbs() {
        let pool = store::Db::open(&db.url(), 8).unwrap();
        store::migrate_state(&mut pool.get().unwrap()).unwrap();
        let peer = state::upsert_peer(
            &mut pool.get().unwrap(),
            &state::NewPeer {
                wwwroot: "http://peer.example",
                name: "Peer",
                application: "moodle",
                public_key: "PEM",
                public_key_expires: 10,
                ssl_verification: state::SslVerification::Full,
            },
            1,
        )
        .unwrap();
        state::set_service(
            &mut pool.get().unwrap(),
            peer.id,
            "use_stats",
            Some(true),
            None,
        )
        .unwrap();
        let workers: Vec<_> = (0..6i64)
            .map(|worker| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let mut conn = pool.get().unwrap();
                    for round in 0..40i64 {
                        let flip = (worker + round) % 2 == 0;
                        state::set_service(&mut conn, peer.id, "use_stats", Some(flip), None)
                            .map_err(|e| format!("set_service: {e}"))?;
                        let user = format!("user{worker}");
                        state::put_grant(&mut conn, "http://home", &user, true, flip, round)
                            .map_err(|e| format!("put_grant: {e}"))?;
                        // Every worker adds the same new row at once: one inserts, the
                        // others must see it and update.
                        state::set_service(
                            &mut conn,
                            peer.id,
                            &format!("service{}", round % 8),
                            None,
                            Some(flip),
                        )
                        .map_err(|e| format!("set_service (new row): {e}"))?;
                        // A plain write in between, as the audit does.
                        state::touch_peer(&mut conn, peer.id, round)
                            .map_err(|e| format!("touch_peer: {e}"))?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap().unwrap();
        }
        let grants = state::list_grants(&mut pool.get().unwrap()).unwrap();
        assert_eq!(
            grants.len(),
            6,
            "one grant per worker, none lost or doubled"
        );
    }
}

#[test]
fn a_state_migrated_by_a_newer_version_is_refused_naming_both_schema_versions() {
    use diesel::connection::SimpleConnection;
    with_each_backend(|conn| {
        let newest_known = store::state_schema_version(conn).unwrap().unwrap();
        // What a later release's first start leaves behind: a migration this one never had.
        conn.batch_execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')",
        )
        .unwrap();
        let err = store::migrate_state(conn).unwrap_err();
        assert!(
            matches!(&err, store::StoreError::SchemaTooNew { found, newest_known: known, .. }
                if found == "29991231000000" && *known == newest_known),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("schema version 29991231000000"), "{text}");
        assert!(
            text.contains(&format!("its newest is {newest_known}")),
            "{text}"
        );
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
        // Refused every time, not only once.
        assert!(store::migrate_state(conn).is_err());
    });
}
