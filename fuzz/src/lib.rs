//! The checks behind each fuzz target. They live here, not in the AFL binaries, so that
//! `tests/fuzz_corpus.rs` in the main package (which includes this file by path and never
//! depends on cargo-afl) replays every committed corpus input through exactly the same code.
//!
//! Each check panics when a property fails; AFL records a panic as a crash. Beyond "never
//! panics", the properties are the cheap ones: what parses re-serialises and re-parses to the
//! same value, an envelope that parses is recognised as its kind, and the web-service
//! parameters agree with an independent model of PHP's form decoding.

use std::collections::HashMap;
use std::sync::OnceLock;

use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use usestats::crypto;
use usestats::mnet::envelope::{self, DocumentKind};
use usestats::ws::{self, Params};
use usestats::xmlrpc::{self, Limits, MethodCall, Response, Value};

/// `parse_call`, then: the call re-serialised with our request writer parses back equal.
pub fn xmlrpc_call(data: &[u8]) {
    let limits = Limits::default();
    let Ok(call) = xmlrpc::parse_call(data, &limits) else {
        return;
    };
    let written = xmlrpc::serialize_call(&call);
    let again = xmlrpc::parse_call(&written, &limits)
        .unwrap_or_else(|e| panic!("our own request does not parse back: {e}"));
    assert_call_eq(&call, &again);
    // Written twice, the bytes must not drift: the writer is a function of the value.
    assert_eq!(
        written,
        xmlrpc::serialize_call(&again),
        "request bytes drift"
    );
}

/// `parse_response`, then: a success re-serialised with the response writer (US-ASCII, every
/// control and non-ASCII character as a reference) and a fault with Moodle's fault template
/// both parse back equal.
pub fn xmlrpc_response(data: &[u8]) {
    let limits = Limits::default();
    let Ok(response) = xmlrpc::parse_response(data, &limits) else {
        return;
    };
    let written = match &response {
        Response::Success(value) => xmlrpc::serialize_response(value),
        Response::Fault(fault) => xmlrpc::serialize_fault(fault),
    };
    assert!(written.is_ascii() || matches!(response, Response::Fault(_)));
    let again = xmlrpc::parse_response(&written, &limits)
        .unwrap_or_else(|e| panic!("our own response does not parse back: {e}"));
    match (&response, &again) {
        (Response::Success(a), Response::Success(b)) => assert_value_eq(a, b),
        (Response::Fault(a), Response::Fault(b)) => assert_eq!(a, b, "fault differs"),
        _ => panic!("a success turned into a fault or back"),
    }
}

/// Both envelope parsers and both sniffers on the same bytes. A document that parses must be
/// recognised as its kind (the server picks the parser by `document_kind`), and rebuilding it
/// with our own builder must give back what was read.
pub fn envelope(data: &[u8]) {
    let kind = envelope::document_kind(data);
    let _ = envelope::looks_signed(data);
    if let Ok(signed) = envelope::parse_signed(data) {
        assert_eq!(
            kind,
            DocumentKind::Signed,
            "a parsed signedMessage is not sniffed as one"
        );
        // The server reads the signed object as XML-RPC next: follow it there.
        let _ = xmlrpc::parse_call(&signed.object, &Limits::default());
        let _ = xmlrpc::parse_response(&signed.object, &Limits::default());
        if template_safe(&signed.wwwroot) {
            let (key, public) = keys();
            let rebuilt =
                envelope::build_signed(&signed.object, key, &signed.wwwroot, signed.timestamp)
                    .expect("signing works");
            let back = envelope::parse_signed(&rebuilt).expect("our signedMessage parses");
            assert_eq!(back.object, signed.object);
            assert_eq!(back.wwwroot, signed.wwwroot);
            assert_eq!(back.timestamp, signed.timestamp);
            assert!(crypto::verify_sha1(public, &back.object, &back.signature));
        }
    }
    if let Ok(encrypted) = envelope::parse_encrypted(data) {
        assert_eq!(
            kind,
            DocumentKind::Encrypted,
            "a parsed encryptedMessage is not sniffed as one"
        );
        if template_safe(&encrypted.wwwroot) {
            let (key, public) = keys();
            let rebuilt = envelope::build_encrypted(&encrypted.data, public, &encrypted.wwwroot)
                .expect("sealing works");
            let back = envelope::parse_encrypted(&rebuilt).expect("our encryptedMessage parses");
            assert_eq!(back.wwwroot, encrypted.wwwroot);
            let opened = crypto::open(key, &back.key, &back.data).expect("our seal opens");
            assert_eq!(opened, encrypted.data);
        }
    }
}

/// The REST layer's form decoding (query string, newline, body) against an independent model
/// of PHP's: `+` is a space, `%` takes exactly two hex digits, `name[i]` and `name[]` make
/// lists. Then the parameter checks of all three functions, which must never panic.
pub fn ws_params(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (query, body) = text.split_once('\n').unwrap_or((&text, ""));
    let params = Params::parse(&[query, body]);
    let model = Model::of(&[query, body]);
    for (name, value) in &model.scalars {
        assert_eq!(params.get(name), Some(value.as_str()), "scalar {name:?}");
    }
    for (name, items) in &model.lists {
        let mut expected = items.clone();
        expected.sort_by_key(|(index, _)| index.unwrap_or(u64::MAX));
        let expected: Vec<String> = expected.into_iter().map(|(_, v)| v).collect();
        assert_eq!(params.list(name), Some(expected), "list {name:?}");
    }
    for function in [
        ws::GET_USER_STATS,
        ws::GET_USERS_STATS,
        ws::GET_USERS_COURSE_STATS,
    ] {
        let _ = ws::check_parameters(function, &params, 50);
    }
}

/// A wwwroot our templates can carry as is: they are written for our own configured wwwroot,
/// never for received text, so markup characters in a received one are not a round-trip case.
fn template_safe(wwwroot: &str) -> bool {
    !wwwroot.contains(['<', '>', '&', '"', '\'', '\r'])
}

fn keys() -> &'static (PKey<Private>, PKey<Public>) {
    static KEYS: OnceLock<(PKey<Private>, PKey<Public>)> = OnceLock::new();
    KEYS.get_or_init(|| {
        // 1024 bits: the property is about the envelope, not the key, and it keeps AFL fast.
        let key = PKey::from_rsa(Rsa::generate(1024).expect("RSA key")).expect("PKey");
        let public =
            PKey::public_key_from_der(&key.public_key_to_der().expect("DER")).expect("public key");
        (key, public)
    })
}

fn assert_call_eq(a: &MethodCall, b: &MethodCall) {
    assert_eq!(a.name, b.name, "method name differs");
    assert_eq!(a.params.len(), b.params.len(), "parameter count differs");
    for (x, y) in a.params.iter().zip(&b.params) {
        assert_value_eq(x, y);
    }
}

/// Equality up to what the writers document: `<nil/>` is written as an empty string, NaN is
/// NaN, and doubles are written as PHP's `number_format(…, 128)`, rounded to 128 decimals, so
/// a tiny magnitude may come back off by up to half of 1e-128.
fn assert_value_eq(a: &Value, b: &Value) {
    match (a, b) {
        (Value::Nil, Value::String(s)) => assert!(s.is_empty(), "nil came back as {s:?}"),
        (Value::Double(x), Value::Double(y)) => assert!(
            (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-128,
            "double {x:e} came back as {y:e}"
        ),
        (Value::Struct(xs), Value::Struct(ys)) => {
            assert_eq!(xs.len(), ys.len(), "struct size differs");
            for ((xn, xv), (yn, yv)) in xs.iter().zip(ys) {
                assert_eq!(xn, yn, "member name differs");
                assert_value_eq(xv, yv);
            }
        }
        (Value::Array(xs), Value::Array(ys)) => {
            assert_eq!(xs.len(), ys.len(), "array size differs");
            for (x, y) in xs.iter().zip(ys) {
                assert_value_eq(x, y);
            }
        }
        _ => assert_eq!(a, b, "value differs"),
    }
}

/// What PHP makes of a form: the reference the REST parser is checked against.
#[derive(Default)]
struct Model {
    scalars: HashMap<String, String>,
    lists: HashMap<String, Vec<(Option<u64>, String)>>,
}

impl Model {
    fn of(parts: &[&str]) -> Model {
        let mut model = Model::default();
        for pair in parts
            .iter()
            .flat_map(|p| p.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (key, value) = (url_decode(key), url_decode(value));
            match key.split_once('[') {
                Some((name, rest)) if rest.ends_with(']') => {
                    let index = rest[..rest.len() - 1].parse::<u64>().ok();
                    let list = model.lists.entry(name.to_owned()).or_default();
                    list.push((index, value));
                }
                _ => {
                    model.scalars.insert(key, value);
                }
            }
        }
        model
    }
}

/// PHP's `urldecode`: `%` followed by two hex digits is that byte, any other `%` stays.
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
