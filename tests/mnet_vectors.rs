//! The envelopes and crypto against byte-exact traffic recorded from Moodle's own MNET code
//! (tests/vectors/moodle, copied from ../shared/vectors/moodle). Every message must open, verify and decode with the keys
//! given there, and our encoder must rebuild Moodle's signed layer byte for byte.

use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::x509::X509;
use serde_json::Value as Json;
use usestats::crypto;
use usestats::mnet::envelope::{self, DocumentKind};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/moodle")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(vectors().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn meta(vector: &str) -> Json {
    serde_json::from_slice(&read(&format!("{vector}/meta.json"))).unwrap()
}

const VECTORS: &[&str] = &[
    "01-keyswap",
    "02-get-stats",
    "03-get-scores",
    "04a-list-services",
    "04b-list-methods",
    "05a-stale-key-7025",
    "05b-stale-key-resend",
    "06-unknown-host-7020",
    "07-tampered-signature-710",
    "08a-utf8-get-stats",
    "08b-utf8-get-stats-struct",
];

/// Each message section of each vector, with its file prefix.
fn sections() -> Vec<(String, String, Json)> {
    let mut out = Vec::new();
    for v in VECTORS {
        let m = meta(v);
        for (name, prefix) in [
            ("request", "request"),
            ("response", "response"),
            ("callback_request", "callback.request"),
            ("callback_response", "callback.response"),
        ] {
            if let Some(section) = m.get(name) {
                out.push((v.to_string(), prefix.to_string(), section.clone()));
            }
        }
    }
    out
}

#[test]
fn every_vector_message_opens_verifies_and_matches_its_layers() {
    crypto::init().unwrap();
    let mut encrypted = 0;
    for (vector, prefix, section) in sections() {
        let body = read(&format!("{vector}/{prefix}.body"));
        let label = format!("{vector} {prefix}");
        if !section["encrypted"].as_bool().unwrap() {
            assert_eq!(
                envelope::document_kind(&body),
                DocumentKind::Other,
                "{label}"
            );
            continue;
        }
        encrypted += 1;
        assert_eq!(
            envelope::document_kind(&body),
            DocumentKind::Encrypted,
            "{label}"
        );
        let message = envelope::parse_encrypted(&body).unwrap();
        assert_eq!(
            message.wwwroot,
            section["sender_wwwroot"].as_str().unwrap(),
            "{label}"
        );
        let key_file = section["encrypted_to"]["private_key"].as_str().unwrap();
        let key = PKey::private_key_from_pem(&read(key_file)).unwrap();
        let (plain, index) = envelope::open_with(&message, [&key]).expect(&label);
        assert_eq!(index, 0);
        assert_eq!(
            plain,
            read(&format!("{vector}/{prefix}.signed.xml")),
            "{label}"
        );
        assert!(envelope::looks_signed(&plain), "{label}");

        let signed = envelope::parse_signed(&plain).unwrap();
        let xmlrpc = read(&format!("{vector}/{prefix}.xmlrpc.xml"));
        assert_eq!(signed.object, xmlrpc, "{label}");
        assert_eq!(
            signed.timestamp,
            section["timestamp"].as_i64().unwrap(),
            "{label}"
        );
        assert_eq!(signed.wwwroot, section["sender_wwwroot"].as_str().unwrap());
        assert_eq!(
            signed.digest.as_deref(),
            Some(envelope::digest_hex(&xmlrpc).as_str())
        );
        assert_eq!(
            envelope::digest_hex(&xmlrpc),
            section["digest_sha1"].as_str().unwrap()
        );

        let cert_file = section["signed_by"]["cert"].as_str().unwrap();
        let cert = X509::from_pem(&read(cert_file)).unwrap();
        let public = cert.public_key().unwrap();
        let valid = crypto::verify_sha1(&public, &signed.object, &signed.signature);
        assert_eq!(
            valid,
            section["signature_valid"].as_bool().unwrap(),
            "{label}"
        );
        if !valid {
            let mut repaired = signed.signature.clone();
            let last = repaired.len() - 1;
            repaired[last] ^= 1;
            assert!(
                crypto::verify_sha1(&public, &signed.object, &repaired),
                "{label}"
            );
        }

        // A wrong key must not open the message (it is either refused or yields garbage).
        let other = if key_file.ends_with("A.key.pem") {
            "keys/B.key.pem"
        } else {
            "keys/A.key.pem"
        };
        let other = PKey::private_key_from_pem(&read(other)).unwrap();
        assert!(envelope::open_with(&message, [&other]).is_none(), "{label}");
        // With an archived key behind the wrong one, the right one is found at index 1.
        let (_, index) = envelope::open_with(&message, [&other, &key]).unwrap();
        assert_eq!(index, 1);
    }
    assert_eq!(encrypted, 19);
}

#[test]
fn our_signed_layer_equals_moodles_byte_for_byte() {
    crypto::init().unwrap();
    for (vector, prefix, section) in sections() {
        if !section["encrypted"].as_bool().unwrap()
            || !section["signature_valid"].as_bool().unwrap()
        {
            continue;
        }
        let key_file = section["signed_by"]["private_key"].as_str().unwrap();
        let key = PKey::private_key_from_pem(&read(key_file)).unwrap();
        let xmlrpc = read(&format!("{vector}/{prefix}.xmlrpc.xml"));
        let ours = envelope::build_signed(
            &xmlrpc,
            &key,
            section["sender_wwwroot"].as_str().unwrap(),
            section["timestamp"].as_i64().unwrap(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&read(&format!("{vector}/{prefix}.signed.xml"))),
            "{vector} {prefix}"
        );
    }
}

#[test]
fn our_encrypted_layer_opens_with_the_recipients_key_and_has_moodles_shape() {
    crypto::init().unwrap();
    let section = &meta("02-get-stats")["response"];
    let signed = read("02-get-stats/response.signed.xml");
    let a_cert = X509::from_pem(&read("keys/A.cert.pem")).unwrap();
    let body = envelope::build_encrypted(
        &signed,
        &a_cert.public_key().unwrap(),
        "http://127.0.0.1:18282",
    )
    .unwrap();
    let recorded = read("02-get-stats/response.body");
    // Same template: identical once the two base64 payloads are blanked out.
    let blank = |b: &[u8]| {
        let s = String::from_utf8_lossy(b).into_owned();
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(start) = rest.find("<CipherValue>") {
            out.push_str(&rest[..start + 13]);
            rest = &rest[start + 13..];
            let end = rest.find("</CipherValue>").unwrap();
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    };
    assert_eq!(blank(&body), blank(&recorded));
    let a_key = PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap();
    let parsed = envelope::parse_encrypted(&body).unwrap();
    let (plain, _) = envelope::open_with(&parsed, [&a_key]).unwrap();
    assert_eq!(plain, signed);
    assert_eq!(section["direction"], "B->A");
}

#[test]
fn moodle_certificates_pass_check_credentials_and_are_canonical() {
    for (name, wwwroot) in [
        ("A", "http://127.0.0.1:18281"),
        ("B-old", "http://127.0.0.1:18282"),
        ("B", "http://127.0.0.1:18282"),
    ] {
        let pem = String::from_utf8(read(&format!("keys/{name}.cert.pem"))).unwrap();
        assert_eq!(crypto::canonical_pem(&pem).as_deref(), Some(pem.as_str()));
        let cert = crypto::parse_cert_pem(&pem).unwrap();
        let info = crypto::check_credentials(&cert, wwwroot).unwrap();
        assert_eq!(info.common_name.as_deref(), Some(wwwroot));
        assert_eq!(info.subject_alt_name.as_deref(), Some(wwwroot));
        assert_eq!(info.not_after - info.not_before, 28 * 86_400);
        let fingerprints = String::from_utf8(read("keys/fingerprints.txt")).unwrap();
        assert!(fingerprints.contains(&info.fingerprint_sha1), "{name}");
        assert!(crypto::check_credentials(&cert, "http://127.0.0.1:9").is_err());
    }
}
