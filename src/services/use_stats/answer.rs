//! The answer wrapper every use_stats method returns (`{status, errors, message}`, docs/engine.md §1.6),
//! and PHP's `json_encode` flavour of JSON it is sent in.

use serde_json::json;

use super::*;
use crate::xmlrpc::Value;

/// The answer wrapper of §1.6.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: i64,
    pub errors: Vec<serde_json::Value>,
    pub message: Option<String>,
}

impl Answer {
    pub fn ok(message: String) -> Answer {
        Answer {
            status: RPC_SUCCESS,
            errors: Vec::new(),
            message: Some(message),
        }
    }

    pub fn fail(status: i64, error: impl Into<String>) -> Answer {
        Answer {
            status,
            errors: vec![serde_json::Value::String(error.into())],
            message: None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("status".into(), json!(self.status));
        object.insert(
            "errors".into(),
            serde_json::Value::Array(self.errors.clone()),
        );
        if let Some(message) = &self.message {
            object.insert("message".into(), json!(message));
        }
        serde_json::Value::Object(object)
    }

    pub fn into_value(self, json_response: bool) -> Value {
        if json_response {
            Value::String(php_json(&self.to_json()))
        } else {
            let mut members = vec![
                ("status".to_string(), Value::Int(self.status)),
                (
                    "errors".to_string(),
                    Value::Array(self.errors.iter().map(Value::from_json).collect()),
                ),
            ];
            if let Some(message) = self.message {
                members.push(("message".into(), Value::String(message)));
            }
            Value::Struct(members)
        }
    }

    /// Read a wrapper back from a peer's answer (JSON text or struct).
    pub fn from_value(value: &Value) -> Option<Answer> {
        let json = match value {
            Value::String(text) => serde_json::from_str(text).ok()?,
            other => other.to_json(),
        };
        let status = json.get("status").and_then(|s| {
            s.as_i64()
                .or_else(|| s.as_str().and_then(|t| t.trim().parse().ok()))
        })?;
        let errors = match json.get("errors") {
            Some(serde_json::Value::Array(items)) => items.clone(),
            Some(other) => vec![other.clone()],
            None => Vec::new(),
        };
        let message = json
            .get("message")
            .or_else(|| json.get("teststatus"))
            .and_then(|m| m.as_str())
            .map(str::to_string);
        Some(Answer {
            status,
            errors,
            message,
        })
    }
}

/// JSON as PHP's `json_encode` writes it by default (`\/`, `\uXXXX` for non-ASCII), which
/// is what Moodle consumers of this plugin have always received.
pub fn php_json(value: &serde_json::Value) -> String {
    let plain = value.to_string();
    let mut out = String::with_capacity(plain.len() + 16);
    for c in plain.chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if (c as u32) < 0x80 => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_json_escapes_like_json_encode() {
        let value = json!({"status": 200, "errors": [], "message": "<A>Renée & Groß</A> €😀"});
        assert_eq!(
            php_json(&value),
            r#"{"status":200,"errors":[],"message":"<A>Ren\u00e9e & Gro\u00df<\/A> \u20ac\ud83d\ude00"}"#
        );
    }

    #[test]
    fn answers_read_back_from_json_and_struct() {
        let answer = Answer::fail(RPC_FAILURE_RECORD, "Target user does not exist.");
        for json_response in [true, false] {
            let value = answer.clone().into_value(json_response);
            assert_eq!(Answer::from_value(&value), Some(answer.clone()));
        }
        let ok = Answer::ok("<USE_STATS/>".into());
        assert_eq!(
            php_json(&ok.to_json()),
            r#"{"status":200,"errors":[],"message":"<USE_STATS\/>"}"#
        );
    }
}
