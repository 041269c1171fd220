//! Who is at the console: passwords (argon2id), sessions (a random token in an `HttpOnly;
//! SameSite=Strict` cookie, only its hash stored), CSRF tokens, and the login rate limit.

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use openssl::hash::{MessageDigest, hash};

use crate::app::App;
use crate::store::StoreError;
use crate::store::state::{self, ConsoleUser};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "usestats_console";
/// Before login: the login form's CSRF token, double-submitted (cookie and field).
pub const LOGIN_COOKIE: &str = "usestats_console_login";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing: {0}")]
    Hash(#[source] argon2::password_hash::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("random bytes: {0}")]
    Random(#[from] openssl::error::ErrorStack),
}

/// The argon2id PHC string of `password` (a fresh random salt, the crate's defaults).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(AuthError::Hash)
}

/// Whether `password` matches `phc`; a malformed hash matches nothing.
pub fn password_matches(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// 32 random bytes as hex: session tokens and CSRF tokens.
pub fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the state database keeps of a session token: its SHA-256, so a copy of the database
/// opens no session.
pub fn token_hash(token: &str) -> String {
    hash(MessageDigest::sha256(), token.as_bytes())
        .map(|d| hex(&d))
        .unwrap_or_default()
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// A hash of a password nobody has: checked when the account does not exist, so that a
/// wrong name takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("usestats decoy password").unwrap_or_default())
}

/// The account `name` when `password` is its password. Off the async workers: argon2 takes
/// tens of milliseconds on purpose.
pub async fn check_login(
    app: &Arc<App>,
    name: &str,
    password: &str,
) -> Result<Option<ConsoleUser>, AuthError> {
    let (checking, name, password) = (app.clone(), name.to_string(), password.to_string());
    let user = app
        .state
        .run(move |c| state::console_user_by_name(c, &name))
        .await?;
    let checked = checking
        .cpu
        .run(move || {
            let phc = user
                .as_ref()
                .map(|u| u.password_hash.as_str())
                .unwrap_or(decoy_hash());
            (password_matches(&password, phc), user)
        })
        .await;
    Ok(match checked {
        (true, Some(user)) => Some(user),
        _ => None,
    })
}

/// A new session for `user`: (cookie token, CSRF token).
pub async fn open_session(
    app: &Arc<App>,
    user: &ConsoleUser,
) -> Result<(String, String), AuthError> {
    let (token, csrf) = (random_token()?, random_token()?);
    let now = app.now();
    let expires = now + i64::from(app.config.console.session_hours.max(1)) * 3600;
    let (hashed, csrf_stored, id) = (token_hash(&token), csrf.clone(), user.id);
    app.state
        .run(move |c| state::open_console_session(c, &hashed, id, &csrf_stored, now, expires))
        .await?;
    Ok((token, csrf))
}

/// The live session a cookie names: (user, CSRF token).
pub async fn session(
    app: &Arc<App>,
    token: &str,
) -> Result<Option<(ConsoleUser, String)>, AuthError> {
    let (hashed, now) = (token_hash(token), app.now());
    Ok(app
        .state
        .run(move |c| state::console_session(c, &hashed, now))
        .await?)
}

pub async fn close_session(app: &Arc<App>, token: &str) -> Result<(), AuthError> {
    let hashed = token_hash(token);
    Ok(app
        .state
        .run(move |c| state::close_console_session(c, &hashed))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_salted_and_verify() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(password_matches("correct horse", &a));
        assert!(!password_matches("correct horse ", &a));
        assert!(!password_matches("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..63]));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
