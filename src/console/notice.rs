//! The short notice a page shows after an action (post/redirect/get): the action's answer
//! redirects to a page whose query names a fixed notice, the thing it concerns and a MAC of
//! both keyed with the session's CSRF token. A link made by anyone else (a crafted URL sent to
//! an operator) fails the MAC and shows nothing, so a notice can never be made to say
//! arbitrary text; the wording is fixed here and the names in it are escaped by the template.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// Every notice the console gives; the wording is fixed, `{}` is the thing acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    PeerRemoved,
    Published,
    Unpublished,
    Subscribed,
    Unsubscribed,
    GrantSaved,
    GrantRemoved,
    TokenRevoked,
}

const ALL: &[(Notice, &str)] = &[
    (Notice::PeerRemoved, "peer-removed"),
    (Notice::Published, "published"),
    (Notice::Unpublished, "unpublished"),
    (Notice::Subscribed, "subscribed"),
    (Notice::Unsubscribed, "unsubscribed"),
    (Notice::GrantSaved, "grant-saved"),
    (Notice::GrantRemoved, "grant-removed"),
    (Notice::TokenRevoked, "token-revoked"),
];

impl Notice {
    fn code(self) -> &'static str {
        ALL.iter()
            .find(|(n, _)| *n == self)
            .map(|(_, c)| *c)
            .unwrap_or("")
    }

    fn parse(code: &str) -> Option<Notice> {
        ALL.iter().find(|(_, c)| *c == code).map(|(n, _)| *n)
    }

    /// The sentence shown, about `about`.
    pub fn text(self, about: &str) -> String {
        match self {
            Notice::PeerRemoved => {
                format!("Removed the peer {about}: it can no longer call us, nor we it.")
            }
            Notice::Published => format!("Published {about}."),
            Notice::Unpublished => format!("Stopped publishing {about}."),
            Notice::Subscribed => format!("Subscribed to {about}."),
            Notice::Unsubscribed => format!("Unsubscribed from {about}."),
            Notice::GrantSaved => format!("Saved the grant for {about}."),
            Notice::GrantRemoved => format!("Removed the grant for {about}."),
            Notice::TokenRevoked => {
                format!("Revoked the token {about}: it no longer opens the web services.")
            }
        }
    }
}

/// The longest `about` a notice carries; longer names are cut.
const MAX_ABOUT: usize = 300;

fn mac(key: &str, code: &str, about: &str) -> String {
    let signed = PKey::hmac(key.as_bytes()).and_then(|key| {
        let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
        signer.update(code.as_bytes())?;
        signer.update(b"\0")?;
        signer.update(about.as_bytes())?;
        signer.sign_to_vec()
    });
    match signed {
        Ok(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => String::new(),
    }
}

/// `path` with a notice about `about` in its query, signed with `key` (the session's CSRF
/// token). `path` has no query of its own.
pub fn location(path: &str, notice: Notice, about: &str, key: &str) -> String {
    let about: String = about.chars().take(MAX_ABOUT).collect();
    let sig = mac(key, notice.code(), &about);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", notice.code())
        .append_pair("about", &about)
        .append_pair("sig", &sig)
        .finish();
    format!("{path}?{query}")
}

/// The notice a page's query carries, when its MAC is the one `key` gives; empty otherwise.
pub fn shown(query: &std::collections::HashMap<String, String>, key: &str) -> String {
    let field = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    let Some(notice) = Notice::parse(field("notice")) else {
        return String::new();
    };
    let about = field("about");
    let expected = mac(key, notice.code(), about);
    if expected.is_empty() || !super::auth::same_token(field("sig"), &expected) {
        return String::new();
    }
    notice.text(about)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(location: &str) -> std::collections::HashMap<String, String> {
        let (_, q) = location.split_once('?').unwrap();
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn a_signed_notice_shows_its_fixed_wording() {
        let at = location("/console/peers", Notice::PeerRemoved, "Mars <b>", "k1");
        assert!(at.starts_with("/console/peers?notice=peer-removed&"));
        assert_eq!(
            shown(&query(&at), "k1"),
            "Removed the peer Mars <b>: it can no longer call us, nor we it."
        );
    }

    #[test]
    fn another_key_or_changed_text_shows_nothing() {
        let at = location("/console/peers", Notice::GrantSaved, "bob@x", "k1");
        assert_eq!(shown(&query(&at), "k2"), "");
        let mut forged = query(&at);
        forged.insert("about".into(), "anything at all".into());
        assert_eq!(shown(&forged, "k1"), "");
        let mut other = query(&at);
        other.insert("notice".into(), "grant-removed".into());
        assert_eq!(shown(&other, "k1"), "");
        assert_eq!(shown(&Default::default(), "k1"), "");
    }
}
