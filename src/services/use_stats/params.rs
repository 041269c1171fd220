//! Reading the methods' XML-RPC parameters into one struct per method, once: ints given as
//! ints or numeric strings, strings, the `json_response` flag. The calling user (the first
//! parameter) is read by `auth`, before any of these, as the plugin does.

use super::*;
use crate::text::echo::echo;
use crate::xmlrpc::Value;

/// An int, or a string holding one (docs/engine.md §1.4: statsscope and timefrom). Returns the value and
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

/// `use_stats_rpc_get_stats(callinguser, targetuser, whereroot, statsscope, timefrom,
/// json_response)` after the calling user.
#[derive(Debug, Clone)]
pub(super) struct GetStatsParams {
    pub target: String,
    pub whereroot: String,
    pub scope: Scope,
    pub timefrom: i64,
    /// `timefrom` as the caller wrote it: `<FROM>` repeats it.
    pub timefrom_text: String,
}

impl GetStatsParams {
    pub fn parse(params: &[Value]) -> Result<GetStatsParams, Answer> {
        let target = string_param(params.get(1), "targetuser")?;
        let whereroot = string_param(params.get(2), "whereroot")?;
        let (scope, _) = int_param(params.get(3), SITE_SCOPE, "statsscope")?;
        let (timefrom, timefrom_text) = int_param(params.get(4), 0, "timefrom")?;
        Ok(GetStatsParams {
            target,
            whereroot,
            scope: Scope::from_plugin(scope),
            timefrom,
            timefrom_text,
        })
    }
}

/// `use_stats_rpc_get_scores(callinguser, targetuser, whereroot, scorescope, courseidfield,
/// courseidentifier, json_response)` after the calling user.
#[derive(Debug, Clone)]
pub(super) struct GetScoresParams {
    pub target: String,
    pub whereroot: String,
    pub scorescope: String,
    pub course_field: String,
    pub course_identifier: String,
}

impl GetScoresParams {
    pub fn parse(params: &[Value]) -> Result<GetScoresParams, Answer> {
        Ok(GetScoresParams {
            target: string_param(params.get(1), "targetuser")?,
            whereroot: string_param(params.get(2), "whereroot")?,
            scorescope: string_param(params.get(3), "scorescope")?,
            course_field: string_param(params.get(4), "courseidfield")?,
            course_identifier: string_param(params.get(5), "courseidentifier")?,
        })
    }
}

pub(super) fn json_response_param(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool_lenient).unwrap_or(true)
}
