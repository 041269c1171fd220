use super::write::format_double;
use super::*;

fn call(params: Vec<Value>) -> MethodCall {
    MethodCall {
        name: "system/test".to_owned(),
        params,
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("writers emit UTF-8")
}

fn parse_value_in_call(xml_value: &str) -> Result<Value, XmlRpcError> {
    let xml = format!(
        "<methodCall><methodName>m</methodName><params><param>{xml_value}</param></params></methodCall>"
    );
    let mut call = parse_call(xml.as_bytes(), &Limits::default())?;
    assert_eq!(call.params.len(), 1);
    Ok(call.params.remove(0))
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

// ---- exact byte shapes ----

#[test]
fn call_without_params_has_empty_params_block() {
    assert_eq!(
        text(serialize_call(&call(vec![]))),
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<methodCall>\n<methodName>system/test</methodName>\n<params>\n</params>\n</methodCall>"
    );
}

#[test]
fn call_lays_out_scalars_struct_and_array_like_phpxmlrpc() {
    let params = vec![
        Value::Struct(vec![
            ("b".to_owned(), Value::Int(-3)),
            ("a".to_owned(), Value::Bool(true)),
        ]),
        Value::Array(vec![string("x"), Value::Array(vec![])]),
        Value::Double(2.0),
        Value::Base64(b"hi".to_vec()),
        Value::DateTime("20260101T00:00:00".to_owned()),
        Value::Nil,
    ];
    let expected = concat!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<methodCall>\n",
        "<methodName>system/test</methodName>\n<params>\n",
        "<param>\n<value><struct>\n",
        "<member><name>b</name>\n<value><int>-3</int></value>\n</member>\n",
        "<member><name>a</name>\n<value><boolean>1</boolean></value>\n</member>\n",
        "</struct></value>\n</param>\n",
        "<param>\n<value><array>\n<data>\n<value><string>x</string></value>\n",
        "<value><array>\n<data>\n</data>\n</array></value>\n",
        "</data>\n</array></value>\n</param>\n",
        "<param>\n<value><double>2</double></value>\n</param>\n",
        "<param>\n<value><base64>aGk=</base64></value>\n</param>\n",
        "<param>\n<value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value>\n</param>\n",
        "<param>\n<value><string></string></value>\n</param>\n",
        "</params>\n</methodCall>",
    );
    assert_eq!(text(serialize_call(&call(params))), expected);
}

#[test]
fn call_keeps_utf8_and_controls_raw_except_carriage_return() {
    let written = text(serialize_call(&call(vec![string(
        "rené <&> \"'\n\t\u{1}\r€",
    )])));
    assert!(
        written.contains("<string>rené &lt;&amp;&gt; &quot;&apos;\n\t\u{1}&#13;€</string>"),
        "{written}"
    );
}

#[test]
fn response_escapes_to_us_ascii() {
    let written = text(serialize_response(&string("é\n\t<>&\"' ß\u{7f}😀\r\u{0}")));
    assert_eq!(
        written,
        concat!(
            "<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n<param>\n",
            "<value><string>&#233;&#10;&#9;&lt;&gt;&amp;&quot;&apos; &#223;\u{7f}&#128512;&#13;&#0;</string></value>\n",
            "</param>\n</params>\n</methodResponse>",
        )
    );
    assert!(written.is_ascii());
}

#[test]
fn response_escapes_member_names_too() {
    let written = text(serialize_response(&Value::Struct(vec![(
        "clé".to_owned(),
        Value::Nil,
    )])));
    assert!(
        written.contains(
            "<member><name>cl&#233;</name>\n<value><string></string></value>\n</member>\n"
        )
    );
}

#[test]
fn fault_uses_moodles_template() {
    let written = text(serialize_fault(&Fault::new(0, "a <b> & \"c\" 'd'\nè")));
    assert_eq!(
        written,
        concat!(
            "<?xml version=\"1.0\"?>\n",
            "<methodResponse>\n",
            "   <fault>\n",
            "      <value>\n",
            "         <struct>\n",
            "            <member>\n",
            "               <name>faultCode</name>\n",
            "               <value><int>0</int></value>\n",
            "            </member>\n",
            "            <member>\n",
            "               <name>faultString</name>\n",
            "               <value><string>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;\nè</string></value>\n",
            "            </member>\n",
            "         </struct>\n",
            "      </value>\n",
            "   </fault>\n",
            "</methodResponse>",
        )
    );
}

#[test]
fn doubles_are_fixed_notation_like_php_number_format() {
    assert_eq!(format_double(2.0), "2");
    assert_eq!(format_double(-2.5), "-2.5");
    assert_eq!(format_double(0.0), "0");
    assert_eq!(format_double(-0.0), "0");
    assert_eq!(
        format_double(0.1),
        "0.1000000000000000055511151231257827021181583404541015625"
    );
    assert_eq!(format_double(1e20), "100000000000000000000");
    assert_eq!(format_double(1e-200), "0");
    assert_eq!(format_double(-1e-200), "0");
    assert_eq!(format_double(f64::NAN), "NAN");
    assert_eq!(format_double(f64::INFINITY), "INF");
    assert_eq!(format_double(f64::NEG_INFINITY), "-INF");
    assert!(!format_double(f64::MAX).contains(['e', 'E', '.']));
}

#[test]
fn base64_has_no_line_breaks_and_ints_keep_64_bits() {
    let bytes: Vec<u8> = (0..=255).collect();
    let written = text(serialize_call(&call(vec![
        Value::Base64(bytes),
        Value::Int(i64::MIN),
    ])));
    let base64_text = written
        .split("<base64>")
        .nth(1)
        .and_then(|rest| rest.split("</base64>").next())
        .expect("base64 element");
    assert_eq!(base64_text.len(), 344);
    assert!(!base64_text.contains(['\n', '\r', ' ']));
    assert!(written.contains("<int>-9223372036854775808</int>"));
}

// ---- lenient reading ----

#[test]
fn untyped_value_is_a_string_with_whitespace_kept() {
    assert_eq!(
        parse_value_in_call("<value>  two words \n</value>"),
        Ok(string("  two words \n"))
    );
    assert_eq!(parse_value_in_call("<value></value>"), Ok(string("")));
    assert_eq!(parse_value_in_call("<value/>"), Ok(string("")));
    assert_eq!(
        parse_value_in_call("<value><string/></value>"),
        Ok(string(""))
    );
}

#[test]
fn whitespace_and_comments_around_a_type_element_are_ignored() {
    assert_eq!(
        parse_value_in_call("<value>\n  <!-- c --> <string> x </string>\n </value>"),
        Ok(string(" x "))
    );
}

#[test]
fn integer_spellings() {
    for element in ["i4", "int", "i8", "ex:i8", "INT", "I4", "Ex:I8"] {
        let xml = format!("<value><{element}> \t-42 </{element}></value>");
        assert_eq!(parse_value_in_call(&xml), Ok(Value::Int(-42)), "{element}");
    }
    assert_eq!(
        parse_value_in_call("<value><int>+9223372036854775807</int></value>"),
        Ok(Value::Int(i64::MAX))
    );
    assert!(matches!(
        parse_value_in_call("<value><int>9223372036854775808</int></value>"),
        Err(XmlRpcError::Malformed(_))
    ));
    assert!(matches!(
        parse_value_in_call("<value><int>12abc</int></value>"),
        Err(XmlRpcError::Malformed(_))
    ));
}

#[test]
fn boolean_spellings() {
    for (spelling, expected) in [
        ("1", true),
        ("true", true),
        (" TRUE ", true),
        ("0", false),
        ("false", false),
        ("False", false),
    ] {
        let xml = format!("<value><boolean>{spelling}</boolean></value>");
        assert_eq!(
            parse_value_in_call(&xml),
            Ok(Value::Bool(expected)),
            "{spelling}"
        );
    }
    assert!(parse_value_in_call("<value><boolean>yes</boolean></value>").is_err());
}

#[test]
fn doubles_read_long_decimals_and_refuse_words() {
    assert_eq!(
        parse_value_in_call(
            "<value><double>0.1000000000000000055511151231257827021181583404541015625</double></value>"
        ),
        Ok(Value::Double(0.1))
    );
    assert_eq!(
        parse_value_in_call("<value><double> -1.5e3 </double></value>"),
        Ok(Value::Double(-1500.0))
    );
    assert!(parse_value_in_call("<value><double>infinity</double></value>").is_err());
}

#[test]
fn nil_in_both_spellings() {
    assert_eq!(parse_value_in_call("<value><nil/></value>"), Ok(Value::Nil));
    assert_eq!(
        parse_value_in_call("<value><ex:nil/></value>"),
        Ok(Value::Nil)
    );
    assert_eq!(
        parse_value_in_call("<value><NIL></NIL></value>"),
        Ok(Value::Nil)
    );
}

#[test]
fn base64_with_embedded_whitespace() {
    assert_eq!(
        parse_value_in_call("<value><base64>\n  aGVs\r\n bG8=\n</base64></value>"),
        Ok(Value::Base64(b"hello".to_vec()))
    );
    assert_eq!(
        parse_value_in_call("<value><base64>aGk</base64></value>"),
        Ok(Value::Base64(b"hi".to_vec()))
    );
    assert!(parse_value_in_call("<value><base64>*</base64></value>").is_err());
}

#[test]
fn cdata_references_and_line_ends() {
    assert_eq!(
        parse_value_in_call(
            "<value><string>a<![CDATA[<b> & ]]>&#233;&#xE9;&#10;&lt;&amp;&apos;\r\nz\r</string></value>"
        ),
        Ok(string("a<b> & éé\n<&'\nz\n"))
    );
}

#[test]
fn undefined_entities_are_not_xml() {
    assert!(matches!(
        parse_value_in_call("<value><string>&nbsp;</string></value>"),
        Err(XmlRpcError::NotXml(_))
    ));
    assert!(matches!(
        parse_value_in_call("<value><string>a & b</string></value>"),
        Err(XmlRpcError::NotXml(_))
    ));
}

#[test]
fn element_names_are_case_insensitive() {
    let xml = b"<METHODCALL><MethodName>system/keyswap</MethodName><PARAMS><Param><VALUE><STRING>x</STRING></VALUE></Param></PARAMS></METHODCALL>";
    let parsed = parse_call(xml, &Limits::default()).expect("parses");
    assert_eq!(parsed.name, "system/keyswap");
    assert_eq!(parsed.params, vec![string("x")]);
}

#[test]
fn legacy_pretty_printed_latin1_request() {
    let mut xml = b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\r\n<methodCall>\r\n <methodName> system/keyswap </methodName>\r\n <params>\r\n  <param>\r\n   <value>\r\n    <string>Ren".to_vec();
    xml.push(0xE9);
    xml.extend_from_slice(
        b"e</string>\r\n   </value>\r\n  </param>\r\n </params>\r\n</methodCall>\r\n",
    );
    let parsed = parse_call(&xml, &Limits::default()).expect("parses");
    assert_eq!(parsed.name, "system/keyswap");
    assert_eq!(parsed.params, vec![string("Renée")]);
}

#[test]
fn encodings() {
    let body = |declaration: &str, text: &[u8]| {
        let mut xml = declaration.as_bytes().to_vec();
        xml.extend_from_slice(b"<methodCall><methodName>m</methodName><params><param><value>");
        xml.extend_from_slice(text);
        xml.extend_from_slice(b"</value></param></params></methodCall>");
        parse_call(&xml, &Limits::default()).map(|mut call| call.params.remove(0))
    };
    let utf8 = "é".as_bytes();
    assert_eq!(body("", utf8), Ok(string("é")));
    assert_eq!(body("\u{feff}", utf8), Ok(string("é")));
    assert_eq!(
        body("<?xml version=\"1.0\" encoding=\"utf-8\" ?>", utf8),
        Ok(string("é"))
    );
    assert_eq!(
        body("<?xml version='1.0' encoding='ISO-8859-1'?>", &[0xE9]),
        Ok(string("é"))
    );
    // ASCII-only content declared Latin-1, as Moodle's envelopes are: read as is.
    assert_eq!(
        body("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>", b"&#233;"),
        Ok(string("é"))
    );
    assert!(matches!(body("", &[0xE9]), Err(XmlRpcError::NotXml(_))));
    assert!(matches!(
        body("<?xml version=\"1.0\" encoding=\"windows-1252\"?>", &[0x80]),
        Err(XmlRpcError::NotXml(_))
    ));
}

#[test]
fn params_may_be_empty_or_absent() {
    for xml in [
        "<methodCall><methodName>m</methodName></methodCall>",
        "<methodCall><methodName>m</methodName><params/></methodCall>",
        "<methodCall><methodName>m</methodName><params>\n</params></methodCall>",
    ] {
        let parsed = parse_call(xml.as_bytes(), &Limits::default()).expect(xml);
        assert!(parsed.params.is_empty(), "{xml}");
    }
    assert!(parse_call(b"<methodCall><params/></methodCall>", &Limits::default()).is_err());
}

#[test]
fn method_name_is_trimmed() {
    let parsed = parse_call(
        b"<methodCall><methodName>\n system/listMethods\t</methodName></methodCall>",
        &Limits::default(),
    )
    .expect("parses");
    assert_eq!(parsed.name, "system/listMethods");
}

#[test]
fn struct_members_keep_order_and_php_duplicate_rule() {
    let value = parse_value_in_call(concat!(
        "<value><struct>",
        "<member><name>z</name><value>1</value></member>",
        "<member><value><int>2</int></value><name>a</name></member>",
        "<member><name>z</name><value>3</value></member>",
        "</struct></value>"
    ))
    .expect("parses");
    assert_eq!(
        value,
        Value::Struct(vec![
            ("z".to_owned(), string("3")),
            ("a".to_owned(), Value::Int(2)),
        ])
    );
    assert_eq!(
        parse_value_in_call("<value><struct/></value>"),
        Ok(Value::Struct(vec![]))
    );
    assert_eq!(
        parse_value_in_call("<value><array/></value>"),
        Ok(Value::Array(vec![]))
    );
}

#[test]
fn responses() {
    let limits = Limits::default();
    let ok = b"<methodResponse><params><param><value><int>7</int></value></param></params></methodResponse>";
    assert_eq!(
        parse_response(ok, &limits),
        Ok(Response::Success(Value::Int(7)))
    );
    // phpxmlrpc's compact fault shape (b), members swapped, code 0: still a fault (P25).
    let fault = b"<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n<value><struct>\n<member><name>faultString</name>\n<value><string>boom</string></value>\n</member>\n<member><name>faultCode</name>\n<value><int>0</int></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>";
    assert_eq!(
        parse_response(fault, &limits),
        Ok(Response::Fault(Fault::new(0, "boom")))
    );
    let string_code = b"<methodResponse><fault><value><struct><member><name>faultCode</name><value><string> 7025 </string></value></member></struct></value></fault></methodResponse>";
    assert_eq!(
        parse_response(string_code, &limits),
        Ok(Response::Fault(Fault::new(7025, "")))
    );
    for bad in [
        &b"<methodResponse></methodResponse>"[..],
        b"<methodResponse><params></params></methodResponse>",
        b"<methodResponse><params><param><value>1</value></param><param><value>2</value></param></params></methodResponse>",
        b"<methodResponse><fault><value><string>x</string></value></fault></methodResponse>",
        b"<methodResponse><params><param><value>1</value></param></params><fault><value><struct/></value></fault></methodResponse>",
    ] {
        assert!(
            matches!(parse_response(bad, &limits), Err(XmlRpcError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn wrong_roots() {
    let limits = Limits::default();
    let call_xml = b"<methodCall><methodName>m</methodName></methodCall>";
    let response_xml = b"<methodResponse><params><param><value/></param></params></methodResponse>";
    assert!(matches!(
        parse_response(call_xml, &limits),
        Err(XmlRpcError::WrongRoot(_))
    ));
    assert!(matches!(
        parse_call(response_xml, &limits),
        Err(XmlRpcError::WrongRoot(_))
    ));
    assert!(matches!(
        parse_call(b"<html><body/></html>", &limits),
        Err(XmlRpcError::WrongRoot(_))
    ));
}

#[test]
fn structure_errors() {
    for bad in [
        "<value><string>a</string><int>1</int></value>",
        "<value><foo/></value>",
        "<value><struct><member><name>a</name></member></struct></value>",
        "<value><struct><value/></struct></value>",
        "<value><array><value/></array></value>",
        "<value><struct>junk</struct></value>",
    ] {
        assert!(
            matches!(parse_value_in_call(bad), Err(XmlRpcError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn xml_errors() {
    let limits = Limits::default();
    for bad in [
        &b""[..],
        b"not xml at all",
        b"<methodCall><methodName>m</methodName>",
        b"<methodCall><methodName>m</methodName></methodcall>",
        b"<methodCall><methodName>m</methodName></methodCall><methodCall/>",
        b"<methodCall><methodName>m</methodName></methodCall>trailing",
        b"<methodCall><methodName>m</methodName><?xml version=\"1.0\"?></methodCall>",
    ] {
        assert!(
            matches!(parse_call(bad, &limits), Err(XmlRpcError::NotXml(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn doctype_is_refused() {
    let xml = b"<?xml version=\"1.0\"?>\n<!DOCTYPE methodCall [<!ENTITY a \"aaaa\">]>\n<methodCall><methodName>&a;</methodName></methodCall>";
    assert_eq!(
        parse_call(xml, &Limits::default()),
        Err(XmlRpcError::Doctype)
    );
}

#[test]
fn limits_are_enforced() {
    let nested = |levels: usize| {
        format!(
            "<methodCall><methodName>m</methodName><params><param>{}{}</param></params></methodCall>",
            "<value><array><data>".repeat(levels),
            "</data></array></value>".repeat(levels),
        )
    };
    // methodCall, params, param, then three per level.
    let limits = Limits {
        max_depth: 3 + 3 * 5,
        max_elements: 1000,
    };
    assert!(parse_call(nested(5).as_bytes(), &limits).is_ok());
    assert_eq!(
        parse_call(nested(6).as_bytes(), &limits),
        Err(XmlRpcError::TooDeep)
    );
    let wide = format!(
        "<methodCall><methodName>m</methodName><params><param><value><array><data>{}</data></array></value></param></params></methodCall>",
        "<value/>".repeat(100)
    );
    let limits = Limits {
        max_depth: 64,
        max_elements: 50,
    };
    assert_eq!(
        parse_call(wide.as_bytes(), &limits),
        Err(XmlRpcError::TooManyElements)
    );
}

#[test]
fn fault_codes_follow_phpxmlrpc() {
    assert_eq!(XmlRpcError::NotXml("x".into()).fault_code(), 102);
    assert_eq!(XmlRpcError::WrongRoot("x".into()).fault_code(), 15);
    assert_eq!(XmlRpcError::Malformed("x".into()).fault_code(), 15);
    assert_eq!(XmlRpcError::Doctype.fault_code(), 15);
    assert_eq!(XmlRpcError::TooDeep.fault_code(), 15);
    assert_eq!(XmlRpcError::TooManyElements.to_fault().code, 15);
}

// ---- value helpers ----

#[test]
fn lenient_accessors() {
    assert_eq!(Value::Int(5).as_i64_lenient(), Some(5));
    assert_eq!(string(" 42 ").as_i64_lenient(), Some(42));
    assert_eq!(string("4x").as_i64_lenient(), None);
    assert_eq!(Value::Bool(true).as_i64_lenient(), None);
    assert_eq!(string("TRUE").as_bool_lenient(), Some(true));
    assert_eq!(string("0").as_bool_lenient(), Some(false));
    assert_eq!(string("maybe").as_bool_lenient(), None);
    assert_eq!(Value::Int(2).as_bool_lenient(), Some(true));
    assert_eq!(Value::Bool(false).as_bool_lenient(), Some(false));
    assert_eq!(string("x").as_str(), Some("x"));
    assert_eq!(Value::Int(1).as_str(), None);
    let record = Value::Struct(vec![("a".to_owned(), Value::Int(1))]);
    assert_eq!(record.get("a"), Some(&Value::Int(1)));
    assert_eq!(record.get("b"), None);
    assert_eq!(Value::Int(1).get("a"), None);
}

#[test]
fn json_conversions() {
    let json = serde_json::json!({"n": null, "i": -3, "big": 18446744073709551615u64, "f": 1.5, "s": "x", "b": true, "a": [[]]});
    let value = Value::from_json(&json);
    assert_eq!(value.get("n"), Some(&string("")));
    assert_eq!(value.get("i"), Some(&Value::Int(-3)));
    assert_eq!(
        value.get("big"),
        Some(&Value::Double(18446744073709551615.0))
    );
    assert_eq!(value.get("f"), Some(&Value::Double(1.5)));
    assert_eq!(
        value.get("a"),
        Some(&Value::Array(vec![Value::Array(vec![])]))
    );
    assert_eq!(
        Value::Base64(b"hi".to_vec()).to_json(),
        serde_json::json!("aGk=")
    );
    assert_eq!(Value::Nil.to_json(), serde_json::Value::Null);
    assert_eq!(Value::Double(f64::NAN).to_json(), serde_json::Value::Null);
}
