//! Serving https natively, and the client's three TLS verification levels against it.

mod common;

use common::*;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};
use usestats::mnet::client::ClientError;

/// A self-signed server certificate for `names` (IP addresses or DNS names).
fn server_cert(
    dir: &std::path::Path,
    ip: bool,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_text("CN", name).unwrap();
    let subject = subject.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&subject).unwrap();
    builder.set_issuer_name(&subject).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let mut san = SubjectAlternativeName::new();
    if ip {
        san.ip(name);
    } else {
        san.dns(name);
    }
    let san = san.build(&builder.x509v3_context(None, None)).unwrap();
    builder.append_extension(san).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = builder.build();
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert_path, key_path)
}

#[tokio::test]
async fn https_peers_with_each_verification_level() {
    let dir = tempfile::tempdir().unwrap();
    let good = server_cert(dir.path(), true, "127.0.0.1");
    let wrong_host = server_cert(dir.path(), false, "elsewhere.example");
    let b = spawn_app(AppOptions {
        tls: Some(good),
        ..Default::default()
    })
    .await;
    let c = spawn_app(AppOptions {
        tls: Some(wrong_host),
        ..Default::default()
    })
    .await;
    let a = spawn_app(AppOptions::default()).await;
    assert!(b.wwwroot.starts_with("https://"));

    // 0: no verification, 1: host name only (self-signed chain accepted), 2: full.
    for (level, expect_ok) in [(0, true), (1, true), (2, false)] {
        let result = a
            .app
            .client
            .keyswap(
                &b.wwwroot,
                "moodle",
                usestats::store::state::SslVerification::from_level(level),
                None,
            )
            .await;
        assert_eq!(result.is_ok(), expect_ok, "level {level}: {result:?}");
        if let Err(e) = result {
            assert!(matches!(e, ClientError::Transport { .. }), "{e:?}");
        }
    }
    // A certificate for another host name fails level 1 but passes level 0.
    assert!(
        a.app
            .client
            .keyswap(
                &c.wwwroot,
                "moodle",
                usestats::store::state::SslVerification::HostName,
                None
            )
            .await
            .is_err()
    );
    assert!(
        a.app
            .client
            .keyswap(
                &c.wwwroot,
                "moodle",
                usestats::store::state::SslVerification::None,
                None
            )
            .await
            .is_ok()
    );

    // A full signed and encrypted call over https.
    a.add_peer(&b).await;
    b.add_peer(&a).await;
    let peer = a.peer(&b.wwwroot).await;
    let services = a.call_peer(&peer, "system/listServices", vec![]).await;
    assert!(services.is_ok(), "{services:?}");

    // Plain http to the https port is refused without harming the server.
    let plain = tokio::net::TcpStream::connect(b.addr).await;
    drop(plain);
    let again = a
        .call_peer(&a.peer(&b.wwwroot).await, "system/listServices", vec![])
        .await;
    assert!(again.is_ok());
}

#[tokio::test]
async fn a_bad_tls_configuration_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = server_cert(dir.path(), true, "127.0.0.1");
    let (_, other_key) = server_cert(dir.path(), false, "other.example");
    let acceptor = usestats::http::tls_acceptor(&cert, &other_key);
    let message = acceptor.err().expect("mismatched key").to_string();
    assert!(
        message.contains("mismatch") || message.contains("does not match"),
        "{message}"
    );
    let missing = usestats::http::tls_acceptor(&dir.path().join("nope.crt"), &other_key);
    assert!(missing.err().unwrap().to_string().contains("nope.crt"));
}

#[tokio::test]
async fn healthcheck_probes_an_https_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server_cert(dir.path(), true, "127.0.0.1");
    let b = spawn_app(AppOptions {
        tls: Some((cert.clone(), key.clone())),
        ..Default::default()
    })
    .await;
    // As `serve` is configured: https found from tls_cert, the certificate not checked
    // (it names the wwwroot, not necessarily the address probed).
    let config = dir.path().join("usestats.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nwwwroot = \"https://stats.example.org\"\n[server]\nlisten = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            b.addr,
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || usestats_cli(&config, &["healthcheck"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
