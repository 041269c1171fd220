//! The reader: accepts what phpxmlrpc (on expat, with case folding) accepts, plus `<nil/>`, and
//! refuses anything that could make a small document expensive.
//!
//! It walks quick-xml events with an explicit stack of frames, so no input can recurse the Rust
//! stack, and it never expands an entity beyond the five predefined ones and character
//! references. A DOCTYPE is refused outright, which rules out entity bombs and external entities.
//!
//! Longer than our other files (about 700 lines) on purpose: it is one state machine over one
//! stack of frames, and every limit it enforces is checked where a frame opens or closes. Split
//! by value type, the checks that hold the linear-time guarantee would sit in several files.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use quick_xml::Reader;
use quick_xml::events::Event;

use super::{Fault, Limits, MethodCall, Response, Value, XmlRpcError};

/// Reads an XML-RPC request. A missing or empty `<params>` means no parameters.
pub fn parse_call(xml: &[u8], limits: &Limits) -> Result<MethodCall, XmlRpcError> {
    match parse_document(xml, limits, Root::MethodCall)? {
        Document::Call(call) => Ok(call),
        Document::Response(_) => Err(XmlRpcError::WrongRoot("methodResponse".to_owned())),
    }
}

/// Reads an XML-RPC response. Any `<fault>` is a fault, whatever its code, 0 included (P25).
pub fn parse_response(xml: &[u8], limits: &Limits) -> Result<Response, XmlRpcError> {
    match parse_document(xml, limits, Root::MethodResponse)? {
        Document::Response(response) => Ok(response),
        Document::Call(_) => Err(XmlRpcError::WrongRoot("methodCall".to_owned())),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    MethodCall,
    MethodResponse,
}

enum Document {
    Call(MethodCall),
    Response(Response),
}

/// The XML-RPC elements, recognised case-insensitively as phpxmlrpc does (expat folds names to
/// upper case and a namespace prefix stays part of the name, hence `ex:i8` and `ex:nil`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Element {
    MethodCall,
    MethodResponse,
    MethodName,
    Params,
    Param,
    Fault,
    Value,
    Scalar(ScalarKind),
    Nil,
    Struct,
    Member,
    Name,
    Array,
    Data,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ScalarKind {
    Int,
    Boolean,
    String,
    Double,
    DateTime,
    Base64,
}

impl ScalarKind {
    fn element_name(self) -> &'static str {
        match self {
            ScalarKind::Int => "int",
            ScalarKind::Boolean => "boolean",
            ScalarKind::String => "string",
            ScalarKind::Double => "double",
            ScalarKind::DateTime => "dateTime.iso8601",
            ScalarKind::Base64 => "base64",
        }
    }
}

impl Element {
    fn from_name(name: &str) -> Option<Element> {
        const NAMES: &[(&str, Element)] = &[
            ("methodcall", Element::MethodCall),
            ("methodresponse", Element::MethodResponse),
            ("methodname", Element::MethodName),
            ("params", Element::Params),
            ("param", Element::Param),
            ("fault", Element::Fault),
            ("value", Element::Value),
            ("i4", Element::Scalar(ScalarKind::Int)),
            ("int", Element::Scalar(ScalarKind::Int)),
            ("i8", Element::Scalar(ScalarKind::Int)),
            ("ex:i8", Element::Scalar(ScalarKind::Int)),
            ("boolean", Element::Scalar(ScalarKind::Boolean)),
            ("string", Element::Scalar(ScalarKind::String)),
            ("double", Element::Scalar(ScalarKind::Double)),
            ("datetime.iso8601", Element::Scalar(ScalarKind::DateTime)),
            ("base64", Element::Scalar(ScalarKind::Base64)),
            ("nil", Element::Nil),
            ("ex:nil", Element::Nil),
            ("struct", Element::Struct),
            ("member", Element::Member),
            ("name", Element::Name),
            ("array", Element::Array),
            ("data", Element::Data),
        ];
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, element)| *element)
    }
}

/// One open element and what it has collected so far.
enum Frame {
    MethodCall {
        name: Option<String>,
        params: Option<Vec<Value>>,
    },
    MethodResponse {
        params: Option<Vec<Value>>,
        fault: Option<Value>,
    },
    MethodName(String),
    Params(Vec<Value>),
    Param(Option<Value>),
    Fault(Option<Value>),
    Value {
        /// Character data, used only when no type element shows up (untyped = string).
        text: String,
        /// Set as soon as a type element opens, so a second one can be refused.
        typed: bool,
        value: Option<Value>,
    },
    Scalar(ScalarKind, String),
    Nil,
    Struct(Members),
    Member {
        name: Option<String>,
        value: Option<Value>,
    },
    Name(String),
    Array(Option<Vec<Value>>),
    Data(Vec<Value>),
}

impl Frame {
    fn label(&self) -> &'static str {
        match self {
            Frame::MethodCall { .. } => "methodCall",
            Frame::MethodResponse { .. } => "methodResponse",
            Frame::MethodName(_) => "methodName",
            Frame::Params(_) => "params",
            Frame::Param(_) => "param",
            Frame::Fault(_) => "fault",
            Frame::Value { .. } => "value",
            Frame::Scalar(kind, _) => kind.element_name(),
            Frame::Nil => "nil",
            Frame::Struct(_) => "struct",
            Frame::Member { .. } => "member",
            Frame::Name(_) => "name",
            Frame::Array(_) => "array",
            Frame::Data(_) => "data",
        }
    }
}

fn malformed(reason: impl Into<String>) -> XmlRpcError {
    XmlRpcError::Malformed(reason.into())
}

struct Parser<'l> {
    limits: &'l Limits,
    root: Root,
    stack: Vec<Frame>,
    elements: usize,
    finished: Option<Document>,
}

fn parse_document(xml: &[u8], limits: &Limits, root: Root) -> Result<Document, XmlRpcError> {
    let text = decode_document(xml)?;
    let mut reader = Reader::from_str(&text);
    let mut parser = Parser {
        limits,
        root,
        stack: Vec::new(),
        elements: 0,
        finished: None,
    };
    let mut first_event = true;
    loop {
        let event = reader.read_event().map_err(|error| {
            XmlRpcError::NotXml(format!("at byte {}: {error}", reader.error_position()))
        })?;
        let at_start = std::mem::replace(&mut first_event, false);
        let position = reader.buffer_position();
        match event {
            Event::Start(start) => parser.open(start.name().as_ref(), position)?,
            Event::Empty(start) => {
                let name = start.name();
                parser.open(name.as_ref(), position)?;
                parser.close()?;
            }
            Event::End(_) => parser.close()?,
            Event::Text(text) => parser.text(&text.xml10_content(), position)?,
            Event::CData(data) => parser.text(&data.xml10_content(), position)?,
            Event::GeneralRef(reference) => {
                let character = resolve_reference(&reference).ok_or_else(|| {
                    XmlRpcError::NotXml(format!(
                        "at byte {position}: undefined entity &{};",
                        &*reference
                    ))
                })?;
                parser.text(character.encode_utf8(&mut [0; 4]), position)?;
            }
            Event::Decl(_) if at_start => {}
            Event::Decl(_) => {
                return Err(XmlRpcError::NotXml(format!(
                    "at byte {position}: XML declaration not at start of document"
                )));
            }
            Event::DocType(_) => return Err(XmlRpcError::Doctype),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !parser.stack.is_empty() {
        return Err(XmlRpcError::NotXml(
            "unexpected end of document: unclosed elements".to_owned(),
        ));
    }
    parser
        .finished
        .ok_or_else(|| XmlRpcError::NotXml("no root element".to_owned()))
}

impl Parser<'_> {
    fn open(&mut self, name: &str, position: u64) -> Result<(), XmlRpcError> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(XmlRpcError::TooManyElements);
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(XmlRpcError::TooDeep);
        }
        let Some(parent) = self.stack.last_mut() else {
            return self.open_root(name, position);
        };
        let parent_label = parent.label();
        let element = Element::from_name(name).ok_or_else(|| {
            malformed(format!(
                "element <{name}> is not XML-RPC (inside <{parent_label}>)"
            ))
        })?;
        let misplaced = || {
            malformed(format!(
                "element <{name}> not allowed here (inside <{parent_label}>)"
            ))
        };
        let frame = match (&mut *parent, element) {
            (Frame::MethodCall { name: method, .. }, Element::MethodName) => {
                if method.is_some() {
                    return Err(malformed("two <methodName> elements"));
                }
                Frame::MethodName(String::new())
            }
            (Frame::MethodCall { params, .. }, Element::Params) => {
                if params.is_some() {
                    return Err(malformed("two <params> elements"));
                }
                Frame::Params(Vec::new())
            }
            (Frame::MethodResponse { params, fault }, Element::Params) => {
                if params.is_some() || fault.is_some() {
                    return Err(malformed("a response holds one <params> or one <fault>"));
                }
                Frame::Params(Vec::new())
            }
            (Frame::MethodResponse { params, fault }, Element::Fault) => {
                if params.is_some() || fault.is_some() {
                    return Err(malformed("a response holds one <params> or one <fault>"));
                }
                Frame::Fault(None)
            }
            (Frame::Params(_), Element::Param) => Frame::Param(None),
            (Frame::Param(value) | Frame::Fault(value), Element::Value) => {
                if value.is_some() {
                    return Err(malformed("two <value> elements in one <param> or <fault>"));
                }
                new_value_frame()
            }
            (Frame::Member { value, .. }, Element::Value) => {
                if value.is_some() {
                    return Err(malformed("two <value> elements in one <member>"));
                }
                new_value_frame()
            }
            (Frame::Member { name: member, .. }, Element::Name) => {
                if member.is_some() {
                    return Err(malformed("two <name> elements in one <member>"));
                }
                Frame::Name(String::new())
            }
            (Frame::Data(_), Element::Value) => new_value_frame(),
            (Frame::Struct(_), Element::Member) => Frame::Member {
                name: None,
                value: None,
            },
            (Frame::Array(data), Element::Data) => {
                if data.is_some() {
                    return Err(malformed("two <data> elements in one <array>"));
                }
                Frame::Data(Vec::new())
            }
            (Frame::Value { typed, .. }, type_element) => {
                let frame = match type_element {
                    Element::Scalar(kind) => Frame::Scalar(kind, String::new()),
                    Element::Nil => Frame::Nil,
                    Element::Struct => Frame::Struct(Members::default()),
                    Element::Array => Frame::Array(None),
                    _ => return Err(misplaced()),
                };
                if std::mem::replace(typed, true) {
                    return Err(malformed("two type elements in one <value>"));
                }
                frame
            }
            _ => return Err(misplaced()),
        };
        self.stack.push(frame);
        Ok(())
    }

    fn open_root(&mut self, name: &str, position: u64) -> Result<(), XmlRpcError> {
        if self.finished.is_some() {
            return Err(XmlRpcError::NotXml(format!(
                "at byte {position}: content after the root element"
            )));
        }
        let frame = match (self.root, Element::from_name(name)) {
            (Root::MethodCall, Some(Element::MethodCall)) => Frame::MethodCall {
                name: None,
                params: None,
            },
            (Root::MethodResponse, Some(Element::MethodResponse)) => Frame::MethodResponse {
                params: None,
                fault: None,
            },
            _ => return Err(XmlRpcError::WrongRoot(name.to_owned())),
        };
        self.stack.push(frame);
        Ok(())
    }

    fn text(&mut self, text: &str, position: u64) -> Result<(), XmlRpcError> {
        let is_blank = || text.bytes().all(|byte| byte.is_ascii_whitespace());
        match self.stack.last_mut() {
            Some(
                Frame::MethodName(collected) | Frame::Name(collected) | Frame::Scalar(_, collected),
            ) => collected.push_str(text),
            // As in phpxmlrpc, character data around a type element is dropped.
            Some(Frame::Value {
                text: collected,
                typed: false,
                ..
            }) => collected.push_str(text),
            Some(Frame::Value { typed: true, .. }) => {}
            Some(frame) => {
                if !is_blank() {
                    return Err(malformed(format!("text inside <{}>", frame.label())));
                }
            }
            None => {
                if !is_blank() {
                    return Err(XmlRpcError::NotXml(format!(
                        "at byte {position}: text outside the root element"
                    )));
                }
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), XmlRpcError> {
        let Some(frame) = self.stack.pop() else {
            return Err(XmlRpcError::NotXml("unmatched end tag".to_owned()));
        };
        match frame {
            Frame::MethodCall { name, params } => {
                let name = name.ok_or_else(|| malformed("methodCall without <methodName>"))?;
                self.finished = Some(Document::Call(MethodCall {
                    name,
                    params: params.unwrap_or_default(),
                }));
            }
            Frame::MethodResponse { params, fault } => {
                let response = match (params, fault) {
                    (_, Some(fault)) => Response::Fault(fault_from_value(fault)?),
                    (Some(mut params), None) if params.len() == 1 => {
                        Response::Success(params.remove(0))
                    }
                    (Some(params), None) => {
                        return Err(malformed(format!(
                            "a response needs exactly one <param>, found {}",
                            params.len()
                        )));
                    }
                    (None, None) => {
                        return Err(malformed("methodResponse without <params> or <fault>"));
                    }
                };
                self.finished = Some(Document::Response(response));
            }
            Frame::MethodName(name) => {
                if let Some(Frame::MethodCall { name: slot, .. }) = self.stack.last_mut() {
                    *slot = Some(name.trim_matches(is_xml_space).to_owned());
                }
            }
            Frame::Params(params) => {
                if let Some(
                    Frame::MethodCall { params: slot, .. }
                    | Frame::MethodResponse { params: slot, .. },
                ) = self.stack.last_mut()
                {
                    *slot = Some(params);
                }
            }
            Frame::Param(value) => {
                let value = value.ok_or_else(|| malformed("<param> without <value>"))?;
                if let Some(Frame::Params(params)) = self.stack.last_mut() {
                    params.push(value);
                }
            }
            Frame::Fault(value) => {
                let value = value.ok_or_else(|| malformed("<fault> without <value>"))?;
                if let Some(Frame::MethodResponse { fault, .. }) = self.stack.last_mut() {
                    *fault = Some(value);
                }
            }
            Frame::Value { text, value, .. } => {
                let value = value.unwrap_or(Value::String(text));
                match self.stack.last_mut() {
                    Some(
                        Frame::Param(slot) | Frame::Fault(slot) | Frame::Member { value: slot, .. },
                    ) => *slot = Some(value),
                    Some(Frame::Data(items)) => items.push(value),
                    _ => {}
                }
            }
            Frame::Scalar(kind, text) => {
                let value = scalar_value(kind, text)?;
                self.set_typed_value(value);
            }
            Frame::Nil => self.set_typed_value(Value::Nil),
            Frame::Struct(members) => self.set_typed_value(Value::Struct(members.list)),
            Frame::Array(data) => self.set_typed_value(Value::Array(data.unwrap_or_default())),
            Frame::Data(items) => {
                if let Some(Frame::Array(slot)) = self.stack.last_mut() {
                    *slot = Some(items);
                }
            }
            Frame::Name(name) => {
                if let Some(Frame::Member { name: slot, .. }) = self.stack.last_mut() {
                    *slot = Some(name);
                }
            }
            Frame::Member { name, value } => {
                let name = name.ok_or_else(|| malformed("<member> without <name>"))?;
                let value = value.ok_or_else(|| malformed("<member> without <value>"))?;
                if let Some(Frame::Struct(members)) = self.stack.last_mut() {
                    members.insert(name, value);
                }
            }
        }
        Ok(())
    }

    fn set_typed_value(&mut self, value: Value) {
        if let Some(Frame::Value { value: slot, .. }) = self.stack.last_mut() {
            *slot = Some(value);
        }
    }
}

/// A struct's members as a PHP array keeps them: the first position of a name and the last
/// value given for it. Names are found through a hash index, so a struct of n distinct
/// members costs O(n) to read, not O(n²): a request is parsed before it is authenticated.
#[derive(Default)]
struct Members {
    list: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Members {
    fn insert(&mut self, name: String, value: Value) {
        match self.index.get(&name) {
            Some(&at) => self.list[at].1 = value,
            None => {
                self.index.insert(name.clone(), self.list.len());
                self.list.push((name, value));
            }
        }
    }
}

fn new_value_frame() -> Frame {
    Frame::Value {
        text: String::new(),
        typed: false,
        value: None,
    }
}

fn is_xml_space(character: char) -> bool {
    matches!(character, ' ' | '\t' | '\n' | '\r')
}

fn scalar_value(kind: ScalarKind, text: String) -> Result<Value, XmlRpcError> {
    let trimmed = text.trim_matches(is_xml_space);
    match kind {
        ScalarKind::String => Ok(Value::String(text)),
        ScalarKind::Int => trimmed
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| malformed(format!("not a 64-bit integer: {trimmed:?}"))),
        ScalarKind::Boolean => {
            if trimmed == "1" || trimmed.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if trimmed == "0" || trimmed.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err(malformed(format!("not a boolean: {trimmed:?}")))
            }
        }
        ScalarKind::Double => parse_double(trimmed)
            .map(Value::Double)
            .ok_or_else(|| malformed(format!("not a double: {trimmed:?}"))),
        ScalarKind::DateTime => Ok(Value::DateTime(trimmed.to_owned())),
        ScalarKind::Base64 => {
            let compact: Vec<u8> = text
                .bytes()
                .filter(|byte| !byte.is_ascii_whitespace())
                .collect();
            BASE64_LENIENT
                .decode(&compact)
                .map(Value::Base64)
                .map_err(|error| malformed(format!("bad base64: {error}")))
        }
    }
}

/// Standard alphabet, padding optional: PHP's decoder does not insist on it either.
const BASE64_LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decimal notation as phpxmlrpc allows it (digits, sign, point, exponent), plus the tokens our
/// own writer uses for non-finite values. Rust's parser would also take `inf` or `infinity`
/// spelled any way, so the characters are checked first.
fn parse_double(text: &str) -> Option<f64> {
    match text {
        "NAN" => return Some(f64::NAN),
        "INF" => return Some(f64::INFINITY),
        "-INF" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let plain = text
        .bytes()
        .all(|byte| byte.is_ascii_digit() || matches!(byte, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !plain {
        return None;
    }
    text.parse().ok()
}

/// The five predefined entities and character references; nothing else exists without a DTD.
fn resolve_reference(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => parse_digits(hex, 16)?,
                None => parse_digits(number, 10)?,
            };
            char::from_u32(code)
        }
    }
}

fn parse_digits(digits: &str, radix: u32) -> Option<u32> {
    if digits.is_empty() || !digits.chars().all(|digit| digit.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// Turns the document into UTF-8 text. Moodle's envelopes declare iso-8859-1 while carrying
/// ASCII, and legacy peers may send real Latin-1, so a Latin-1 declaration is honoured when the
/// bytes need it; UTF-8 is assumed otherwise, as expat does without a declaration.
fn decode_document(xml: &[u8]) -> Result<Cow<'_, str>, XmlRpcError> {
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    if xml.starts_with(b"\xFE\xFF") || xml.starts_with(b"\xFF\xFE") {
        return Err(XmlRpcError::NotXml(
            "UTF-16 documents are not supported".to_owned(),
        ));
    }
    // Moodle trims bodies before parsing; a declaration is only recognised at offset 0.
    let start = xml
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(xml.len());
    let xml = &xml[start..];
    if xml.is_ascii() {
        return Ok(Cow::Borrowed(std::str::from_utf8(xml).unwrap_or_default()));
    }
    let encoding = declared_encoding(xml).map(|name| name.to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => std::str::from_utf8(xml)
            .map(Cow::Borrowed)
            .map_err(|error| {
                XmlRpcError::NotXml(format!(
                    "at byte {}: invalid UTF-8",
                    start + error.valid_up_to()
                ))
            }),
        Some(
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" | "iso-ir-100"
            | "cp819" | "ibm819" | "csisolatin1",
        ) => Ok(Cow::Owned(
            xml.iter().map(|&byte| char::from(byte)).collect(),
        )),
        Some(other) => Err(XmlRpcError::NotXml(format!(
            "unsupported encoding {other:?}"
        ))),
    }
}

/// The `encoding` pseudo-attribute of a leading XML declaration, if any.
fn declared_encoding(xml: &[u8]) -> Option<&str> {
    let rest = xml.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let end = rest.windows(2).position(|pair| pair == b"?>")?;
    let declaration = std::str::from_utf8(&rest[..end]).ok()?;
    let after_name = &declaration[declaration.find("encoding")? + "encoding".len()..];
    let after_equals = after_name.trim_start().strip_prefix('=')?.trim_start();
    let quote = after_equals
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')?;
    let value = &after_equals[1..];
    value.find(quote).map(|close| &value[..close])
}

/// A fault's value must be a struct with an integer `faultCode` (a numeric string is taken too)
/// and, normally, a string `faultString`; a missing string reads as empty, as in PHP.
fn fault_from_value(value: Value) -> Result<Fault, XmlRpcError> {
    let Value::Struct(_) = value else {
        return Err(malformed("fault value is not a struct"));
    };
    let code = value
        .get("faultCode")
        .ok_or_else(|| malformed("fault without faultCode"))?
        .as_i64_lenient()
        .ok_or_else(|| malformed("faultCode is not an integer"))?;
    let string = match value.get("faultString") {
        None => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Int(number)) => number.to_string(),
        Some(_) => return Err(malformed("faultString is not a string")),
    };
    Ok(Fault { code, string })
}
