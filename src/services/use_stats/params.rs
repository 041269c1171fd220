//! Reading the methods' XML-RPC parameters: ints given as ints or numeric strings, strings,
//! the `json_response` flag.

use super::*;
use crate::text::echo::echo;
use crate::xmlrpc::Value;

/// An int, or a string holding one (decisions: statsscope/timefrom). Returns the value and
/// its text as given, which `<FROM>` echoes.
pub(super) fn int_param(
    value: Option<&Value>,
    default: i64,
    name: &str,
) -> Result<(i64, String), Answer> {
    match value {
        None => Ok((default, default.to_string())),
        Some(Value::Int(i)) => Ok((*i, i.to_string())),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|i| {
                // `<FROM>` repeats the text as given (as the plugin does), but leading zeros
                // would let a caller make it megabytes long: past any i64's length, the
                // number's own digits are used.
                let text = s.trim();
                let text = if text.len() > 20 {
                    i.to_string()
                } else {
                    text.to_string()
                };
                (i, text)
            })
            .map_err(|_| {
                Answer::fail(
                    RPC_FAILURE_DATA,
                    format!("{name} must be an integer, got \"{}\".", echo(s)),
                )
            }),
        Some(other) => Err(Answer::fail(
            RPC_FAILURE_DATA,
            format!("{name} must be an integer, got {}.", other.type_name()),
        )),
    }
}

pub(super) fn string_param(value: Option<&Value>, name: &str) -> Result<String, Answer> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        Some(Value::Nil) | None if name == "whereroot" => Ok(String::new()),
        Some(other) => Err(Answer::fail(
            RPC_FAILURE_DATA,
            format!("{name} must be a string, got {}.", other.type_name()),
        )),
        None => Err(Answer::fail(
            RPC_FAILURE_DATA,
            format!("{name} is required."),
        )),
    }
}

pub(super) fn json_response_param(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool_lenient).unwrap_or(true)
}
