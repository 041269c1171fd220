//! The real server, on loopback, fed the byte-exact requests Moodle sent in the vectors.
//! The daemon plays host B (http://127.0.0.1:18282) with B's keys; host A is registered with
//! A's certificate. Answers are opened with A's key and compared with Moodle's own.

mod common;

use common::*;
use openssl::pkey::PKey;
use openssl::x509::X509;
use usestats::crypto;
use usestats::mnet::envelope::{self, DocumentKind};
use usestats::xmlrpc::{self, Limits, Response, Value};

const A: &str = "http://127.0.0.1:18281";
const B: &str = "http://127.0.0.1:18282";

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(vectors().join(rel)).unwrap()
}

fn meta(vector: &str) -> serde_json::Value {
    serde_json::from_slice(&read(&format!("{vector}/meta.json"))).unwrap()
}

fn key_files(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    (
        vectors().join(format!("keys/{name}.key.pem")),
        vectors().join(format!("keys/{name}.cert.pem")),
    )
}

/// B with `keys` (last = current), A registered with use_stats published, demo data that
/// includes A's users, and admin@A granted.
async fn spawn_b(keys: &[&str]) -> TestApp {
    let b = spawn_app(AppOptions {
        wwwroot: Some(B.into()),
        keys: keys.iter().map(|k| key_files(k)).collect(),
        demo_remote_hosts: Some(vec![A.into()]),
        ..Default::default()
    })
    .await;
    let a_cert = String::from_utf8(read("keys/A.cert.pem")).unwrap();
    b.register_cert(A, &a_cert).await;
    b.set_service(A, "use_stats", Some(true), Some(true)).await;
    b.grant(A, "admin", true, true).await;
    // Moodle's recorded requests carry the capture time: play them at that time.
    b.app.clock.pin(1_795_610_693);
    b
}

struct Opened {
    signed: Option<envelope::SignedMessage>,
    xmlrpc: Vec<u8>,
    response: Response,
}

/// Open an answer the way Moodle's client does, with A's key.
fn open_answer(body: &[u8]) -> Opened {
    match envelope::document_kind(body) {
        DocumentKind::Encrypted => {
            let a_key = PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap();
            let message = envelope::parse_encrypted(body).unwrap();
            let (plain, _) =
                envelope::open_with(&message, [&a_key]).expect("A's key opens the answer");
            assert!(
                envelope::looks_signed(&plain),
                "Moodle requires <signedMessage> near the start"
            );
            let signed = envelope::parse_signed(&plain).unwrap();
            let response = xmlrpc::parse_response(&signed.object, &Limits::default()).unwrap();
            Opened {
                xmlrpc: signed.object.clone(),
                signed: Some(signed),
                response,
            }
        }
        _ => Opened {
            signed: None,
            xmlrpc: body.to_vec(),
            response: xmlrpc::parse_response(body, &Limits::default()).unwrap(),
        },
    }
}

fn verifies_with(signed: &envelope::SignedMessage, cert_file: &str) -> bool {
    let cert = X509::from_pem(&read(cert_file)).unwrap();
    crypto::verify_sha1(
        &cert.public_key().unwrap(),
        &signed.object,
        &signed.signature,
    )
}

fn fault_code(response: &Response) -> Option<i64> {
    match response {
        Response::Fault(f) => Some(f.code),
        Response::Success(_) => None,
    }
}

#[tokio::test]
async fn keyswap_answers_with_our_certificate_as_moodle_expects() {
    let b = spawn_b(&["B-old"]).await;
    let (status, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("01-keyswap/request.body"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        read("01-keyswap/response.body"),
        "byte-identical to Moodle's keyswap answer"
    );
}

#[tokio::test]
async fn list_services_and_methods_equal_moodles_answers() {
    let b = spawn_b(&["B-old"]).await;
    for vector in ["04a-list-services", "04b-list-methods"] {
        let m = meta(vector);
        b.app
            .clock
            .pin(m["response"]["timestamp"].as_i64().unwrap());
        let (status, body) = post(
            &b.url("/mnet/xmlrpc/server.php"),
            read(&format!("{vector}/request.body")),
        )
        .await;
        assert_eq!(status, 200);
        let opened = open_answer(&body);
        assert_eq!(
            String::from_utf8_lossy(&opened.xmlrpc),
            String::from_utf8_lossy(&read(&format!("{vector}/response.xmlrpc.xml"))),
            "{vector}"
        );
        let signed_layer = envelope::parse_encrypted(&body).unwrap();
        let a_key = PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap();
        let (plain, _) = envelope::open_with(&signed_layer, [&a_key]).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&plain),
            String::from_utf8_lossy(&read(&format!("{vector}/response.signed.xml"))),
            "{vector}: with the clock pinned, the whole signed layer is Moodle's"
        );
    }
}

#[tokio::test]
async fn get_stats_and_get_scores_requests_from_moodle_are_answered() {
    let b = spawn_b(&["B-old"]).await;
    for vector in [
        "02-get-stats",
        "03-get-scores",
        "08a-utf8-get-stats",
        "08b-utf8-get-stats-struct",
    ] {
        let (status, body) = post(
            &b.url("/mnet/xmlrpc/server.php"),
            read(&format!("{vector}/request.body")),
        )
        .await;
        assert_eq!(status, 200, "{vector}");
        let opened = open_answer(&body);
        let signed = opened.signed.as_ref().expect("signed and encrypted");
        assert!(verifies_with(signed, "keys/B-old.cert.pem"), "{vector}");
        let Response::Success(value) = &opened.response else {
            panic!("{vector}: fault {:?}", opened.response);
        };
        let expected_type = meta(vector)["response"]["xmlrpc_types"][0]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(value.type_name(), expected_type, "{vector}");
        let answer = usestats::services::use_stats::Answer::from_value(value).unwrap();
        if vector.starts_with("08") {
            // "rené" is not a user of our demo site.
            assert_eq!(answer.status, 520, "{vector}: {answer:?}");
        } else if vector == "03-get-scores" {
            // The demo has no course with idnumber C-MNET-101.
            assert_eq!(answer.status, 520, "{answer:?}");
            assert_eq!(answer.errors, vec![serde_json::json!("Unknown course.")]);
        } else {
            assert_eq!(answer.status, 200, "{answer:?}");
            assert!(answer.errors.is_empty());
            let message = answer.message.unwrap();
            assert!(
                message.starts_with("<USE_STATS>\n<USER>\n\t<USERNAME>admin</USERNAME>"),
                "{message}"
            );
            assert!(message.contains("<COURSES>"), "scope 2 lists courses");
        }
    }
}

#[tokio::test]
async fn archived_key_gets_7025_signed_with_it_and_the_resend_succeeds() {
    let b = spawn_b(&["B-old", "B"]).await;
    let m = meta("05a-stale-key-7025");
    b.app
        .clock
        .pin(m["response"]["timestamp"].as_i64().unwrap());
    let (_, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("05a-stale-key-7025/request.body"),
    )
    .await;
    let opened = open_answer(&body);
    assert_eq!(fault_code(&opened.response), Some(7025));
    let signed = opened.signed.as_ref().unwrap();
    assert!(
        verifies_with(signed, "keys/B-old.cert.pem"),
        "7025 is signed with the archived key"
    );
    assert_eq!(
        String::from_utf8_lossy(&opened.xmlrpc),
        String::from_utf8_lossy(&read("05a-stale-key-7025/response.xmlrpc.xml")),
        "byte-identical 7025 fault carrying B's current certificate"
    );
    let a_key = PKey::private_key_from_pem(&read("keys/A.key.pem")).unwrap();
    let (plain, _) =
        envelope::open_with(&envelope::parse_encrypted(&body).unwrap(), [&a_key]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&plain),
        String::from_utf8_lossy(&read("05a-stale-key-7025/response.signed.xml"))
    );

    let (_, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("05b-stale-key-resend/request.body"),
    )
    .await;
    let opened = open_answer(&body);
    assert!(verifies_with(
        opened.signed.as_ref().unwrap(),
        "keys/B.cert.pem"
    ));
    assert_eq!(
        fault_code(&opened.response),
        None,
        "the resend to the current key runs"
    );
}

#[tokio::test]
async fn unknown_host_gets_moodles_plain_7020() {
    let b = spawn_app(AppOptions {
        wwwroot: Some(B.into()),
        keys: vec![key_files("B")],
        ..Default::default()
    })
    .await;
    let (status, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("06-unknown-host-7020/request.body"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&read("06-unknown-host-7020/response.body")),
        "byte-identical plain fault"
    );
}

#[tokio::test]
async fn tampered_signature_gets_710_signed_and_encrypted() {
    let b = spawn_b(&["B-old"]).await;
    let (_, body) = post(
        &b.url("/mnet/xmlrpc/server.php"),
        read("07-tampered-signature-710/request.body"),
    )
    .await;
    let opened = open_answer(&body);
    assert_eq!(fault_code(&opened.response), Some(710));
    assert!(verifies_with(
        opened.signed.as_ref().unwrap(),
        "keys/B-old.cert.pem"
    ));
    // Nothing ran: no audit entry with status ok for this call.
    let entries = b.audit().await;
    assert!(entries.iter().all(|e| e.status != "ok"), "{entries:?}");
}

#[tokio::test]
async fn garbage_key_gets_plain_7023() {
    let b = spawn_b(&["B-old"]).await;
    let body = String::from_utf8(read("02-get-stats/request.body")).unwrap();
    // Replace the wrapped session key (the last CipherValue) with random bytes.
    let start = body.rfind("<CipherValue>").unwrap() + "<CipherValue>".len();
    let end = start + body[start..].find("</CipherValue>").unwrap();
    let mut random = [0u8; 256];
    openssl::rand::rand_bytes(&mut random).unwrap();
    use base64::Engine as _;
    let forged = format!(
        "{}{}{}",
        &body[..start],
        base64::engine::general_purpose::STANDARD.encode(random),
        &body[end..]
    );
    let (status, answer) = post(&b.url("/mnet/xmlrpc/server.php"), forged.into_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(
        envelope::document_kind(&answer),
        DocumentKind::Other,
        "plain"
    );
    assert_eq!(fault_code(&open_answer(&answer).response), Some(7023));
}

#[tokio::test]
async fn hostile_and_malformed_bodies_get_faults_and_the_server_keeps_serving() {
    let b = spawn_app(AppOptions {
        tweak: Some(Box::new(|c| c.server.max_body_bytes = 64 * 1024)),
        ..Default::default()
    })
    .await;
    let url = b.url("/mnet/xmlrpc/server.php");
    let deep = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>x/y</methodName><params><param>{}</param></params></methodCall>",
        "<value><array><data>".repeat(500)
    );
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><methodCall><methodName>&lol2;</methodName></methodCall>";
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("not XML", b"hello, this is not XML".to_vec(), 102),
        ("empty", Vec::new(), 102),
        ("binary", vec![0xff, 0x00, 0xfe, 0x12], 102),
        ("XML bomb", bomb.as_bytes().to_vec(), 15),
        ("deep nesting", deep.into_bytes(), 15),
        ("wrong root", b"<?xml version=\"1.0\"?><html><body>hi</body></html>".to_vec(), 15),
        ("oversized", vec![b'a'; 200 * 1024], 413),
        (
            "plain call that is not keyswap",
            b"<?xml version=\"1.0\"?><methodCall><methodName>system/listServices</methodName></methodCall>".to_vec(),
            7021,
        ),
        (
            "signed envelope without signature",
            b"<?xml version=\"1.0\"?><signedMessage><object>AAAA</object><wwwroot>x</wwwroot><timestamp>1</timestamp></signedMessage>".to_vec(),
            711,
        ),
        (
            "encrypted envelope from nobody",
            b"<?xml version=\"1.0\"?><encryptedMessage><CipherValue>AAAA</CipherValue><CipherValue>AAAA</CipherValue><wwwroot>http://nobody.invalid</wwwroot></encryptedMessage>".to_vec(),
            7020,
        ),
    ];
    for (label, body, code) in cases {
        let (status, answer) = post(&url, body).await;
        assert_eq!(status, 200, "{label}");
        let response = xmlrpc::parse_response(&answer, &Limits::default())
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(fault_code(&response), Some(code), "{label}");
        let (status, _) = get(&b.url("/healthz")).await;
        assert_eq!(status, 200, "still serving after {label}");
    }
    let (status, _) = get(&b.url("/mnet/xmlrpc/server.php")).await;
    assert_eq!(status, 405);
    let (status, pem) = get(&b.url("/mnet/publickey.php")).await;
    assert_eq!(status, 200);
    assert_eq!(pem, b.app.keyring().current.cert_pem);
    let (status, home) = get(&b.url("/")).await;
    assert_eq!(status, 200);
    assert!(home.contains("<title>usestats</title>"));
}

#[tokio::test]
async fn keyswap_registers_callers_only_when_allowed() {
    for allowed in [false, true] {
        let b = spawn_app(AppOptions {
            wwwroot: Some(B.into()),
            keys: vec![key_files("B-old")],
            auto_register: allowed,
            ..Default::default()
        })
        .await;
        let (_, body) = post(
            &b.url("/mnet/xmlrpc/server.php"),
            read("01-keyswap/request.body"),
        )
        .await;
        let Response::Success(Value::String(pem)) =
            xmlrpc::parse_response(&body, &Limits::default()).unwrap()
        else {
            panic!("keyswap answers a string");
        };
        assert_eq!(pem.as_bytes(), read("keys/B-old.cert.pem"));
        let registered = b
            .app
            .state
            .run(|c| usestats::store::state::peer_by_wwwroot(c, A))
            .await
            .unwrap();
        assert_eq!(registered.is_some(), allowed);
        if let Some(peer) = registered {
            assert_eq!(peer.public_key.as_bytes(), read("keys/A.cert.pem"));
        }
    }
}
