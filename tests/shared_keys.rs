//! Several instances on one PostgreSQL state (docs/instances.md): our key pairs live in the
//! state database sealed under a key-encryption key, every instance uses the same ones, a
//! rotation anywhere reaches the others, and replay keys are claimed there.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::TestDb;
use usestats::app::App;
use usestats::config::Config;
use usestats::keys::KeysError;
use usestats::store::{self, state};

/// An instance's configuration: its own directory, the shared state, the given KEK file.
fn config(dir: &Path, state_url: &str, kek: &Path, old: &[&Path]) -> Config {
    let mut config = Config::for_wwwroot("http://127.0.0.1:9");
    config.path = dir.join("usestats.toml");
    config.base_dir = dir.to_path_buf();
    config.state.url = state_url.to_string();
    config.keys.kek_file = kek.display().to_string();
    // Whatever the environment of the test run holds, only the file counts here.
    config.keys.kek_env = String::new();
    config.keys.old_kek_files = old.iter().map(|p| p.display().to_string()).collect();
    config
}

async fn open(config: Config) -> Result<Arc<App>, usestats::app::AppError> {
    tokio::task::spawn_blocking(move || App::open(config))
        .await
        .unwrap()
}

fn fingerprint(app: &App) -> String {
    app.keyring().current.info().fingerprint_sha1
}

fn pg() -> Option<TestDb> {
    let db = TestDb::postgres();
    if db.is_none() {
        eprintln!("SKIPPED: PostgreSQL not configured (USESTATS_TEST_PG_URL)");
    }
    db
}

#[tokio::test]
async fn instances_share_sealed_keys_and_follow_a_rotation() {
    let Some(db) = pg() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let kek = tmp.path().join("kek");
    let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("i{i}"))).collect();
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }

    // Three instances starting together on an empty state: one KEK, one key pair.
    let opening: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let config = config(dir, &db.url(), &kek, &[]);
            tokio::task::spawn_blocking(move || App::open(config))
        })
        .collect();
    let mut apps: Vec<Arc<App>> = Vec::new();
    for started in opening {
        apps.push(started.await.unwrap().expect("instance opens"));
    }
    let first = fingerprint(&apps[0]);
    for app in &apps {
        assert_eq!(fingerprint(app), first, "one key pair for every instance");
        assert!(app.key_home.is_shared());
    }
    assert_eq!(
        apps.iter().filter(|a| a.keys_generated_now).count(),
        1,
        "exactly one instance generated the key pair"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kek).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for dir in &dirs {
        assert!(
            !dir.join("keys/current.key.pem").exists(),
            "no private key file on a shared state"
        );
    }

    // The database holds no private key in the clear.
    let pem = String::from_utf8(
        apps[0]
            .keyring()
            .current
            .key
            .private_key_to_pem_pkcs8()
            .unwrap(),
    )
    .unwrap();
    let body_line = pem.lines().nth(2).unwrap().to_string();
    let rows = {
        let mut conn = db.connect();
        state::shared_key_rows(&mut conn).unwrap()
    };
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_current);
    for row in &rows {
        let stored = String::from_utf8_lossy(&row.key_sealed);
        assert!(!stored.contains("PRIVATE KEY") && !stored.contains(&body_line));
    }

    // A rotation on one instance: the others take it up, the old key stays archived.
    let rotated = apps[1].rotate_keys().unwrap();
    assert!(rotated.current.info().not_after > apps[1].now() + 27 * 86_400);
    let new = rotated.current.info().fingerprint_sha1;
    assert_ne!(new, first);
    for app in [&apps[0], &apps[2]] {
        let app = app.clone();
        let followed = tokio::task::spawn_blocking(move || app.follow_keys())
            .await
            .unwrap()
            .unwrap()
            .expect("a rotation elsewhere is taken up");
        assert_eq!(followed.current.info().fingerprint_sha1, new);
        assert_eq!(followed.archived[0].info().fingerprint_sha1, first);
    }
    let again = apps[0].clone();
    assert!(
        tokio::task::spawn_blocking(move || again.follow_keys())
            .await
            .unwrap()
            .unwrap()
            .is_none(),
        "nothing to take up twice"
    );

    // Automatic rotation decided by two instances at once, 26 days on (the certificate
    // expires in 2 days, inside the 3-day margin): one rotates, the other finds the new key.
    let later = apps[0].now() + 26 * 86_400;
    for app in &apps {
        app.clock.pin(later);
    }
    let deadline = later + 3 * 86_400;
    let (a, b) = (apps[0].clone(), apps[2].clone());
    let (ra, rb) = tokio::join!(
        tokio::task::spawn_blocking(move || a.rotate_keys_if_expiring(deadline)),
        tokio::task::spawn_blocking(move || b.rotate_keys_if_expiring(deadline)),
    );
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    assert_eq!(
        usize::from(ra.is_some()) + usize::from(rb.is_some()),
        1,
        "exactly one instance rotates"
    );
    let rows = {
        let mut conn = db.connect();
        state::shared_key_rows(&mut conn).unwrap()
    };
    assert_eq!(rows.iter().filter(|r| r.is_current).count(), 1);
    assert_eq!(
        rows.len(),
        3,
        "the first, the manual and the automatic key pair"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_kek_is_refused_clearly_and_rewrap_moves_to_a_new_one() {
    let Some(db) = pg() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (old_kek, new_kek) = (tmp.path().join("old.kek"), tmp.path().join("new.kek"));
    let dir = tmp.path().join("a");
    std::fs::create_dir_all(&dir).unwrap();
    let first = open(config(&dir, &db.url(), &old_kek, &[])).await.unwrap();
    let fp = fingerprint(&first);
    first.rotate_keys().unwrap();

    // No KEK where one is expected, once keys exist: refused, and the message says what to do.
    let missing = open(config(&dir, &db.url(), &tmp.path().join("nowhere"), &[]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("no key-encryption key") && missing.contains("Copy"),
        "{missing}"
    );

    // A different KEK: refused, naming both ids.
    usestats::keys::write_new_kek(&new_kek).unwrap();
    let wrong = open(config(&dir, &db.url(), &new_kek, &[]))
        .await
        .unwrap_err();
    let text = wrong.to_string();
    assert!(
        matches!(
            wrong,
            usestats::app::AppError::Keys(KeysError::WrongKek { .. })
        ),
        "{text}"
    );
    assert!(text.contains("sealed with key-encryption key"), "{text}");

    // The new KEK with the old one listed: opens, and rewrap seals everything anew.
    let rolling = open(config(&dir, &db.url(), &new_kek, &[&old_kek]))
        .await
        .unwrap();
    let rewrapping = rolling.clone();
    let resealed = tokio::task::spawn_blocking(move || rewrapping.key_home.rewrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resealed, 2, "the current and the archived key pair");
    let after = open(config(&dir, &db.url(), &new_kek, &[])).await.unwrap();
    assert_eq!(after.keyring().archived[0].info().fingerprint_sha1, fp);
    assert!(
        open(config(&dir, &db.url(), &old_kek, &[])).await.is_err(),
        "the old KEK alone no longer opens anything"
    );
}

#[tokio::test]
async fn a_key_directory_is_imported_into_a_new_shared_state() {
    let Some(db) = pg() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("single");
    std::fs::create_dir_all(&dir).unwrap();
    // A single instance on SQLite made its keys as files, and rotated once.
    let sqlite = {
        let mut c = config(&dir, "", &tmp.path().join("kek"), &[]);
        c.state.url = dir.join("state.db").display().to_string();
        c
    };
    let single = open(sqlite.clone()).await.unwrap();
    assert!(!single.key_home.is_shared());
    let old = fingerprint(&single);
    let current = single
        .rotate_keys()
        .unwrap()
        .current
        .info()
        .fingerprint_sha1;
    drop(single);

    let moved = open(config(&dir, &db.url(), &tmp.path().join("kek"), &[]))
        .await
        .unwrap();
    assert!(moved.key_home.is_shared());
    assert!(!moved.keys_generated_now);
    assert_eq!(
        fingerprint(&moved),
        current,
        "peers keep the certificate they hold"
    );
    assert_eq!(moved.keyring().archived[0].info().fingerprint_sha1, old);
}

#[test]
fn replay_keys_are_claimed_once_on_each_backend() {
    for db in common::all_dbs() {
        let mut conn = store::establish(&db.url()).unwrap();
        store::migrate_state(&mut conn).unwrap();
        assert!(state::claim_replay_key(&mut conn, "aa", 100, 50).unwrap());
        assert!(!state::claim_replay_key(&mut conn, "aa", 101, 50).unwrap());
        assert!(state::claim_replay_key(&mut conn, "bb", 101, 50).unwrap());
        // An entry older than the window, not pruned yet, is claimed again.
        assert!(state::claim_replay_key(&mut conn, "aa", 300, 200).unwrap());
        assert!(!state::claim_replay_key(&mut conn, "aa", 301, 200).unwrap());
        assert!(state::replay_key_seen(&mut conn, "aa", 250).unwrap());
    }
}

mod mnet {
    use super::*;
    use common::vector::{A, fault_of, peer as vector_peer, read};
    use usestats::mnet::envelope;
    use usestats::xmlrpc::{self, MethodCall};

    fn a_key() -> openssl::pkey::PKey<openssl::pkey::Private> {
        openssl::pkey::PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap()
    }

    /// A's listServices, signed now and sealed to `cert` (one of B's certificates).
    fn list_services_from_a(now: i64, cert: &openssl::x509::X509) -> Vec<u8> {
        let call = MethodCall {
            name: "system/listServices".into(),
            params: vec![],
        };
        let signed =
            envelope::build_signed(&xmlrpc::serialize_call(&call), &a_key(), A, now).unwrap();
        let public = usestats::crypto::public_key_of(cert).unwrap();
        envelope::build_encrypted(&signed, &public, A).unwrap()
    }

    #[tokio::test]
    async fn a_replay_to_another_instance_is_refused_and_a_new_key_is_taken_up_on_demand() {
        let Some(db) = pg() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let kek = tmp.path().join("kek");
        let tweak = |url: String, kek: PathBuf| -> common::Tweak {
            Box::new(move |c| {
                c.state.url = url;
                c.keys.kek_file = kek.display().to_string();
                c.keys.kek_env = String::new();
            })
        };
        let b1 = vector_peer(Some(tweak(db.url(), kek.clone()))).await;
        let b2 = vector_peer(Some(tweak(db.url(), kek.clone()))).await;
        assert_eq!(fingerprint(&b1.app), fingerprint(&b2.app));
        let (u1, u2) = (
            b1.url("/mnet/xmlrpc/server.php"),
            b2.url("/mnet/xmlrpc/server.php"),
        );

        // One sealed request, sent to one instance and then to the other.
        let request = list_services_from_a(b1.app.now(), &b1.app.keyring().current.cert);
        assert_eq!(fault_of(&common::post(&u1, request.clone()).await.1), None);
        assert_eq!(
            fault_of(&common::post(&u2, request.clone()).await.1),
            Some(7041),
            "a copy sent to another instance is a replay"
        );
        assert_eq!(fault_of(&common::post(&u1, request).await.1), Some(7041));

        // B1 rotates; A learns the new certificate and seals to it at once. B2 has not polled
        // yet: the request itself makes it look, and it answers instead of 7023.
        let old = fingerprint(&b2.app);
        let ring = b1.app.rotate_keys().unwrap();
        let fresh = list_services_from_a(b2.app.now(), &ring.current.cert);
        assert_eq!(fault_of(&common::post(&u2, fresh).await.1), None);
        assert_eq!(fingerprint(&b2.app), ring.current.info().fingerprint_sha1);
        // A still on the old certificate gets 7025 from either instance.
        let stale_cert = b2.app.keyring().archived[0].cert.clone();
        assert_eq!(b2.app.keyring().archived[0].info().fingerprint_sha1, old);
        for url in [&u1, &u2] {
            let stale = list_services_from_a(b2.app.now(), &stale_cert);
            assert_eq!(fault_of(&common::post(url, stale).await.1), Some(7025));
        }
    }
}
