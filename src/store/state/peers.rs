//! The peers table and the certificate history of each peer: registration (by the
//! operator or by keyswap), key changes, health after calls and soft deletion.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, Internal, StoreError};

use super::{ALL_HOSTS, changing_peers};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = peers)]
pub struct Peer {
    pub id: i64,
    pub wwwroot: String,
    pub name: String,
    #[diesel(deserialize_as = String)]
    pub application: Application,
    #[serde(skip)]
    pub public_key: String,
    pub public_key_expires: i64,
    #[diesel(deserialize_as = i32)]
    #[serde(serialize_with = "SslVerification::serialize_level")]
    pub ssl_verification: SslVerification,
    pub deleted: bool,
    pub last_connect_time: i64,
    pub last_error: Option<String>,
    pub last_error_time: Option<i64>,
    pub clock_offset: Option<i64>,
    pub connect_timeout_ms: Option<i64>,
    pub request_timeout_ms: Option<i64>,
    pub created_at: i64,
    /// Registered by its own keyswap (`mnet.auto_register`), not by the operator: anyone
    /// could have claimed that name first, so such a peer never counts for a grant.
    pub auto_registered: bool,
}

/// How far calls to a peer check its TLS certificate, as Moodle's
/// `mnet_host.sslverification` (the column keeps Moodle's numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum SslVerification {
    /// No check at all.
    None = 0,
    /// The host name must match; the chain may be anything (self-signed, expired).
    HostName = 1,
    /// Host name and chain.
    Full = 2,
}

impl SslVerification {
    /// Moodle's level; anything but 0 and 1 is the strictest (a stray value fails closed).
    pub fn from_level(level: i32) -> SslVerification {
        match level {
            0 => SslVerification::None,
            1 => SslVerification::HostName,
            _ => SslVerification::Full,
        }
    }

    pub fn level(self) -> i32 {
        self as i32
    }

    /// The one reading of a level an operator typed (`--ssl-verification`, the console's
    /// field): exactly 0, 1 or 2.
    pub fn parse(text: &str) -> Result<SslVerification, PeerError> {
        match text.trim() {
            "0" => Ok(SslVerification::None),
            "1" => Ok(SslVerification::HostName),
            "2" => Ok(SslVerification::Full),
            _ => Err(PeerError::SslLevel(text.to_string())),
        }
    }

    /// Written as Moodle's number, as the column holds it.
    fn serialize_level<S: serde::Serializer>(
        level: &SslVerification,
        out: S,
    ) -> Result<S::Ok, S::Error> {
        out.serialize_i32(level.level())
    }
}

/// The column as read: [`SslVerification::from_level`].
impl From<i32> for SslVerification {
    fn from(level: i32) -> SslVerification {
        SslVerification::from_level(level)
    }
}

/// What software a peer runs, which decides where its MNET server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Application {
    #[default]
    Moodle,
    Mahara,
}

impl Application {
    /// The one reading of an application an operator named (`--application`, the
    /// console's field).
    pub fn parse(text: &str) -> Result<Application, PeerError> {
        match text.trim() {
            "moodle" => Ok(Application::Moodle),
            "mahara" => Ok(Application::Mahara),
            _ => Err(PeerError::Application(text.to_string())),
        }
    }

    /// As Moodle's `mnet_application.name` has it, and the column.
    pub fn name(self) -> &'static str {
        match self {
            Application::Moodle => "moodle",
            Application::Mahara => "mahara",
        }
    }
}

/// The column as read: Mahara in any case is Mahara; anything else is served as Moodle is.
impl From<String> for Application {
    fn from(column: String) -> Application {
        if column.eq_ignore_ascii_case("mahara") {
            Application::Mahara
        } else {
            Application::Moodle
        }
    }
}

/// Read as its name wherever a `&str` is taken.
impl std::ops::Deref for Application {
    type Target = str;
    fn deref(&self) -> &str {
        self.name()
    }
}

impl std::fmt::Display for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Application {
    fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(self.name())
    }
}

/// Why a peer's setting, as an operator gave it, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error(
        "`{0}` is not a TLS verification level: 0 (none), 1 (host name) or 2 (host name and chain)"
    )]
    SslLevel(String),
    #[error("`{0}` is not an application: moodle or mahara")]
    Application(String),
}

impl Peer {
    pub fn ssl(&self) -> SslVerification {
        self.ssl_verification
    }

    pub fn is_all_hosts(&self) -> bool {
        self.wwwroot == ALL_HOSTS
    }
}

#[derive(Debug, Clone)]
pub struct NewPeer<'a> {
    pub wwwroot: &'a str,
    pub name: &'a str,
    pub application: &'a str,
    pub public_key: &'a str,
    pub public_key_expires: i64,
    pub ssl_verification: SslVerification,
}

pub fn all_peers(conn: &mut DbConnection, include_deleted: bool) -> Result<Vec<Peer>, StoreError> {
    let mut query = peers::table
        .filter(peers::wwwroot.ne(ALL_HOSTS))
        .order(peers::wwwroot.asc())
        .select(Peer::as_select())
        .into_boxed();
    if !include_deleted {
        query = query.filter(peers::deleted.eq(false));
    }
    Ok(query.load(conn)?)
}

pub fn peer_by_wwwroot(conn: &mut DbConnection, wwwroot: &str) -> Result<Option<Peer>, StoreError> {
    let wanted = crate::wwwroot::Wwwroot::normalized(wwwroot);
    Ok(peers::table
        .filter(peers::wwwroot.eq(wanted.as_str()))
        .select(Peer::as_select())
        .first(conn)
        .optional()?)
}

pub fn peer_by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Peer>, StoreError> {
    Ok(peers::table
        .find(id)
        .select(Peer::as_select())
        .first(conn)
        .optional()?)
}

pub fn all_hosts(conn: &mut DbConnection) -> Result<Peer, StoreError> {
    peer_by_wwwroot(conn, ALL_HOSTS)?.ok_or_else(|| Internal::NoAllHosts.into())
}

/// Register a peer, or revive and refresh a deleted one with the same wwwroot.
pub fn upsert_peer(
    conn: &mut DbConnection,
    new: &NewPeer<'_>,
    now: i64,
) -> Result<Peer, StoreError> {
    changing_peers(|| {
        let wwwroot = crate::wwwroot::Wwwroot::normalized(new.wwwroot);
        if wwwroot.is_empty() {
            return Err(Internal::NoWwwroot.into());
        }
        crate::store::write_transaction(conn, |conn| {
            match peer_by_wwwroot(conn, &wwwroot)? {
                Some(existing) => {
                    if existing.public_key != new.public_key && !existing.public_key.is_empty() {
                        retire_certificate(conn, &existing, now)?;
                    }
                    diesel::update(peers::table.find(existing.id))
                        .set((
                            peers::name.eq(new.name),
                            peers::application.eq(new.application),
                            peers::public_key.eq(new.public_key),
                            peers::public_key_expires.eq(new.public_key_expires),
                            peers::ssl_verification.eq(new.ssl_verification.level()),
                            peers::deleted.eq(false),
                            // The operator vouches for the peer now.
                            peers::auto_registered.eq(false),
                        ))
                        .execute(conn)?;
                }
                None => insert_peer(conn, &wwwroot, new, now, false)?,
            }
            peer_by_wwwroot(conn, &wwwroot)?
                .ok_or_else(|| Internal::PeerVanishedAfterWriting.into())
        })
    })
}

fn insert_peer(
    conn: &mut DbConnection,
    wwwroot: &str,
    new: &NewPeer<'_>,
    now: i64,
    auto_registered: bool,
) -> Result<(), StoreError> {
    diesel::insert_into(peers::table)
        .values((
            peers::wwwroot.eq(wwwroot),
            peers::name.eq(new.name),
            peers::application.eq(new.application),
            peers::public_key.eq(new.public_key),
            peers::public_key_expires.eq(new.public_key_expires),
            peers::ssl_verification.eq(new.ssl_verification.level()),
            peers::deleted.eq(false),
            peers::last_connect_time.eq(0i64),
            peers::created_at.eq(now),
            peers::auto_registered.eq(auto_registered),
        ))
        .execute(conn)?;
    Ok(())
}

/// Live peers that registered themselves by keyswap (`mnet.auto_register`).
pub fn count_auto_registered(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(peers::table
        .filter(peers::auto_registered.eq(true))
        .filter(peers::deleted.eq(false))
        .count()
        .get_result(conn)?)
}

/// Register a host that introduced itself by keyswap, unless its wwwroot is on file
/// already (a keyswap never changes a known peer, deleted or not) or `max_peers`
/// self-registered peers exist. Counting and inserting in one write transaction keeps
/// concurrent keyswaps from overshooting the cap. `None` when nothing was registered.
pub fn register_auto_peer(
    conn: &mut DbConnection,
    new: &NewPeer<'_>,
    now: i64,
    max_peers: i64,
) -> Result<Option<Peer>, StoreError> {
    changing_peers(|| {
        let wwwroot = crate::wwwroot::Wwwroot::normalized(new.wwwroot);
        if wwwroot.is_empty() {
            return Err(Internal::NoWwwroot.into());
        }
        crate::store::write_transaction(conn, |conn| {
            if peer_by_wwwroot(conn, &wwwroot)?.is_some()
                || count_auto_registered(conn)? >= max_peers
            {
                return Ok(None);
            }
            insert_peer(conn, &wwwroot, new, now, true)?;
            peer_by_wwwroot(conn, &wwwroot)
        })
    })
}

fn retire_certificate(conn: &mut DbConnection, peer: &Peer, now: i64) -> Result<(), StoreError> {
    let fingerprint = crate::crypto::parse_cert_pem(&peer.public_key)
        .map(|c| crate::crypto::fingerprint_sha1(&c))
        .unwrap_or_default();
    diesel::insert_into(peer_certificates::table)
        .values((
            peer_certificates::peer_id.eq(peer.id),
            peer_certificates::public_key.eq(&peer.public_key),
            peer_certificates::fingerprint.eq(fingerprint),
            peer_certificates::expires.eq(peer.public_key_expires),
            peer_certificates::retired_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Store a new certificate for a peer, keeping the previous one in its history.
pub fn set_peer_key(
    conn: &mut DbConnection,
    peer_id: i64,
    pem: &str,
    expires: i64,
    now: i64,
) -> Result<(), StoreError> {
    changing_peers(|| {
        crate::store::write_transaction(conn, |conn| {
            let Some(peer) = peer_by_id(conn, peer_id)? else {
                return Err(Internal::PeerVanished(peer_id).into());
            };
            if peer.public_key == pem {
                return Ok(());
            }
            if !peer.public_key.is_empty() {
                retire_certificate(conn, &peer, now)?;
            }
            diesel::update(peers::table.find(peer_id))
                .set((
                    peers::public_key.eq(pem),
                    peers::public_key_expires.eq(expires),
                ))
                .execute(conn)?;
            Ok(())
        })
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = peer_certificates)]
pub struct RetiredCertificate {
    pub id: i64,
    pub peer_id: i64,
    #[serde(skip)]
    pub public_key: String,
    pub fingerprint: String,
    pub expires: i64,
    pub retired_at: i64,
}

pub fn peer_certificate_history(
    conn: &mut DbConnection,
    peer_id: i64,
) -> Result<Vec<RetiredCertificate>, StoreError> {
    Ok(peer_certificates::table
        .filter(peer_certificates::peer_id.eq(peer_id))
        .order(peer_certificates::retired_at.desc())
        .select(RetiredCertificate::as_select())
        .load(conn)?)
}

pub fn touch_peer(conn: &mut DbConnection, peer_id: i64, now: i64) -> Result<(), StoreError> {
    diesel::update(peers::table.find(peer_id))
        .set(peers::last_connect_time.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Contact times gathered in memory, in one transaction. A time never moves backwards: an
/// outgoing call may have recorded a later one meanwhile.
pub fn touch_peers(conn: &mut DbConnection, contacts: &[(i64, i64)]) -> Result<(), StoreError> {
    // Each update reads nothing it decides on but its own row: no lock between instances.
    crate::store::append_transaction(conn, |conn| {
        for &(peer_id, now) in contacts {
            diesel::update(
                peers::table
                    .find(peer_id)
                    .filter(peers::last_connect_time.lt(now)),
            )
            .set(peers::last_connect_time.eq(now))
            .execute(conn)?;
        }
        Ok(())
    })
}

/// Health after an outgoing call: contact time, the error if any, the measured offset.
pub fn record_peer_outcome(
    conn: &mut DbConnection,
    peer_id: i64,
    now: i64,
    error: Option<&str>,
    clock_offset: Option<i64>,
) -> Result<(), StoreError> {
    crate::store::write_transaction(conn, |conn| {
        if let Some(message) = error {
            diesel::update(peers::table.find(peer_id))
                .set((
                    peers::last_error.eq(Some(message)),
                    peers::last_error_time.eq(Some(now)),
                ))
                .execute(conn)?;
        } else {
            diesel::update(peers::table.find(peer_id))
                .set(peers::last_connect_time.eq(now))
                .execute(conn)?;
        }
        if let Some(offset) = clock_offset {
            diesel::update(peers::table.find(peer_id))
                .set(peers::clock_offset.eq(Some(offset)))
                .execute(conn)?;
        }
        Ok(())
    })
}

pub fn set_peer_timeouts(
    conn: &mut DbConnection,
    peer_id: i64,
    connect_ms: Option<i64>,
    request_ms: Option<i64>,
) -> Result<(), StoreError> {
    changing_peers(|| {
        diesel::update(peers::table.find(peer_id))
            .set((
                peers::connect_timeout_ms.eq(connect_ms),
                peers::request_timeout_ms.eq(request_ms),
            ))
            .execute(conn)?;
        Ok(())
    })
}

pub fn set_peer_ssl_verification(
    conn: &mut DbConnection,
    peer_id: i64,
    level: SslVerification,
) -> Result<(), StoreError> {
    changing_peers(|| {
        diesel::update(peers::table.find(peer_id))
            .set(peers::ssl_verification.eq(level.level()))
            .execute(conn)?;
        Ok(())
    })
}

/// Soft delete, as Moodle does: the row stays for history, but the peer can no longer call
/// us or be called.
pub fn delete_peer(conn: &mut DbConnection, peer_id: i64) -> Result<(), StoreError> {
    changing_peers(|| {
        diesel::update(peers::table.find(peer_id))
            .set(peers::deleted.eq(true))
            .execute(conn)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::SslVerification;

    #[test]
    fn typed_levels_are_only_0_1_2() {
        assert_eq!(SslVerification::parse("0"), Ok(SslVerification::None));
        assert_eq!(SslVerification::parse("1"), Ok(SslVerification::HostName));
        assert_eq!(SslVerification::parse("2"), Ok(SslVerification::Full));
        for bad in ["", "3", "-1", "full", "02x"] {
            assert!(SslVerification::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stray_tls_levels_fail_closed() {
        assert_eq!(SslVerification::from_level(0), SslVerification::None);
        assert_eq!(SslVerification::from_level(1), SslVerification::HostName);
        for level in [2, 3, -1, i32::MIN, i32::MAX] {
            assert_eq!(
                SslVerification::from_level(level),
                SslVerification::Full,
                "{level}"
            );
        }
    }
}
