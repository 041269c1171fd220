//! Our own tables: peers and their certificates, per-peer services, our key history,
//! grants, web-service tokens and the audit log.

use diesel::prelude::*;
use serde::Serialize;

use super::{DbConnection, StoreError};

pub mod schema {
    diesel::table! {
        peers (id) {
            id -> BigInt,
            wwwroot -> Text,
            name -> Text,
            application -> Text,
            public_key -> Text,
            public_key_expires -> BigInt,
            ssl_verification -> Integer,
            deleted -> Bool,
            last_connect_time -> BigInt,
            last_error -> Nullable<Text>,
            last_error_time -> Nullable<BigInt>,
            clock_offset -> Nullable<BigInt>,
            connect_timeout_ms -> Nullable<BigInt>,
            request_timeout_ms -> Nullable<BigInt>,
            created_at -> BigInt,
            auto_registered -> Bool,
        }
    }
    diesel::table! {
        peer_certificates (id) {
            id -> BigInt,
            peer_id -> BigInt,
            public_key -> Text,
            fingerprint -> Text,
            expires -> BigInt,
            retired_at -> BigInt,
        }
    }
    diesel::table! {
        peer_services (peer_id, service) {
            peer_id -> BigInt,
            service -> Text,
            publish -> Bool,
            subscribe -> Bool,
        }
    }
    diesel::table! {
        own_keys (fingerprint) {
            fingerprint -> Text,
            created_at -> BigInt,
            expires -> BigInt,
            archived_at -> Nullable<BigInt>,
        }
    }
    diesel::table! {
        grants (id) {
            id -> BigInt,
            home_wwwroot -> Text,
            username -> Text,
            site -> Bool,
            course -> Bool,
            created_at -> BigInt,
            via -> Text,
        }
    }
    diesel::table! {
        ws_tokens (id) {
            id -> BigInt,
            token_hash -> Text,
            token_prefix -> Text,
            grant_id -> BigInt,
            label -> Text,
            created_at -> BigInt,
            expires_at -> Nullable<BigInt>,
            allowed_ips -> Text,
            last_used_at -> Nullable<BigInt>,
            revoked -> Bool,
        }
    }
    diesel::table! {
        audit_log (id) {
            id -> BigInt,
            time -> BigInt,
            channel -> Text,
            peer -> Text,
            remote_addr -> Text,
            method -> Text,
            caller -> Text,
            target -> Text,
            status -> Text,
            latency_ms -> BigInt,
            bytes_in -> BigInt,
            bytes_out -> BigInt,
            verified -> Bool,
        }
    }
    diesel::table! {
        replay_keys (key_hash) {
            key_hash -> Text,
            seen_at -> BigInt,
        }
    }
    diesel::allow_tables_to_appear_in_same_query!(
        peers,
        peer_certificates,
        peer_services,
        grants,
        ws_tokens
    );
}

use schema::*;

/// The pseudo-peer whose publish/subscribe rows apply to every peer.
pub const ALL_HOSTS: &str = "";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = peers)]
pub struct Peer {
    pub id: i64,
    pub wwwroot: String,
    pub name: String,
    pub application: String,
    #[serde(skip)]
    pub public_key: String,
    pub public_key_expires: i64,
    pub ssl_verification: i32,
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

impl Peer {
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
    pub ssl_verification: i32,
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
    let wanted = crate::config::normalize_wwwroot(wwwroot);
    Ok(peers::table
        .filter(peers::wwwroot.eq(wanted))
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
    peer_by_wwwroot(conn, ALL_HOSTS)?
        .ok_or_else(|| StoreError::Invalid("the All Hosts row is missing from peers".into()))
}

/// Register a peer, or revive and refresh a deleted one with the same wwwroot.
pub fn upsert_peer(
    conn: &mut DbConnection,
    new: &NewPeer<'_>,
    now: i64,
) -> Result<Peer, StoreError> {
    let wwwroot = crate::config::normalize_wwwroot(new.wwwroot);
    if wwwroot.is_empty() {
        return Err(StoreError::Invalid("a peer needs a wwwroot".into()));
    }
    super::write_transaction(conn, |conn| {
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
                        peers::ssl_verification.eq(new.ssl_verification),
                        peers::deleted.eq(false),
                        // The operator vouches for the peer now.
                        peers::auto_registered.eq(false),
                    ))
                    .execute(conn)?;
            }
            None => insert_peer(conn, &wwwroot, new, now, false)?,
        }
        peer_by_wwwroot(conn, &wwwroot)?
            .ok_or_else(|| StoreError::Invalid("peer vanished after writing".into()))
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
            peers::ssl_verification.eq(new.ssl_verification),
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
    let wwwroot = crate::config::normalize_wwwroot(new.wwwroot);
    if wwwroot.is_empty() {
        return Err(StoreError::Invalid("a peer needs a wwwroot".into()));
    }
    super::write_transaction(conn, |conn| {
        if peer_by_wwwroot(conn, &wwwroot)?.is_some() || count_auto_registered(conn)? >= max_peers {
            return Ok(None);
        }
        insert_peer(conn, &wwwroot, new, now, true)?;
        peer_by_wwwroot(conn, &wwwroot)
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
    super::write_transaction(conn, |conn| {
        let Some(peer) = peer_by_id(conn, peer_id)? else {
            return Err(StoreError::Invalid(format!("no peer with id {peer_id}")));
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

/// Health after an outgoing call: contact time, the error if any, the measured offset.
pub fn record_peer_outcome(
    conn: &mut DbConnection,
    peer_id: i64,
    now: i64,
    error: Option<&str>,
    clock_offset: Option<i64>,
) -> Result<(), StoreError> {
    super::write_transaction(conn, |conn| {
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
    diesel::update(peers::table.find(peer_id))
        .set((
            peers::connect_timeout_ms.eq(connect_ms),
            peers::request_timeout_ms.eq(request_ms),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_peer_ssl_verification(
    conn: &mut DbConnection,
    peer_id: i64,
    level: i32,
) -> Result<(), StoreError> {
    diesel::update(peers::table.find(peer_id))
        .set(peers::ssl_verification.eq(level))
        .execute(conn)?;
    Ok(())
}

/// Soft delete, as Moodle does: the row stays for history, but the peer can no longer call
/// us or be called.
pub fn delete_peer(conn: &mut DbConnection, peer_id: i64) -> Result<(), StoreError> {
    diesel::update(peers::table.find(peer_id))
        .set(peers::deleted.eq(true))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = peer_services)]
pub struct PeerService {
    pub peer_id: i64,
    pub service: String,
    pub publish: bool,
    pub subscribe: bool,
}

/// Set publish and/or subscribe for one peer (or the All Hosts row) and one service.
pub fn set_service(
    conn: &mut DbConnection,
    peer_id: i64,
    service: &str,
    publish: Option<bool>,
    subscribe: Option<bool>,
) -> Result<PeerService, StoreError> {
    super::write_transaction(conn, |conn| {
        let existing: Option<PeerService> = peer_services::table
            .filter(peer_services::peer_id.eq(peer_id))
            .filter(peer_services::service.eq(service))
            .select(PeerService::as_select())
            .first(conn)
            .optional()?;
        let row = PeerService {
            peer_id,
            service: service.to_string(),
            publish: publish.unwrap_or(existing.as_ref().is_some_and(|e| e.publish)),
            subscribe: subscribe.unwrap_or(existing.as_ref().is_some_and(|e| e.subscribe)),
        };
        if existing.is_some() {
            diesel::update(
                peer_services::table
                    .filter(peer_services::peer_id.eq(peer_id))
                    .filter(peer_services::service.eq(service)),
            )
            .set((
                peer_services::publish.eq(row.publish),
                peer_services::subscribe.eq(row.subscribe),
            ))
            .execute(conn)?;
        } else {
            diesel::insert_into(peer_services::table)
                .values((
                    peer_services::peer_id.eq(peer_id),
                    peer_services::service.eq(service),
                    peer_services::publish.eq(row.publish),
                    peer_services::subscribe.eq(row.subscribe),
                ))
                .execute(conn)?;
        }
        Ok(row)
    })
}

/// The peer's own rows merged with the All Hosts rows: a service is published (or
/// subscribed) when either row says so. Moodle looks at whichever row its database returns
/// first (mnet-protocol.md A4); the union is the predictable reading of "published to it or
/// to all hosts".
pub fn effective_services(
    conn: &mut DbConnection,
    peer_id: i64,
) -> Result<Vec<PeerService>, StoreError> {
    let all = all_hosts(conn)?;
    let rows: Vec<PeerService> = peer_services::table
        .filter(peer_services::peer_id.eq_any([peer_id, all.id]))
        .select(PeerService::as_select())
        .load(conn)?;
    let mut merged: Vec<PeerService> = Vec::new();
    for row in rows {
        match merged.iter_mut().find(|m| m.service == row.service) {
            Some(m) => {
                m.publish |= row.publish;
                m.subscribe |= row.subscribe;
            }
            None => merged.push(PeerService { peer_id, ..row }),
        }
    }
    merged.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(merged)
}

pub fn own_services(conn: &mut DbConnection, peer_id: i64) -> Result<Vec<PeerService>, StoreError> {
    Ok(peer_services::table
        .filter(peer_services::peer_id.eq(peer_id))
        .order(peer_services::service.asc())
        .select(PeerService::as_select())
        .load(conn)?)
}

pub fn is_published(
    conn: &mut DbConnection,
    peer_id: i64,
    service: &str,
) -> Result<bool, StoreError> {
    Ok(effective_services(conn, peer_id)?
        .iter()
        .any(|s| s.service == service && s.publish))
}

pub fn is_subscribed(
    conn: &mut DbConnection,
    peer_id: i64,
    service: &str,
) -> Result<bool, StoreError> {
    Ok(effective_services(conn, peer_id)?
        .iter()
        .any(|s| s.service == service && s.subscribe))
}

/// Remember a key pair of ours (history for operators; the PEM files are the keys).
pub fn record_own_key(
    conn: &mut DbConnection,
    fingerprint: &str,
    created_at: i64,
    expires: i64,
    now: i64,
) -> Result<(), StoreError> {
    super::write_transaction(conn, |conn| {
        diesel::update(own_keys::table.filter(own_keys::archived_at.is_null()))
            .filter(own_keys::fingerprint.ne(fingerprint))
            .set(own_keys::archived_at.eq(Some(now)))
            .execute(conn)?;
        let exists = own_keys::table
            .find(fingerprint)
            .select(own_keys::fingerprint)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !exists {
            diesel::insert_into(own_keys::table)
                .values((
                    own_keys::fingerprint.eq(fingerprint),
                    own_keys::created_at.eq(created_at),
                    own_keys::expires.eq(expires),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = own_keys)]
pub struct OwnKey {
    pub fingerprint: String,
    pub created_at: i64,
    pub expires: i64,
    pub archived_at: Option<i64>,
}

pub fn own_key_history(conn: &mut DbConnection) -> Result<Vec<OwnKey>, StoreError> {
    Ok(own_keys::table
        .order(own_keys::created_at.desc())
        .select(OwnKey::as_select())
        .load(conn)?)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = grants)]
pub struct Grant {
    pub id: i64,
    pub home_wwwroot: String,
    pub username: String,
    pub site: bool,
    pub course: bool,
    pub created_at: i64,
    /// Peers besides the home host that may sign calls for this grant's people.
    #[diesel(deserialize_as = String)]
    pub via: ViaList,
}

impl Grant {
    /// Decisions, Authorisation: a grant speaks only through the person's home host or a
    /// relay it names, so a peer can never borrow the grants of another host's people.
    /// Both wwwroots are compared normalised (D13).
    pub fn honoured_from(&self, signing_peer: &str) -> bool {
        let signer = crate::config::normalize_wwwroot(signing_peer);
        signer == self.home_wwwroot || self.via.allows(&signer)
    }
}

/// The relays of a grant: normalised wwwroots, sorted, without duplicates; `*` alone when
/// any peer may relay. Stored as one space-separated text column (wwwroots hold no spaces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ViaList(Vec<String>);

/// `--via '*'`: any registered peer may relay.
pub const ANY_PEER: &str = "*";

impl ViaList {
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn allows(&self, normalised_peer: &str) -> bool {
        self.0.iter().any(|p| p == ANY_PEER || p == normalised_peer)
    }

    fn to_column(&self) -> String {
        self.0.join(" ")
    }
}

impl From<String> for ViaList {
    fn from(column: String) -> ViaList {
        ViaList(column.split_whitespace().map(str::to_string).collect())
    }
}

impl std::fmt::Display for ViaList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// An operator's text, shortened and with control characters escaped, for an error message.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_debug())
}

/// The via list as given: each entry `*` or the wwwroot of a registered, not deleted peer.
/// `*` makes the others redundant, so it is kept alone.
fn checked_via(conn: &mut DbConnection, via: &[String]) -> Result<ViaList, StoreError> {
    let mut peers = Vec::new();
    for raw in via {
        if raw.trim() == ANY_PEER {
            return Ok(ViaList(vec![ANY_PEER.to_string()]));
        }
        let wwwroot = crate::config::normalize_wwwroot(raw);
        if let Some(problem) = crate::config::wwwroot_problem(&wwwroot) {
            return Err(StoreError::Invalid(format!(
                "--via `{}` is not a peer wwwroot: it {problem}",
                shown(raw)
            )));
        }
        match peer_by_wwwroot(conn, &wwwroot)? {
            Some(peer) if !peer.deleted => peers.push(wwwroot),
            Some(_) => {
                return Err(StoreError::Invalid(format!(
                    "--via {wwwroot}: that peer was removed; add it again with `usestats peer add`"
                )));
            }
            None => {
                return Err(StoreError::Invalid(format!(
                    "--via {wwwroot} is not a registered peer (`usestats peer add {wwwroot}` first, or --via '*' for any peer)"
                )));
            }
        }
    }
    peers.sort();
    peers.dedup();
    Ok(ViaList(peers))
}

/// Add or replace the home-only grant of (home wwwroot, username or `*`).
pub fn put_grant(
    conn: &mut DbConnection,
    home_wwwroot: &str,
    username: &str,
    site: bool,
    course: bool,
    now: i64,
) -> Result<Grant, StoreError> {
    put_grant_via(conn, home_wwwroot, username, site, course, &[], now)
}

/// Add or replace the grant of (home wwwroot, username or `*`), relayed by the peers in `via`
/// (`*` = any peer). Re-adding a grant replaces its rights and its whole via list, so the
/// command line as last typed is what holds; an empty list makes it home-only again.
pub fn put_grant_via(
    conn: &mut DbConnection,
    home_wwwroot: &str,
    username: &str,
    site: bool,
    course: bool,
    via: &[String],
    now: i64,
) -> Result<Grant, StoreError> {
    let home = crate::config::normalize_wwwroot(home_wwwroot);
    if home.is_empty() || username.is_empty() {
        return Err(StoreError::Invalid(
            "a grant needs a home wwwroot and a username (or *)".into(),
        ));
    }
    if let Some(problem) = crate::config::wwwroot_problem(&home) {
        return Err(StoreError::Invalid(format!(
            "the home wwwroot `{}` is not a Moodle wwwroot: it {problem}",
            shown(home_wwwroot)
        )));
    }
    if !site && !course {
        return Err(StoreError::Invalid(
            "a grant must allow --site, --course or both".into(),
        ));
    }
    super::write_transaction(conn, |conn| {
        let via = checked_via(conn, via)?.to_column();
        let updated = diesel::update(
            grants::table
                .filter(grants::home_wwwroot.eq(&home))
                .filter(grants::username.eq(username)),
        )
        .set((
            grants::site.eq(site),
            grants::course.eq(course),
            grants::via.eq(&via),
        ))
        .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(grants::table)
                .values((
                    grants::home_wwwroot.eq(&home),
                    grants::username.eq(username),
                    grants::site.eq(site),
                    grants::course.eq(course),
                    grants::created_at.eq(now),
                    grants::via.eq(&via),
                ))
                .execute(conn)?;
        }
        Ok(grants::table
            .filter(grants::home_wwwroot.eq(&home))
            .filter(grants::username.eq(username))
            .select(Grant::as_select())
            .first(conn)?)
    })
}

pub fn list_grants(conn: &mut DbConnection) -> Result<Vec<Grant>, StoreError> {
    Ok(grants::table
        .order((grants::home_wwwroot.asc(), grants::username.asc()))
        .select(Grant::as_select())
        .load(conn)?)
}

/// Remove a grant and the tokens bound to it. Returns whether it existed.
pub fn remove_grant(
    conn: &mut DbConnection,
    home_wwwroot: &str,
    username: &str,
) -> Result<bool, StoreError> {
    let home = crate::config::normalize_wwwroot(home_wwwroot);
    super::write_transaction(conn, |conn| {
        let Some(grant) = grants::table
            .filter(grants::home_wwwroot.eq(&home))
            .filter(grants::username.eq(username))
            .select(Grant::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(false);
        };
        // A token cannot outlive the grant it stands for.
        diesel::delete(ws_tokens::table.filter(ws_tokens::grant_id.eq(grant.id))).execute(conn)?;
        diesel::delete(grants::table.find(grant.id)).execute(conn)?;
        Ok(true)
    })
}

/// What (home wwwroot, username) may see: the user's own grant, else the host's `*`.
pub fn grant_for(
    conn: &mut DbConnection,
    home_wwwroot: &str,
    username: &str,
) -> Result<Option<Grant>, StoreError> {
    let home = crate::config::normalize_wwwroot(home_wwwroot);
    let rows: Vec<Grant> = grants::table
        .filter(grants::home_wwwroot.eq(&home))
        .filter(grants::username.eq_any([username, "*"]))
        .select(Grant::as_select())
        .load(conn)?;
    Ok(rows
        .iter()
        .find(|g| g.username == username)
        .or_else(|| rows.iter().find(|g| g.username == "*"))
        .cloned())
}

pub fn grant_by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Grant>, StoreError> {
    Ok(grants::table
        .find(id)
        .select(Grant::as_select())
        .first(conn)
        .optional()?)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = ws_tokens)]
pub struct WsToken {
    pub id: i64,
    #[serde(skip)]
    pub token_hash: String,
    pub token_prefix: String,
    pub grant_id: i64,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub allowed_ips: String,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
    pub grant_id: i64,
    pub label: &'a str,
    pub expires_at: Option<i64>,
    pub allowed_ips: &'a str,
}

pub fn insert_token(
    conn: &mut DbConnection,
    new: &NewToken<'_>,
    now: i64,
) -> Result<WsToken, StoreError> {
    diesel::insert_into(ws_tokens::table)
        .values((
            ws_tokens::token_hash.eq(new.token_hash),
            ws_tokens::token_prefix.eq(new.token_prefix),
            ws_tokens::grant_id.eq(new.grant_id),
            ws_tokens::label.eq(new.label),
            ws_tokens::created_at.eq(now),
            ws_tokens::expires_at.eq(new.expires_at),
            ws_tokens::allowed_ips.eq(new.allowed_ips),
            ws_tokens::revoked.eq(false),
        ))
        .execute(conn)?;
    token_by_hash(conn, new.token_hash)?
        .ok_or_else(|| StoreError::Invalid("token vanished after writing".into()))
}

pub fn token_by_hash(conn: &mut DbConnection, hash: &str) -> Result<Option<WsToken>, StoreError> {
    Ok(ws_tokens::table
        .filter(ws_tokens::token_hash.eq(hash))
        .select(WsToken::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_tokens(conn: &mut DbConnection) -> Result<Vec<WsToken>, StoreError> {
    Ok(ws_tokens::table
        .order(ws_tokens::id.asc())
        .select(WsToken::as_select())
        .load(conn)?)
}

/// Revoke by id or by the listed prefix. Returns how many tokens were revoked.
pub fn revoke_token(conn: &mut DbConnection, id_or_prefix: &str) -> Result<usize, StoreError> {
    // A prefix is 8 hex characters and may be all digits, so it is tried first, over revoked
    // tokens too (revoking one twice must not fall through to a row id); only a string that
    // is nobody's prefix is taken as a row id.
    let by_prefix: Vec<(i64, bool)> = ws_tokens::table
        .filter(ws_tokens::token_prefix.eq(id_or_prefix))
        .select((ws_tokens::id, ws_tokens::revoked))
        .load(conn)?;
    let named_by_prefix = !by_prefix.is_empty();
    let by_prefix: Vec<i64> = by_prefix
        .into_iter()
        .filter(|(_, revoked)| !revoked)
        .map(|(id, _)| id)
        .collect();
    let ids = match (!named_by_prefix, id_or_prefix.parse::<i64>()) {
        (true, Ok(id)) => ws_tokens::table
            .filter(ws_tokens::revoked.eq(false))
            .filter(ws_tokens::id.eq(id))
            .select(ws_tokens::id)
            .load(conn)?,
        _ => by_prefix,
    };
    Ok(
        diesel::update(ws_tokens::table.filter(ws_tokens::id.eq_any(ids)))
            .set(ws_tokens::revoked.eq(true))
            .execute(conn)?,
    )
}

pub fn mark_token_used(conn: &mut DbConnection, id: i64, now: i64) -> Result<(), StoreError> {
    diesel::update(ws_tokens::table.find(id))
        .set(ws_tokens::last_used_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Default, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub time: i64,
    pub channel: String,
    pub peer: String,
    pub remote_addr: String,
    pub method: String,
    pub caller: String,
    pub target: String,
    pub status: String,
    pub latency_ms: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// False when the peer, caller and target are only what an unauthenticated request
    /// claimed.
    pub verified: bool,
}

pub fn insert_audit(conn: &mut DbConnection, entry: &AuditEntry) -> Result<(), StoreError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::time.eq(entry.time),
            audit_log::channel.eq(&entry.channel),
            audit_log::peer.eq(&entry.peer),
            audit_log::remote_addr.eq(&entry.remote_addr),
            audit_log::method.eq(&entry.method),
            audit_log::caller.eq(&entry.caller),
            audit_log::target.eq(&entry.target),
            audit_log::status.eq(&entry.status),
            audit_log::latency_ms.eq(entry.latency_ms),
            audit_log::bytes_in.eq(entry.bytes_in),
            audit_log::bytes_out.eq(entry.bytes_out),
            audit_log::verified.eq(entry.verified),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn query_audit(
    conn: &mut DbConnection,
    peer: Option<&str>,
    since: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut query = audit_log::table
        .order(audit_log::id.desc())
        .limit(limit)
        .select(AuditEntry::as_select())
        .into_boxed();
    if let Some(peer) = peer {
        query = query.filter(audit_log::peer.eq(crate::config::normalize_wwwroot(peer)));
    }
    if let Some(since) = since {
        query = query.filter(audit_log::time.ge(since));
    }
    Ok(query.load(conn)?)
}

pub fn prune_audit(conn: &mut DbConnection, older_than: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(audit_log::table.filter(audit_log::time.lt(older_than))).execute(conn)?)
}

/// Remember a replay key (hex of a short hash). A key already there (another instance of
/// a shared state database saw it) is left as it is.
pub fn insert_replay_key(
    conn: &mut DbConnection,
    key_hash: &str,
    seen_at: i64,
) -> Result<(), StoreError> {
    let row = (
        replay_keys::key_hash.eq(key_hash),
        replay_keys::seen_at.eq(seen_at),
    );
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::insert_or_ignore_into(replay_keys::table)
                .values(row)
                .execute(c)?;
        }
        DbConnection::Postgres(c) => {
            diesel::insert_into(replay_keys::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?;
        }
        DbConnection::Mysql(_) => return Err(StoreError::Invalid(super::MYSQL_STATE.into())),
    }
    Ok(())
}

/// Whether `key_hash` was seen at `since` or later.
pub fn replay_key_seen(
    conn: &mut DbConnection,
    key_hash: &str,
    since: i64,
) -> Result<bool, StoreError> {
    Ok(replay_keys::table
        .filter(replay_keys::key_hash.eq(key_hash))
        .filter(replay_keys::seen_at.ge(since))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// The newest replay keys seen at `since` or later, at most `limit`, newest first.
pub fn recent_replay_keys(
    conn: &mut DbConnection,
    since: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(replay_keys::table
        .filter(replay_keys::seen_at.ge(since))
        .order(replay_keys::seen_at.desc())
        .limit(limit)
        .select((replay_keys::key_hash, replay_keys::seen_at))
        .load(conn)?)
}

pub fn prune_replay_keys(conn: &mut DbConnection, older_than: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(replay_keys::table.filter(replay_keys::seen_at.lt(older_than)))
            .execute(conn)?,
    )
}
