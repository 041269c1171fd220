//! Web-service tokens: random, shown once, stored as SHA-256, bound to a grant, with an
//! optional expiry and allowed client ranges.

use std::net::IpAddr;
use std::sync::Arc;

use crate::app::App;
use crate::store::state::{self, Grant, WsToken};

pub fn hash(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

/// Why a token or an address range was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("`{0}` is not an IP address or CIDR range")]
    NotAnAddress(String),
    #[error("`{text}`: prefix length must be 0..={max}")]
    Prefix { text: String, max: u8 },
    #[error("`{0}` names no address or range")]
    NoRange(String),
    #[error("no grant for {user}@{home}")]
    NoGrant { user: String, home: String },
    #[error("a label may not hold control characters (newlines, escapes)")]
    LabelControl,
    #[error("a label has at most {0} characters")]
    LabelTooLong(usize),
    #[error("no random bytes for a token: {0}")]
    Random(#[from] openssl::error::ErrorStack),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A token's label is shown in `token list` tables and on the console: plain text of one
/// line, bounded.
pub fn check_label(label: &str) -> Result<(), TokenError> {
    const MAX: usize = 100;
    if label.chars().any(char::is_control) {
        return Err(TokenError::LabelControl);
    }
    if label.chars().count() > MAX {
        return Err(TokenError::LabelTooLong(MAX));
    }
    Ok(())
}

/// Moodle tokens are 32 hex characters; ours are the same shape so clients that check the
/// format accept them.
fn fresh_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// One CIDR range (`10.0.0.0/8`, `::1/128`) or a single address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    network: IpAddr,
    prefix: u8,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, TokenError> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| TokenError::NotAnAddress(crate::text::echo::echo(text)))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix =
            match prefix {
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                    TokenError::Prefix {
                        text: crate::text::echo::echo(text),
                        max,
                    }
                })?,
                None => max,
            };
        Ok(Range { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

pub fn validate_ranges(list: &str) -> Result<(), TokenError> {
    let mut ranges = 0;
    for item in list.split(',').filter(|s| !s.trim().is_empty()) {
        Range::parse(item)?;
        ranges += 1;
    }
    // Only separators would be stored as "any address": not what whoever typed it meant.
    if ranges == 0 && !list.trim().is_empty() {
        return Err(TokenError::NoRange(crate::text::echo::echo(list)));
    }
    Ok(())
}

pub fn ip_allowed(list: &str, ip: IpAddr) -> bool {
    let ranges: Vec<&str> = list.split(',').filter(|s| !s.trim().is_empty()).collect();
    ranges.is_empty()
        || ranges
            .iter()
            .any(|r| Range::parse(r).is_ok_and(|r| r.contains(ip)))
}

/// Create a token for the grant of (home wwwroot, username). The grant must exist.
pub async fn create(
    app: &Arc<App>,
    home_wwwroot: &str,
    username: &str,
    label: &str,
    expires_at: Option<i64>,
    allowed_ips: &str,
) -> Result<(String, WsToken), TokenError> {
    let token = fresh_token()?;
    let token_hash = hash(&token);
    let prefix = token[..8].to_string();
    let (home, user, label, ips, now) = (
        crate::wwwroot::Wwwroot::normalized(home_wwwroot),
        username.to_string(),
        label.to_string(),
        allowed_ips.trim().to_string(),
        app.now(),
    );
    let created = app
        .state
        .run::<_, TokenError, _>(move |c| {
            let grants = state::list_grants(c)?;
            let Some(grant) = grants
                .into_iter()
                .find(|g| g.home_wwwroot == home && g.username == user)
            else {
                return Err(TokenError::NoGrant {
                    user: user.clone(),
                    home: home.to_string(),
                });
            };
            Ok(state::insert_token(
                c,
                &state::NewToken {
                    token_hash: &token_hash,
                    token_prefix: &prefix,
                    grant_id: grant.id,
                    label: &label,
                    expires_at,
                    allowed_ips: &ips,
                },
                now,
            )?)
        })
        .await?;
    Ok((token, created))
}

/// Why a presented token is refused: in Moodle's words, or the state database's failure.
#[derive(Debug)]
pub enum TokenProblem {
    Unknown,
    Expired,
    IpNotAllowed(IpAddr),
    Unavailable(crate::store::StoreError),
}

/// Resolve a presented token to its row and grant. Reads only: see [`mark_used`].
pub async fn check(
    app: &Arc<App>,
    token: &str,
    client: Option<IpAddr>,
) -> Result<(WsToken, Grant), TokenProblem> {
    if token.is_empty() || token.len() > 128 {
        return Err(TokenProblem::Unknown);
    }
    let token_hash = hash(token);
    let now = app.now();
    let found = app
        .state
        .run::<_, crate::store::StoreError, _>(move |c| {
            let Some(row) = state::token_by_hash(c, &token_hash)? else {
                return Ok(None);
            };
            let grant = state::grant_by_id(c, row.grant_id)?;
            Ok(grant.map(|g| (row, g)))
        })
        .await
        .map_err(TokenProblem::Unavailable)?;
    let Some((row, grant)) = found.filter(|(row, _)| !row.revoked) else {
        return Err(TokenProblem::Unknown);
    };
    if row.expires_at.is_some_and(|e| e <= now) {
        return Err(TokenProblem::Expired);
    }
    if let Some(ip) = client
        && !ip_allowed(&row.allowed_ips, ip)
    {
        return Err(TokenProblem::IpNotAllowed(ip));
    }
    Ok((row, grant))
}

/// Record that a token was used. Called only once a call has succeeded, so that a bad
/// request leaves the state database as it was (the audit row aside).
pub async fn mark_used(app: &Arc<App>, token_id: i64) {
    let now = app.now();
    let marked = app
        .state
        .run(move |c| state::mark_token_used(c, token_id, now))
        .await;
    if let Err(e) = marked {
        tracing::warn!(error = %e, "could not record token use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = Range::parse("10.1.0.0/16").expect("a range");
        assert!(r.contains("10.1.200.3".parse().expect("an IP address")));
        assert!(!r.contains("10.2.0.1".parse().expect("an IP address")));
        assert!(r.contains("::ffff:10.1.0.9".parse().expect("an IP address")));
        assert!(
            Range::parse("::1")
                .unwrap()
                .contains("::1".parse().expect("an IP address"))
        );
        assert!(
            Range::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().expect("an IP address"))
        );
        assert!(Range::parse("10.0.0.0/33").is_err());
        assert!(Range::parse("nonsense").is_err());
        assert!(ip_allowed("", "1.2.3.4".parse().expect("an IP address")));
        assert!(ip_allowed(
            "127.0.0.0/8, 10.0.0.0/8",
            "127.0.0.1".parse().expect("an IP address")
        ));
        assert!(!ip_allowed(
            "10.0.0.0/8",
            "127.0.0.1".parse().expect("an IP address")
        ));
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
