//! MNET fault codes with Moodle's numbers (docs/protocol.md §7.2). Peers key on the codes;
//! the strings are ours (Moodle's are localised and sometimes placeholders).

use crate::xmlrpc::Fault;

/// The `<wwwroot>` of an encrypted request names no known, undeleted peer.
pub const UNKNOWN_HOST: i64 = 7020;
/// Not encrypted, and not a keyswap.
pub const NOT_ENCRYPTED: i64 = 7021;
/// None of our keys, current or archived, opens the message.
pub const NO_KEY_MATCH: i64 = 7023;
/// Opened with an archived key: the fault string is our current certificate.
pub const STALE_KEY: i64 = 7025;
/// Encrypted but not signed.
pub const NOT_SIGNED: i64 = 711;
/// Signed, but the signature does not verify against the peer's certificate on file.
pub const BAD_SIGNATURE: i64 = 710;
/// Fallback for a negotiation problem that fits nothing else.
pub const UNKNOWN_ERROR: i64 = 7000;
/// Method name does not match Moodle's pattern (e.g. dotted names).
pub const BAD_METHOD_NAME: i64 = 713;
/// Unknown `system/*` method.
pub const UNKNOWN_SYSTEM_METHOD: i64 = 7018;
/// Known but unimplemented system method (listFiles, retrieveFile).
pub const UNIMPLEMENTED_SYSTEM_METHOD: i64 = 7019;
/// No such method, or no publish row for the caller.
pub const NO_SUCH_METHOD: i64 = 7012;
/// The method's service is not published to the caller.
pub const NOT_PUBLISHED: i64 = 707;
/// Wrong number or type of parameters (phpxmlrpc's code).
pub const BAD_PARAMS: i64 = 3;
/// Our own code for a request body over the configured limit; chosen outside Moodle's
/// ranges, and reminiscent of HTTP 413.
pub const BODY_TOO_LARGE: i64 = 413;
/// Our codes for the protections Moodle does not have (chosen outside Moodle's ranges):
/// a signed request whose timestamp is too far from our clock,
pub const STALE_TIMESTAMP: i64 = 7040;
/// a signed request already executed (a replay),
pub const REPLAYED: i64 = 7041;
/// and a caller over its rate limit.
pub const RATE_LIMITED: i64 = 7042;
/// phpxmlrpc's "internal server error": a handler failed for a reason that is ours.
pub const INTERNAL: i64 = 17;
/// phpxmlrpc's "invalid request payload": well-formed XML that is not a usable request.
pub const INVALID_REQUEST: i64 = crate::xmlrpc::FAULT_INVALID_REQUEST;

pub fn unknown_host(wwwroot: &str) -> Fault {
    // Moodle builds this text from the caller's wwwroot (vector 06); the caller chose it, so
    // it is cut like any echoed value.
    Fault::new(
        UNKNOWN_HOST,
        format!("{}/wrong-wwwroot", crate::text::echo::echo(wwwroot)),
    )
}

pub fn no_key_match() -> Fault {
    Fault::new(
        NO_KEY_MATCH,
        "We could not decrypt your message with any of our keys: fetch our current certificate (keyswap) and try again",
    )
}

pub fn not_encrypted() -> Fault {
    Fault::new(
        NOT_ENCRYPTED,
        "Only encrypted and signed requests are accepted",
    )
}

pub fn not_signed() -> Fault {
    Fault::new(NOT_SIGNED, "The request is not signed")
}

pub fn bad_signature() -> Fault {
    Fault::new(
        BAD_SIGNATURE,
        "The signature does not verify with the certificate we hold for your host",
    )
}

pub fn internal(what: &str) -> Fault {
    Fault::new(INTERNAL, format!("Internal error: {what}"))
}
