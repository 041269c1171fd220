//! [`WsError`]: a Moodle exception as the REST server prints it, in JSON or in XML, with
//! the constructors for the exceptions the web services raise.

use serde_json::{Map, Value as Json, json};

use super::xml::xml_escape;

/// A Moodle exception as the REST server prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    pub exception: &'static str,
    pub errorcode: &'static str,
    pub message: String,
    pub debuginfo: Option<String>,
}

impl WsError {
    pub(super) fn invalid_parameter(detail: impl Into<String>) -> WsError {
        WsError {
            exception: "invalid_parameter_exception",
            errorcode: "invalidparameter",
            message: "Invalid parameter value detected".into(),
            debuginfo: Some(detail.into()),
        }
    }

    pub(super) fn invalid_token() -> WsError {
        WsError {
            exception: "moodle_exception",
            errorcode: "invalidtoken",
            message: "Invalid token - token not found".into(),
            debuginfo: None,
        }
    }

    pub(super) fn expired_token() -> WsError {
        WsError {
            exception: "moodle_exception",
            errorcode: "invalidtimedtoken",
            message: "Invalid token - token expired".into(),
            debuginfo: None,
        }
    }

    pub(super) fn ip_not_allowed(ip: std::net::IpAddr) -> WsError {
        WsError {
            exception: "moodle_exception",
            errorcode: "invalidiptoken",
            message: format!("Invalid token - IP:{ip} not supported"),
            debuginfo: None,
        }
    }

    pub(super) fn unknown_function() -> WsError {
        WsError {
            exception: "dml_missing_record_exception",
            errorcode: "invalidrecord",
            message: "Can't find data record in database table external_functions.".into(),
            debuginfo: None,
        }
    }

    pub(super) fn no_permission() -> WsError {
        WsError {
            exception: "required_capability_exception",
            errorcode: "nopermissions",
            message:
                "Sorry, but you do not currently have permissions to do that (Export use stats)."
                    .into(),
            debuginfo: Some(
                "the token's grant does not include course detail (grant add … --course)".into(),
            ),
        }
    }

    /// Moodle's exception for a failed read; its message matches, and the details stay in
    /// our log (D12: no internal dumps in errors).
    pub(super) fn unavailable() -> WsError {
        WsError {
            exception: "dml_read_exception",
            errorcode: "dmlreadexception",
            message: "Error reading from database".into(),
            debuginfo: None,
        }
    }

    pub(super) fn to_json(&self) -> Json {
        let mut object = Map::new();
        object.insert("exception".into(), json!(self.exception));
        object.insert("errorcode".into(), json!(self.errorcode));
        object.insert("message".into(), json!(self.message));
        if let Some(debug) = &self.debuginfo {
            object.insert("debuginfo".into(), json!(debug));
        }
        Json::Object(object)
    }

    pub(super) fn to_xml(&self) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<EXCEPTION class=\"{}\">\n<ERRORCODE>{}</ERRORCODE>\n<MESSAGE>{}</MESSAGE>\n",
            self.exception,
            xml_escape(self.errorcode),
            xml_escape(&self.message)
        );
        if let Some(debug) = &self.debuginfo {
            out.push_str(&format!("<DEBUGINFO>{}</DEBUGINFO>\n", xml_escape(debug)));
        }
        out.push_str("</EXCEPTION>\n");
        out
    }
}
