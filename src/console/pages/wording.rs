//! Typed errors in plain words for people at the console: what happened and what to do
//! next, without the error chains, CLI options or protocol details the logs keep.

use hyper::StatusCode;

use crate::mnet::client::ClientError;
use crate::mnet::registration::RegistrationError;

/// Why adding a peer failed, for the add-peer form, with the status the page is sent with.
pub fn registration(e: &RegistrationError) -> (StatusCode, String) {
    match e {
        RegistrationError::NotAWwwroot { wwwroot, problem } => (
            StatusCode::BAD_REQUEST,
            format!(
                "“{wwwroot}” is not the address of a Moodle site: it {problem}. Type the address of the site's home page, such as https://moodle.example.org."
            ),
        ),
        RegistrationError::OwnWwwroot => (
            StatusCode::BAD_REQUEST,
            "That is this site's own address: give the address of the other site.".into(),
        ),
        RegistrationError::Keyswap { wwwroot, source } => {
            (StatusCode::BAD_GATEWAY, unreachable(wwwroot, source))
        }
        RegistrationError::Unreadable { wwwroot, .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "{wwwroot} sent a certificate that cannot be read. Ask its administrator to check the site's networking key."
            ),
        ),
        RegistrationError::Credentials { wwwroot, .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "The certificate {wwwroot} sent is not made out for that address. Check that you typed the site's address exactly as its administrator gives it."
            ),
        ),
        RegistrationError::Store { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The console cannot reach its own database just now: nothing was changed. Try again in a moment.".into(),
        ),
    }
}

/// Why the keyswap with `wwwroot` failed.
fn unreachable(wwwroot: &str, e: &ClientError) -> String {
    match e {
        ClientError::Transport { message, .. } => {
            let m = message.to_ascii_lowercase();
            let why = if m.contains("refused") {
                "the connection was refused. Check the address and that the host is up."
            } else if m.contains("dns") || m.contains("lookup") || m.contains("resolve") {
                "its host name is not known. Check the spelling of the address."
            } else if m.contains("certificate") || m.contains("ssl") || m.contains("tls") {
                "its HTTPS certificate could not be verified. Check the address; if the site uses a certificate of its own making, choose a lower TLS verification."
            } else {
                "the connection failed. Check the address and that the host is up."
            };
            format!("Could not reach {wwwroot}: {why}")
        }
        ClientError::Timeout { seconds, .. } => format!(
            "Could not reach {wwwroot}: it did not answer within {seconds} seconds. Check that the host is up, then try again."
        ),
        ClientError::HttpStatus { status, .. } => format!(
            "{wwwroot} answered with an error page (HTTP {status}) instead of its key. Check that this is a Moodle or Mahara site and that networking (MNET) is on there."
        ),
        _ => format!(
            "{wwwroot} did not answer as a site with networking (MNET) does. Check the address and that networking is on at that site."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_said_plainly() {
        let e = RegistrationError::Keyswap {
            wwwroot: "https://x.example".into(),
            source: ClientError::Transport {
                url: "https://x.example/mnet/xmlrpc/server.php".into(),
                message:
                    "client error (Connect): tcp connect error: Connection refused (os error 111)"
                        .into(),
            },
        };
        let (status, text) = registration(&e);
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            text,
            "Could not reach https://x.example: the connection was refused. Check the address and that the host is up."
        );
    }

    #[test]
    fn no_message_names_a_command_line_option() {
        let errors = [
            RegistrationError::OwnWwwroot,
            RegistrationError::Keyswap {
                wwwroot: "http://a".into(),
                source: ClientError::Timeout {
                    url: "http://a".into(),
                    seconds: 10,
                },
            },
            RegistrationError::Keyswap {
                wwwroot: "http://a".into(),
                source: ClientError::HttpStatus {
                    url: "http://a".into(),
                    status: 404,
                },
            },
        ];
        for e in errors {
            let (_, text) = registration(&e);
            assert!(
                !text.contains("--") && !text.contains("usestats "),
                "{text}"
            );
            assert!(!text.contains("error ("), "{text}");
        }
    }
}
