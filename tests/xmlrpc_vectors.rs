//! The XML-RPC codec against the documents Moodle itself produced (tests/vectors/moodle, copied from ../shared/vectors/moodle):
//! every inner document decodes to what `meta.json` says, and our writers give back the very
//! same bytes.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use usestats::xmlrpc::{
    Fault, Limits, Response, parse_call, parse_response, serialize_call, serialize_fault,
    serialize_response,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/moodle");

/// One XML-RPC document of a vector, with the meta.json section that describes it.
struct Document {
    label: String,
    bytes: Vec<u8>,
    section: Json,
}

impl Document {
    fn is_request(&self) -> bool {
        self.label.ends_with("request")
    }
}

/// Every XML-RPC layer in the vectors: `*.xmlrpc.xml` for encrypted messages, the body itself
/// for plain ones (01, 06's answer, 07's callback).
fn documents() -> Vec<Document> {
    let mut folders: Vec<PathBuf> = fs::read_dir(VECTORS)
        .unwrap_or_else(|error| panic!("cannot list {VECTORS}: {error}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.join("meta.json").is_file())
        .collect();
    folders.sort();
    let mut found = Vec::new();
    for folder in folders {
        let meta: Json =
            serde_json::from_slice(&fs::read(folder.join("meta.json")).expect("meta.json"))
                .expect("meta.json is JSON");
        for name in [
            "request",
            "response",
            "callback_request",
            "callback_response",
        ] {
            let Some(section) = meta.get(name) else {
                continue;
            };
            let files = &section["files"];
            let file = files
                .get("xmlrpc")
                .or_else(|| files.get("body"))
                .and_then(Json::as_str)
                .unwrap_or_else(|| panic!("{folder:?} {name}: no XML-RPC file"));
            found.push(Document {
                label: format!("{}/{name}", folder_name(&folder)),
                bytes: fs::read(folder.join(file)).expect("vector file"),
                section: section.clone(),
            });
        }
    }
    found
}

fn folder_name(folder: &Path) -> String {
    folder
        .file_name()
        .expect("folder name")
        .to_string_lossy()
        .into_owned()
}

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn all_vector_documents_are_found() {
    let documents = documents();
    let requests = documents.iter().filter(|d| d.is_request()).count();
    // 11 exchanges plus 07's keyswap callback, each with a request and an answer.
    assert_eq!(requests, 12, "requests found");
    assert_eq!(documents.len(), 24, "documents found");
}

#[test]
fn requests_decode_to_expected() {
    for document in documents().iter().filter(|d| d.is_request()) {
        let call = parse_call(&document.bytes, &limits())
            .unwrap_or_else(|error| panic!("{}: {error}", document.label));
        let expected = &document.section["expected"];
        assert_eq!(
            json!(call.name),
            expected["methodName"],
            "{}: method",
            document.label
        );
        let params: Vec<Json> = call.params.iter().map(|p| p.to_json()).collect();
        assert_eq!(
            Json::from(params),
            expected["params"],
            "{}: params",
            document.label
        );
        let types: Vec<&str> = call.params.iter().map(|p| p.type_name()).collect();
        assert_eq!(
            json!(types),
            document.section["xmlrpc_types"],
            "{}: types",
            document.label
        );
    }
}

#[test]
fn responses_decode_to_expected() {
    for document in documents().iter().filter(|d| !d.is_request()) {
        let response = parse_response(&document.bytes, &limits())
            .unwrap_or_else(|error| panic!("{}: {error}", document.label));
        let expected = &document.section["expected"];
        match response {
            Response::Success(value) => {
                assert_eq!(
                    value.to_json(),
                    expected["result"],
                    "{}: result",
                    document.label
                );
                assert_eq!(
                    json!([value.type_name()]),
                    document.section["xmlrpc_types"],
                    "{}: type",
                    document.label
                );
                if let Some(inner) = expected.get("result_json") {
                    let text = value.as_str().expect("JSON result is a string");
                    let decoded: Json = serde_json::from_str(text).expect("result is JSON");
                    assert_eq!(&decoded, inner, "{}: result_json", document.label);
                }
            }
            Response::Fault(Fault { code, string }) => {
                assert_eq!(
                    json!({"faultCode": code, "faultString": string}),
                    expected["fault"],
                    "{}: fault",
                    document.label
                );
            }
        }
    }
}

#[test]
fn requests_reserialize_byte_for_byte() {
    for document in documents().iter().filter(|d| d.is_request()) {
        let call = parse_call(&document.bytes, &limits()).expect("parses");
        assert_bytes_eq(&serialize_call(&call), &document.bytes, &document.label);
    }
}

#[test]
fn responses_reserialize_byte_for_byte() {
    let mut successes = 0;
    let mut faults = 0;
    for document in documents().iter().filter(|d| !d.is_request()) {
        let written = match parse_response(&document.bytes, &limits()).expect("parses") {
            Response::Success(value) => {
                successes += 1;
                serialize_response(&value)
            }
            Response::Fault(fault) => {
                faults += 1;
                serialize_fault(&fault)
            }
        };
        assert_bytes_eq(&written, &document.bytes, &document.label);
    }
    assert_eq!(
        (successes, faults),
        (9, 3),
        "successes and faults (05a, 06, 07)"
    );
}

#[test]
fn fault_documents_come_from_the_fault_writer() {
    let cases = [
        ("05a-stale-key-7025/response.xmlrpc.xml", 7025),
        ("06-unknown-host-7020/response.body", 7020),
        ("07-tampered-signature-710/response.xmlrpc.xml", 710),
    ];
    for (file, code) in cases {
        let bytes = fs::read(Path::new(VECTORS).join(file)).expect("vector file");
        let Response::Fault(fault) = parse_response(&bytes, &limits()).expect("parses") else {
            panic!("{file}: not a fault");
        };
        assert_eq!(fault.code, code, "{file}");
        assert_bytes_eq(&serialize_fault(&fault), &bytes, file);
    }
    // 05a carries B's new certificate, literal newlines and all.
    let certificate =
        fs::read_to_string(Path::new(VECTORS).join("keys/B.cert.pem")).expect("B certificate");
    let bytes = fs::read(Path::new(VECTORS).join(cases[0].0)).expect("05a");
    let Response::Fault(fault) = parse_response(&bytes, &limits()).expect("parses") else {
        panic!("05a: not a fault");
    };
    assert_eq!(fault.string, certificate);
}

/// Shows where two byte strings part, which a plain assert_eq on kilobytes does not.
fn assert_bytes_eq(actual: &[u8], expected: &[u8], label: &str) {
    if actual == expected {
        return;
    }
    let split = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    let context = |bytes: &[u8]| {
        let from = split.saturating_sub(40);
        let to = (split + 40).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..to]).into_owned()
    };
    panic!(
        "{label}: bytes differ at {split} (lengths {} vs {})\n ours: {:?}\nmoodle: {:?}",
        actual.len(),
        expected.len(),
        context(actual),
        context(expected)
    );
}
