//! Properties of the XML-RPC codec: whatever we write we read back, and no input makes the
//! reader panic or spend more than its limits allow.
//!
//! Doubles are compared by value (so `-0.0` equals `0.0`, which PHP never prints), exactly for
//! magnitudes where 128 decimals keep more than 17 significant digits, and within 1e-128 below
//! that, because the writer rounds to 128 decimals as PHP's `number_format` does.

use proptest::prelude::*;
use usestats::xmlrpc::{
    Fault, Limits, MethodCall, Response, Value, XmlRpcError, parse_call, parse_response,
    serialize_call, serialize_fault, serialize_response,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/moodle");

/// Text with a heavy share of what escaping has to get right: controls, markup characters,
/// CDATA terminators, CR/LF pairs, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    let character = prop_oneof![
        4 => any::<char>(),
        2 => prop::char::range('\0', ' '),
        2 => prop::sample::select(vec!['<', '>', '&', '"', '\'', ']', '\r', '\n', '\t', 'é', '€', '😀']),
        1 => prop::char::range('a', 'z'),
    ];
    prop_oneof![
        8 => prop::collection::vec(character, 0..24).prop_map(|chars| chars.into_iter().collect()),
        1 => Just("]]>".to_owned()),
        1 => Just("a]]>b<![CDATA[c]]>\r\n".to_owned()),
    ]
}

fn finite_double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |number| number.is_finite()),
        (-1_000_000i64..1_000_000, 0u32..6)
            .prop_map(|(units, scale)| units as f64 / 10f64.powi(scale as i32)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        Just(Value::Int(i64::MIN)),
        Just(Value::Int(i64::MAX)),
        any::<bool>().prop_map(Value::Bool),
        text().prop_map(Value::String),
        finite_double().prop_map(Value::Double),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(Value::Base64),
        "[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}".prop_map(Value::DateTime),
        Just(Value::Nil),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6).prop_map(|members| {
                // Names are unique on the wire once read (PHP arrays), so generate them unique.
                let mut unique: Vec<(String, Value)> = Vec::new();
                for (name, member) in members {
                    if !unique.iter().any(|(seen, _)| *seen == name) {
                        unique.push((name, member));
                    }
                }
                Value::Struct(unique)
            }),
        ]
    })
}

fn method_name() -> impl Strategy<Value = String> {
    "[a-z]{1,8}(/[A-Za-z0-9_.-]{1,12}){0,3}"
}

/// What a value reads back as: `Nil` is written as an empty string.
fn as_written(value: &Value) -> Value {
    match value {
        Value::Nil => Value::String(String::new()),
        Value::Array(items) => Value::Array(items.iter().map(as_written).collect()),
        Value::Struct(members) => Value::Struct(
            members
                .iter()
                .map(|(name, member)| (name.clone(), as_written(member)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn same(read: &Value, written: &Value) -> bool {
    match (read, written) {
        (Value::Double(read), Value::Double(written)) => {
            read == written || (written.abs() < 1e-100 && (read - written).abs() <= 1e-128)
        }
        (Value::Array(read), Value::Array(written)) => {
            read.len() == written.len() && read.iter().zip(written).all(|(r, w)| same(r, w))
        }
        (Value::Struct(read), Value::Struct(written)) => {
            read.len() == written.len()
                && read
                    .iter()
                    .zip(written)
                    .all(|((rn, rv), (wn, wv))| rn == wn && same(rv, wv))
        }
        (read, written) => read == &as_written(written),
    }
}

fn deep_limits() -> Limits {
    // Five levels of containers need 3 + 3 * 6 elements of depth; keep the default otherwise.
    Limits::default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn calls_round_trip(name in method_name(), params in prop::collection::vec(value(), 0..5)) {
        let call = MethodCall { name, params };
        let bytes = serialize_call(&call);
        let read = parse_call(&bytes, &deep_limits())
            .map_err(|error| TestCaseError::fail(format!("{error}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&read.name, &call.name);
        prop_assert_eq!(read.params.len(), call.params.len());
        for (read, written) in read.params.iter().zip(&call.params) {
            prop_assert!(same(read, written), "read {:?}\nwrote {:?}", read, written);
        }
    }

    #[test]
    fn responses_round_trip(value in value()) {
        let bytes = serialize_response(&value);
        prop_assert!(bytes.is_ascii());
        match parse_response(&bytes, &deep_limits()) {
            Ok(Response::Success(read)) => {
                prop_assert!(same(&read, &value), "read {:?}\nwrote {:?}", read, value);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn faults_round_trip(code in any::<i64>(), string in text()) {
        let fault = Fault { code, string };
        let read = parse_response(&serialize_fault(&fault), &Limits::default());
        prop_assert_eq!(read, Ok(Response::Fault(fault)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_call(&bytes, &Limits::default());
        let _ = parse_response(&bytes, &Limits::default());
    }

    #[test]
    fn xml_like_noise_never_panics(pieces in prop::collection::vec(xml_piece(), 0..40)) {
        let bytes = pieces.concat().into_bytes();
        let _ = parse_call(&bytes, &Limits::default());
        let _ = parse_response(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_documents_never_panic(
        seed in seed_document(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..8),
    ) {
        let mut bytes = seed;
        for (at, edit) in edits {
            let position = if bytes.is_empty() { 0 } else { at.index(bytes.len() + 1) };
            match edit {
                Edit::Replace(byte) if position < bytes.len() => bytes[position] = byte,
                Edit::Replace(_) => {}
                Edit::Delete(length) => {
                    let end = (position + length).min(bytes.len());
                    bytes.drain(position.min(end)..end);
                }
                Edit::Insert(piece) => {
                    bytes.splice(position..position, piece.into_bytes());
                }
            }
        }
        let tight = Limits { max_depth: 8, max_elements: 40 };
        for limits in [Limits::default(), tight] {
            let _ = parse_call(&bytes, &limits);
            let _ = parse_response(&bytes, &limits);
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(u8),
    Delete(usize),
    Insert(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<u8>().prop_map(Edit::Replace),
        (1usize..16).prop_map(Edit::Delete),
        xml_piece().prop_map(Edit::Insert),
    ]
}

fn xml_piece() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "<",
        ">",
        "&",
        ";",
        "/",
        "\"",
        "]]>",
        "<![CDATA[",
        "<!--",
        "-->",
        "<?xml version=\"1.0\"?>",
        "<!DOCTYPE x>",
        "&amp;",
        "&#0;",
        "&#xD800;",
        "&#1114112;",
        "&#x;",
        "&unknown;",
        "<value>",
        "</value>",
        "<value/>",
        "<string>",
        "</string>",
        "<int>",
        "</int>",
        "<i8>1</i8>",
        "<nil/>",
        "<struct>",
        "</struct>",
        "<member>",
        "</member>",
        "<name>",
        "</name>",
        "<array>",
        "</array>",
        "<data>",
        "</data>",
        "<params>",
        "</params>",
        "<param>",
        "</param>",
        "<fault>",
        "</fault>",
        "<methodCall>",
        "</methodCall>",
        "<methodResponse>",
        "</methodResponse>",
        "<methodName>",
        "</methodName>",
        "<base64>",
        "</base64>",
        "<double>",
        "</double>",
        "<boolean>",
        "</boolean>",
        "\u{e9}",
        "\r\n",
        " ",
        "x",
        "99999999999999999999",
        "1e999",
        "NAN",
    ])
    .prop_map(str::to_owned)
}

/// Valid documents to mutate: our own output and Moodle's.
fn seed_document() -> impl Strategy<Value = Vec<u8>> {
    let mut vectors = Vec::new();
    for file in [
        "08b-utf8-get-stats-struct/request.xmlrpc.xml",
        "08b-utf8-get-stats-struct/response.xmlrpc.xml",
        "05a-stale-key-7025/response.xmlrpc.xml",
        "04a-list-services/response.xmlrpc.xml",
    ] {
        let path = std::path::Path::new(VECTORS).join(file);
        vectors.push(std::fs::read(&path).unwrap_or_else(|error| panic!("{path:?}: {error}")));
    }
    prop_oneof![
        prop::sample::select(vectors),
        (method_name(), prop::collection::vec(value(), 0..3))
            .prop_map(|(name, params)| serialize_call(&MethodCall { name, params })),
        value().prop_map(|value| serialize_response(&value)),
    ]
}

#[test]
fn depth_bomb_is_refused_without_recursion() {
    let levels = 200_000;
    let bomb = format!(
        "<methodCall><methodName>m</methodName><params><param>{}{}</param></params></methodCall>",
        "<value><array><data>".repeat(levels),
        "</data></array></value>".repeat(levels),
    );
    assert_eq!(
        parse_call(bomb.as_bytes(), &Limits::default()),
        Err(XmlRpcError::TooDeep)
    );
    // Even with the limit lifted the reader uses its own stack, not Rust's.
    let unlimited = Limits {
        max_depth: usize::MAX,
        max_elements: usize::MAX,
    };
    let read = parse_call(bomb.as_bytes(), &unlimited).expect("deep but valid");
    // Dropping a value this deep would recurse; flatten it first.
    let mut pending = read.params;
    while let Some(value) = pending.pop() {
        if let Value::Array(items) = value {
            pending.extend(items);
        }
    }
}

#[test]
fn element_flood_is_refused() {
    let flood = format!(
        "<methodCall><methodName>m</methodName><params><param><value><array><data>{}</data></array></value></param></params></methodCall>",
        "<value/>".repeat(2_000)
    );
    let limits = Limits {
        max_depth: 64,
        max_elements: 1_000,
    };
    assert_eq!(
        parse_call(flood.as_bytes(), &limits),
        Err(XmlRpcError::TooManyElements)
    );
}

#[test]
fn billion_laughs_is_refused() {
    let mut doctype =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE methodCall [\n<!ENTITY lol \"lol\">\n");
    for level in 1..10 {
        let previous = if level == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", level - 1)
        };
        doctype.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">\n",
            format!("&{previous};").repeat(10)
        ));
    }
    doctype.push_str("]>\n<methodCall><methodName>&lol9;</methodName></methodCall>");
    assert_eq!(
        parse_call(doctype.as_bytes(), &Limits::default()),
        Err(XmlRpcError::Doctype)
    );
    // The same entity used without its declaration is simply undefined.
    let undeclared = b"<methodCall><methodName>&lol9;</methodName></methodCall>";
    assert!(matches!(
        parse_call(undeclared, &Limits::default()),
        Err(XmlRpcError::NotXml(_))
    ));
    // External entities cannot even be declared.
    let external = b"<!DOCTYPE methodCall [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><methodCall><methodName>&x;</methodName></methodCall>";
    assert_eq!(
        parse_call(external, &Limits::default()),
        Err(XmlRpcError::Doctype)
    );
}
