//! XML-RPC value model and codec, shaped after what Moodle ≥ 4.1 (phpxmlrpc 4.11) puts on the
//! wire and what its parser accepts (docs/protocol.md §3, §7.2, P5, P25, P26).
//!
//! Why not the `dxr` crate (0.9, evaluated from its source): its writer is quick-xml's serde
//! serializer, which emits no XML declaration, no LF layout, no US-ASCII `&#N;` escaping, writes
//! integers as `<i4>` (`i32` only, 64-bit values only as `<i8>` behind a feature) and re-sorts
//! struct members by name, so it cannot reproduce Moodle's bytes. Its reader takes `&str` only (no
//! Latin-1), matches element names case-sensitively, knows neither `<ex:i8>` nor `<ex:nil/>` nor
//! `true`/`false` booleans, fails on an `<int>` above 2³¹, wants the two fault members in one
//! order, and has no depth or element-count limit. So this module is a small event-driven codec
//! on `quick-xml` that writes byte-exact Moodle documents and reads what phpxmlrpc reads.
//!
//! Three writers, because Moodle itself uses three serialisers:
//! * [`serialize_call`]: phpxmlrpc requests with charset utf-8 (raw UTF-8, five entities).
//! * [`serialize_response`]: phpxmlrpc responses with no charset, i.e. US-ASCII (every control
//!   and non-ASCII character as `&#N;`).
//! * [`serialize_fault`]: the hand-written template of Moodle's `mnet_server_fault_xml`.
//!
//! Choices where Moodle's bytes would lose data (none of them shows in Moodle's own traffic):
//! * A carriage return inside text is written `&#13;` by the two raw-UTF-8 writers, because every
//!   conforming XML parser (expat in Moodle, ours too) folds a literal CR into LF.
//! * Moodle's fault template escapes `<` and `>` twice (its `str_replace` rewrites the `&` of
//!   `&lt;`); [`serialize_fault`] escapes once, so peers read back the text we meant.
//! * [`Value::Nil`] is written as an empty `<string>` (Moodle answers `<nil/>` with fault 15).
//! * Non-finite doubles are written `NAN`, `INF`, `-INF` (what PHP's `number_format` gives); the
//!   reader accepts those tokens back, Moodle does not, so callers should not produce them.

mod read;
mod write;

#[cfg(test)]
mod tests;

pub use read::{parse_call, parse_response};
pub use write::{serialize_call, serialize_fault, serialize_response};

use base64::Engine as _;

/// One XML-RPC value. Struct members keep the order in which they were built or received,
/// because PHP arrays are ordered and Moodle's consumers sometimes rely on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    String(String),
    Double(f64),
    Base64(Vec<u8>),
    /// The text of a `<dateTime.iso8601>` as received; Moodle never checks its shape either.
    DateTime(String),
    Struct(Vec<(String, Value)>),
    Array(Vec<Value>),
    /// Only ever produced by the reader (legacy peers send `<nil/>`); written as an empty string.
    Nil,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// An `<int>`, or a string holding one: Moodle's database layer turns every number into a
    /// string (P26), so callers that want a number must accept both.
    pub fn as_i64_lenient(&self) -> Option<i64> {
        match self {
            Value::Int(number) => Some(*number),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// A `<boolean>`, an int (non-zero is true, as in PHP) or one of the strings `1`, `0`,
    /// `true`, `false` (any case, trimmed).
    pub fn as_bool_lenient(&self) -> Option<bool> {
        match self {
            Value::Bool(flag) => Some(*flag),
            Value::Int(number) => Some(*number != 0),
            Value::String(text) => {
                let text = text.trim();
                if text == "1" || text.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if text == "0" || text.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// The XML-RPC element name this value is written as (`nil` only for what a peer sent).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Bool(_) => "boolean",
            Value::String(_) => "string",
            Value::Double(_) => "double",
            Value::Base64(_) => "base64",
            Value::DateTime(_) => "dateTime.iso8601",
            Value::Struct(_) => "struct",
            Value::Array(_) => "array",
            Value::Nil => "nil",
        }
    }

    /// The first member of a struct with that name.
    pub fn get(&self, member: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members
                .iter()
                .find(|(name, _)| name == member)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// JSON view, for logs, tests and the REST layer. Base64 becomes its standard base64 text,
    /// a non-finite double and `Nil` become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Value::Int(number) => Json::from(*number),
            Value::Bool(flag) => Json::Bool(*flag),
            Value::String(text) | Value::DateTime(text) => Json::String(text.clone()),
            Value::Double(number) => serde_json::Number::from_f64(*number)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::Base64(bytes) => {
                Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Value::Struct(members) => Json::Object(
                members
                    .iter()
                    .map(|(name, value)| (name.clone(), value.to_json()))
                    .collect(),
            ),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Nil => Json::Null,
        }
    }

    /// Builds a value from JSON. `null` becomes an empty string, never [`Value::Nil`], because
    /// that is how PHP sends null and Moodle rejects `<nil/>` (P26). Integers that fit `i64`
    /// stay integers, any other number becomes a double.
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as Json;
        match json {
            Json::Null => Value::String(String::new()),
            Json::Bool(flag) => Value::Bool(*flag),
            Json::Number(number) => match number.as_i64() {
                Some(integer) => Value::Int(integer),
                None => Value::Double(number.as_f64().unwrap_or(0.0)),
            },
            Json::String(text) => Value::String(text.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Value::from_json).collect()),
            Json::Object(members) => Value::Struct(
                members
                    .iter()
                    .map(|(name, value)| (name.clone(), Value::from_json(value)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::String(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::String(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Int(number)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Bool(flag)
    }
}

impl From<f64> for Value {
    fn from(number: f64) -> Self {
        Value::Double(number)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}

/// An XML-RPC request. MNET method names are slash paths (`system/keyswap`).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodCall {
    pub name: String,
    pub params: Vec<Value>,
}

/// An XML-RPC fault. Code 0 is a real fault (P25); key on codes, never on the localised string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: i64,
    pub string: String,
}

impl Fault {
    pub fn new(code: i64, string: impl Into<String>) -> Self {
        Fault {
            code,
            string: string.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Success(Value),
    Fault(Fault),
}

/// Bounds that keep a hostile document from costing more than its own size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest element nesting, counted in XML elements (root = 1). A value nested in a struct
    /// or an array costs three levels (`value`, `struct`/`array`, `member`/`data`), so 64 leaves
    /// room for about 20 levels of values.
    pub max_depth: usize,
    /// Elements in the whole document, empty elements included.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_elements: 1_000_000,
        }
    }
}

/// Why a document could not be read. [`XmlRpcError::fault_code`] gives the fault to answer with.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum XmlRpcError {
    /// Not well-formed XML, or in an encoding we cannot read. Carries position and reason.
    #[error("not well-formed XML: {0}")]
    NotXml(String),
    /// DTDs are refused outright: no entity other than the predefined five is ever expanded.
    #[error("document type declarations are not accepted")]
    Doctype,
    #[error("wrong root element: {0}")]
    WrongRoot(String),
    /// Well-formed XML that is not valid XML-RPC (unknown element, bad number, missing part).
    #[error("invalid XML-RPC: {0}")]
    Malformed(String),
    #[error("document nested too deeply")]
    TooDeep,
    #[error("document has too many elements")]
    TooManyElements,
}

/// phpxmlrpc's fault for XML that is not well-formed: 100 + expat's generic "syntax error".
pub const FAULT_NOT_WELL_FORMED: i64 = 102;
/// phpxmlrpc's "invalid request payload": XML that is not an acceptable XML-RPC document.
pub const FAULT_INVALID_REQUEST: i64 = 15;

impl XmlRpcError {
    /// The fault code phpxmlrpc would answer with: 100 + expat's error number for XML that is
    /// not well-formed (we do not track expat's numbering and always use its generic
    /// "syntax error", 2, so 102), and 15 ("invalid request") for everything that parses as XML
    /// but is not an acceptable XML-RPC document, including our own limits and refusals.
    pub fn fault_code(&self) -> i64 {
        match self {
            XmlRpcError::NotXml(_) => FAULT_NOT_WELL_FORMED,
            XmlRpcError::Doctype
            | XmlRpcError::WrongRoot(_)
            | XmlRpcError::Malformed(_)
            | XmlRpcError::TooDeep
            | XmlRpcError::TooManyElements => FAULT_INVALID_REQUEST,
        }
    }

    /// The fault to send back for this error.
    pub fn to_fault(&self) -> Fault {
        // The message may quote the request (a value, an element name): cut it.
        Fault::new(self.fault_code(), crate::text::echo::error_text(self))
    }
}
