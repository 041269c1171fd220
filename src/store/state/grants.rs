//! The grants table: who may see what, and which peers may relay for them.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, StoreError};
use crate::wwwroot::Wwwroot;

use super::peer_by_wwwroot;

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
        let signer = crate::wwwroot::Wwwroot::normalized(signing_peer);
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
pub fn shown(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_debug())
}

/// Why a grant cannot be written. The text here is neutral; each front end words it for its
/// own people (the command line names its flags, the console its fields).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("a grant needs a home wwwroot and a username (or *)")]
    Incomplete,
    /// `given` is the operator's text as typed, already [`shown`].
    #[error("the home wwwroot `{given}` is not a Moodle wwwroot: it {problem}")]
    HomeNotAWwwroot {
        given: String,
        problem: crate::wwwroot::WwwrootError,
    },
    #[error("a grant must allow the site, its courses or both")]
    NoRights,
    #[error("relay `{given}` is not a peer wwwroot: it {problem}")]
    RelayNotAWwwroot {
        given: String,
        problem: crate::wwwroot::WwwrootError,
    },
    #[error("relay {0}: that peer was removed")]
    RelayRemoved(Wwwroot),
    #[error("relay {0} is not a registered peer")]
    RelayUnknown(Wwwroot),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for GrantError {
    fn from(e: diesel::result::Error) -> GrantError {
        GrantError::Store(e.into())
    }
}

/// The via list as given: each entry `*` or the wwwroot of a registered, not deleted peer.
/// `*` makes the others redundant, so it is kept alone.
fn checked_via(conn: &mut DbConnection, via: &[String]) -> Result<ViaList, GrantError> {
    let mut peers = Vec::new();
    for raw in via {
        if raw.trim() == ANY_PEER {
            return Ok(ViaList(vec![ANY_PEER.to_string()]));
        }
        let wwwroot = Wwwroot::normalized(raw);
        if let Some(problem) = crate::wwwroot::problem(&wwwroot) {
            return Err(GrantError::RelayNotAWwwroot {
                given: shown(raw),
                problem,
            });
        }
        match peer_by_wwwroot(conn, &wwwroot)? {
            Some(peer) if !peer.deleted => peers.push(wwwroot.into_string()),
            Some(_) => return Err(GrantError::RelayRemoved(wwwroot)),
            None => return Err(GrantError::RelayUnknown(wwwroot)),
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
) -> Result<Grant, GrantError> {
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
) -> Result<Grant, GrantError> {
    let home = Wwwroot::normalized(home_wwwroot);
    if home.is_empty() || username.is_empty() {
        return Err(GrantError::Incomplete);
    }
    if let Some(problem) = crate::wwwroot::problem(&home) {
        return Err(GrantError::HomeNotAWwwroot {
            given: shown(home_wwwroot),
            problem,
        });
    }
    if !site && !course {
        return Err(GrantError::NoRights);
    }
    crate::store::write_transaction(conn, |conn| {
        let via = checked_via(conn, via)?.to_column();
        let updated = diesel::update(
            grants::table
                .filter(grants::home_wwwroot.eq(home.as_str()))
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
                    grants::home_wwwroot.eq(home.as_str()),
                    grants::username.eq(username),
                    grants::site.eq(site),
                    grants::course.eq(course),
                    grants::created_at.eq(now),
                    grants::via.eq(&via),
                ))
                .execute(conn)?;
        }
        Ok(grants::table
            .filter(grants::home_wwwroot.eq(home.as_str()))
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
    let home = crate::wwwroot::Wwwroot::normalized(home_wwwroot);
    crate::store::write_transaction(conn, |conn| {
        let Some(grant) = grants::table
            .filter(grants::home_wwwroot.eq(home.as_str()))
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
    let home = crate::wwwroot::Wwwroot::normalized(home_wwwroot);
    let rows: Vec<Grant> = grants::table
        .filter(grants::home_wwwroot.eq(home.as_str()))
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
