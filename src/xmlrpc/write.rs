//! Writers that reproduce Moodle's bytes exactly (docs/protocol.md §3.1, §3.2, §3.2 (a)).

use std::fmt::Write as _;

use base64::Engine as _;

use super::{Fault, MethodCall, Value};

/// How text is escaped: phpxmlrpc picks by the charset of the document it writes.
#[derive(Clone, Copy)]
enum Charset {
    /// Requests (charset utf-8) and Moodle's fault template: only the five markup characters
    /// are escaped, everything else stays raw UTF-8. A CR is the one exception, see the module
    /// documentation.
    Utf8,
    /// Responses (no charset, so US-ASCII): in addition, every character below 0x20 and every
    /// non-ASCII character becomes a decimal character reference. DEL stays raw, as in
    /// phpxmlrpc.
    Ascii,
}

/// The request bytes phpxmlrpc's `Request::serialize('utf-8')` produces.
pub fn serialize_call(call: &MethodCall) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<methodCall>\n<methodName>");
    escape_into(&mut out, &call.name, Charset::Utf8);
    out.push_str("</methodName>\n<params>\n");
    for param in &call.params {
        out.push_str("<param>\n");
        write_value(&mut out, param, Charset::Utf8);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>");
    out.into_bytes()
}

/// The success response bytes phpxmlrpc's server produces for Moodle.
pub fn serialize_response(value: &Value) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n<param>\n");
    write_value(&mut out, value, Charset::Ascii);
    out.push_str("</param>\n</params>\n</methodResponse>");
    out.into_bytes()
}

/// The fault bytes of Moodle's `mnet_server_fault_xml` template (shape (a)).
pub fn serialize_fault(fault: &Fault) -> Vec<u8> {
    let mut out = String::with_capacity(512 + fault.string.len());
    out.push_str(concat!(
        "<?xml version=\"1.0\"?>\n",
        "<methodResponse>\n",
        "   <fault>\n",
        "      <value>\n",
        "         <struct>\n",
        "            <member>\n",
        "               <name>faultCode</name>\n",
        "               <value><int>",
    ));
    let _ = write!(out, "{}", fault.code);
    out.push_str(concat!(
        "</int></value>\n",
        "            </member>\n",
        "            <member>\n",
        "               <name>faultString</name>\n",
        "               <value><string>",
    ));
    escape_into(&mut out, &fault.string, Charset::Utf8);
    out.push_str(concat!(
        "</string></value>\n",
        "            </member>\n",
        "         </struct>\n",
        "      </value>\n",
        "   </fault>\n",
        "</methodResponse>",
    ));
    out.into_bytes()
}

/// One `<value>…</value>` followed by LF, as phpxmlrpc's `Value::serialize` lays it out.
fn write_value(out: &mut String, value: &Value, charset: Charset) {
    out.push_str("<value>");
    match value {
        Value::Int(number) => {
            let _ = write!(out, "<int>{number}</int>");
        }
        Value::Bool(flag) => {
            out.push_str(if *flag {
                "<boolean>1</boolean>"
            } else {
                "<boolean>0</boolean>"
            });
        }
        Value::String(text) => {
            out.push_str("<string>");
            escape_into(out, text, charset);
            out.push_str("</string>");
        }
        Value::Nil => out.push_str("<string></string>"),
        Value::Double(number) => {
            out.push_str("<double>");
            out.push_str(&format_double(*number));
            out.push_str("</double>");
        }
        Value::Base64(bytes) => {
            out.push_str("<base64>");
            base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
            out.push_str("</base64>");
        }
        Value::DateTime(text) => {
            out.push_str("<dateTime.iso8601>");
            escape_into(out, text, charset);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>\n");
            for (name, member) in members {
                out.push_str("<member><name>");
                escape_into(out, name, charset);
                out.push_str("</name>\n");
                write_value(out, member, charset);
                out.push_str("</member>\n");
            }
            out.push_str("</struct>");
        }
        Value::Array(items) => {
            out.push_str("<array>\n<data>\n");
            for item in items {
                write_value(out, item, charset);
            }
            out.push_str("</data>\n</array>");
        }
    }
    out.push_str("</value>\n");
}

fn escape_into(out: &mut String, text: &str, charset: Charset) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            _ => match charset {
                Charset::Ascii if (character as u32) < 0x20 || (character as u32) > 0x7f => {
                    let _ = write!(out, "&#{};", character as u32);
                }
                _ => out.push(character),
            },
        }
    }
}

/// PHP's `number_format($value, 128, '.', '')` with trailing zeros and a bare point trimmed:
/// fixed notation, no exponent, exact binary expansion up to 128 decimals.
pub(super) fn format_double(number: f64) -> String {
    if number.is_nan() {
        return "NAN".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 { "INF" } else { "-INF" }.to_owned();
    }
    let mut text = format!("{number:.128}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    // PHP 8 never prints a negative zero, not even for a tiny negative value rounded away.
    if text == "-0" {
        text.remove(0);
    }
    text
}
