//! A site's `wwwroot`, the identity of an MNET host: its address in the one form every
//! comparison uses (engine.md D13). Lower-case scheme and host, no trailing slash; the path
//! keeps its case because web servers treat it case-sensitively.
//!
//! Two ways in: [`Wwwroot::parse`] for a name that must be usable as an MNET identity
//! (ours in the configuration, a peer being registered, a grant's home), and
//! [`Wwwroot::normalized`] for text that is only compared with known hosts (a caller's
//! claim, a command-line filter) and is never stored as an identity.

use std::fmt;

/// A normalised wwwroot. Equal values name the same host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Wwwroot(String);

/// Why a text cannot serve as an MNET identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WwwrootError {
    #[error("must start with http:// or https://")]
    NoScheme,
    #[error("scheme `{0}` is not http or https")]
    Scheme(String),
    #[error("has no host")]
    NoHost,
    #[error("must not end with a slash")]
    TrailingSlash,
    #[error("must be ASCII (use the punycode form of the host name)")]
    NotAscii,
    #[error("contains spaces or XML special characters")]
    SpecialCharacters,
}

impl Wwwroot {
    /// Normalise `raw` for comparison, without judging it: an empty or odd text yields a
    /// value that simply equals no registered host.
    pub fn normalized(raw: &str) -> Wwwroot {
        let trimmed = raw.trim().trim_end_matches('/');
        let text = match trimmed.find("://") {
            Some(scheme_end) => {
                let (scheme, rest) = trimmed.split_at(scheme_end);
                let rest = &rest[3..];
                let host_end = rest.find('/').unwrap_or(rest.len());
                let (host, path) = rest.split_at(host_end);
                format!(
                    "{}://{}{}",
                    scheme.to_ascii_lowercase(),
                    host.to_ascii_lowercase(),
                    path
                )
            }
            None => trimmed.to_string(),
        };
        Wwwroot(text)
    }

    /// Normalise `raw` and require it to be usable as an MNET identity.
    pub fn parse(raw: &str) -> Result<Wwwroot, WwwrootError> {
        let wwwroot = Wwwroot::normalized(raw);
        check(&wwwroot.0)?;
        Ok(wwwroot)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `wwwroot`, exactly as written, may serve as an MNET identity. Unlike
/// [`Wwwroot::parse`] it does not forgive a trailing slash: the configuration and the
/// keyswap are held to the form Moodle itself sends.
pub fn check(wwwroot: &str) -> Result<(), WwwrootError> {
    let Some((scheme, rest)) = wwwroot.split_once("://") else {
        return Err(WwwrootError::NoScheme);
    };
    if scheme != "http" && scheme != "https" {
        return Err(WwwrootError::Scheme(scheme.to_string()));
    }
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(WwwrootError::NoHost);
    }
    if wwwroot.ends_with('/') {
        return Err(WwwrootError::TrailingSlash);
    }
    if !wwwroot.is_ascii() {
        return Err(WwwrootError::NotAscii);
    }
    if wwwroot
        .chars()
        .any(|c| c.is_whitespace() || c == '<' || c == '&')
    {
        return Err(WwwrootError::SpecialCharacters);
    }
    Ok(())
}

/// [`check`] as an option, for callers that only report the problem.
pub fn problem(wwwroot: &str) -> Option<WwwrootError> {
    check(wwwroot).err()
}

impl fmt::Display for Wwwroot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Read as text wherever a `&str` is taken: the value is already in its final form.
impl std::ops::Deref for Wwwroot {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Wwwroot {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Wwwroot> for String {
    fn from(w: Wwwroot) -> String {
        w.0
    }
}

impl PartialEq<str> for Wwwroot {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Wwwroot {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Wwwroot {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Wwwroot> for String {
    fn eq(&self, other: &Wwwroot) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            Wwwroot::normalized("HTTPS://Moodle.Example.ORG/Sub/"),
            "https://moodle.example.org/Sub"
        );
        assert_eq!(
            Wwwroot::normalized("http://127.0.0.1:18281"),
            "http://127.0.0.1:18281"
        );
        assert_eq!(Wwwroot::normalized(" http://a.b// "), "http://a.b");
        assert_eq!(Wwwroot::normalized(""), "");
    }

    #[test]
    fn identities() {
        assert!(Wwwroot::parse("https://moodle.example.org/").is_ok());
        assert_eq!(
            Wwwroot::parse("moodle.example.org"),
            Err(WwwrootError::NoScheme)
        );
        assert_eq!(
            Wwwroot::parse("ftp://x"),
            Err(WwwrootError::Scheme("ftp".into()))
        );
        assert_eq!(Wwwroot::parse("https:///path"), Err(WwwrootError::NoHost));
        assert_eq!(check("https://a.b/"), Err(WwwrootError::TrailingSlash));
        assert_eq!(
            Wwwroot::parse("https://é.example"),
            Err(WwwrootError::NotAscii)
        );
        assert_eq!(
            Wwwroot::parse("https://a.b/x<y"),
            Err(WwwrootError::SpecialCharacters)
        );
    }

    proptest! {
        #[test]
        fn normalising_twice_changes_nothing(raw in "\\PC{0,40}") {
            let once = Wwwroot::normalized(&raw);
            prop_assert_eq!(Wwwroot::normalized(once.as_str()), once);
        }

        #[test]
        fn case_of_scheme_and_host_does_not_matter(host in "[a-zA-Z0-9.]{1,20}", path in "(/[a-zA-Z0-9]{1,8}){0,3}") {
            let lower = Wwwroot::normalized(&format!("https://{}{path}", host.to_ascii_lowercase()));
            let mixed = Wwwroot::normalized(&format!("HTTPS://{host}{path}/"));
            prop_assert_eq!(lower, mixed);
        }
    }
}
